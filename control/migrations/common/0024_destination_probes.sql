-- The control plane re-probes every destination daily (list / write / read / delete
-- with the stored credentials), so expired keys or a deleted bucket are found before a
-- backup needs them; the last outcome per destination, for the alert.
CREATE TABLE destination_probes (
    destination_id TEXT PRIMARY KEY REFERENCES destinations (id),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    probed_at BIGINT NOT NULL,
    passed BIGINT NOT NULL,
    failure TEXT
);
