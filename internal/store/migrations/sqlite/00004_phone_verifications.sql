-- +goose Up
-- Phone Verification (Authy's /phones/verification): codes sent to a number, not to a user.
CREATE TABLE phone_verifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid        TEXT    NOT NULL UNIQUE,
    app_id      INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    phone       TEXT    NOT NULL, -- E.164
    via         TEXT    NOT NULL,
    mac         BLOB    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    superseded  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    verified_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX phone_verifications_by_phone ON phone_verifications (app_id, phone, id);

-- +goose Down
DROP TABLE phone_verifications;
