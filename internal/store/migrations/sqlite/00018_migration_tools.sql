-- +goose Up
-- Whether the application answers the migration exports (users/{id}/phone_number and
-- users/{id}/secret/export). Off for every application, those there before included: Authy
-- enabled them only on request, and with them the API key reads phone numbers and seeds.
ALTER TABLE apps ADD COLUMN migration_tools INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE apps DROP COLUMN migration_tools;
