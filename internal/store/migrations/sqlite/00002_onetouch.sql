-- +goose Up
ALTER TABLE apps ADD COLUMN number_matching INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN callback_expired INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN device_totp_period INTEGER NOT NULL DEFAULT 10;
ALTER TABLE apps ADD COLUMN callback_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN callback_disabled_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN callback_last_error TEXT NOT NULL DEFAULT '';

-- Single-use tokens a customer's backend hands to a device to register it.
CREATE TABLE registration_tokens (
    mac        BLOB    PRIMARY KEY,
    app_id     INTEGER NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);

CREATE TABLE devices (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id        INTEGER NOT NULL,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    public_key    BLOB    NOT NULL,
    token_mac     BLOB    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    os_type       TEXT    NOT NULL,
    secret_sealed BLOB    NOT NULL,
    digits        INTEGER NOT NULL,
    period        INTEGER NOT NULL,
    last_step     INTEGER NOT NULL DEFAULT -1,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
);
CREATE INDEX devices_by_user ON devices (user_id);

CREATE TABLE approval_requests (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid              TEXT    NOT NULL UNIQUE,
    app_id            INTEGER NOT NULL,
    user_id           INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message           TEXT    NOT NULL,
    details           TEXT    NOT NULL,
    hidden_details    TEXT    NOT NULL,
    logos             TEXT    NOT NULL,
    number            TEXT    NOT NULL DEFAULT '',
    seconds_to_expire INTEGER NOT NULL,
    status            TEXT    NOT NULL,
    reason            TEXT    NOT NULL DEFAULT '',
    device_id         INTEGER NOT NULL DEFAULT 0,
    signature         TEXT    NOT NULL DEFAULT '',
    notified          INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    expires_at        INTEGER NOT NULL, -- 0: never
    processed_at      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX approval_requests_by_user ON approval_requests (user_id, status);
CREATE INDEX approval_requests_pending ON approval_requests (status, expires_at);

-- The durable callback outbox: written in the same transaction as the status change it reports.
CREATE TABLE callbacks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id          INTEGER NOT NULL,
    request_uuid    TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL, -- pending, delivered, dropped
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    last_status     INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX callbacks_due ON callbacks (status, next_attempt_at);

-- +goose Down
DROP TABLE callbacks;
DROP TABLE approval_requests;
DROP TABLE devices;
DROP TABLE registration_tokens;
ALTER TABLE apps DROP COLUMN callback_last_error;
ALTER TABLE apps DROP COLUMN callback_disabled_at;
ALTER TABLE apps DROP COLUMN callback_failures;
ALTER TABLE apps DROP COLUMN device_totp_period;
ALTER TABLE apps DROP COLUMN callback_expired;
ALTER TABLE apps DROP COLUMN number_matching;
