-- What customers back up, where to, and when: databases (reached by one agent),
-- destinations (non-secret settings as JSON; credentials sealed), schedules with their
-- retention rules.
CREATE TABLE databases (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    port BIGINT NOT NULL,
    dbname TEXT NOT NULL,
    username TEXT NOT NULL,
    tls_mode TEXT NOT NULL CHECK (tls_mode IN ('disable', 'prefer', 'require', 'verify-ca', 'verify-full')),
    password_secret_id TEXT REFERENCES secrets (id),
    agent_id TEXT NOT NULL REFERENCES agents (id),
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE destinations (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('s3', 'sftp', 'directory')),
    settings TEXT NOT NULL,
    credentials_secret_id TEXT REFERENCES secrets (id),
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    database_id TEXT NOT NULL REFERENCES databases (id),
    destination_id TEXT NOT NULL REFERENCES destinations (id),
    cron TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    keep_last BIGINT NOT NULL,
    keep_daily BIGINT NOT NULL,
    keep_weekly BIGINT NOT NULL,
    keep_monthly BIGINT NOT NULL,
    keep_yearly BIGINT NOT NULL,
    last_fired_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX schedules_org ON schedules (org_id);
