-- +goose Up
-- The audit trail: security-relevant events, append-only, each chained to the one before by a
-- keyed hash (internal/audit). Ids are assigned by AppendAudit as max(id)+1 inside its write
-- transaction, under LOCK TABLE audit_log IN EXCLUSIVE MODE, so they have no gaps and a deleted
-- row shows; the column has no default (no sequence) since nothing else may assign them. at is
-- Unix nanoseconds (UTC), which the hash covers, so it must round-trip exactly. details is a JSON
-- object with sorted keys.
CREATE TABLE audit_log (
    id        BIGINT  PRIMARY KEY,
    at        BIGINT  NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    app_id    BIGINT  NOT NULL DEFAULT 0,
    user_id   BIGINT  NOT NULL DEFAULT 0,
    details   TEXT    NOT NULL DEFAULT '{}',
    prev_hash BYTEA,
    hash      BYTEA   NOT NULL
);
CREATE INDEX audit_log_by_app ON audit_log (app_id, id);
CREATE INDEX audit_log_by_user ON audit_log (user_id, id) WHERE user_id <> 0;
CREATE INDEX audit_log_by_time ON audit_log (at);

-- +goose StatementBegin
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only';
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
-- SQLite has no TRUNCATE; PostgreSQL's skips row triggers, so it is refused on its own.
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- +goose Down
DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP TRIGGER audit_log_no_delete ON audit_log;
DROP TRIGGER audit_log_no_update ON audit_log;
DROP FUNCTION audit_log_append_only();
DROP TABLE audit_log;
