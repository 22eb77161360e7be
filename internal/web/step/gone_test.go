package step_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/accesslog/hanguptest"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// holding is the step service with a Hold before each of the calls the tests hang up on.
type holding struct {
	*hostedstep.Steps
	open, check, begin, redeem hanguptest.Hold
}

func (h *holding) Open(ctx context.Context, handle, browser string) (hostedstep.View, error) {
	report := h.open.Wait(ctx)
	v, err := h.Steps.Open(ctx, handle, browser)
	report(err)
	return v, err
}

func (h *holding) Check(ctx context.Context, v hostedstep.View, code string) (twofold.Factor, error) {
	report := h.check.Wait(ctx)
	f, err := h.Steps.Check(ctx, v, code)
	report(err)
	return f, err
}

func (h *holding) Begin(ctx context.Context, c twofold.StepClient, name string, request []byte) (hostedstep.Begun, error) {
	report := h.begin.Wait(ctx)
	b, err := h.Steps.Begin(ctx, c, name, request)
	report(err)
	return b, err
}

func (h *holding) Redeem(ctx context.Context, c twofold.StepClient, code string) (hostedstep.Result, error) {
	report := h.redeem.Wait(ctx)
	res, err := h.Steps.Redeem(ctx, c, code)
	report(err)
	return res, err
}

// A browser or relying party that hangs up while the server is busy with its request (here,
// waiting on the store) is no fault of the server's: the page and the provider log it once, at
// DEBUG, and never as an error (an attack run saw 25 ERROR lines of "context canceled").
func TestClientGoneIsNotAnError(t *testing.T) {
	log := hanguptest.NewLog()
	h := &holding{}
	var srv *hanguptest.Server
	f := newFixtureOpts(t, fixtureOpts{log: log.Logger,
		steps:  func(s *hostedstep.Steps) stepService { h.Steps = s; return h },
		server: func(mux http.Handler) *httptest.Server { srv = hanguptest.NewServer(t, mux); return srv.Server }})
	b := f.browser()
	page := b.begin()
	form := url.Values{"csrf": {csrfOf(t, page)}, "via": {"totp"}, "code": {f.key.Code(time.Now())}}
	token := url.Values{"grant_type": {"authorization_code"}, "code": {"some-code"}, "redirect_uri": {redirectURI}}
	requests := []struct {
		name string
		req  func() *http.Request
		hold *hanguptest.Hold
	}{
		{"the page's status", func() *http.Request {
			r, _ := http.NewRequest("GET", f.srv.URL+page.url.Path+"/status", nil)
			return r
		}, &h.open},
		{"a code", func() *http.Request {
			r, _ := http.NewRequest("POST", f.srv.URL+page.url.Path+"/code", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return r
		}, &h.check},
		{"the authorization request", func() *http.Request {
			r, _ := http.NewRequest("GET", f.authorizeURL(), nil)
			return r
		}, &h.begin},
		{"the token request", func() *http.Request {
			r, _ := http.NewRequest("POST", f.srv.URL+"/oauth2/token", strings.NewReader(token.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(url.QueryEscape(f.client.Client.ClientID), url.QueryEscape(f.client.Secret))
			return r
		}, &h.redeem},
	}
	for _, rq := range requests {
		log.Reset()
		if err := srv.HangUp(t, b.hc, rq.req(), rq.hold); err == nil {
			t.Fatalf("%s: the held call succeeded in spite of its client's going: the test tests nothing", rq.name)
		}
		log.CheckGone(t, rq.name)
	}
}
