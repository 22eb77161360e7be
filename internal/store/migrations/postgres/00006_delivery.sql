-- +goose Up
-- Which provider delivers each channel for an application; empty: the server's default.
ALTER TABLE apps ADD COLUMN sms_provider TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN call_provider TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN email_provider TEXT NOT NULL DEFAULT '';
-- Whether phone verification may carry the caller's own message and code.
ALTER TABLE apps ADD COLUMN custom_messages INTEGER NOT NULL DEFAULT 1;
ALTER TABLE apps ADD COLUMN custom_codes INTEGER NOT NULL DEFAULT 0;

-- What happened to each message after the outbox recorded it.
ALTER TABLE messages ADD COLUMN provider TEXT NOT NULL DEFAULT 'outbox';
ALTER TABLE messages ADD COLUMN provider_id TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN delivery TEXT NOT NULL DEFAULT '';   -- the provider's latest status (queued, delivered, undelivered…)
ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN error TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX messages_by_provider_id ON messages (provider, provider_id) WHERE provider_id <> '';
CREATE INDEX messages_by_time ON messages (created_at);

-- Sends refused before anything was sent (limits, countries, landlines), counted per day rather
-- than stored per request so a flood of refused requests cannot fill the disk.
CREATE TABLE delivery_refusals (
    app_id  BIGINT  NOT NULL,
    day     BIGINT  NOT NULL,  -- unix time of the UTC day's start
    channel TEXT    NOT NULL,
    reason  TEXT    NOT NULL,
    count   BIGINT  NOT NULL,
    PRIMARY KEY (app_id, day, channel, reason)
);

-- +goose Down
DROP TABLE delivery_refusals;
DROP INDEX messages_by_time;
DROP INDEX messages_by_provider_id;
ALTER TABLE messages DROP COLUMN updated_at;
ALTER TABLE messages DROP COLUMN error;
ALTER TABLE messages DROP COLUMN attempts;
ALTER TABLE messages DROP COLUMN delivery;
ALTER TABLE messages DROP COLUMN provider_id;
ALTER TABLE messages DROP COLUMN provider;
ALTER TABLE apps DROP COLUMN custom_codes;
ALTER TABLE apps DROP COLUMN custom_messages;
ALTER TABLE apps DROP COLUMN email_provider;
ALTER TABLE apps DROP COLUMN call_provider;
ALTER TABLE apps DROP COLUMN sms_provider;
