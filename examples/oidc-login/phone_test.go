package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/web/step"
)

// phonePage stands in for the page of a step begun without a user: ?signin=NAME runs the
// passwordless sign-in and shows its number; ?await hands back through the provider once the
// sign-in was approved.
func (s *standIn) phonePage(w http.ResponseWriter, r *http.Request, v hostedstep.View) {
	q := r.URL.Query()
	if q.Has("signin") {
		sg, err := s.steps.AskPasswordless(r.Context(), v, q.Get("signin"), "192.0.2.1", "")
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("number " + sg.Number))
		return
	}
	if _, err := s.steps.SigninStatus(r.Context(), v); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	h := r.PathValue("handle")
	v, err := s.steps.Open(r.Context(), h, step.Browser(r, h))
	if err == nil {
		err = s.p.Finish(w, r, v)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
	}
}

// allowPasswordless turns passwordless sign-in on for the client.
func (s *standIn) allowPasswordless(t *testing.T, clientID string) {
	t.Helper()
	yes := true
	if _, err := s.clients.Update(t.Context(), clientID, hostedstep.Spec{Passwordless: &yes}, hostedstep.Rotation{}); err != nil {
		t.Fatal(err)
	}
}

// approver registers a device for the user with Twofold id and returns a function that approves
// their pending request with number.
func (s *standIn) approver(t *testing.T, id string) func(number string) {
	t.Helper()
	ctx := t.Context()
	uid, _ := strconv.ParseInt(id, 10, 64)
	ds := devices.New(s.st, s.keys, apps.New(s.st, s.keys, nil).Reveal, 0, nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	token, _, err := ds.RegistrationToken(ctx, s.app.ID, uid)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := ds.Register(ctx, token, pub, "phone", "cli")
	if err != nil {
		t.Fatal(err)
	}
	return func(number string) {
		t.Helper()
		pending, err := s.onetouch.ForDevice(ctx, reg.Device, twofold.Pending, 10)
		if err != nil || len(pending) != 1 {
			t.Fatalf("the device's pending requests: %d, %v", len(pending), err)
		}
		ts := time.Now().Unix()
		digest := sha256.Sum256(onetouch.AnswerMessage(pending[0].UUID, twofold.Approved, ts, number, ""))
		sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if _, err := s.onetouch.Answer(ctx, reg.Device, pending[0].UUID, onetouch.Answer{Status: twofold.Approved, Timestamp: ts,
			Signature: base64.StdEncoding.EncodeToString(sig), Number: number}); err != nil {
			t.Fatal(err)
		}
	}
}

// "Sign in with your phone": offered only when configured; it sends the browser to Twofold
// naming nobody, and the id token of the user who approved signs in that user, when they are
// one of the sample's; someone Twofold knows but the sample does not is refused.
func TestPhoneSignIn(t *testing.T) {
	tf := newStandIn(t)
	id, _ := tf.EnrolledUser(t, "ana@example.com")
	approveAna := tf.approver(t, id)
	stranger, _ := tf.EnrolledUser(t, "eve@example.com") // Twofold's user, not the sample's
	approveEve := tf.approver(t, stranger)
	users := "email,password,twofold_id\n" + csvLine("ana@example.com", password, id)

	off := startSample(t, tf, users, nil)
	b := newBrowser(t)
	if _, body := b.get(off + "/login"); strings.Contains(body, "phone-sign-in") {
		t.Fatalf("the button without the setting:\n%s", body)
	}
	if resp, _ := b.do("POST", off+"/login/phone", url.Values{}); resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the phone sign-in without the setting: %d", resp.StatusCode)
	}

	sample := startSample(t, tf, users, func(c *config) {
		c.Passwordless = true
		tf.allowPasswordless(t, c.ClientID)
	})
	for _, tc := range []struct {
		email   string
		approve func(string)
		ok      bool
	}{{"ana@example.com", approveAna, true}, {"eve@example.com", approveEve, false}} {
		b := newBrowser(t)
		if _, body := b.get(sample + "/login"); !strings.Contains(body, `id="phone-sign-in"`) {
			t.Fatalf("no button:\n%s", body)
		}
		resp, body := b.do("POST", sample+"/login/phone", url.Values{})
		if !strings.HasPrefix(resp.Request.URL.Path, "/step/") {
			t.Fatalf("the phone sign-in went to %s (%d):\n%s", resp.Request.URL, resp.StatusCode, body)
		}
		page := resp.Request.URL.String()
		_, body = b.get(page + "?signin=" + url.QueryEscape(tc.email))
		number, found := strings.CutPrefix(body, "number ")
		if !found {
			t.Fatalf("%s: %s", tc.email, body)
		}
		tc.approve(number)
		resp, body = b.get(page + "?await")
		if !tc.ok {
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "could not be confirmed") {
				t.Fatalf("%s, not a user of the sample: %d\n%s", tc.email, resp.StatusCode, body)
			}
			continue
		}
		if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != sample+"/" {
			t.Fatalf("after the approval: %s %d\n%s", resp.Request.URL, resp.StatusCode, body)
		}
		for _, want := range []string{"Signed in as <strong>ana@example.com</strong>, with your phone: <strong id=\"amr\">pop, mca</strong>",
			`<dd id="sub">` + id + `</dd>`, "urn:twofold:acr:passwordless"} {
			if !strings.Contains(body, want) {
				t.Errorf("home page lacks %q:\n%s", want, body)
			}
		}
	}
}
