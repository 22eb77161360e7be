-- +goose Up
-- A counter bumped by every write to apps, from any process on this file (the server, the CLI):
-- the server's cache of applications compares it on every lookup, so a key rotated or an app
-- changed by `twofold app …` takes effect at once. SQLite only; PostgreSQL reads apps directly.
CREATE TABLE generations (
    name TEXT PRIMARY KEY,
    n    INTEGER NOT NULL
);
INSERT INTO generations (name, n) VALUES ('apps', 0);

-- +goose StatementBegin
CREATE TRIGGER apps_generation_insert AFTER INSERT ON apps BEGIN
    UPDATE generations SET n = n + 1 WHERE name = 'apps';
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER apps_generation_update AFTER UPDATE ON apps BEGIN
    UPDATE generations SET n = n + 1 WHERE name = 'apps';
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER apps_generation_delete AFTER DELETE ON apps BEGIN
    UPDATE generations SET n = n + 1 WHERE name = 'apps';
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER apps_generation_delete;
DROP TRIGGER apps_generation_update;
DROP TRIGGER apps_generation_insert;
DROP TABLE generations;
