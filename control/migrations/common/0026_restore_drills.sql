-- Restore drills: a schedule may ask for one after every Nth successful backup, into a
-- throwaway database on the server of a database the operator names, with an optional
-- check query. Backups of such schedules carry their tables' row counts (JSON, counted
-- in the dump's snapshot) for the drill to compare. Each drill's outcome is kept.
ALTER TABLE schedules ADD COLUMN drill_every BIGINT;
ALTER TABLE schedules ADD COLUMN drill_database_id TEXT REFERENCES databases (id);
ALTER TABLE schedules ADD COLUMN drill_check_query TEXT;
ALTER TABLE backups ADD COLUMN row_counts TEXT;
-- A drill is a restore job with drill = 1: it is a restore in every rule (credentials,
-- retention's hold); jobs.kind's CHECK, from the first schema, cannot be widened in
-- SQLite without rebuilding the table that backups reference.
ALTER TABLE jobs ADD COLUMN drill BIGINT NOT NULL DEFAULT 0;
CREATE TABLE drill_results (
    job_id TEXT PRIMARY KEY REFERENCES jobs (id),
    org_id TEXT NOT NULL REFERENCES orgs (id),
    backup_id TEXT NOT NULL REFERENCES backups (id),
    database_id TEXT NOT NULL REFERENCES databases (id),
    passed BIGINT NOT NULL,
    restore_ms BIGINT,
    tables_checked BIGINT NOT NULL,
    check_query_passed BIGINT,
    error TEXT,
    finished_at BIGINT NOT NULL
);
CREATE INDEX drill_results_by_database ON drill_results (org_id, database_id, finished_at);
