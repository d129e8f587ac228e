-- How long after a scheduled run its backup may take before the database counts as
-- late (the recovery point breached: the overview's "Late", the backup_overdue alert,
-- the metrics' deadline). NULL: an hour (backups::overview::GRACE_SECS).
ALTER TABLE schedules ADD COLUMN grace_secs BIGINT;
