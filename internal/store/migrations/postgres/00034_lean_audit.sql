-- +goose Up
-- Reads "since" a time find the audit trail's first id at or after it by binary search over ids
-- (appends keep at non-decreasing in id order), so the index by time only cost every append a
-- write. SQLite's migration 34 is in Go (migrate_audit.go): it also drops AUTOINCREMENT there.
DROP INDEX audit_log_by_time;

-- +goose Down
CREATE INDEX audit_log_by_time ON audit_log (at);
