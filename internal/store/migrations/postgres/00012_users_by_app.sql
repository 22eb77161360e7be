-- +goose Up
-- An application's users by id: the console lists them newest first, deleting an application
-- removes them, and the foreign key from users to apps is checked through it.
CREATE INDEX users_by_app ON users (app_id, id);

-- +goose Down
DROP INDEX users_by_app;
