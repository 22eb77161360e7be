-- +goose Up
-- Nothing: SQLite's 00011 adds the counter behind its in-process cache of applications, which a
-- PostgreSQL store does not use (a lookup costs a round trip either way). Kept so that both
-- engines number their schema versions alike.
SELECT 1;

-- +goose Down
SELECT 1;
