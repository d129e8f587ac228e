-- Backups as recorded when their job completes; retention marks them deleted once the
-- object is gone from the destination.
CREATE TABLE backups (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    job_id TEXT NOT NULL REFERENCES jobs (id),
    schedule_id TEXT REFERENCES schedules (id),
    database_id TEXT NOT NULL REFERENCES databases (id),
    destination_id TEXT NOT NULL REFERENCES destinations (id),
    object_key TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    pg_server_version TEXT NOT NULL,
    pg_dump_version TEXT NOT NULL,
    deleted_at BIGINT,
    delete_attempts BIGINT NOT NULL,
    last_delete_error TEXT
);
CREATE INDEX backups_schedule ON backups (schedule_id, finished_at);
