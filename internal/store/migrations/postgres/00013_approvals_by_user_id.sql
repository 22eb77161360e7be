-- +goose Up
-- A user's approval requests newest first: a device's event stream reads the newest 50 on every
-- wake-up, which with only (user_id, status) meant sorting the user's whole history.
CREATE INDEX approval_requests_by_user_id ON approval_requests (user_id, id);

-- +goose Down
DROP INDEX approval_requests_by_user_id;
