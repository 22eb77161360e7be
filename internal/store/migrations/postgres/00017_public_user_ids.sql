-- +goose Up
-- PostgreSQL translation of migrations/sqlite/00017_public_user_ids.sql: a user's public id
-- (Authy's authy_id) is its own column, unique per application; existing users keep theirs
-- (public_id = id). New ids come from the sequence user_public_ids, which starts past every id
-- the identity ever handed out; an import moves it past the ids it writes (Store.ImportUsers).
ALTER TABLE users ADD COLUMN public_id BIGINT;
UPDATE users SET public_id = id;
ALTER TABLE users ALTER COLUMN public_id SET NOT NULL;
CREATE UNIQUE INDEX users_by_public_id ON users (app_id, public_id);

CREATE SEQUENCE user_public_ids AS BIGINT;
SELECT setval('user_public_ids', GREATEST(
    COALESCE((SELECT MAX(id) FROM users), 0),
    COALESCE(pg_sequence_last_value(pg_get_serial_sequence('users', 'id')::regclass), 0)) + 1, false);

-- +goose Down
DROP SEQUENCE user_public_ids;
DROP INDEX users_by_public_id;
ALTER TABLE users DROP COLUMN public_id;
