package verifyapi_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/accesslog/hanguptest"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

// holdingVerify is the code service's store with a Hold before EndVerification.
type holdingVerify struct {
	*store.Store
	hold *hanguptest.Hold
}

func (s holdingVerify) EndVerification(ctx context.Context, serviceID int64, publicID, status string, now time.Time) (twofold.Verification, error) {
	report := s.hold.Wait(ctx)
	v, err := s.Store.EndVerification(ctx, serviceID, publicID, status, now)
	report(err)
	return v, err
}

// A client that hangs up while the server waits on the store is no fault of the server's: the
// request is logged once, at DEBUG, never as an error.
func TestClientGoneOverHTTP(t *testing.T) {
	log := hanguptest.NewLog()
	hold := &hanguptest.Hold{}
	var srv *hanguptest.Server
	s := newServerWith(t, serverOpts{log: log.Logger,
		verify: func(st *store.Store) verify.Store { return holdingVerify{st, hold} },
		start:  func(h http.Handler) *httptest.Server { srv = hanguptest.NewServer(t, h); return srv.Server }})
	svc := s.newService(url.Values{"FriendlyName": {"Shop"}})
	log.Reset()
	cancel := url.Values{"Status": {"canceled"}}
	req, _ := http.NewRequest("POST", s.url+"/v2/Services/"+svc+"/Verifications/VE0123456789abcdef0123456789abcdef", strings.NewReader(cancel.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(s.account, s.token)
	if err := srv.HangUp(t, nil, req, hold); err == nil || errors.Is(err, twofold.ErrNotFound) {
		t.Fatalf("the held call answered %v in spite of its client's going: the test tests nothing", err)
	}
	log.CheckGone(t, "cancel a verification")
}
