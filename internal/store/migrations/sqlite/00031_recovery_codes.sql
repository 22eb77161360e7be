-- +goose Up
-- Recovery codes (issue 21): a user's set of single-use codes for when their phone is lost.
-- Only keyed hashes are stored (mac: HMAC under the recovery codes' stored key, bound to the application
-- and user), never the codes. A code is spent by setting used_at (Unix seconds, 0 while unused)
-- with a compare-and-set, so two parallel uses of one code cannot both pass. Regenerating
-- deletes the user's whole set and inserts the new one in one transaction.
CREATE TABLE recovery_codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id     INTEGER NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    mac        BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX recovery_codes_by_mac ON recovery_codes (user_id, mac);

-- +goose Down
DROP TABLE recovery_codes;
