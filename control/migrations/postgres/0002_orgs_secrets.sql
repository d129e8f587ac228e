-- Organisations and their envelope-encrypted secrets (DESIGN.md, "Key hierarchy").
CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE secrets (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    purpose TEXT NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped_dek BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX secrets_master_key ON secrets (master_key_id);
ALTER TABLE orgs ADD COLUMN private_key_secret_id TEXT REFERENCES secrets (id);
