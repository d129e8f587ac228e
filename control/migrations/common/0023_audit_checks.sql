-- The last verification of each organisation's audit chain (housekeeping verifies each
-- chain hourly: it reads every row), so an alert can say the chain no longer verifies
-- without every alert evaluation reading the whole log.
CREATE TABLE audit_checks (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id),
    checked_at BIGINT NOT NULL,
    verified_rows BIGINT NOT NULL,
    broken_seq BIGINT,
    reason TEXT
);
