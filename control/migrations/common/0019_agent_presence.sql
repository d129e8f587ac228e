-- When an agent last called the agent listener and which version it said it runs, for
-- the dashboard's agent list and the overview's online/offline count. Written at most
-- every half minute per agent (agents::presence), not on every call.
ALTER TABLE agents ADD COLUMN last_seen_at BIGINT;
ALTER TABLE agents ADD COLUMN version TEXT;
