package verify

import (
	"context"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Attempt counts one try of another factor (a passkey assertion) against the user's failure
// limit, the same counter wrong tokens fill, before the work it guards: a user whose failures
// fill the limit is refused with 60003 and nothing is judged. The returned release gives the
// try back once it succeeded (or was no guess); a failed try keeps it.
func (s *Service) Attempt(ctx context.Context, app twofold.App, userID int64) (release func(context.Context) error, err error) {
	failures := limit(app, twofold.LimitFailures, s.cfg.FailureLimit)
	counter := counted{name: failureCounter(app.ID, userID), limit: "failures", appID: app.ID, userID: userID}
	ev, err := s.attempt(ctx, counter, failures)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) error { return s.refund(ctx, ev) }, nil
}
