-- The object key the control plane gave a backup job's current attempt when it was
-- claimed: the only key its report may record (and so the only one retention may later
-- delete). And no two backups of one destination share a key.
ALTER TABLE jobs ADD COLUMN object_key TEXT;
CREATE UNIQUE INDEX backups_destination_key ON backups (destination_id, object_key);
