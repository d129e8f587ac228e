-- Statements that run for every agent's poll, or every tick over everything, must not
-- read more as history grows (the 30-minute soak slowed every route together from its
-- ninth minute on; docs/benchmarks.md).
--
-- The poll for a claimable job names the agent, the organisation and the state. With
-- (agent_id, state, ...) and (org_id, created_at) to choose from, SQLite without
-- statistics chose the organisation's index and read every job of the organisation on
-- each poll: thousands of rows, hundreds of times a second. One index with all three
-- leaves nothing to choose wrongly.
DROP INDEX jobs_agent_state;
CREATE INDEX jobs_agent_claimable ON jobs (agent_id, org_id, state, created_at);

-- The alert conditions, every tick: backups whose deletion is being retried, and drills
-- that failed recently; both read every backup or drill result ever recorded.
CREATE INDEX backups_delete_retrying ON backups (org_id, id)
    WHERE deleted_at IS NULL AND delete_attempts > 0;
CREATE INDEX drill_results_failed ON drill_results (passed, finished_at);

-- The minute's pruning of sign-in failures past the throttle window (which someone
-- guessing passwords can make many).
CREATE INDEX sign_in_failures_at ON sign_in_failures (at);
