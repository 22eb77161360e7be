package hostedstep_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// passwordlessWorld is a world whose step runs passwordless sign-ins through the real service.
func passwordlessWorld(t *testing.T, cfg hostedstep.Config, pcfg passwordless.Config) *world {
	t.Helper()
	w := newWorld(t, cfg)
	w.steps.SetPasswordless(passwordless.New(w.st, w.onetouch, pcfg, w.clock.Now))
	return w
}

// plClient is a client that allows passwordless sign-in, naming users by match.
func (w *world) plClient(match twofold.UserMatch) twofold.StepClient {
	w.t.Helper()
	made, err := w.clients.Create(w.t.Context(), w.app.ID, hostedstep.Spec{Name: ptr("Shop web"),
		RedirectURIs: ptr([]string{"https://shop.example.com/cb"}), UserMatch: &match, Passwordless: ptr(true)})
	if err != nil {
		w.t.Fatal(err)
	}
	return made.Client
}

// beginPL begins a passwordless session of c and opens it.
func (w *world) beginPL(c twofold.StepClient) (hostedstep.Begun, hostedstep.View) {
	w.t.Helper()
	b, err := w.steps.BeginPasswordless(w.t.Context(), c, []byte(`{"state":"pl"}`))
	if err != nil {
		w.t.Fatalf("BeginPasswordless: %v", err)
	}
	return b, w.open(b)
}

// phone registers a device for u and returns its answer function, which can give a reason.
func (w *world) phone(u twofold.User) func(uuid string, status twofold.ApprovalStatus, number, reason string) error {
	w.t.Helper()
	ctx := w.t.Context()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	token, _, err := w.devices.RegistrationToken(ctx, w.app.ID, u.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	reg, err := w.devices.Register(ctx, token, pub, "phone", "cli")
	if err != nil {
		w.t.Fatal(err)
	}
	return func(uuid string, status twofold.ApprovalStatus, number, reason string) error {
		ts := w.clock.Now().Unix()
		digest := sha256.Sum256(onetouch.AnswerMessage(uuid, status, ts, number, reason))
		sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
		_, err := w.onetouch.Answer(ctx, reg.Device, uuid, onetouch.Answer{Status: status, Timestamp: ts,
			Signature: base64.StdEncoding.EncodeToString(sig), Number: number, Reason: reason})
		return err
	}
}

// ask types name on the page of b's session and returns the sign-in and the session after.
func (w *world) ask(b hostedstep.Begun, name string) (hostedstep.Signin, hostedstep.View) {
	w.t.Helper()
	sg, err := w.steps.AskPasswordless(w.t.Context(), w.open(b), name, "198.51.100.7", "Firefox on Linux")
	if err != nil {
		w.t.Fatalf("AskPasswordless(%q): %v", name, err)
	}
	return sg, w.open(b)
}

// A client must allow passwordless sign-in to begin a step without a user; such a step offers
// no factor, and ends if the operator turns the setting off.
func TestBeginPasswordlessNeedsTheClientsSetting(t *testing.T) {
	w := passwordlessWorld(t, hostedstep.Config{}, passwordless.Config{})
	ctx := t.Context()
	if _, err := w.steps.BeginPasswordless(ctx, w.client(twofold.MatchEmail), nil); !errors.Is(err, hostedstep.ErrNotOffered) {
		t.Errorf("a client without the setting: %v, want ErrNotOffered", err)
	}
	c := w.plClient(twofold.MatchEmail)
	without := hostedstep.NewSteps(w.st, w.keys, w.verify, w.onetouch, hostedstep.Config{}, w.clock.Now) // no passwordless service
	if _, err := without.BeginPasswordless(ctx, c, nil); !errors.Is(err, hostedstep.ErrNotOffered) {
		t.Errorf("a step without the passwordless service: %v, want ErrNotOffered", err)
	}
	b, v := w.beginPL(c)
	if !v.NeedsUser() || v.User.ID != 0 || len(v.Offer) != 0 || v.Session.Status != twofold.StepPending {
		t.Fatalf("a passwordless step as opened: %+v", v)
	}
	// No factor passes it while it has no user.
	if _, err := w.steps.StartPush(ctx, v, ""); !errors.Is(err, hostedstep.ErrNotOffered) {
		t.Errorf("a push without a user: %v", err)
	}
	if _, err := w.steps.Check(ctx, v, "123456"); !errors.Is(err, hostedstep.ErrNotOffered) {
		t.Errorf("a code without a user: %v", err)
	}
	if _, err := w.steps.SigninStatus(ctx, v); !errors.Is(err, hostedstep.ErrNotOffered) {
		t.Errorf("the status before any sign-in: %v", err)
	}
	// A named step of the same client is an ordinary second factor: no username asked.
	u := w.user("ana@example.com", "2015550100")
	_, named := w.begin(c, u.Email)
	if named.NeedsUser() {
		t.Error("a step that names its user asks for one")
	}
	if _, err := w.steps.AskPasswordless(ctx, named, u.Email, "198.51.100.7", ""); !errors.Is(err, hostedstep.ErrNotOffered) {
		t.Errorf("a sign-in on a named step: %v, want ErrNotOffered", err)
	}
	// Turned off: the steps without a user end.
	if _, err := w.clients.Update(ctx, c.ClientID, hostedstep.Spec{Passwordless: ptr(false)}, hostedstep.Rotation{}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.steps.Open(ctx, b.Handle, b.Browser); !errors.Is(err, hostedstep.ErrNoSession) {
		t.Errorf("a passwordless step after the setting was turned off: %v", err)
	}
}

// The user who approves is the session's user, once: the code issued for it works once, and its
// result names that user and says how (passwordless: pop and mca).
func TestPasswordlessBindsWhoApproved(t *testing.T) {
	for _, match := range []twofold.UserMatch{twofold.MatchEmail, twofold.MatchCustomID} {
		t.Run(string(match), func(t *testing.T) {
			w := passwordlessWorld(t, hostedstep.Config{}, passwordless.Config{})
			ctx := t.Context()
			ana := w.user("ana@example.com", "2015550100")
			if _, err := w.st.LinkCustomUser(ctx, w.app.ID, ana.ID, "ana-7", t0); err != nil {
				t.Fatal(err)
			}
			answer := w.phone(ana)
			c := w.plClient(match)
			name := map[twofold.UserMatch]string{twofold.MatchEmail: "ANA@example.com", twofold.MatchCustomID: "ana-7"}[match]
			b, _ := w.beginPL(c)
			sg, v := w.ask(b, name)
			if sg.Status != twofold.Pending || len(sg.Number) != 2 || v.Session.SigninUUID == "" {
				t.Fatalf("asked: %+v, session %+v", sg, v.Session)
			}
			if got, err := w.steps.SigninStatus(ctx, v); err != nil || got.Status != twofold.Pending || got.Number != sg.Number {
				t.Fatalf("before the answer: %+v, %v", got, err)
			}
			w.clock.Advance(2 * time.Second)
			if err := answer(v.Session.SigninUUID, twofold.Approved, sg.Number, ""); err != nil {
				t.Fatal(err)
			}
			if got, err := w.steps.SigninStatus(ctx, v); err != nil || got.Status != twofold.Approved {
				t.Fatalf("after the approval: %+v, %v", got, err)
			}
			v = w.open(b)
			if v.NeedsUser() || v.User.ID != ana.ID || v.Session.Status != twofold.StepPassed || v.Session.Factor != twofold.FactorPasswordless {
				t.Fatalf("the session after the approval: user %d, %+v", v.User.ID, v.Session)
			}
			// Bound: no other name can be asked for it.
			if _, err := w.steps.AskPasswordless(ctx, v, "bob@example.com", "198.51.100.7", ""); !errors.Is(err, hostedstep.ErrFinished) {
				t.Errorf("a new sign-in on a bound session: %v, want ErrFinished", err)
			}
			code, err := w.steps.IssueCode(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			res, err := w.steps.Redeem(ctx, c, code)
			if err != nil {
				t.Fatal(err)
			}
			if res.User.ID != ana.ID || res.Factor != twofold.FactorPasswordless || !res.AuthTime.Equal(t0.Add(2*time.Second)) {
				t.Errorf("result: user %d, factor %s, at %s", res.User.ID, res.Factor, res.AuthTime)
			}
			if amr := hostedstep.AMR(res.Factor); len(amr) != 2 || amr[0] != "pop" || amr[1] != "mca" {
				t.Errorf("amr of a passwordless sign-in: %v", amr)
			}
			if _, err := w.steps.Redeem(ctx, c, code); !errors.Is(err, hostedstep.ErrNoCode) {
				t.Errorf("the code redeemed twice: %v, want ErrNoCode", err)
			}
		})
	}
}

// A session started passwordless cannot be switched to another user: a sign-in it no longer
// waits on binds nothing, and once bound, a later approval (of its own sign-in, read by a
// stale view) leaves it with its user.
func TestPasswordlessCannotBeSwitched(t *testing.T) {
	w := passwordlessWorld(t, hostedstep.Config{}, passwordless.Config{})
	ctx := t.Context()
	ana, bob := w.user("ana@example.com", "2015550100"), w.user("bob@example.com", "2015550101")
	anaPhone, bobPhone := w.phone(ana), w.phone(bob)
	b, _ := w.beginPL(w.plClient(twofold.MatchEmail))
	first, v := w.ask(b, ana.Email)
	anaUUID := v.Session.SigninUUID
	second, v := w.ask(b, bob.Email) // typed again: the session waits on Bob's now
	if v.Session.SigninUUID == anaUUID {
		t.Fatal("asking again kept the first sign-in")
	}
	if err := anaPhone(anaUUID, twofold.Approved, first.Number, ""); err != nil {
		t.Fatal(err)
	}
	if got, err := w.steps.SigninStatus(ctx, v); err != nil || got.Status != twofold.Pending {
		t.Fatalf("after the first sign-in's approval the session's is %+v, %v", got, err)
	}
	if v = w.open(b); !v.NeedsUser() || v.Session.Status != twofold.StepPending {
		t.Fatalf("an approval the session no longer waited on bound it: %+v", v.Session)
	}
	stale := v
	if err := bobPhone(v.Session.SigninUUID, twofold.Approved, second.Number, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := w.steps.SigninStatus(ctx, v); err != nil {
		t.Fatal(err)
	}
	if _, err := w.steps.SigninStatus(ctx, stale); err != nil { // a second poll, racing: no harm
		t.Fatal(err)
	}
	if v = w.open(b); v.User.ID != bob.ID || v.Session.Status != twofold.StepPassed {
		t.Fatalf("the session belongs to %d (%s), want Bob %d", v.User.ID, v.Session.Status, bob.ID)
	}
	if err := w.st.BindStepSession(ctx, v.Session.ID, v.Session.SigninUUID, ana.ID, w.clock.Now()); !errors.Is(err, twofold.ErrConflict) {
		t.Errorf("binding the bound session to Ana: %v, want ErrConflict", err)
	}
}

// Every name gets the same answer: a known user with a device, an unknown name, a user without
// a device and a blocked user each get a pending sign-in with a number, and each ends expired
// when nobody answers. A denied sign-in leaves the session waiting for a name again.
func TestPasswordlessAnswersEveryNameAlike(t *testing.T) {
	w := passwordlessWorld(t, hostedstep.Config{}, passwordless.Config{})
	ctx := t.Context()
	c := w.plClient(twofold.MatchEmail)
	ana, eve := w.user("ana@example.com", "2015550100"), w.user("eve@example.com", "2015550102")
	w.user("dan@example.com", "2015550101") // no device
	w.phone(ana)
	evePhone := w.phone(eve)

	// Eve says "I didn't request this": she is blocked for a while.
	b, _ := w.beginPL(c)
	sg, v := w.ask(b, eve.Email)
	if err := evePhone(v.Session.SigninUUID, twofold.Denied, "", onetouch.NotRequestedReason); err != nil {
		t.Fatal(err)
	}
	if got, err := w.steps.SigninStatus(ctx, v); err != nil || got.Status != twofold.Denied || got.Number != sg.Number {
		t.Fatalf("a denied sign-in: %+v, %v", got, err)
	}
	// Denied, the session still waits for a name; it can be asked again.
	if v = w.open(b); !v.NeedsUser() || v.Session.Status != twofold.StepPending {
		t.Fatalf("a denied sign-in ended the session: %+v", v.Session)
	}

	var views []hostedstep.View
	for _, name := range []string{ana.Email, "nobody@example.com", "dan@example.com", eve.Email} {
		b, _ := w.beginPL(c)
		sg, v := w.ask(b, name)
		if sg.Status != twofold.Pending || len(sg.Number) != 2 || sg.Number < "10" || sg.Number > "99" {
			t.Errorf("%s: %+v", name, sg)
		}
		views = append(views, v)
	}
	w.clock.Advance(passwordless.DefaultConfig().DefaultTTL)
	for i, v := range views {
		got, err := w.steps.SigninStatus(ctx, v)
		if err != nil || got.Status != twofold.Expired {
			t.Errorf("sign-in %d after its time: %+v, %v", i, got, err)
		}
	}
}

// The step's limits: a session asks at most PushesPerSession times; the passwordless service's
// per address counts every name alike; a malformed name counts nothing.
func TestPasswordlessLimits(t *testing.T) {
	w := passwordlessWorld(t, hostedstep.Config{PushesPerSession: 2}, passwordless.Config{PerAddress: twofold.Limit{N: 3, Window: time.Hour}})
	ctx := t.Context()
	c := w.plClient(twofold.MatchEmail)
	w.user("ana@example.com", "2015550100")
	b, _ := w.beginPL(c)
	for _, bad := range []string{"", "   ", string(make([]byte, 300))} {
		if _, err := w.steps.AskPasswordless(ctx, w.open(b), bad, "198.51.100.7", ""); twofold.ErrorCode(err) != twofold.CodeInvalidParameter {
			t.Errorf("name %.10q: %v, want invalid", bad, err)
		}
	}
	w.ask(b, "ana@example.com")
	w.ask(b, "nobody@example.com")
	if _, err := w.steps.AskPasswordless(ctx, w.open(b), "ana@example.com", "198.51.100.7", ""); twofold.ErrorCode(err) != twofold.CodeRateLimited {
		t.Errorf("a third sign-in in one session: %v, want 60003", err)
	}
	// The address asked twice already (the session's third was refused before the service):
	// one more, then refused, whatever the name.
	b2, _ := w.beginPL(c)
	w.ask(b2, "nobody@example.com")
	for _, name := range []string{"ana@example.com", "nobody@example.com"} {
		b3, v3 := w.beginPL(c)
		if _, err := w.steps.AskPasswordless(ctx, v3, name, "198.51.100.7", ""); twofold.ErrorCode(err) != twofold.CodeRateLimited {
			t.Errorf("%s from an address over its limit: %v, want 60003", name, err)
		}
		if v := w.open(b3); v.Session.SigninUUID != "" {
			t.Errorf("a refused sign-in was recorded: %+v", v.Session)
		}
	}
}
