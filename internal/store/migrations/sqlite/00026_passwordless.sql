-- +goose Up
-- Passwordless sign-in with OneTouch (issue 19): someone types a username, and Twofold answers
-- every such request alike, with a row here, whether or not the name is of a user who can be
-- asked. When it is, an ordinary approval request with the same uuid is inserted in the same
-- transaction (its user, status and answer are read from there); when not, the row is a phantom
-- that stays pending until it expires. Nothing here names the user or what was typed.
CREATE TABLE passwordless_requests (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT    NOT NULL UNIQUE,
    app_id     INTEGER NOT NULL,
    number     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX passwordless_requests_expiry ON passwordless_requests (expires_at);
-- A user's latest passwordless request denied as not requested blocks the next ones: found by
-- this index, whatever the number of the user's other requests.
CREATE INDEX approval_requests_not_requested ON approval_requests (user_id, processed_at)
    WHERE status = 'denied' AND reason = 'not requested';

-- +goose Down
DROP INDEX approval_requests_not_requested;
DROP TABLE passwordless_requests;
