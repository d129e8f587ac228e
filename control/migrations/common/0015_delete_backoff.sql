-- When retention last failed to delete a backup, so failing deletions back off instead
-- of being retried (and audited) every minute.
ALTER TABLE backups ADD COLUMN last_delete_at BIGINT;
