-- +goose Up
-- A user's public id (Authy's authy_id: what every API call names the user by) becomes its own
-- column, unique per application, apart from the row's id. Users imported from Authy keep their
-- authy_id, and Authy ids were global, so two applications may each import the same one for the
-- same person. Rows reference users by the internal id, which stays global; the store translates
-- at its boundary, and nothing outside it sees an internal id.
--
-- Existing users keep the id they were given: public_id = id. New ids come from
-- user_public_ids, which starts past every id ever handed out (AUTOINCREMENT's high-water mark
-- counts deleted users) and is kept past every public id inserted since, imported ones included,
-- so a user made later never takes an imported id.
ALTER TABLE users ADD COLUMN public_id INTEGER NOT NULL DEFAULT 0;
UPDATE users SET public_id = id;
CREATE UNIQUE INDEX users_by_public_id ON users (app_id, public_id);

CREATE TABLE user_public_ids (next INTEGER NOT NULL);
INSERT INTO user_public_ids (next) SELECT MAX(
    COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'users'), 0),
    COALESCE((SELECT MAX(id) FROM users), 0)) + 1;


-- +goose Down
DROP TABLE user_public_ids;
DROP INDEX users_by_public_id;
ALTER TABLE users DROP COLUMN public_id;
