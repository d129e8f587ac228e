-- Indexes for the dashboard's lists: an organisation's backups and jobs newest first,
-- one database's recent backups (the overview), an agent's newest backup (the agent
-- list), and the audit log filtered by action; without them each page reads every row
-- of the organisation.
CREATE INDEX backups_org_finished ON backups (org_id, finished_at);
CREATE INDEX backups_database_finished ON backups (database_id, finished_at);
CREATE INDEX jobs_org_created ON jobs (org_id, created_at);
CREATE INDEX audit_log_org_action ON audit_log (org_id, action, seq);
CREATE INDEX backups_job ON backups (job_id);
