-- +goose Up
-- Approvals by several people (issue 19): one group asks several users of an application, each
-- through an ordinary approval request of their own (approval_requests.group_id), and is decided
-- once, by a quorum: approved when quorum approvals are in, denied as soon as the quorum can no
-- longer be reached, expired when its time passes. Each answer and the decision are made in one
-- transaction, the group's row taken first, so answers on several instances decide it once.
CREATE TABLE approval_groups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT    NOT NULL UNIQUE,
    app_id     INTEGER NOT NULL,
    quorum     INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    approvals  INTEGER NOT NULL DEFAULT 0,
    denials    INTEGER NOT NULL DEFAULT 0,
    status     TEXT    NOT NULL,            -- pending, approved, denied, expired
    message    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,            -- 0: never
    decided_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX approval_groups_by_app ON approval_groups (app_id, id);
ALTER TABLE approval_requests ADD COLUMN group_id INTEGER NOT NULL DEFAULT 0;
CREATE INDEX approval_requests_by_group ON approval_requests (group_id) WHERE group_id <> 0;

-- +goose Down
DROP INDEX approval_requests_by_group;
ALTER TABLE approval_requests DROP COLUMN group_id;
DROP TABLE approval_groups;
