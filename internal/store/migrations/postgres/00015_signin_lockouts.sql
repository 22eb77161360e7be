-- +goose Up
-- Console sign-in attempts, counted per email as typed (an operator's or not) before the
-- password is checked, so that parallel guesses cannot pass the lockout and unknown emails lock
-- as known ones do. email_hash is SHA-256 of the lower-cased email: a fixed-size key for any
-- bytes typed, and no clear text of what people mistype into the email field.
CREATE TABLE signin_lockouts (
    email_hash   BYTEA   NOT NULL PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until BIGINT  NOT NULL DEFAULT 0,
    expires_at   BIGINT  NOT NULL
);
CREATE INDEX signin_lockouts_by_expiry ON signin_lockouts (expires_at);
-- The lockout moved out of operators (a lockout in progress is forgotten).
ALTER TABLE operators DROP COLUMN failed_logins;
ALTER TABLE operators DROP COLUMN locked_until;

-- +goose Down
ALTER TABLE operators ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE operators ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0;
DROP TABLE signin_lockouts;
