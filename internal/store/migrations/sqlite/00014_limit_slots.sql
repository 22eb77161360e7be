-- +goose Up
-- The failure and send limits as sliding windows (limits.go): a limit of N events per window
-- keeps at most N rows per name, one per slot 0..N-1, each holding the time of one event
-- counted; an event takes a slot whose event has left the window. Slot -1 holds the time of the
-- last refusal recorded in the audit trail. at is in Unix nanoseconds (0: given back);
-- expires_at, in Unix seconds, is when the sweep may delete the row.
CREATE TABLE limit_slots (
    name       TEXT    NOT NULL,
    slot       INTEGER NOT NULL,
    at         INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (name, slot)
) WITHOUT ROWID; -- a limit's rows are read together, by name
CREATE INDEX limit_slots_by_expiry ON limit_slots (expires_at);

-- The fixed-window counts of the limits now kept here carry over as that many events at the
-- start of their window, so that a limit reached before the upgrade stays reached until its
-- window would have ended. (The API's request rate stays in counters.)
INSERT INTO limit_slots (name, slot, at, expires_at)
WITH RECURSIVE n(slot) AS (SELECT 0 UNION ALL SELECT slot + 1 FROM n WHERE slot < 9999)
SELECT c.name, n.slot, c.window_start * 1000000000, c.expires_at
FROM counters c JOIN n ON n.slot < c.count
WHERE c.name LIKE 'verify-failures:%' OR c.name LIKE 'pv-failures:%' OR c.name LIKE 'sends:%'
    OR c.name LIKE 'sends-number:%' OR c.name LIKE 'sends-country:%' OR c.name LIKE 'sends-app:%';

-- +goose Down
DROP TABLE limit_slots;
