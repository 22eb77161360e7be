-- +goose Up
-- Comma-separated ISO regions an application may send codes to; empty: everywhere.
ALTER TABLE apps ADD COLUMN allowed_countries TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE apps DROP COLUMN allowed_countries;
