-- Every committed change to desired state is announced on the channel
-- sluice_changes, so the other processes reconcile at once instead of at
-- their next interval. A trigger, rather than a NOTIFY in each write, also
-- covers changes made by hand or by older binaries, and PostgreSQL delivers
-- it only if the transaction commits.
--
-- The payload names the schema and the table: channels are per database,
-- and a listener ignores the stores of other schemas.
--
-- Status, member statuses and heartbeats are not desired state and are
-- written all the time, so they stay quiet: the pipes trigger fires only for
-- the columns a spec change writes (SetStatus writes status and updated_at).

CREATE FUNCTION sluice_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sluice_changes', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER pipes_changed AFTER INSERT OR DELETE OR UPDATE OF name, uuid, spec, revision ON pipes
    FOR EACH ROW EXECUTE FUNCTION sluice_notify_change();
CREATE TRIGGER functions_changed AFTER INSERT OR UPDATE OR DELETE ON functions
    FOR EACH ROW EXECUTE FUNCTION sluice_notify_change();
CREATE TRIGGER clusters_changed AFTER INSERT OR UPDATE OR DELETE ON clusters
    FOR EACH ROW EXECUTE FUNCTION sluice_notify_change();
CREATE TRIGGER secrets_changed AFTER INSERT OR UPDATE OR DELETE ON secrets
    FOR EACH ROW EXECUTE FUNCTION sluice_notify_change();
CREATE TRIGGER tokens_changed AFTER INSERT OR UPDATE OR DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION sluice_notify_change();
