-- The cluster's roles and other globals (pg_dumpall --globals-only), saved by the agent
-- as a second object next to each backup (its key: the backup's with
-- `.globals.sql.zst.age`). NULL when a backup has none: made before this, or the
-- agent's role could not read them.
ALTER TABLE backups ADD COLUMN globals_size BIGINT;
ALTER TABLE backups ADD COLUMN globals_sha256 TEXT;
