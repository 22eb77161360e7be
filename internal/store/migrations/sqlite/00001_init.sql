-- +goose Up
CREATE TABLE apps (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL,
    sandbox            INTEGER NOT NULL DEFAULT 0,
    key_mac            BLOB    NOT NULL UNIQUE,
    key_sealed         BLOB    NOT NULL,
    token_length       INTEGER NOT NULL,
    totp_digits        INTEGER NOT NULL,
    totp_period        INTEGER NOT NULL,
    totp_skew          INTEGER NOT NULL,
    sms_enabled        INTEGER NOT NULL,
    call_enabled       INTEGER NOT NULL,
    unconfirmed_bypass INTEGER NOT NULL,
    callback_url       TEXT    NOT NULL DEFAULT '',
    callback_method    TEXT    NOT NULL DEFAULT 'POST',
    contact_email      TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL
);

CREATE TABLE users (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id       INTEGER NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    email        TEXT    NOT NULL,
    country_code INTEGER NOT NULL,
    phone        TEXT    NOT NULL,
    confirmed    INTEGER NOT NULL DEFAULT 0,
    custom_user_id TEXT  NOT NULL DEFAULT '',
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
-- A user is known by phone number or, when registered by QR code without one, by the
-- customer's own id for them.
CREATE UNIQUE INDEX users_by_phone ON users (app_id, country_code, phone) WHERE phone <> '';
CREATE UNIQUE INDEX users_by_custom_id ON users (app_id, custom_user_id) WHERE custom_user_id <> '';

CREATE TABLE authenticators (
    user_id       INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    app_id        INTEGER NOT NULL,
    secret_sealed BLOB    NOT NULL,
    digits        INTEGER NOT NULL,
    period        INTEGER NOT NULL,
    version       INTEGER NOT NULL,
    last_step     INTEGER NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE codes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id     INTEGER NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel    TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    mac        BLOB    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    superseded INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX codes_by_user ON codes (user_id, expires_at);
CREATE INDEX codes_by_expiry ON codes (expires_at);

-- The outbox: every message handed to delivery. user_id has no foreign key so the record
-- outlives the user.
CREATE TABLE messages (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    sid         TEXT    NOT NULL UNIQUE,
    app_id      INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    channel     TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    body_sealed BLOB    NOT NULL,
    status      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX messages_by_app ON messages (app_id, id);

CREATE TABLE activities (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id     INTEGER NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type       TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    ip         TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Fixed-window counters for limits, incremented atomically.
CREATE TABLE counters (
    name         TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (name, window_start)
);
CREATE INDEX counters_by_expiry ON counters (expires_at);

CREATE TABLE usage_monthly (
    app_id    INTEGER NOT NULL,
    year      INTEGER NOT NULL,
    month     INTEGER NOT NULL,
    api_calls INTEGER NOT NULL DEFAULT 0,
    sms       INTEGER NOT NULL DEFAULT 0,
    calls     INTEGER NOT NULL DEFAULT 0,
    emails    INTEGER NOT NULL DEFAULT 0,
    auths     INTEGER NOT NULL DEFAULT 0,
    users     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app_id, year, month)
);

-- Capability links to a user's authenticator QR code, stored as keyed hashes.
CREATE TABLE qr_links (
    mac        BLOB    PRIMARY KEY,
    app_id     INTEGER NOT NULL,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    version    INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    uri_sealed BLOB    NOT NULL,
    expires_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE qr_links;
DROP TABLE usage_monthly;
DROP TABLE counters;
DROP TABLE activities;
DROP TABLE messages;
DROP TABLE codes;
DROP TABLE authenticators;
DROP TABLE users;
DROP TABLE apps;
