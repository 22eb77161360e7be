package callback

import (
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// A callback row says "pending" from its creation until it is delivered or dropped, whether it
// waits for its first try, for a retry after failures, or for an operator to re-enable the
// application's paused callbacks. State tells these apart for people.

// State is where a callback's delivery stands.
type State string

const (
	Delivered State = "delivered" // the customer's endpoint answered 2xx
	Dropped   State = "dropped"   // given up, never delivered (LastError says why)
	Held      State = "held"      // kept, untried, while the application's callbacks are paused
	Retrying  State = "retrying"  // tried and failed; tried again at Next (or now, when Next is zero)
	Queued    State = "queued"    // not tried yet; goes out as soon as a worker is free
	NoURL     State = "no_url"    // the application has no callback URL any more: it will be dropped
)

// Delivery describes one callback's state.
type Delivery struct {
	State State
	// Next is when a retrying callback is tried again; zero when it is due now. A callback being
	// delivered at this moment shows its lease's end, which is about when a failure would retry.
	Next time.Time
	// Failures are the tries so far that failed (a held callback may have failed before the
	// application's callbacks were paused).
	Failures int
}

// Describe says where callback c of application app stands at now.
func Describe(c twofold.Callback, app twofold.App, now time.Time) Delivery {
	d := Delivery{}
	switch c.Status {
	case "delivered":
		d.State = Delivered
		d.Failures = max(c.Attempts-1, 0)
		return d
	case "dropped":
		d.State = Dropped
		d.Failures = c.Attempts
		return d
	}
	d.Failures = c.Attempts
	switch {
	case app.CallbackURL == "":
		d.State = NoURL
	case app.CallbackDisabled():
		d.State = Held
	case c.Attempts > 0:
		d.State = Retrying
		if c.NextAttemptAt.After(now) {
			d.Next = c.NextAttemptAt
		}
	default:
		d.State = Queued
	}
	return d
}
