-- Work for agents: jobs (made by the scheduler or "run now"), and the backups they
-- produced.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    kind TEXT NOT NULL CHECK (kind IN ('backup', 'restore')),
    schedule_id TEXT REFERENCES schedules (id),
    database_id TEXT NOT NULL REFERENCES databases (id),
    destination_id TEXT NOT NULL REFERENCES destinations (id),
    agent_id TEXT NOT NULL REFERENCES agents (id),
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempt BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    lease_until BIGINT,
    finished_at BIGINT,
    credentials_fetched_at BIGINT,
    progress_bytes BIGINT NOT NULL,
    phase TEXT NOT NULL,
    error TEXT
);
CREATE INDEX jobs_agent_state ON jobs (agent_id, state, created_at);
CREATE INDEX jobs_state_lease ON jobs (state, lease_until);
