-- Throttling counts attempts before checking them; a successful one is removed by id.
ALTER TABLE sign_in_failures ADD COLUMN attempt_id TEXT;
CREATE INDEX sign_in_failures_attempt ON sign_in_failures (attempt_id);
