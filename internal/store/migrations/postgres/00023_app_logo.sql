-- +goose Up
-- The logo the hosted second-factor step shows with the application's name: an https URL the
-- user's browser loads (empty: the name's initial stands for it).
ALTER TABLE apps ADD COLUMN logo_url TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE apps DROP COLUMN logo_url;
