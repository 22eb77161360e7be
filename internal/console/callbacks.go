package console

import (
	"errors"
	"net/http"
	"time"

	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// callbackRow is a callback with where its delivery stands (callback.Describe): a "pending"
// row may be queued, retrying, or held while the application's callbacks are paused.
type callbackRow struct {
	C twofold.Callback
	D callback.Delivery
}

// describeCallbacks describes each callback by the state of its application (byID).
func (c *console) describeCallbacks(list []twofold.Callback, byID map[int64]twofold.App) []callbackRow {
	now := c.cfg.Now()
	rows := make([]callbackRow, len(list))
	for i, cb := range list {
		rows[i] = callbackRow{C: cb, D: callback.Describe(cb, byID[cb.AppID], now)}
	}
	return rows
}

// testOutcome is a test callback's result, kept in the session for the application's page.
type testOutcome struct {
	AppID  int64
	Result callback.TestResult
}

// Took is the round trip, for people.
func (t testOutcome) Took() string {
	d := t.Result.Took
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// appTestCallback sends the application a signed test callback now, and shows the outcome on
// its page: an operator checks the endpoint before re-enabling paused callbacks.
func (c *console) appTestCallback(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	if c.d.Callbacks == nil {
		c.flash(q, "This server sends no test callbacks.")
		http.Redirect(w, r, appURL(a), http.StatusSeeOther)
		return
	}
	res, err := c.d.Callbacks.Test(r.Context(), a)
	if errors.Is(err, callback.ErrNoCallbackURL) {
		c.flash(q, "Set a callback URL first: there is nothing to test.")
		http.Redirect(w, r, appURL(a)+"/settings#callbacks", http.StatusSeeOther)
		return
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.sessions.update(q.sid, func(s *session) { s.test = &testOutcome{AppID: a.ID, Result: res} })
	http.Redirect(w, r, appURL(a)+"#callback-test", http.StatusSeeOther)
}
