-- +goose Up
-- A valid TOTP verification records the step it accepted (a compare-and-set on the seed's
-- version and last step, issue 22). In authenticators that update wrote a new version of a wide
-- row (sealed secret and all). The replay state moves into a narrow table of its own.
--
-- version moves with last_step: the compare-and-set reads both, and a re-registration bumps one
-- and resets the other, so the two stay in one row, written by one statement.
--
-- Dropping the two columns from authenticators is cheap here (the catalogue only; rows are not
-- rewritten). SQLite keeps them unused, as its DROP COLUMN rewrites the table; migrate-data skips
-- them (copy.go's retiredColumns).
CREATE TABLE authenticator_steps (
    user_id   BIGINT NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    version   BIGINT NOT NULL,
    last_step BIGINT NOT NULL
);
INSERT INTO authenticator_steps (user_id, version, last_step) SELECT user_id, version, last_step FROM authenticators;
ALTER TABLE authenticators DROP COLUMN version, DROP COLUMN last_step;

-- +goose Down
ALTER TABLE authenticators ADD COLUMN version BIGINT, ADD COLUMN last_step BIGINT;
UPDATE authenticators a SET version = st.version, last_step = st.last_step
    FROM authenticator_steps st WHERE st.user_id = a.user_id;
UPDATE authenticators SET version = 1, last_step = -1 WHERE version IS NULL;
ALTER TABLE authenticators ALTER COLUMN version SET NOT NULL, ALTER COLUMN last_step SET NOT NULL;
DROP TABLE authenticator_steps;
