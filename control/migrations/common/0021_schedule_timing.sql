-- When a schedule's current timing took effect: its creation, the last change of its
-- expression or zone, or its resumption after a pause. Its database is late only for
-- runs due after that (backups::overview): before it, the schedule asked for none.
ALTER TABLE schedules ADD COLUMN timing_since BIGINT;
UPDATE schedules SET timing_since = created_at;
