package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/audit"
)

// Approvals by several people (issue 19), end to end: a real server, the public Go client, the
// devices' real keys answering over the device API, and the customer's callback endpoint
// checking every signature with the client package.

// groupTeam is four users of the first application, each with a device; Ana has two.
type groupTeam struct {
	ana, bob, cy, dan     int64
	ana1, ana2, bobP, cyP *device
	danP                  *device
}

func newGroupTeam(s *server) groupTeam {
	var tm groupTeam
	tm.ana = s.register(s.key, "ana@example.com", "2015550101")
	tm.bob = s.register(s.key, "bob@example.com", "2015550102")
	tm.cy = s.register(s.key, "cy@example.com", "2015550103")
	tm.dan = s.register(s.key, "dan@example.com", "2015550104")
	tm.ana1, tm.ana2 = s.newDevice(s.key, tm.ana), s.newDevice(s.key, tm.ana)
	tm.bobP, tm.cyP, tm.danP = s.newDevice(s.key, tm.bob), s.newDevice(s.key, tm.cy), s.newDevice(s.key, tm.dan)
	return tm
}

// memberRequest is the uuid of the request the group asks of authyID.
func memberRequest(t *testing.T, g client.ApprovalGroup, authyID int64) string {
	t.Helper()
	for _, a := range g.Approvers {
		if a.AuthyID == authyID {
			return a.ApprovalRequestUUID
		}
	}
	t.Fatalf("user %d is not an approver of %+v", authyID, g)
	return ""
}

func TestApprovalGroups(t *testing.T) {
	rc := newReceiver(t)
	s := startServer(t, "", "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1")
	rc.key.Store(s.key)
	s.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/authy/callback")
	c, err := client.New(s.url, s.key, client.WithHTTPClient(s.client))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tm := newGroupTeam(s)

	// Any 2 of Ana, Bob and Cy; Dan asks, and is left out although listed.
	g, err := c.CreateApprovalGroup(ctx, client.ApprovalGroupRequest{
		Message: "Pay 10,000 EUR to ACME", Details: map[string]string{"Amount": "10,000 EUR"}, HiddenDetails: map[string]string{"ref": "T-1"},
		Approvers: []client.Approver{{AuthyID: tm.ana, Name: "Ana"}, {AuthyID: tm.bob, Name: "Bob"}, {AuthyID: tm.cy, Name: "Cy"}, {AuthyID: tm.dan, Name: "Dan"}}, Quorum: 2,
		Requester: client.Approver{AuthyID: tm.dan, Name: "Dan"}, ExcludeRequester: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if g.Status != "pending" || g.Quorum != 2 || g.Size != 3 || len(g.Approvers) != 3 || g.Requester == nil || g.Requester.Name != "Dan" ||
		g.Details["Amount"] != "10,000 EUR" || g.ExpiresAt.IsZero() {
		t.Fatalf("created group: %+v", g)
	}
	// Each approver has an ordinary request on their own devices; the requester has none.
	for _, d := range []*device{tm.ana1, tm.ana2, tm.bobP, tm.cyP} {
		if r := d.call(s, "GET", "/device/v1/approval_requests?status=pending", nil); len(r.body["approval_requests"].([]any)) != 1 {
			t.Fatalf("an approver's pending requests: %s", r.raw)
		}
	}
	if r := tm.danP.call(s, "GET", "/device/v1/approval_requests?status=pending", nil); len(r.body["approval_requests"].([]any)) != 0 {
		t.Fatalf("the excluded requester was asked: %s", r.raw)
	}

	// Ana approves on one phone; her second phone cannot make her count twice.
	anaReq := memberRequest(t, g, tm.ana)
	if r := tm.ana1.answer(s, anaReq, "approved", "", ""); r.status != 200 {
		t.Fatalf("Ana's approval: %s", r.raw)
	}
	expectError(t, tm.ana2.answer(s, anaReq, "approved", "", ""), 409, "60079")
	if got, _ := c.ApprovalGroup(ctx, g.UUID); got.Status != "pending" || got.Approvals != 1 {
		t.Fatalf("after one approval: %+v", got)
	}
	// Bob's approval reaches the quorum.
	if r := tm.bobP.answer(s, memberRequest(t, g, tm.bob), "approved", "", ""); r.status != 200 {
		t.Fatalf("Bob's approval: %s", r.raw)
	}
	got, err := c.ApprovalGroup(ctx, g.UUID)
	if err != nil || got.Status != "approved" || got.Approvals != 2 || got.DecidedAt.IsZero() {
		t.Fatalf("after the quorum: %+v %v", got, err)
	}
	// Cy's request was closed: his phone no longer shows it, and his late answer is refused.
	if r := tm.cyP.call(s, "GET", "/device/v1/approval_requests?status=pending", nil); len(r.body["approval_requests"].([]any)) != 0 {
		t.Fatalf("Cy's pending requests after the decision: %s", r.raw)
	}
	expectError(t, tm.cyP.answer(s, memberRequest(t, g, tm.cy), "denied", "", "no"), 409, "60079")

	// One signed callback, with each approver's answer, time and reason.
	cb := rc.next(t)
	var body client.ApprovalGroup
	raw, _ := json.Marshal(cb)
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Fatal(err)
	}
	if body.CallbackAction != "approval_group_status" || body.UUID != g.UUID || body.Status != "approved" || len(body.Approvers) != 3 {
		t.Fatalf("group callback: %s", raw)
	}
	answers := map[int64]client.GroupApprover{}
	for _, a := range body.Approvers {
		answers[a.AuthyID] = a
	}
	if a := answers[tm.ana]; a.Status != "approved" || a.Name != "Ana" || a.AnsweredAt.IsZero() || a.DeviceUUID != fmt.Sprint(tm.ana1.id) {
		t.Fatalf("Ana in the callback: %+v", a)
	}
	if a := answers[tm.cy]; a.Status != "expired" || a.Reason != "group decided" || !a.AnsweredAt.IsZero() {
		t.Fatalf("Cy in the callback: %+v", a)
	}

	// Denied as soon as the quorum cannot be reached: all three needed, one says no.
	all, err := c.CreateApprovalGroup(ctx, client.ApprovalGroupRequest{Message: "Delete the production database",
		Approvers: []client.Approver{{AuthyID: tm.ana}, {AuthyID: tm.bob}, {AuthyID: tm.cy}}})
	if err != nil || all.Quorum != 3 {
		t.Fatalf("all of three: %+v %v", all, err)
	}
	if r := tm.bobP.answer(s, memberRequest(t, all, tm.bob), "denied", "", "not today"); r.status != 200 {
		t.Fatalf("Bob's denial: %s", r.raw)
	}
	if cb := rc.next(t); cb["uuid"] != all.UUID || cb["status"] != "denied" {
		t.Fatalf("denied group's callback: %v", cb)
	}
	if got, _ := c.ApprovalGroup(ctx, all.UUID); got.Status != "denied" || got.Denials != 1 {
		t.Fatalf("after a denial of an all-of-three group: %+v", got)
	}
	expectError(t, tm.ana1.answer(s, memberRequest(t, all, tm.ana), "approved", "", ""), 409, "60079")

	// Closed by the application: no callback, the approvers' requests closed.
	off, err := c.CreateApprovalGroup(ctx, client.ApprovalGroupRequest{Message: "Raise a limit",
		Approvers: []client.Approver{{AuthyID: tm.ana}, {AuthyID: tm.bob}}, Quorum: 1})
	if err != nil {
		t.Fatal(err)
	}
	closed, err := c.CloseApprovalGroup(ctx, off.UUID)
	if err != nil || closed.Status != "expired" || closed.Reason != "closed" || closed.Approvers[0].Reason != "closed" {
		t.Fatalf("closed: %+v %v", closed, err)
	}
	expectError(t, tm.ana1.answer(s, memberRequest(t, off, tm.ana), "approved", "", ""), 409, "60079")
	if _, err := c.CloseApprovalGroup(ctx, g.UUID); !client.IsCode(err, client.CodeNotPending) {
		t.Fatalf("closing an approved group: %v", err)
	}

	// The audit trail has each answer (naming the group) and each decision.
	var entries []audit.Entry
	s.cliJSON(&entries, "audit", "list", "--limit", "200")
	var decided, answered int
	for _, e := range entries {
		switch {
		case e.Action == "approval_group.decided" && e.Details["uuid"] == g.UUID && e.Details["status"] == "approved":
			decided++
		case (e.Action == "approval.approved" || e.Action == "approval.denied") && e.Details["group"] == g.UUID:
			answered++
		}
	}
	if decided != 1 || answered != 2 {
		t.Fatalf("audit: %d decisions and %d answers of the first group, want 1 and 2", decided, answered)
	}
}

// Bad groups are refused with the envelope, and make nothing.
func TestApprovalGroupRefusals(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	tm := newGroupTeam(s)
	noDevice := s.register(s.key, "eve@example.com", "2015550109")
	var otherApp appJSON
	s.cliJSON(&otherApp, "app", "create", "--name", "Other")
	other := otherApp.APIKey
	stranger := s.register(other, "zed@example.com", "2015550110")
	const path = "/onetouch/json/approval_groups"
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"no approvers", `{"message":"x"}`, 400, "60004"},
		{"no message", fmt.Sprintf(`{"approvers":[%d]}`, tm.ana), 400, "60004"},
		{"twice the same person", fmt.Sprintf(`{"message":"x","approvers":[%d,{"authy_id":%d}]}`, tm.ana, tm.ana), 400, "60004"},
		{"quorum above the approvers", fmt.Sprintf(`{"message":"x","approvers":[%d,%d],"quorum":3}`, tm.ana, tm.bob), 400, "60004"},
		{"negative quorum", fmt.Sprintf(`{"message":"x","approvers":[%d],"quorum":-1}`, tm.ana), 400, "60004"},
		{"quorum above after excluding the requester", fmt.Sprintf(`{"message":"x","approvers":[%d,%d],"quorum":2,"requester_id":%d,"exclude_requester":true}`,
			tm.ana, tm.bob, tm.bob), 400, "60004"},
		{"only the excluded requester", fmt.Sprintf(`{"message":"x","approvers":[%d],"requester_id":%d,"exclude_requester":true}`, tm.ana, tm.ana), 400, "60004"},
		{"exclusion without a requester", fmt.Sprintf(`{"message":"x","approvers":[%d],"exclude_requester":true}`, tm.ana), 400, "60004"},
		{"an approver without a device", fmt.Sprintf(`{"message":"x","approvers":[%d,%d]}`, tm.ana, noDevice), 400, "60050"},
		{"another application's user", fmt.Sprintf(`{"message":"x","approvers":[%d,%d]}`, tm.ana, stranger), 404, "60026"},
		{"approvers not a list", `{"message":"x","approvers":"everyone"}`, 400, "60004"},
		{"an approver that is no id", `{"message":"x","approvers":[{"name":"Ana"}]}`, 400, "60004"},
		{"a long name", fmt.Sprintf(`{"message":"x","approvers":[{"authy_id":%d,"name":%q}]}`, tm.ana, strings.Repeat("n", 61)), 400, "60004"},
		{"too many approvers", `{"message":"x","approvers":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21]}`, 400, "60004"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expectError(t, s.do("POST", path, s.key, tt.body), tt.status, tt.code)
		})
	}
	// None of them left a request on anyone's device.
	for _, d := range []*device{tm.ana1, tm.bobP} {
		if r := d.call(s, "GET", "/device/v1/approval_requests", nil); len(r.body["approval_requests"].([]any)) != 0 {
			t.Fatalf("a refused group left requests: %s", r.raw)
		}
	}
	expectError(t, s.get(path+"/nonexistent"), 404, "60049")
	// Another application cannot read or close this one's group.
	r := s.do("POST", path, s.key, fmt.Sprintf(`{"message":"x","approvers":[%d]}`, tm.ana))
	uuid := r.body["approval_group"].(map[string]any)["uuid"].(string)
	expectError(t, s.do("GET", path+"/"+uuid, other, nil), 404, "60049")
	expectError(t, s.do("POST", path+"/"+uuid+"/close", other, nil), 404, "60049")
}

// A group expires with its time: the sweep ends it and calls back once, and late answers are
// refused.
func TestApprovalGroupExpires(t *testing.T) {
	rc := newReceiver(t)
	s := startServer(t, "", "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1", "--sweep-interval", "20ms")
	rc.key.Store(s.key)
	s.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/authy/callback", "--callback-expired")
	tm := newGroupTeam(s)
	r := s.do("POST", "/onetouch/json/approval_groups", s.key, fmt.Sprintf(`{"message":"x","approvers":[%d,%d],"seconds_to_expire":1}`, tm.ana, tm.bob))
	if r.status != 200 {
		t.Fatalf("create: %s", r.raw)
	}
	group := r.body["approval_group"].(map[string]any)
	cb := rc.next(t)
	if cb["uuid"] != group["uuid"] || cb["status"] != "expired" || cb["callback_action"] != "approval_group_status" {
		t.Fatalf("expiry callback: %v", cb)
	}
	first := group["approvers"].([]any)[0].(map[string]any)["approval_request_uuid"].(string)
	expectError(t, tm.ana1.answer(s, first, "approved", "", ""), 409, "60079")
	if got := s.get("/onetouch/json/approval_groups/" + group["uuid"].(string)); got.body["approval_group"].(map[string]any)["status"] != "expired" {
		t.Fatalf("expired group: %s", got.raw)
	}
}

// Approvals arriving at once on two instances over one PostgreSQL database decide the group
// once: exactly the quorum's answers are counted, the others refused, and one callback is sent.
func TestInstancesDecideApprovalGroupOnce(t *testing.T) {
	rc := newCountingReceiver(t, 0)
	in := startInstances(t, 2, "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1")
	a, b := in[0], in[1]
	if _, err := a.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/cb"); err != nil {
		t.Fatal(err)
	}
	const size, quorum = 8, 3
	var ids []string
	var phones []*device
	for i := range size {
		id := a.register(a.key, fmt.Sprintf("approver%d@example.com", i), fmt.Sprintf("20155502%02d", i))
		ids = append(ids, fmt.Sprint(id))
		phones = append(phones, a.newDevice(a.key, id))
	}
	body, _ := json.Marshal(map[string]any{"message": "Pay", "approvers": ids, "quorum": quorum})
	r := a.do("POST", "/onetouch/json/approval_groups", a.key, string(body))
	if r.status != 200 {
		t.Fatalf("create: %s", r.raw)
	}
	group := r.body["approval_group"].(map[string]any)
	var won, refused atomic.Int32
	var wg sync.WaitGroup
	for i, m := range group["approvers"].([]any) {
		uuid := m.(map[string]any)["approval_request_uuid"].(string)
		s := in[i%2]
		wg.Go(func() {
			res, err := tryAnswer(s, phones[i], uuid, "approved")
			switch {
			case err != nil:
				t.Error(err)
			case res.status == 200:
				won.Add(1)
			case res.status == 409:
				refused.Add(1)
			default:
				t.Errorf("answer: %s", res.raw)
			}
		})
	}
	wg.Wait()
	uuid := group["uuid"].(string)
	got := b.get("/onetouch/json/approval_groups/" + uuid).body["approval_group"].(map[string]any)
	if won.Load() != quorum || refused.Load() != size-quorum || got["status"] != "approved" || got["approvals"] != float64(quorum) {
		t.Fatalf("%d answers counted, %d refused; group %v", won.Load(), refused.Load(), got)
	}
	rc.waitFor(t, []string{uuid})
	for _, s := range in {
		s.stop() // deliveries in flight finish
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.got[uuid] != 1 || len(rc.got) != 1 {
		t.Fatalf("callbacks delivered: %v, want the group's once", rc.got)
	}
}
