package hostedstep_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func TestPasskeysReach(t *testing.T) {
	for _, c := range []struct {
		rpID    string
		origins []string
		origin  string
		want    bool
	}{
		{"login.shop.example", []string{"https://login.shop.example"}, "https://login.shop.example", true},
		{"shop.example", []string{"https://shop.example", "https://login.shop.example"}, "https://login.shop.example", true},
		{"Shop.Example.", []string{"https://login.shop.example/"}, "https://login.shop.example", true},
		// The rp id is the customer's site only: the step's host is elsewhere.
		{"shop.example", []string{"https://shop.example"}, "https://twofold.example", false},
		// A suffix at a label boundary only.
		{"op.example", []string{"https://shop.example"}, "https://shop.example", false},
		// The rp id reaches, but Twofold would refuse the step's origin.
		{"shop.example", []string{"https://shop.example"}, "https://login.shop.example", false},
		{"", nil, "https://shop.example", false},
	} {
		host := c.origin[len("https://"):]
		if got := hostedstep.PasskeysReach(c.rpID, c.origins, c.origin, host); got != c.want {
			t.Errorf("PasskeysReach(%q, %v, %q) = %v, want %v", c.rpID, c.origins, c.origin, got, c.want)
		}
	}
}

// RFC 8176: a device-bound key is hwk, a synced one swk; verified by the authenticator is pin,
// presence alone user. The Auth0 result names the factor without them.
func TestPasskeyAMR(t *testing.T) {
	for _, c := range []struct {
		synced, uv bool
		want       []string
	}{
		{false, true, []string{"hwk", "pin"}},
		{false, false, []string{"hwk", "user"}},
		{true, true, []string{"swk", "pin"}},
		{true, false, []string{"swk", "user"}},
	} {
		f := twofold.PasskeyFactor(c.synced, c.uv)
		if got := hostedstep.AMR(f); !slices.Equal(got, c.want) {
			t.Errorf("AMR(%s) = %v, want %v", f, got, c.want)
		}
		if f.Base() != twofold.FactorPasskey {
			t.Errorf("%s.Base() = %s", f, f.Base())
		}
	}
	if got := hostedstep.AMR(twofold.FactorPush); !slices.Equal(got, []string{"pop"}) {
		t.Errorf("AMR(push) = %v", got)
	}
}

// fakeStepPasskeys answers as the passkeys service: one ceremony per begin, finished once.
type fakeStepPasskeys struct {
	rpID    string
	origins []string
	has     map[int64]bool
	login   hostedstep.PasskeyLogin
	refuse  error
	begun   map[string]int64
}

func (f *fakeStepPasskeys) RelyingParty(twofold.App) (string, []string) { return f.rpID, f.origins }
func (f *fakeStepPasskeys) HasPasskeys(_ context.Context, _ twofold.App, id int64) (bool, error) {
	return f.has[id], nil
}
func (f *fakeStepPasskeys) BeginLogin(_ context.Context, _ twofold.App, id int64) (hostedstep.PasskeyCeremony, error) {
	if f.begun == nil {
		f.begun = map[string]int64{}
	}
	c := "c" + string(rune('a'+len(f.begun)))
	f.begun[c] = id
	return hostedstep.PasskeyCeremony{ID: c, Options: []byte(`{"publicKey":{}}`)}, nil
}
func (f *fakeStepPasskeys) FinishLogin(_ context.Context, _ twofold.App, c string, _ []byte) (hostedstep.PasskeyLogin, error) {
	if _, ok := f.begun[c]; !ok {
		return hostedstep.PasskeyLogin{}, twofold.Errorf(60171, "Passkey ceremony not found")
	}
	delete(f.begun, c)
	if f.refuse != nil {
		return hostedstep.PasskeyLogin{}, f.refuse
	}
	return f.login, nil
}

// A user with a passkey the step's page can use is offered it first, whatever the client's
// factors; the assertion passes the step with how it was proven; a refused one, or one of
// another user's, leaves it pending; a user without passkeys, or an application whose rp id
// does not reach the step's host, is not offered one.
func TestPasskeyPassesTheStep(t *testing.T) {
	w := newWorld(t, hostedstep.Config{})
	ada, bob := w.user("ada@example.com", "2015550101"), w.user("bob@example.com", "2015550102")
	pk := &fakeStepPasskeys{rpID: "example.com", origins: []string{"https://login.example.com"}, has: map[int64]bool{ada.ID: true}}
	w.steps.SetPasskeys(pk, "https://login.example.com/")
	c := w.client(twofold.MatchEmail, twofold.FactorSMS)

	_, v := w.begin(c, "bob@example.com")
	if slices.Contains(v.Offer, twofold.FactorPasskey) {
		t.Fatalf("a user without passkeys is offered %v", v.Offer)
	}
	if _, err := w.steps.BeginPasskey(t.Context(), v); !errors.Is(err, hostedstep.ErrNotOffered) {
		t.Fatalf("BeginPasskey for a user without passkeys: %v", err)
	}

	b, v := w.begin(c, "ada@example.com")
	if !slices.Equal(v.Offer, []twofold.Factor{twofold.FactorPasskey, twofold.FactorSMS}) {
		t.Fatalf("offer = %v, want the passkey first", v.Offer)
	}
	// Refused by the service: the step stays pending.
	pk.refuse = twofold.Errorf(60172, "Passkey assertion refused")
	cer, err := w.steps.BeginPasskey(t.Context(), v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.steps.FinishPasskey(t.Context(), v, cer.ID, []byte(`{}`)); !errors.Is(err, hostedstep.ErrPasskeyRefused) {
		t.Fatalf("a refused assertion: %v", err)
	}
	// The same ceremony again: finished already.
	pk.refuse = nil
	pk.login = hostedstep.PasskeyLogin{UserID: ada.ID, UserVerified: true}
	if _, err := w.steps.FinishPasskey(t.Context(), v, cer.ID, []byte(`{}`)); !errors.Is(err, hostedstep.ErrPasskeyRefused) {
		t.Fatalf("a ceremony finished twice: %v", err)
	}
	// Another user's passkey.
	pk.login = hostedstep.PasskeyLogin{UserID: bob.ID, UserVerified: true}
	cer, _ = w.steps.BeginPasskey(t.Context(), v)
	if _, err := w.steps.FinishPasskey(t.Context(), v, cer.ID, []byte(`{}`)); !errors.Is(err, hostedstep.ErrPasskeyRefused) {
		t.Fatalf("another user's passkey: %v", err)
	}
	if v = w.open(b); v.Session.Status != twofold.StepPending {
		t.Fatalf("after refusals the step is %s", v.Session.Status)
	}
	// Ada's synced passkey, with her fingerprint.
	pk.login = hostedstep.PasskeyLogin{UserID: ada.ID, BackupEligible: true, UserVerified: true}
	cer, _ = w.steps.BeginPasskey(t.Context(), v)
	f, err := w.steps.FinishPasskey(t.Context(), v, cer.ID, []byte(`{}`))
	if err != nil || f != twofold.PasskeyFactor(true, true) {
		t.Fatalf("FinishPasskey = %s, %v", f, err)
	}
	v = w.open(b)
	if v.Session.Status != twofold.StepPassed || !slices.Equal(hostedstep.AMR(v.Session.Factor), []string{"swk", "pin"}) {
		t.Fatalf("the step is %s by %s", v.Session.Status, v.Session.Factor)
	}

	// The application's rp id is the customer's site, not the step's host: no passkey here.
	pk.rpID, pk.origins = "shop.example", []string{"https://shop.example"}
	_, v = w.begin(c, "ada@example.com")
	if slices.Contains(v.Offer, twofold.FactorPasskey) {
		t.Fatalf("passkeys of shop.example offered on login.example.com: %v", v.Offer)
	}
}
