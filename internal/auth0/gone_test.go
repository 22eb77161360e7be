package auth0_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/accesslog/hanguptest"
	"github.com/twofold-auth/twofold/internal/auth0"
	"github.com/twofold-auth/twofold/internal/store"
)

// holdingMarks is the store with a Hold before SpendMarks.
type holdingMarks struct {
	*store.Store
	hold *hanguptest.Hold
}

func (s holdingMarks) SpendMarks(ctx context.Context, macs [][]byte, appID int64, expires, now time.Time) error {
	report := s.hold.Wait(ctx)
	err := s.Store.SpendMarks(ctx, macs, appID, expires, now)
	report(err)
	return err
}

// A browser that hangs up on the entry while the server spends its state is no fault of the
// server's: it is logged once, at DEBUG, never as an error.
func TestClientGoneOverHTTP(t *testing.T) {
	log := hanguptest.NewLog()
	hold := &hanguptest.Hold{}
	var srv *hanguptest.Server
	w := newWorldWith(t, worldOpts{log: log.Logger,
		marks: func(st *store.Store) auth0.Marks { return holdingMarks{st, hold} },
		start: func(h http.Handler) *httptest.Server { srv = hanguptest.NewServer(t, h); return srv.Server }})
	req, _ := http.NewRequest("GET", w.srv.URL+"/auth0/"+w.client.Client.ClientID+"?"+
		url.Values{"session_token": {w.sessionToken(t, nil)}, "state": {"hung-up"}}.Encode(), nil)
	if err := srv.HangUp(t, nil, req, hold); err == nil {
		t.Fatal("the held call succeeded in spite of its client's going: the test tests nothing")
	}
	log.CheckGone(t, "the entry")
}
