-- +goose Up
-- Creating an approval request counts the user's live pending requests (the pending limit).
-- approval_requests_by_user found them but not their expiry, so the count read each one's row;
-- with expires_at in the index it reads the index alone. The new index serves every query the
-- old one did (the same leading columns), so it replaces it: a request's insert keeps as many
-- indexes to maintain.
CREATE INDEX approval_requests_by_user_status ON approval_requests (user_id, status, expires_at);
DROP INDEX approval_requests_by_user;

-- +goose Down
CREATE INDEX approval_requests_by_user ON approval_requests (user_id, status);
DROP INDEX approval_requests_by_user_status;
