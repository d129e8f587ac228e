-- A failed job waits before its next attempt (Unix seconds; NULL: at once).
ALTER TABLE jobs ADD COLUMN retry_at BIGINT;
