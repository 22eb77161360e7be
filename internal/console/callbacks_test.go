package console_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// "Send a test callback" sends the customer's endpoint a real callback, signed with the API
// key, and shows what it answered on the application's page (once); a failed test changes
// nothing about the application's callbacks.
func TestTestCallback(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	ctx := t.Context()
	a, key, _ := f.apps.Create(ctx, appsCreate("Shop"))
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	got := make(chan map[string]any, 10)
	var hook *httptest.Server
	hook = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := client.VerifyCallback(r, key, hook.URL+"/authy/callback"); err != nil {
			t.Errorf("test callback signature: %v", err)
		}
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		got <- body
		w.WriteHeader(int(status.Load()))
	}))
	defer hook.Close()
	cb := hook.URL + "/authy/callback"
	a, _ = f.apps.Update(ctx, a.ID, apps.Update{CallbackURL: &cb})
	// Paused after failures, as the dispatcher leaves an application.
	u := twofold.User{AppID: a.ID, Email: "ada@example.com", CountryCode: 1, Phone: "2015550123", CreatedAt: f.clock.Now()}
	f.st.CreateUser(ctx, &u)
	r := twofold.ApprovalRequest{UUID: "0f7c6d1e-aaaa-bbbb-cccc-000000000001", AppID: a.ID, UserID: u.ID, Message: "Login",
		Status: twofold.Pending, CreatedAt: f.clock.Now()}
	f.st.CreateApprovalRequest(ctx, &r, 0)
	r.Status, r.ProcessedAt = twofold.Approved, f.clock.Now()
	c := twofold.Callback{AppID: a.ID, RequestUUID: r.UUID, Payload: []byte("{}")}
	f.st.FinishApprovalRequest(ctx, r, &c)
	for range 3 {
		f.st.CallbackFailed(ctx, c, 503, "HTTP 503", f.clock.Now(), f.clock.Now(), 3)
	}
	before, _ := f.apps.Get(ctx, a.ID)
	page := "/console/apps/" + itoa(a.ID)
	b.get(page)
	b.contains(`id="test-callback"`, "Send a test callback", `id="enable-callbacks"`)

	// The endpoint still fails: the test says so, and the application is as it was.
	b.post(page+"/callbacks/test", nil, true)
	b.expect(http.StatusSeeOther, page+"#callback-test")
	body := <-got
	if body["status"] != "test" || body["callback_action"] != "approval_request_status" || len(body["uuid"].(string)) != 36 {
		t.Fatalf("test callback body: %v", body)
	}
	b.get(page)
	b.contains(`id="callback-test" data-ok="false"`, "Test callback failed", `<span id="callback-test-error">HTTP 503</span>`)
	if after, _ := f.apps.Get(ctx, a.ID); after.CallbackHealth != before.CallbackHealth {
		t.Fatalf("a failed test changed the callbacks' health: %+v, was %+v", after.CallbackHealth, before.CallbackHealth)
	}
	b.get(page)
	b.lacks(`id="callback-test"`) // shown once

	// Fixed: the test is delivered; callbacks stay paused until the operator re-enables them.
	status.Store(http.StatusOK)
	b.post(page+"/callbacks/test", nil, true)
	<-got
	b.get(page)
	b.contains(`id="callback-test" data-ok="true"`, "Test callback delivered", "answered HTTP 200", `data-health="disabled"`)
	if n := len(got); n != 0 {
		t.Fatalf("%d more callbacks arrived", n)
	}
	if cbs, _ := f.st.RecentCallbacks(ctx, a.ID, 10); len(cbs) != 1 {
		t.Fatalf("the tests were stored as callbacks: %+v", cbs)
	}

	// Without a callback URL there is nothing to test.
	empty := ""
	f.apps.Update(ctx, a.ID, apps.Update{CallbackURL: &empty})
	b.get(page)
	b.lacks(`id="test-callback"`)
	b.post(page+"/callbacks/test", nil, true)
	b.expect(http.StatusSeeOther, page+"/settings#callbacks")
	if n := len(got); n != 0 { // a test is sent while the request waits: it would be here
		t.Fatalf("%d callbacks went out without a URL", n)
	}
}
