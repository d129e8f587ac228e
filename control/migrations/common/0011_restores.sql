-- A restore job names the backup it restores (into its database_id, the target).
ALTER TABLE jobs ADD COLUMN backup_id TEXT REFERENCES backups (id);
