-- +goose Up
-- Storing a code supersedes the user's earlier live codes for its action, and a wrong try is
-- charged to (or refunded from) the user's live codes. Through codes_by_user each of these read
-- every unexpired code of the user, used and superseded ones too, row by row: a user sent many
-- codes paid for all of them on every send. This index holds live codes only (not used, not
-- superseded), a handful per user, so those statements touch only them. The planner uses it only
-- where a statement's WHERE implies its predicate literally (a bound parameter implies nothing):
-- those statements write "used_at IS NULL AND superseded = 0" as it is written here.
-- codes_by_user stays: checking a code, CheckState and the user's listing read used and
-- superseded codes too (a reused code is told apart from a wrong one).
CREATE INDEX codes_live ON codes (user_id, expires_at) WHERE used_at IS NULL AND superseded = 0;

-- +goose Down
DROP INDEX codes_live;
