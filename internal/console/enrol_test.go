package console_test

import (
	"encoding/base64"
	"html"
	"image/png"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// An operator's enrolment link shows their new TOTP seed as a QR code (and as text to type),
// to anyone holding the link and without signing in; only the console's own seeds, only until
// the link expires or the operator enrols again.
func TestEnrolmentQRPage(t *testing.T) {
	f := newFixture(t, console.Config{})
	ctx := t.Context()
	o := f.operator("ana.operator@example.com", false)
	e, err := f.factors.Enrol(ctx, o.op)
	if err != nil {
		t.Fatal(err)
	}
	b := f.browser()
	b.get(console.EnrolmentPath(e.QRLink))
	b.expect(http.StatusOK, "")
	if got := b.last.Header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy %q: the address is the capability", got)
	}
	b.contains(`id="enrol-account">ana.operator@example.com<`, `alt="QR code of the Twofold console's authenticator seed for ana.operator@example.com"`)
	src := regexp.MustCompile(`id="enrol-qr" src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(b.body)
	if src == nil {
		t.Fatalf("no QR image:\n%s", b.body)
	}
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(src[1]))
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(strings.NewReader(string(raw))); err != nil || img.Bounds().Dx() < 200 {
		t.Fatalf("QR image: %v (%v)", err, img)
	}
	key, _ := otp.ParseURI(e.TOTPURI)
	secret := regexp.MustCompile(`id="enrol-secret">([A-Z2-7 ]+)<`).FindStringSubmatch(b.body)
	if secret == nil || strings.ReplaceAll(secret[1], " ", "") != otp.EncodeSecret(key.TOTP.Secret) {
		t.Errorf("the secret to type: %q", secret)
	}
	b.contains(`href="` + strings.ReplaceAll(e.TOTPURI, "&", "&amp;") + `"`)

	// A new enrolment kills the old link; an unknown one, or a customer's, shows nothing.
	e2, err := f.factors.Enrol(ctx, o.op)
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := f.apps.Create(ctx, appsCreate("Shop"))
	u := twofold.User{AppID: a.ID, Email: "ada@example.com", CountryCode: 1, Phone: "2015550123", CreatedAt: f.clock.Now()}
	f.st.CreateUser(ctx, &u)
	customer, err := f.verify.Enroll(ctx, a, u.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{"replaced": e.QRLink, "unknown": strings.Repeat("ab", 24), "short": "x",
		"a customer's": customer.QRLink} {
		b.get(console.EnrolmentPath(token))
		if b.last.StatusCode != http.StatusNotFound || strings.Contains(b.body, "enrol-qr") {
			t.Errorf("%s link: %d\n%s", name, b.last.StatusCode, b.body)
		}
	}
	b.get(console.EnrolmentPath(e2.QRLink))
	b.expect(http.StatusOK, "")
	f.clock.Advance(time.Hour) // the fixture's QR links live 15 minutes
	b.get(console.EnrolmentPath(e2.QRLink))
	b.expect(http.StatusNotFound, "")
	b.contains("This link has expired", "twofold admin enrol")
}

// A new application's key page and every application's page say how to start: the API's
// base URL and a first call to paste, with the key or a command that reads it.
func TestStartPanel(t *testing.T) {
	for _, tc := range []struct{ public, base string }{{"", "http://" + host}, {"https://2fa.example.com/", "https://2fa.example.com"}} {
		f := newFixture(t, console.Config{PublicURL: tc.public})
		b := f.signedIn()
		b.get("/console/apps/new")
		b.post("/console/apps/new", map[string][]string{"name": {"Shop"}}, true)
		key := keyField.FindStringSubmatch(b.body)
		if key == nil {
			t.Fatalf("no key:\n%s", b.body)
		}
		b.contains(`<dd class="mono" id="api-base">`+tc.base+`</dd>`,
			`<code id="first-call">curl -sS -H "X-Authy-API-Key: `+key[1]+`" `+tc.base+`/protected/json/app/details</code>`)
		id := regexp.MustCompile(`<strong class="mono">(\d+)</strong>`).FindStringSubmatch(b.body)[1]
		b.get("/console/apps/" + id)
		b.lacks(key[1])
		b.contains(`<dd class="mono" id="api-base">`+tc.base+`</dd>`, `API_KEY="$(twofold app show `+id+` --show-key | awk`,
			`curl -sS -H "X-Authy-API-Key: $API_KEY" `+tc.base+`/protected/json/app/details`)
	}
}
