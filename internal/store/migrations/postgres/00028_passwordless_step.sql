-- +goose Up
-- Passwordless sign-in as the hosted step's first factor (issue 19). A step client may allow it
-- (passwordless): an authorization request that names no user then begins a session without
-- one, whose page asks for a username and runs a passwordless sign-in (signin_uuid, the
-- passwordless request it waits on); the approval binds the session to the user who approved,
-- once. Only such a session may lack a user (the CHECK).
ALTER TABLE step_clients ADD COLUMN passwordless INTEGER NOT NULL DEFAULT 0;
ALTER TABLE step_sessions ALTER COLUMN user_id DROP NOT NULL;
ALTER TABLE step_sessions ADD COLUMN passwordless INTEGER NOT NULL DEFAULT 0;
ALTER TABLE step_sessions ADD COLUMN signin_uuid TEXT NOT NULL DEFAULT '';
ALTER TABLE step_sessions ADD CONSTRAINT step_sessions_user_or_passwordless CHECK (user_id IS NOT NULL OR passwordless = 1);

-- +goose Down
DELETE FROM step_sessions WHERE user_id IS NULL;
ALTER TABLE step_sessions DROP CONSTRAINT step_sessions_user_or_passwordless;
ALTER TABLE step_sessions DROP COLUMN signin_uuid;
ALTER TABLE step_sessions DROP COLUMN passwordless;
ALTER TABLE step_sessions ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE step_clients DROP COLUMN passwordless;
