package callback

import (
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The hand-off: an answer's callback goes from the answer's transaction straight to an idle
// worker, without a claim of its own (a statement and, on SQLite, a commit of the writer that
// answers wait for). The answering side reserves an idle worker before its transaction and gets
// the lease the claim would give; the transaction inserts the callback already leased until
// then, as the claim would have leased it; after the commit the callback is handed to the
// reserved worker (Deliver), or the reservation is given back (Release) when the answer lost,
// failed, or the callback was inserted unleased. Nothing is lost when this process dies between
// the commit and the delivery: the row is pending and leased, so another server, or this one
// restarted, claims it once the lease runs out, as it would a claimed delivery that died. And
// nothing is delivered twice that a claim would not: no claim takes a row before its lease
// ends, and a delivery starts only while its lease has at least Timeout left.

// handoffMargin is the least a lease must exceed Timeout by for a hand-off: the answer's
// transaction runs between the lease's start and the delivery's, and the store keeps leases in
// whole seconds.
const handoffMargin = 2 * time.Second

// Reserve takes an idle worker for one callback that the caller will insert leased until
// leaseUntil, in the transaction that queues it, and hand over with Deliver after the commit.
// ok is false when no worker is idle (or Run is not running): the caller then queues the
// callback unleased and calls Notify, as without a hand-off. Every reservation must end in
// Deliver or Release; Run waits for it before it returns.
func (d *Dispatcher) Reserve() (leaseUntil time.Time, ok bool) {
	if d.cfg.Lease < d.cfg.Timeout+handoffMargin {
		return time.Time{}, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running || d.idle == 0 {
		return time.Time{}, false
	}
	d.idle--
	d.inFlight.Add(1)
	return d.now().Add(d.cfg.Lease), true
}

// Release gives back a worker reserved and not used: the answer lost or failed, or its
// callback was inserted unleased (the application's callbacks are disabled).
func (d *Dispatcher) Release() {
	defer d.inFlight.Done()
	d.freeSlots(1)
}

// Deliver hands the worker reserved callback c, committed pending and leased to this server
// until c.NextAttemptAt. A lease with less than Timeout left (the answer's transaction took
// that long) is not used: the callback waits for the claim after it runs out.
func (d *Dispatcher) Deliver(c twofold.Callback) {
	defer d.inFlight.Done()
	if !d.now().Add(d.cfg.Timeout).Before(c.NextAttemptAt) {
		d.log.Warn("callback handed over too late for its lease; it is claimed when the lease runs out",
			"id", c.ID, "lease_until", c.NextAttemptAt)
		d.freeSlots(1)
		return
	}
	d.start(c)
}
