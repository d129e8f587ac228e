-- An agent's certificates by agent: every request's liveness check, renewal, and the
-- alert conditions look up an agent's newest certificate. Without this index each such
-- lookup read every certificate of the deployment (at 10,000 agents the alert check's
-- newest-certificate query took 5-7 s, every 10 s).
CREATE INDEX agent_certificates_agent ON agent_certificates (agent_id, not_after);
