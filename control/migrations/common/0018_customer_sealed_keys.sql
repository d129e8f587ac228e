-- Customer-sealed organisation keys. In 'customer_sealed' mode the org's
-- private_key_secret_id names a secret of purpose 'org-private-key-customer-sealed': the
-- private key encrypted under a key derived (Argon2id) from a passphrase only the
-- customer holds, then envelope-encrypted like any secret; the plain envelope copy is
-- gone. A managed restore queued with the passphrase keeps only that one backup's file
-- key (an envelope secret) until its agent fetches the job's credentials.
ALTER TABLE orgs ADD COLUMN key_mode TEXT NOT NULL DEFAULT 'managed'
    CHECK (key_mode IN ('managed', 'customer_sealed'));
CREATE TABLE restore_file_keys (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id),
    secret_id TEXT NOT NULL REFERENCES secrets (id)
);
