-- The audit chain becomes keyed (HMAC under a sealed key the database cannot open).
-- PostgreSQL has no REPLACE; INSERT ... ON CONFLICT DO UPDATE fires the UPDATE trigger
-- of migration 1 and is refused. A BEFORE INSERT trigger also refuses any insert that
-- collides with an existing row, so the error is the same on both engines.
CREATE FUNCTION audit_log_no_collision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id OR (org_id = NEW.org_id AND seq = NEW.seq)) THEN
        RAISE EXCEPTION 'audit_log is append-only';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_no_collision();

-- Which sealed secret (in instance_secrets) is the audit chain key: one row, never
-- changed or removed.
CREATE TABLE audit_chain_key (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    secret_id TEXT NOT NULL
);
CREATE FUNCTION audit_chain_key_write_once() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_chain_key is write-once';
END
$$;
CREATE TRIGGER audit_chain_key_no_change BEFORE UPDATE OR DELETE ON audit_chain_key
    FOR EACH ROW EXECUTE FUNCTION audit_chain_key_write_once();
CREATE TRIGGER audit_chain_key_no_truncate BEFORE TRUNCATE ON audit_chain_key
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_key_write_once();
