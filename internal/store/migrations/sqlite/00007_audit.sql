-- +goose Up
-- The audit trail: security-relevant events, append-only, each chained to the one before by a
-- keyed hash (internal/audit). Ids are assigned by AppendAudit as max(id)+1 inside its write
-- transaction, so they have no gaps and a deleted row shows. at is Unix nanoseconds (UTC), which
-- the hash covers, so it must round-trip exactly. details is a JSON object with sorted keys.
CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    app_id    INTEGER NOT NULL DEFAULT 0,
    user_id   INTEGER NOT NULL DEFAULT 0,
    details   TEXT    NOT NULL DEFAULT '{}',
    prev_hash BLOB,
    hash      BLOB    NOT NULL
);
CREATE INDEX audit_log_by_app ON audit_log (app_id, id);
CREATE INDEX audit_log_by_user ON audit_log (user_id, id) WHERE user_id <> 0;
CREATE INDEX audit_log_by_time ON audit_log (at);

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
DROP TABLE audit_log;
