package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The failure and send limits are sliding windows: no interval of a window's length holds more
// than N events counted, wherever it starts. A fixed window does not give that (N at the end of
// one window and N at the start of the next are 2N in a moment), nor does a token bucket (N
// plus what refills within the window) or a weighted two-window estimate.
//
// The store keeps, per limit, N slots (the rows of limit_slots, 0..N-1), each holding the time
// of one event counted. An event is counted by taking a slot whose event has left the window
// (or that was never used), with one conditional upsert:
//
//	INSERT … ON CONFLICT (name, slot) DO UPDATE … WHERE limit_slots.at <= now - window
//
// That statement is atomic on both engines: on SQLite by the single writer; on PostgreSQL, ON
// CONFLICT takes the row's lock and evaluates the WHERE against the newest committed version,
// so two transactions (two instances) never both take one slot, and a slot never holds two
// events of one window. N slots each holding at most one event of any interval of the
// window's length bound the count, with no table or advisory lock, and two events of one
// limit contend only when they pick the same slot.
//
// Refused tries are not written (a flood costs reads, and the table never holds more than N
// rows per limit, plus one for the last refusal recorded); a success gives its event back
// exactly (RefundHit frees the slot it took, if it still holds that event). Times are kept in
// nanoseconds, so nothing is rounded when an event is counted; the sweep deletes a row once its
// event has left the window (expires_at, in seconds, rounded up).

// refusalSlot is the slot of a limit's row that holds the time of the last refusal recorded in
// the audit trail: one refusal per window's length is, not the whole of a flood.
const refusalSlot = -1

// maxClaims bounds how often Hit retries on PostgreSQL when other instances take the slots it
// picked; each retry means another event was counted meanwhile, so the limit soon fills.
const maxClaims = 16

// nanos is t in Unix nanoseconds; the zero time is 0, before every event.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// slotExpiry is when the sweep may delete the row of an event at ns counted in a window: the
// event's time plus the window, rounded up to a whole second.
func slotExpiry(ns int64, window time.Duration) int64 {
	end := ns + int64(window)
	return (end + int64(time.Second) - 1) / int64(time.Second)
}

// Hit counts one event at now against limit l (not off) under name, if the window ending now
// holds fewer than l.N events. An event counts for one window's length: from its time to its
// time plus l.Window, excluded. A refusal counts
// nothing; it reports the oldest event counted, when the first room will come, and whether it
// is the first refusal within a window's length.
func (s *Store) Hit(ctx context.Context, name string, now time.Time, l twofold.Limit) (twofold.LimitHit, error) {
	var h twofold.LimitHit
	var err error
	if s.pg {
		h, err = s.hit(ctx, s.r, name, now, l)
	} else {
		// One transaction of the writer: it reads and then writes once at most, and no other
		// write comes between.
		err = s.tx1(ctx, func(tx *Tx) error {
			var err error
			h, err = s.hit(ctx, tx, name, now, l)
			return err
		})
	}
	if err != nil {
		return twofold.LimitHit{}, fmt.Errorf("limit %s: %w", name, err)
	}
	return h, nil
}

func (s *Store) hit(ctx context.Context, ex execer, name string, now time.Time, l twofold.Limit) (twofold.LimitHit, error) {
	at, since, expires := nanos(now), nanos(now.Add(-l.Window)), slotExpiry(nanos(now), l.Window)
	// Most often there is room: take the lowest free slot, or the next never used, in one
	// statement. It takes nothing when the limit is full, when another instance took that slot
	// first, or when the slots have a gap (swept rows); the slots are then read.
	var slot int
	err := ex.QueryRowContext(ctx, `INSERT INTO limit_slots (name, slot, at, expires_at)
		SELECT $1, f.slot, $2, $3 FROM (SELECT COALESCE(
			(SELECT min(slot) FROM limit_slots WHERE name = $1 AND slot >= 0 AND slot < $4 AND at <= $5),
			(SELECT count(*) FROM limit_slots WHERE name = $1 AND slot >= 0 AND slot < $4)) AS slot) f
		WHERE f.slot < $4 AND NOT EXISTS (SELECT 1 FROM limit_slots WHERE name = $1 AND slot >= $4 AND at > $5)
		ON CONFLICT (name, slot) DO UPDATE SET at = excluded.at, expires_at = excluded.expires_at WHERE limit_slots.at <= $5
		RETURNING slot`, name, at, expires, l.N, since).Scan(&slot)
	if err == nil {
		return twofold.LimitHit{Event: twofold.LimitEvent{Name: name, Slot: slot, At: now}}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return twofold.LimitHit{}, err
	}
	for range maxClaims {
		slots, err := readSlots(ctx, ex, name, l.N, since)
		if err != nil {
			return twofold.LimitHit{}, err
		}
		if slots.live >= l.N {
			h := twofold.LimitHit{Refused: true, Oldest: time.Unix(0, slots.oldest).UTC()}
			if !slots.refusalRecorded {
				if h.FirstRefusal, err = claimSlot(ctx, ex, name, refusalSlot, at, expires, since); err != nil {
					return twofold.LimitHit{}, err
				}
			}
			return h, nil
		}
		slot := slots.free()
		ok, err := claimSlot(ctx, ex, name, slot, at, expires, since)
		if err != nil {
			return twofold.LimitHit{}, err
		}
		if ok {
			return twofold.LimitHit{Event: twofold.LimitEvent{Name: name, Slot: slot, At: now}}, nil
		}
	}
	// Every slot picked was taken first: the limit is in such demand that it is refused
	// rather than waited for (a second later, there is room or a refusal to report).
	return twofold.LimitHit{Refused: true, Oldest: now.Add(-l.Window)}, nil
}

// claimSlot takes slot of the limit name for an event at at (Unix ns), if the slot is free: never
// used, given back, or holding an event at or before since (now less the window). Taking refusalSlot records a refusal.
func claimSlot(ctx context.Context, ex execer, name string, slot int, at, expires, since int64) (bool, error) {
	var got int
	err := ex.QueryRowContext(ctx, `INSERT INTO limit_slots (name, slot, at, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name, slot) DO UPDATE SET at = excluded.at, expires_at = excluded.expires_at WHERE limit_slots.at <= $5
		RETURNING slot`, name, slot, at, expires, since).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// slotState is what the rows of one limit say at a time: how many events are in the window,
// the oldest of them, which slots below n hold one, and whether a refusal was recorded.
type slotState struct {
	n               int
	live            int
	oldest          int64
	used            map[int]bool
	refusalRecorded bool
}

func readSlots(ctx context.Context, ex execer, name string, n int, since int64) (slotState, error) {
	st := slotState{n: n, oldest: math.MaxInt64, used: map[int]bool{}}
	rows, err := ex.QueryContext(ctx, `SELECT slot, at FROM limit_slots WHERE name = $1`, name)
	if err != nil {
		return slotState{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var slot int
		var at int64
		if err := rows.Scan(&slot, &at); err != nil {
			return slotState{}, err
		}
		switch {
		case slot == refusalSlot:
			st.refusalRecorded = at > since
		case at > since:
			st.live++
			st.oldest = min(st.oldest, at)
			if slot < n {
				st.used[slot] = true
			}
		}
	}
	return st, rows.Err()
}

// free picks a free slot at random (there is one: fewer than n events are in the window), so
// that instances racing for the last ones seldom pick the same.
func (st slotState) free() int {
	start := rand.IntN(st.n)
	for i := range st.n {
		if slot := (start + i) % st.n; !st.used[slot] {
			return slot
		}
	}
	return start // unreachable while live < n
}

// RefundHit gives back an event counted by Hit: its slot is freed, unless the event has left the
// window and another took the slot since.
func (s *Store) RefundHit(ctx context.Context, ev twofold.LimitEvent) error {
	_, err := s.w.ExecContext(ctx, `UPDATE limit_slots SET at = 0 WHERE name = $1 AND slot = $2 AND at = $3`,
		ev.Name, ev.Slot, nanos(ev.At))
	if err != nil {
		return fmt.Errorf("limit %s: give back: %w", ev.Name, err)
	}
	return nil
}

// RecordRefusal reports whether a refusal of the limit name at now is the first within window,
// and if so notes it, atomically: of the refusals of a flood, one per window's length is
// recorded in the audit trail. CheckState tells, with a read, whether one was noted already.
func (s *Store) RecordRefusal(ctx context.Context, name string, now time.Time, window time.Duration) (bool, error) {
	var first bool
	claim := func(ex execer) error {
		var err error
		first, err = claimSlot(ctx, ex, name, refusalSlot, nanos(now), slotExpiry(nanos(now), window), nanos(now.Add(-window)))
		return err
	}
	var err error
	if s.pg {
		err = claim(s.r)
	} else {
		err = s.tx1(ctx, func(tx *Tx) error { return claim(tx) })
	}
	if err != nil {
		return false, fmt.Errorf("limit %s: record refusal: %w", name, err)
	}
	return first, nil
}
