-- +goose Up
-- A valid TOTP verification records the step it accepted (a compare-and-set on the seed's
-- version and last step, issue 22). In authenticators that write dirtied a page of a wide table
-- (sealed secrets and all), a random one per user. The replay state moves into a narrow table of
-- its own, WITHOUT ROWID so a row lives in the primary key's b-tree: many users' steps share a
-- page and a decision dirties one small page.
--
-- version moves with last_step: the compare-and-set reads both, and a re-registration bumps one
-- and resets the other, so the two stay in one row, written by one statement.
--
-- authenticators keeps its version and last_step columns: SQLite's DROP COLUMN rewrites the
-- whole table, which on a big installation is a long write lock for two integers. The store no
-- longer reads them; an insert gives them placeholders (version 0, last_step -1) because they
-- are NOT NULL, and nothing updates them. (PostgreSQL drops them.)
CREATE TABLE authenticator_steps (
    user_id   INTEGER NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    version   INTEGER NOT NULL,
    last_step INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO authenticator_steps (user_id, version, last_step) SELECT user_id, version, last_step FROM authenticators;

-- +goose Down
UPDATE authenticators SET
    version = (SELECT st.version FROM authenticator_steps st WHERE st.user_id = authenticators.user_id),
    last_step = (SELECT st.last_step FROM authenticator_steps st WHERE st.user_id = authenticators.user_id)
WHERE user_id IN (SELECT user_id FROM authenticator_steps);
DROP TABLE authenticator_steps;
