package console_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func appsCreate(name string) apps.CreateParams { return apps.CreateParams{Name: name} }
func itoa(n int64) string                      { return strconv.FormatInt(n, 10) }

var keyField = regexp.MustCompile(`id="api-key"[^>]*value="([A-Za-z0-9]{32})"`)

// signedIn returns a browser signed in as a new operator.
func (f *fixture) signedIn() *browser {
	f.t.Helper()
	o := f.operator(fmt.Sprintf("op%d@example.com", time.Now().UnixNano()), true)
	b := f.browser()
	b.signIn(o)
	return b
}

func TestCreateAppShowsTheKeyOnce(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	b.get("/console/apps")
	b.contains("No applications yet")
	b.lacks(apps.ConsoleName) // the console's own application is not listed

	b.get("/console/apps/new")
	b.post("/console/apps/new", url.Values{"name": {"   "}}, true)
	b.expect(http.StatusUnprocessableEntity, "")
	b.contains("Name must be 1 to 100 characters.", `aria-invalid="true"`)

	b.post("/console/apps/new", url.Values{"name": {"Shop <b>"}, "sandbox": {"on"}}, true)
	b.expect(http.StatusCreated, "")
	m := keyField.FindStringSubmatch(b.body)
	if m == nil {
		t.Fatalf("no key on the page:\n%s", b.body)
	}
	key := m[1]
	b.contains("Copy it now", "Shop &lt;b&gt;")
	a, err := f.apps.Authenticate(t.Context(), key)
	if err != nil || a.Name != "Shop <b>" || !a.Sandbox {
		t.Fatalf("the key shown does not open the new application: %+v %v", a, err)
	}
	if b.last.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the key page may be cached")
	}
	for _, p := range []string{"/console/apps", "/console/apps/" + itoa(a.ID), "/console/apps/" + itoa(a.ID) + "/settings"} {
		b.get(p)
		b.expect(http.StatusOK, "")
		b.lacks(key)
	}
	b.get("/console/apps")
	b.contains("Shop &lt;b&gt;", "sandbox", `data-health="none"`)

	// Rotating shows a new key, once, and the old one stops working.
	b.get("/console/apps/" + itoa(a.ID) + "/rotate")
	b.contains("Rotate the API key")
	b.post("/console/apps/"+itoa(a.ID)+"/rotate", nil, true)
	b.expect(http.StatusOK, "")
	m = keyField.FindStringSubmatch(b.body)
	if m == nil || m[1] == key {
		t.Fatalf("no new key:\n%s", b.body)
	}
	if _, err := f.apps.Authenticate(t.Context(), key); err == nil {
		t.Fatal("the old key still works")
	}
	if _, err := f.apps.Authenticate(t.Context(), m[1]); err != nil {
		t.Fatalf("the new key: %v", err)
	}
}

func TestConsoleAppIsNotManagedHere(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	c, err := f.apps.EnsureConsole(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	base := "/console/apps/" + itoa(c.ID)
	for _, p := range []string{base, base + "/settings", base + "/users", base + "/delete"} {
		b.get(p)
		b.expect(http.StatusNotFound, "")
	}
	b.get("/console/apps")
	b.post(base+"/settings", url.Values{"name": {"x"}, "sandbox": {"on"}}, true)
	b.expect(http.StatusNotFound, "")
	b.get("/console/apps")
	b.post(base+"/delete", url.Values{"confirm_name": {c.Name}}, true)
	b.expect(http.StatusNotFound, "")
	if got, _ := f.apps.Get(t.Context(), c.ID); got.Sandbox || got.Name != apps.ConsoleName {
		t.Fatalf("the console's application changed: %+v", got)
	}
	if err := f.apps.Delete(t.Context(), c.ID); err == nil {
		t.Fatal("apps.Delete deleted the console's application")
	}
}

func TestSettings(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	a, _, _ := f.apps.Create(t.Context(), appsCreate("Shop"))
	path := "/console/apps/" + itoa(a.ID) + "/settings"
	b.get(path)
	b.contains(`name="token_length" id="token_length" value="7"`, `name="sms_enabled" id="sms_enabled" checked`)

	valid := url.Values{"name": {"Shop 2"}, "token_length": {"8"}, "totp_digits": {"6"}, "totp_period": {"30"}, "totp_window": {"1"},
		"device_totp_period": {"10"}, "call_enabled": {"on"}, "number_matching": {"on"}, "allowed_countries": {"us, ca"},
		"callback_url": {"https://shop.example/authy"}, "callback_method": {"POST"}, "callback_expired": {"on"},
		"contact_email": {"ops@shop.example"}, "sms_provider": {"outbox"}, "custom_messages": {"on"},
		"limit_app_sends": {"100/1h"}, "limit_failures": {"off"}}
	with := func(k, v string) url.Values {
		u := url.Values{}
		for key, vals := range valid {
			u[key] = vals
		}
		u.Set(k, v)
		return u
	}
	for _, tc := range []struct {
		form  url.Values
		field string
		text  string
	}{
		{with("token_length", "eleven"), "token_length", "Enter a whole number."},
		{with("token_length", "11"), "token_length", "Token length must be 6 to 10."},
		{with("totp_period", "5"), "totp_period", "TOTP period must be 10 to 120 seconds."},
		{with("device_totp_period", "500"), "device_totp_period", "Device TOTP period must be 10 to 120 seconds."},
		{with("callback_url", "ftp://x"), "callback_url", "Callback URL must be an absolute http(s) URL."},
		{with("allowed_countries", "US, XX"), "allowed_countries", `&#34;XX&#34; is not a country code such as US or PT.`},
		{with("contact_email", "nope"), "contact_email", "Contact email is not an email address."},
		{with("call_provider", "smtp"), "call_provider", "cannot deliver call"},
		{with("name", ""), "name", "Name must be 1 to 100 characters."},
		{with("limit_sends", "lots"), "limit_sends", "N/DURATION"},
	} {
		b.get(path)
		b.post(path, tc.form, true)
		if b.last.StatusCode != http.StatusUnprocessableEntity {
			t.Fatalf("%s: %d\n%s", tc.field, b.last.StatusCode, b.body)
		}
		// The message is beside its field, and what was typed is kept.
		field := regexp.MustCompile(`(?s)id="` + tc.field + `"[^>]*aria-invalid="true".*?field-error"[^>]*>([^<]*)<`).FindStringSubmatch(b.body)
		if field == nil || !strings.Contains(field[1], tc.text) {
			t.Errorf("%s: error beside the field %q, want %q\n", tc.field, field, tc.text)
		}
		b.contains(`value="` + tc.form.Get(tc.field)) // kept as typed (escaped values are plain here)
	}
	if got, _ := f.apps.Get(t.Context(), a.ID); got.Name != "Shop" || got.TokenLength != 7 {
		t.Fatalf("an invalid form changed the application: %+v", got)
	}

	b.get(path)
	b.post(path, valid, true)
	b.expect(http.StatusSeeOther, "/console/apps/"+itoa(a.ID))
	got, _ := f.apps.Get(t.Context(), a.ID)
	want := twofold.Settings{TokenLength: 8, TOTPDigits: 6, TOTPPeriod: 30, TOTPSkew: 1, SMSEnabled: false, CallEnabled: true,
		CallbackURL: "https://shop.example/authy", CallbackMethod: "POST", CallbackExpired: true, ContactEmail: "ops@shop.example",
		NumberMatching: true, DeviceTOTPPeriod: 10, AllowedCountries: []string{"US", "CA"}, CustomMessages: true,
		Providers: map[twofold.Channel]string{twofold.SMS: "outbox"},
		Limits:    map[twofold.LimitKind]twofold.Limit{twofold.LimitAppSends: {N: 100, Window: time.Hour}, twofold.LimitFailures: {}}}
	if fmt.Sprint(got.Settings) != fmt.Sprint(want) || got.Name != "Shop 2" || got.Sandbox {
		t.Fatalf("saved:\n%+v\nwant\n%+v", got.Settings, want)
	}
	b.get("/console/apps/" + itoa(a.ID))
	b.contains("Settings saved.", "https://shop.example/authy", `data-health="healthy"`)
	b.get("/console/apps/" + itoa(a.ID))
	b.lacks("Settings saved.") // shown once

	// The audit trail names what changed, by the operator.
	events, _ := f.audit.List(t.Context(), twofold.AuditFilter{Action: twofold.AuditAppUpdated})
	if len(events) != 1 || !strings.HasPrefix(events[0].Actor, "operator:op") || !strings.Contains(events[0].Details["changed"], "callback_url") {
		t.Fatalf("audit: %+v", events)
	}
}

func TestCallbackHealthAndReenable(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	a, _, _ := f.apps.Create(t.Context(), appsCreate("Shop"))
	cb := "https://shop.example/cb"
	a, _ = f.apps.Update(t.Context(), a.ID, apps.Update{CallbackURL: &cb})
	u := twofold.User{AppID: a.ID, Email: "ada@example.com", CountryCode: 1, Phone: "2015550123", CreatedAt: f.clock.Now()}
	f.st.CreateUser(t.Context(), &u)
	r := twofold.ApprovalRequest{UUID: "0f7c6d1e-aaaa-bbbb-cccc-000000000001", AppID: a.ID, UserID: u.ID, Message: "Login",
		Status: twofold.Pending, CreatedAt: f.clock.Now()}
	if err := f.st.CreateApprovalRequest(t.Context(), &r, 0); err != nil {
		t.Fatal(err)
	}
	r.Status, r.ProcessedAt = twofold.Approved, f.clock.Now()
	c := twofold.Callback{AppID: a.ID, RequestUUID: r.UUID, Payload: []byte("{}")}
	if _, err := f.st.FinishApprovalRequest(t.Context(), r, &c); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := f.st.CallbackFailed(t.Context(), c, 500, "HTTP 500 Internal Server Error", f.clock.Now().Add(-time.Minute), f.clock.Now(), 3); err != nil {
			t.Fatal(i, err)
		}
	}
	page := "/console/apps/" + itoa(a.ID)
	// Paused: the stored next try is in the past, and it is no retry.
	b.get(page)
	b.contains(`id="callback-health" data-health="disabled"`, "Callbacks are paused", "HTTP 500 Internal Server Error", "Re-enable callbacks",
		"0f7c6d1e…", `<td data-label="Tries" class="num">3</td>`, `data-state="held"`, "until callbacks are re-enabled")
	b.lacks("next try", "pending")
	b.get("/console/callbacks?app=" + itoa(a.ID))
	b.contains(`data-state="held"`)
	b.lacks("next try")
	b.get("/console/apps")
	b.contains(`data-health="disabled"`)
	b.get(page)
	b.post(page+"/callbacks/enable", nil, true)
	b.expect(http.StatusSeeOther, page)
	b.get(page)
	b.contains("Callbacks re-enabled", `data-health="healthy"`)
	b.lacks("Callbacks are paused")
	if got, _ := f.apps.Get(t.Context(), a.ID); got.CallbackDisabled() || got.CallbackFailures != 0 {
		t.Fatalf("after re-enabling: %+v", got.CallbackHealth)
	}
	// Re-enabled, the callback is due again at once: its stored next try is long past.
	b.get("/console/callbacks?app=" + itoa(a.ID) + "&status=pending")
	b.contains("0f7c6d1e…", "HTTP 500 Internal Server Error", `<td data-label="Tries" class="num">3</td>`,
		`data-state="retrying"`, "retrying now")
	b.lacks("next try")
}

func TestDeleteApp(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	a, key, _ := f.apps.Create(t.Context(), appsCreate("Shop"))
	u := twofold.User{AppID: a.ID, Email: "ada@example.com", CountryCode: 1, Phone: "2015550123", CreatedAt: f.clock.Now()}
	f.st.CreateUser(t.Context(), &u)
	page := "/console/apps/" + itoa(a.ID) + "/delete"
	b.get(page)
	b.contains(`data-must-equal="Shop"`)
	b.post(page, url.Values{"confirm_name": {"shop"}}, true)
	b.expect(http.StatusUnprocessableEntity, "")
	b.contains("Type the application&#39;s name exactly")
	if _, err := f.apps.Get(t.Context(), a.ID); err != nil {
		t.Fatal("deleted without the right name")
	}
	b.post(page, url.Values{"confirm_name": {"Shop"}}, true)
	b.expect(http.StatusSeeOther, "/console/apps")
	b.get("/console/apps")
	b.contains("Application Shop deleted.")
	if _, err := f.apps.Authenticate(t.Context(), key); err == nil {
		t.Fatal("the deleted application's key still works")
	}
	if _, err := f.st.GetUser(t.Context(), a.ID, u.ID); err == nil {
		t.Fatal("the deleted application's user is still there")
	}
	events, _ := f.audit.List(t.Context(), twofold.AuditFilter{Action: twofold.AuditAppDeleted})
	if len(events) != 1 || events[0].AppID != a.ID || events[0].Details["name"] != "Shop" || !strings.HasPrefix(events[0].Actor, "operator:") {
		t.Fatalf("audit: %+v", events)
	}
	b.get("/console/apps/" + itoa(a.ID))
	b.expect(http.StatusNotFound, "")
}

// One save reports every wrong field at once, each beside its field, whether it did not parse
// or the service refused it; empty fields show, and take, the server's values.
func TestSettingsReportEveryErrorAtOnce(t *testing.T) {
	f := newFixture(t, console.Config{Defaults: console.Defaults{
		Limits:    map[twofold.LimitKind]twofold.Limit{twofold.LimitSends: {N: 5, Window: 10 * time.Minute}, twofold.LimitAppSends: {}},
		Providers: map[twofold.Channel]string{twofold.SMS: "twilio", twofold.Call: "outbox", twofold.Email: "smtp"},
	}})
	b := f.signedIn()
	a, _, _ := f.apps.Create(t.Context(), appsCreate("Shop"))
	path := "/console/apps/" + itoa(a.ID) + "/settings"
	b.get(path)
	b.contains(`name="limit_sends" id="limit_sends" value="" placeholder="server: 5/10m"`,
		`name="limit_app_sends" id="limit_app_sends" value="" placeholder="server: off"`,
		`<option value="">server default (twilio)</option>`, `<option value="">server default (smtp)</option>`,
		`name="allowed_countries" id="allowed_countries" value="" placeholder="every country"`,
		`name="token_length" id="token_length" value="7" inputmode="numeric" placeholder="7"`)

	bad := url.Values{"name": {""}, "token_length": {"eleven"}, "totp_digits": {"6"}, "totp_period": {"5"}, "totp_window": {"1"},
		"device_totp_period": {"500"}, "callback_url": {"ftp://x"}, "callback_method": {"POST"}, "contact_email": {"nope"},
		"call_provider": {"smtp"}, "limit_sends": {"lots"}, "allowed_countries": {"US, XX"}, "logo_url": {"http://cdn.example/logo.png"}}
	b.post(path, bad, true)
	if b.last.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("%d\n%s", b.last.StatusCode, b.body)
	}
	want := map[string]string{
		"name": "Name must be 1 to 100 characters.", "token_length": "Enter a whole number.",
		"totp_period": "TOTP period must be 10 to 120 seconds.", "device_totp_period": "Device TOTP period must be 10 to 120 seconds.",
		"callback_url": "Callback URL must be an absolute http(s) URL.", "contact_email": "Contact email is not an email address.",
		"call_provider": "Provider &#34;smtp&#34; cannot deliver call", "limit_sends": "Write N/DURATION",
		"allowed_countries": "&#34;XX&#34; is not a country code",
		"logo_url":          "Logo URL must be an https URL",
	}
	for field, text := range want {
		m := regexp.MustCompile(`(?s)id="` + field + `"[^>]*aria-invalid="true"[^>]*aria-describedby="[^"]*` + field + `-error".*?` +
			`<small class="field-error" id="` + field + `-error">([^<]*)<`).FindStringSubmatch(b.body)
		if m == nil || !strings.Contains(m[1], text) {
			t.Errorf("%s: error beside the field %q, want %q", field, m, text)
		}
	}
	if n := strings.Count(b.body, `class="field-error"`); n != len(want) {
		t.Errorf("%d errors shown, want %d", n, len(want))
	}
	b.contains(`id="settings-error">Not saved: 10 settings need fixing, each shown beside its field.`)
	if got, _ := f.apps.Get(t.Context(), a.ID); got.Name != "Shop" || got.TOTPPeriod != 30 {
		t.Fatalf("an invalid form changed the application: %+v", got)
	}

	// Empty numbers are the defaults, empty limits the server's.
	a, _ = f.apps.Update(t.Context(), a.ID, apps.Update{TokenLength: ptr(9), Limits: map[twofold.LimitKind]*twofold.Limit{
		twofold.LimitSends: {N: 1, Window: time.Hour}}})
	b.get(path)
	b.post(path, url.Values{"name": {"Shop"}, "callback_method": {"POST"}}, true)
	b.expect(http.StatusSeeOther, "/console/apps/"+itoa(a.ID))
	got, _ := f.apps.Get(t.Context(), a.ID)
	if def := twofold.DefaultSettings(); got.TokenLength != def.TokenLength || got.TOTPPeriod != def.TOTPPeriod || len(got.Limits) != 0 {
		t.Fatalf("empty fields saved as %+v", got.Settings)
	}
}

func ptr[T any](v T) *T { return &v }
