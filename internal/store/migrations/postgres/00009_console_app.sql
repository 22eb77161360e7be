-- +goose Up
-- The console's own application: operators are its users, so their second factor is Twofold's.
ALTER TABLE apps ADD COLUMN console INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE apps DROP COLUMN console;
