-- Agent identity: the deployment root CA, one intermediate CA per organisation, agents,
-- their certificates (for revocation), and one-time enrolment tokens.
CREATE TABLE instance_secrets (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL CHECK (owner_id = '_instance'),
    purpose TEXT NOT NULL,
    master_key_id TEXT NOT NULL,
    wrapped_dek BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX instance_secrets_master_key ON instance_secrets (master_key_id);
CREATE TABLE deployment_ca (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    cert_pem TEXT NOT NULL,
    key_secret_id TEXT NOT NULL REFERENCES instance_secrets (id),
    created_at TEXT NOT NULL
);
CREATE TABLE org_cas (
    org_id TEXT PRIMARY KEY REFERENCES orgs (id),
    cert_pem TEXT NOT NULL,
    key_secret_id TEXT NOT NULL REFERENCES secrets (id),
    created_at TEXT NOT NULL,
    crl_number BIGINT NOT NULL,
    crl_der BYTEA,
    crl_this_update BIGINT,
    crl_next_update BIGINT
);
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX agents_org ON agents (org_id);
CREATE TABLE agent_certificates (
    serial TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents (id),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    not_before BIGINT NOT NULL,
    not_after BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX agent_certificates_org ON agent_certificates (org_id, revoked_at);
CREATE TABLE enrolment_tokens (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    agent_id TEXT
);
CREATE INDEX enrolment_tokens_org ON enrolment_tokens (org_id);
