-- +goose Up
-- Passwordless sign-in as the hosted step's first factor (issue 19). A step client may allow it
-- (passwordless): an authorization request that names no user then begins a session without
-- one, whose page asks for a username and runs a passwordless sign-in (signin_uuid, the
-- passwordless request it waits on); the approval binds the session to the user who approved,
-- once. Only such a session may lack a user (the CHECK).
ALTER TABLE step_clients ADD COLUMN passwordless INTEGER NOT NULL DEFAULT 0;

-- SQLite cannot drop a NOT NULL: the table is made again, with every row.
CREATE TABLE step_sessions_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    handle_mac      BLOB    NOT NULL UNIQUE,
    client_id       INTEGER NOT NULL REFERENCES step_clients (id) ON DELETE CASCADE,
    app_id          INTEGER NOT NULL,
    user_id         INTEGER REFERENCES users (id) ON DELETE CASCADE, -- NULL: a passwordless session before its approval
    browser_mac     BLOB    NOT NULL,
    request         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    factor          TEXT    NOT NULL DEFAULT '',
    approval_uuid   TEXT    NOT NULL DEFAULT '',
    sent_channel    TEXT    NOT NULL DEFAULT '',
    passed_at       INTEGER NOT NULL DEFAULT 0,
    code_mac        BLOB    UNIQUE,
    code_expires_at INTEGER NOT NULL DEFAULT 0,
    code_used_at    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    passwordless    INTEGER NOT NULL DEFAULT 0,  -- begun without a user: the user is who approves
    signin_uuid     TEXT    NOT NULL DEFAULT '', -- the passwordless request it waits on
    CHECK (user_id IS NOT NULL OR passwordless = 1)
);
INSERT INTO step_sessions_new (id, handle_mac, client_id, app_id, user_id, browser_mac, request, status, factor, approval_uuid,
    sent_channel, passed_at, code_mac, code_expires_at, code_used_at, created_at, expires_at)
    SELECT id, handle_mac, client_id, app_id, user_id, browser_mac, request, status, factor, approval_uuid,
    sent_channel, passed_at, code_mac, code_expires_at, code_used_at, created_at, expires_at FROM step_sessions;
DROP TABLE step_sessions;
ALTER TABLE step_sessions_new RENAME TO step_sessions;
CREATE INDEX step_sessions_by_expiry ON step_sessions (expires_at);
CREATE INDEX step_sessions_by_user ON step_sessions (user_id, id);

-- +goose Down
DELETE FROM step_sessions WHERE user_id IS NULL;
CREATE TABLE step_sessions_old (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    handle_mac      BLOB    NOT NULL UNIQUE,
    client_id       INTEGER NOT NULL REFERENCES step_clients (id) ON DELETE CASCADE,
    app_id          INTEGER NOT NULL,
    user_id         INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    browser_mac     BLOB    NOT NULL,
    request         TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    factor          TEXT    NOT NULL DEFAULT '',
    approval_uuid   TEXT    NOT NULL DEFAULT '',
    sent_channel    TEXT    NOT NULL DEFAULT '',
    passed_at       INTEGER NOT NULL DEFAULT 0,
    code_mac        BLOB    UNIQUE,
    code_expires_at INTEGER NOT NULL DEFAULT 0,
    code_used_at    INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
INSERT INTO step_sessions_old (id, handle_mac, client_id, app_id, user_id, browser_mac, request, status, factor, approval_uuid,
    sent_channel, passed_at, code_mac, code_expires_at, code_used_at, created_at, expires_at)
    SELECT id, handle_mac, client_id, app_id, user_id, browser_mac, request, status, factor, approval_uuid,
    sent_channel, passed_at, code_mac, code_expires_at, code_used_at, created_at, expires_at FROM step_sessions;
DROP TABLE step_sessions;
ALTER TABLE step_sessions_old RENAME TO step_sessions;
CREATE INDEX step_sessions_by_expiry ON step_sessions (expires_at);
CREATE INDEX step_sessions_by_user ON step_sessions (user_id, id);
ALTER TABLE step_clients DROP COLUMN passwordless;
