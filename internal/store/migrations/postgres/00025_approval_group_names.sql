-- +goose Up
-- Who asks and who is asked, as the application names them (issue 19): each approver's devices
-- show "2 of 3 needed; approved by Ana; asked by Bob". The requester is a label (the public id
-- of one of the application's users, who may be excluded from approving, and a name), not a
-- reference. A group the application closed keeps the reason "closed".
ALTER TABLE approval_groups ADD COLUMN requester_authy_id BIGINT NOT NULL DEFAULT 0;
ALTER TABLE approval_groups ADD COLUMN requester_name TEXT NOT NULL DEFAULT '';
ALTER TABLE approval_groups ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE approval_requests ADD COLUMN approver_name TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE approval_requests DROP COLUMN approver_name;
ALTER TABLE approval_groups DROP COLUMN reason;
ALTER TABLE approval_groups DROP COLUMN requester_name;
ALTER TABLE approval_groups DROP COLUMN requester_authy_id;
