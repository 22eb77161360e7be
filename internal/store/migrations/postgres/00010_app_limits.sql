-- +goose Up
-- An application's own limits, "kind=N/DURATION" separated by commas ("app_sends=100/1h,failures=off");
-- kinds not named take the server's.
ALTER TABLE apps ADD COLUMN limits TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE apps DROP COLUMN limits;
