-- +goose Up
-- Verify v2 webhooks (issue 20): a service's subscriptions to factor and challenge events.
-- Their deliveries go through the callbacks outbox, marked with the webhook they are for
-- (callbacks.webhook_id, 0 for a OneTouch callback), signed at each attempt with the account's
-- auth token as Twilio signs (X-Twilio-Signature).
CREATE TABLE verify_webhooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    public_id   TEXT    NOT NULL UNIQUE,       -- 32 hex digits; YW… on the wire
    app_id      INTEGER NOT NULL,
    service_id  INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    url         TEXT    NOT NULL,
    event_types TEXT    NOT NULL,              -- space-separated: factor.created … or *
    status      TEXT    NOT NULL,              -- enabled, disabled
    version     TEXT    NOT NULL,              -- v1, v2
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX verify_webhooks_by_service ON verify_webhooks (service_id, id);

ALTER TABLE callbacks ADD COLUMN webhook_id INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE callbacks DROP COLUMN webhook_id;
DROP TABLE verify_webhooks;
