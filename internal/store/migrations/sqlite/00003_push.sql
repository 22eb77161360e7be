-- +goose Up
-- Where to push a device's notifications when it is not connected: a browser's Web Push
-- subscription (endpoint, p256dh, auth) or an ntfy topic URL (endpoint only). A device has a
-- subscription per endpoint; subscribing again with the same endpoint replaces it.
CREATE TABLE push_subscriptions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id     INTEGER NOT NULL,
    device_id  INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL, -- webpush, ntfy
    endpoint   TEXT    NOT NULL,
    p256dh     TEXT    NOT NULL DEFAULT '',
    auth       TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    last_error TEXT    NOT NULL DEFAULT '',
    failures   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (device_id, endpoint)
);

-- Key pairs the server makes for itself once, by name (the VAPID key of Web Push), the private
-- half sealed with the master key.
CREATE TABLE server_keys (
    name           TEXT    PRIMARY KEY,
    public_key     BLOB    NOT NULL,
    private_sealed BLOB    NOT NULL,
    created_at     INTEGER NOT NULL
);

-- +goose Down
DROP TABLE server_keys;
DROP TABLE push_subscriptions;
