-- What the agent reports besides the stored size: the dump's own size (before zstd and
-- age) and how long the backup took. NULL for backups recorded before this.
ALTER TABLE backups ADD COLUMN dump_size BIGINT;
ALTER TABLE backups ADD COLUMN duration_ms BIGINT;
