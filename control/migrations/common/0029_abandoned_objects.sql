-- Objects a backup attempt may have stored under its final name without the report
-- that records them reaching the control plane: its agent killed after storing the
-- backup (or while saving the globals next to it). Remembered when the attempt's lease
-- lapses; housekeeping deletes what it finds at that key then, an hour later and a day
-- later (an agent cut off from the control plane may still be finishing), then forgets.
CREATE TABLE abandoned_objects (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    attempt BIGINT NOT NULL,
    org_id TEXT NOT NULL REFERENCES orgs (id),
    destination_id TEXT NOT NULL REFERENCES destinations (id),
    object_key TEXT NOT NULL,
    abandoned_at BIGINT NOT NULL,
    looks BIGINT NOT NULL,
    look_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, attempt)
);
CREATE INDEX abandoned_objects_due ON abandoned_objects (look_at);
