-- +goose Up
-- The Twilio Verify v2 API (issue 20), a second wire adapter over the same applications.
--
-- twilio_credentials: an application's account (kind 'account', an AC… SID and auth token, one
-- per application) and its API keys (kind 'key', SK… SIDs and secrets). The secret is kept as a
-- keyed hash (checked in constant time) and sealed, bound to the SID, so that master key
-- re-keying can re-make the hash and webhooks can be signed with the auth token.
CREATE TABLE twilio_credentials (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id        INTEGER NOT NULL,
    sid           TEXT    NOT NULL UNIQUE,
    kind          TEXT    NOT NULL,            -- account, key
    name          TEXT    NOT NULL DEFAULT '',
    secret_mac    BLOB    NOT NULL,
    secret_sealed BLOB    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX twilio_credentials_by_app ON twilio_credentials (app_id, id);
CREATE UNIQUE INDEX twilio_accounts_one_per_app ON twilio_credentials (app_id) WHERE kind = 'account';

-- verify_services: Verify services, configurations inside an application. Settings the store
-- never queries by are one JSON document.
CREATE TABLE verify_services (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id   TEXT    NOT NULL UNIQUE,       -- 32 hex digits; VA… on the wire
    app_id      INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    code_length INTEGER NOT NULL,
    settings    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX verify_services_by_app ON verify_services (app_id, id);

-- verifications: codes sent through a service to one recipient. At most one is live (pending
-- and unexpired) per service and recipient: starts take the recipient's lock and send the live
-- one's code again. code_sealed is emptied when a verification ends; rows are swept once expired.
CREATE TABLE verifications (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id   TEXT    NOT NULL UNIQUE,       -- 32 hex digits; VE… on the wire
    app_id      INTEGER NOT NULL,
    service_id  INTEGER NOT NULL,
    recipient   TEXT    NOT NULL,              -- E.164 or an email address
    channel     TEXT    NOT NULL,
    status      TEXT    NOT NULL,              -- pending, approved, canceled
    code_mac    BLOB    NOT NULL,
    code_sealed BLOB    NOT NULL,
    checks      INTEGER NOT NULL DEFAULT 0,
    sends       TEXT    NOT NULL,              -- JSON list of the sends
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX verifications_by_recipient ON verifications (service_id, recipient, id);
CREATE INDEX verifications_by_expiry ON verifications (expires_at);

-- +goose Down
DROP TABLE verifications;
DROP TABLE verify_services;
DROP TABLE twilio_credentials;
