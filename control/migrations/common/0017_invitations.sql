-- Invitations to join an organisation: a person becomes a member only by accepting one.
-- The one-time token is stored as its SHA-256 only. An invitation is pending until it
-- is accepted, revoked or past expires_at (all Unix seconds).
CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'operator', 'viewer')),
    token_hash TEXT NOT NULL UNIQUE,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT,
    accepted_by TEXT REFERENCES users (id),
    revoked_at BIGINT
);
CREATE INDEX invitations_org ON invitations (org_id, email);
