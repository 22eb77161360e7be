package browsertest

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The virtual authenticator makes a discoverable credential for a page on localhost, signs
// with it (counting), verifies the user unless told otherwise, and takes a credential back with
// its counter wound back.
func TestVirtualAuthenticator(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(`<!doctype html><html lang="en"><head><title>WebAuthn</title></head><body><main><h1>WebAuthn</h1></main></body></html>`))
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	// WebAuthn needs a secure context and a domain for rp id: localhost is both, over http.
	url := "http://localhost:" + portOf(t, ln.Addr())

	ctx := Start(t)
	a := AddAuthenticator(t, ctx, AuthenticatorOptions{})
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	const create = `(async () => {
		const c = await navigator.credentials.create({publicKey: {
			rp: {id: 'localhost', name: 'test'},
			user: {id: new Uint8Array([1, 2, 3]), name: 'ada', displayName: 'Ada'},
			challenge: new Uint8Array(32),
			pubKeyCredParams: [{type: 'public-key', alg: -7}],
			authenticatorSelection: {residentKey: 'required', userVerification: 'required'},
		}});
		return c.id;
	})()`
	const get = `(async () => {
		const c = await navigator.credentials.get({publicKey: {
			rpId: 'localhost', challenge: new Uint8Array(32), userVerification: 'preferred',
		}});
		const flags = new Uint8Array(c.response.authenticatorData)[32];
		const count = new DataView(c.response.authenticatorData).getUint32(33);
		return {uv: (flags & 4) !== 0, count: count, user: Array.from(new Uint8Array(c.response.userHandle))};
	})()`
	type assertion struct {
		UV    bool  `json:"uv"`
		Count int   `json:"count"`
		User  []int `json:"user"`
	}
	eval := func(js string, out any) {
		t.Helper()
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatal(err)
		}
	}
	var id string
	eval(create, &id)
	c := a.Credential()
	if !c.IsResidentCredential || c.RpID != "localhost" || !bytes.Equal(c.UserHandle, []byte{1, 2, 3}) {
		t.Fatalf("credential = resident %v, rp %q, user %v", c.IsResidentCredential, c.RpID, c.UserHandle)
	}

	var got assertion
	eval(get, &got)
	if !got.UV || got.Count != 2 || len(got.User) != 3 { // creation counted 1
		t.Fatalf("first assertion = %+v, want UV, count 2, the user handle", got)
	}
	// A user who fails verification (a wrong PIN) gets no assertion at all.
	a.SetUserVerified(false)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](get, chromedp.EvalAwaitPromise)); err == nil ||
		!strings.Contains(err.Error(), "NotAllowedError") {
		t.Fatalf("with user verification failing, the assertion gave err %v, want NotAllowedError", err)
	}
	a.SetUserVerified(true)

	a.ReimportWithSignCount(c.CredentialID, 0)
	eval(get, &got)
	if got.Count != 1 {
		t.Fatalf("after the counter was wound back to 0, the assertion counted %d, want 1", got.Count)
	}
	a.Clear()
	if n := len(a.Credentials()); n != 0 {
		t.Fatalf("after Clear, %d credentials", n)
	}
}

func portOf(t *testing.T, addr net.Addr) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		t.Fatal(err)
	}
	return port
}
