-- The audit chain becomes keyed (HMAC under a sealed key the database cannot open), and
-- REPLACE can no longer overwrite a row.
--
-- SQLite's INSERT OR REPLACE (and REPLACE INTO) deletes a conflicting row without firing
-- DELETE triggers unless recursive triggers are on, which would let it swap the newest
-- row; a BEFORE INSERT trigger runs before that conflict resolution and refuses any
-- insert that collides with an existing row.
CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id OR (org_id = NEW.org_id AND seq = NEW.seq))
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Which sealed secret (in instance_secrets) is the audit chain key: one row, never
-- changed or removed.
CREATE TABLE audit_chain_key (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    secret_id TEXT NOT NULL
);
CREATE TRIGGER audit_chain_key_no_update BEFORE UPDATE ON audit_chain_key
BEGIN
    SELECT RAISE(ABORT, 'audit_chain_key is write-once');
END;
CREATE TRIGGER audit_chain_key_no_delete BEFORE DELETE ON audit_chain_key
BEGIN
    SELECT RAISE(ABORT, 'audit_chain_key is write-once');
END;
CREATE TRIGGER audit_chain_key_no_replace BEFORE INSERT ON audit_chain_key
WHEN EXISTS (SELECT 1 FROM audit_chain_key)
BEGIN
    SELECT RAISE(ABORT, 'audit_chain_key is write-once');
END;
