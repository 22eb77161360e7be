package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// An approver's device shows what the group stands at ("2 of 3 needed; approved by Bob; asked by
// Dan"), live as the others answer, and nothing of who they are beyond the names the application
// gave: no authy ids, no emails, no hidden details, nothing of other groups.

// createGroup makes a group through the API and returns its answer.
func createGroup(t *testing.T, s *server, body map[string]any) map[string]any {
	t.Helper()
	raw, _ := json.Marshal(body)
	r := s.do("POST", "/onetouch/json/approval_groups", s.key, string(raw))
	if r.status != 200 {
		t.Fatalf("create group: %s", r.raw)
	}
	return r.body["approval_group"].(map[string]any)
}

// groupMember is the uuid of the request group g asks of authyID.
func groupMember(t *testing.T, g map[string]any, authyID int64) string {
	t.Helper()
	for _, a := range g["approvers"].([]any) {
		if a := a.(map[string]any); a["authy_id"] == float64(authyID) {
			return a["approval_request_uuid"].(string)
		}
	}
	t.Fatalf("user %d is not an approver of %v", authyID, g)
	return ""
}

// deviceGroup is the group a device's view of a request shows, with what it must never show
// checked on the whole view.
func deviceGroup(t *testing.T, view map[string]any, never ...string) map[string]any {
	t.Helper()
	raw, _ := json.Marshal(view)
	for _, s := range append(never, "@example.com", "authy_id", "hidden_details") {
		if strings.Contains(string(raw), s) {
			t.Errorf("a device's view of a group request shows %q: %s", s, raw)
		}
	}
	g, _ := view["group"].(map[string]any)
	if g == nil {
		t.Fatalf("a group request's view has no group: %s", raw)
	}
	return g
}

// approverList is the approvers a device is shown, from "Name:status" ("+you" for its user's).
func approverList(names ...string) []any {
	out := make([]any, 0, len(names))
	for _, n := range names {
		name, status, _ := strings.Cut(n, ":")
		status, you := strings.CutSuffix(status, "+you")
		out = append(out, map[string]any{"name": name, "status": status, "you": you})
	}
	return out
}

func TestApprovalGroupOnApproversDevices(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	tm := newGroupTeam(s)
	// Another group, of other people with other names: Ana's devices learn nothing of it.
	createGroup(t, s, map[string]any{"message": "Rotate the keys", "approvers": []any{
		map[string]any{"authy_id": tm.cy, "name": "Cyrus"}, map[string]any{"authy_id": tm.dan, "name": "Danielle"}},
		"requester_name": "Evelyn"})
	secrets := []string{"Cyrus", "Danielle", "Evelyn", "T-1", "Rotate the keys"}

	events, closeStream := tm.ana1.stream(t, s, "")
	defer closeStream()

	g := createGroup(t, s, map[string]any{
		"message": "Pay 10,000 EUR to ACME", "details": map[string]string{"Amount": "10,000 EUR"},
		"hidden_details": map[string]string{"ref": "T-1"}, "quorum": 2, "requester_id": tm.dan, "requester_name": "Dan",
		"approvers": []any{map[string]any{"authy_id": tm.ana, "name": "Ana"}, map[string]any{"authy_id": tm.bob, "name": "Bob"}, tm.cy},
	})
	anaReq := groupMember(t, g, tm.ana)
	want := map[string]any{"status": "pending", "quorum": float64(2), "size": float64(3), "approvals": float64(0), "denials": float64(0),
		"requester_name": "Dan", "approvers": approverList("Ana:pending+you", "Bob:pending", "Approver 3:pending")}

	// The request arrives live with its group.
	ev := nextEvent(t, events)
	if ev.event != "approval_request" || ev.data["uuid"] != anaReq {
		t.Fatalf("Ana's first event: %+v", ev)
	}
	if diff := cmp.Diff(want, deviceGroup(t, ev.data, secrets...)); diff != "" {
		t.Errorf("the group on Ana's stream (-want +got):\n%s", diff)
	}
	// The list and the request itself say the same.
	list := tm.ana1.call(s, "GET", "/device/v1/approval_requests?status=pending", nil)
	views := list.body["approval_requests"].([]any)
	if len(views) != 1 {
		t.Fatalf("Ana's pending requests: %s", list.raw)
	}
	if diff := cmp.Diff(want, deviceGroup(t, views[0].(map[string]any), secrets...)); diff != "" {
		t.Errorf("the group in Ana's list (-want +got):\n%s", diff)
	}
	one := tm.ana2.call(s, "GET", "/device/v1/approval_requests/"+anaReq, nil)
	if diff := cmp.Diff(want, deviceGroup(t, one.body["approval_request"].(map[string]any), secrets...)); diff != "" {
		t.Errorf("the group of Ana's request (-want +got):\n%s", diff)
	}
	// Cy, whom the application did not name, sees himself as the third approver.
	cy := tm.cyP.call(s, "GET", "/device/v1/approval_requests/"+groupMember(t, g, tm.cy), nil)
	cyWant := map[string]any{}
	for k, v := range want {
		cyWant[k] = v
	}
	cyWant["approvers"] = approverList("Ana:pending", "Bob:pending", "Approver 3:pending+you")
	if diff := cmp.Diff(cyWant, deviceGroup(t, cy.body["approval_request"].(map[string]any), secrets...)); diff != "" {
		t.Errorf("the group of Cy's request (-want +got):\n%s", diff)
	}

	// Bob approves: Ana's stream tells her at once, her request still pending.
	if r := tm.bobP.answer(s, groupMember(t, g, tm.bob), "approved", "", ""); r.status != 200 {
		t.Fatalf("Bob's approval: %s", r.raw)
	} else {
		got := deviceGroup(t, r.body["approval_request"].(map[string]any), secrets...)
		if got["approvals"] != float64(1) || got["status"] != "pending" {
			t.Errorf("the group in Bob's answer: %v", got)
		}
	}
	ev = nextEvent(t, events)
	want["approvals"] = float64(1)
	want["approvers"] = approverList("Ana:pending+you", "Bob:approved", "Approver 3:pending")
	if ev.event != "approval_request_update" || ev.data["uuid"] != anaReq || ev.data["status"] != "pending" {
		t.Fatalf("Ana's event after Bob approved: %+v", ev)
	}
	if diff := cmp.Diff(want, deviceGroup(t, ev.data, secrets...)); diff != "" {
		t.Errorf("the group on Ana's stream after Bob approved (-want +got):\n%s", diff)
	}

	// Cy's approval decides the group: Ana's request is closed by it, and says so.
	if r := tm.cyP.answer(s, groupMember(t, g, tm.cy), "approved", "", ""); r.status != 200 {
		t.Fatalf("Cy's approval: %s", r.raw)
	}
	ev = nextEvent(t, events)
	if ev.event != "approval_request_update" || ev.data["uuid"] != anaReq || ev.data["status"] != "expired" || ev.data["reason"] != "group decided" {
		t.Fatalf("Ana's event after the group was decided: %+v", ev)
	}
	want["status"], want["approvals"] = "approved", float64(2)
	want["approvers"] = approverList("Ana:expired+you", "Bob:approved", "Approver 3:approved")
	if diff := cmp.Diff(want, deviceGroup(t, ev.data, secrets...)); diff != "" {
		t.Errorf("the group on Ana's stream once decided (-want +got):\n%s", diff)
	}

	// A group the application closes: the request says "closed", and so does its group.
	off := createGroup(t, s, map[string]any{"message": "Raise a limit", "approvers": []any{tm.ana, tm.bob}, "quorum": 1})
	if ev := nextEvent(t, events); ev.event != "approval_request" || ev.data["uuid"] != groupMember(t, off, tm.ana) {
		t.Fatalf("Ana's event for the second group: %+v", ev)
	}
	if r := s.do("POST", "/onetouch/json/approval_groups/"+off["uuid"].(string)+"/close", s.key, nil); r.status != 200 {
		t.Fatalf("close: %s", r.raw)
	}
	ev = nextEvent(t, events)
	got := deviceGroup(t, ev.data, secrets...)
	if ev.data["status"] != "expired" || ev.data["reason"] != "closed" || got["status"] != "expired" || got["reason"] != "closed" {
		t.Fatalf("Ana's event after the group was closed: %+v", ev)
	}

	// An ordinary request has no group.
	plain := s.createRequest(s.key, tm.ana, map[string][]string{"message": {"Sign in"}})
	if ev := nextEvent(t, events); ev.data["uuid"] != plain || ev.data["group"] != nil {
		t.Fatalf("an ordinary request's event: %+v", ev)
	}
}
