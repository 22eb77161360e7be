package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Approval groups' part of runConformance: one group, several members' requests, one decision
// however the answers arrive, and one callback.

// mkGroup makes a group of quorum over n new users of app, expiring after ttl.
func mkGroup(t *testing.T, s *Store, app twofold.App, quorum, n int, ttl time.Duration) (twofold.ApprovalGroup, []twofold.ApprovalRequest) {
	t.Helper()
	g := twofold.ApprovalGroup{UUID: fmt.Sprintf("group-%d", reqSeq.Add(1)), AppID: app.ID, Quorum: quorum, Message: "Pay 10,000 EUR?",
		CreatedAt: t0, ExpiresAt: t0.Add(ttl), RequesterID: 999, RequesterName: "Bob"}
	var members []*twofold.ApprovalRequest
	for range n {
		u := mkUser(t, s, app.ID, 1, fmt.Sprintf("2015%06d", reqSeq.Add(1)%1000000))
		r := newRequest(u, t0, ttl)
		r.ApproverName = fmt.Sprintf("Approver %d", len(members)+1)
		members = append(members, &r)
	}
	must(t, s.CreateApprovalGroup(t.Context(), &g, members, 5))
	out := make([]twofold.ApprovalRequest, n)
	for i, r := range members {
		out[i] = *r
	}
	return g, out
}

// answer records a member's answer through FinishGroupMember, counting the callbacks made.
func answer(t *testing.T, s *Store, r twofold.ApprovalRequest, st twofold.ApprovalStatus, at time.Time, callbacks *int) (bool, twofold.ApprovalGroup) {
	t.Helper()
	r.Status, r.ProcessedAt, r.UpdatedAt = st, at, at
	won, g, err := s.FinishGroupMember(t.Context(), r, groupCallback(callbacks), nil)
	if err != nil {
		t.Fatal(err)
	}
	return won, g
}

// groupCallback is a group's callback that says its status and number of members, counting
// the callbacks made.
func groupCallback(callbacks *int) twofold.GroupCallback {
	return func(g twofold.ApprovalGroup, members []twofold.ApprovalRequest) (*twofold.Callback, error) {
		if callbacks != nil {
			*callbacks++
		}
		return &twofold.Callback{AppID: g.AppID, RequestUUID: g.UUID, Payload: []byte(fmt.Sprintf(`{"status":%q,"members":%d}`, g.Status, len(members)))}, nil
	}
}

// memberAudit is a GroupAudit for member r's answer, as the service makes it: the answer's
// entry, and the group's decision when the answer made it. It counts its calls.
func memberAudit(r twofold.ApprovalRequest, calls *atomic.Int32) twofold.GroupAudit {
	return func(g twofold.ApprovalGroup) []twofold.AuditEntry {
		calls.Add(1)
		out := []twofold.AuditEntry{testEntry(twofold.AuditApprovalApproved, r.AppID, r.UserID,
			map[string]string{"uuid": r.UUID, "group": g.UUID})}
		if g.Status != twofold.Pending {
			out = append(out, groupDecidedEntry(g))
		}
		return out
	}
}

// groupDecidedEntry is the entry of group g's decision, with what the deciding change left.
func groupDecidedEntry(g twofold.ApprovalGroup) twofold.AuditEntry {
	return testEntry(twofold.AuditApprovalGroupDecided, g.AppID, 0, map[string]string{"uuid": g.UUID, "status": string(g.Status),
		"approvals": fmt.Sprint(g.Approvals), "denials": fmt.Sprint(g.Denials), "reason": g.Reason})
}

func testGroups(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("QuorumReached", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "bank")
		g, m := mkGroup(t, s, app, 2, 3, time.Hour)
		got, members, err := s.GetApprovalGroup(ctx, app.ID, g.UUID)
		must(t, err)
		if got.Status != twofold.Pending || got.Size != 3 || len(members) != 3 || members[0].GroupID != g.ID || members[2].UserID != m[2].UserID ||
			got.RequesterID != 999 || got.RequesterName != "Bob" || members[1].ApproverName != "Approver 2" {
			t.Fatalf("group %+v, members %+v", got, members)
		}
		if byID, _, err := s.GetApprovalGroupByID(ctx, app.ID, g.ID); err != nil || byID.UUID != g.UUID {
			t.Fatalf("by id: %+v %v", byID, err)
		}
		if _, _, err := s.GetApprovalGroupByID(ctx, app.ID+1, g.ID); !errors.Is(err, twofold.ErrNotFound) {
			t.Fatalf("by id in another application: %v", err)
		}
		var callbacks int
		if won, g1 := answer(t, s, m[0], twofold.Approved, t0.Add(time.Minute), &callbacks); !won || g1.Status != twofold.Pending || g1.Approvals != 1 {
			t.Fatalf("first approval: %v %+v", won, g1)
		}
		won, g2 := answer(t, s, m[1], twofold.Approved, t0.Add(2*time.Minute), &callbacks)
		if !won || g2.Status != twofold.Approved || g2.Approvals != 2 || !g2.DecidedAt.Equal(t0.Add(2*time.Minute)) || callbacks != 1 {
			t.Fatalf("second approval: %v %+v, %d callbacks", won, g2, callbacks)
		}
		// The third member's request is closed, and its late answer is refused.
		third := getRequest(t, s, m[2])
		if third.Status != twofold.Expired || third.Reason != GroupDecidedReason {
			t.Fatalf("the third member's request after the decision: %+v", third)
		}
		if won, g3 := answer(t, s, m[2], twofold.Denied, t0.Add(3*time.Minute), &callbacks); won || g3.Status != twofold.Approved || callbacks != 1 {
			t.Fatalf("a late answer: %v %+v", won, g3)
		}
		var n int
		must(t, s.r.QueryRowContext(ctx, `SELECT count(*) FROM callbacks WHERE request_uuid = $1`, g.UUID).Scan(&n))
		if n != 1 {
			t.Fatalf("%d callbacks for the group, want 1", n)
		}
	})

	t.Run("DeniedWhenTheQuorumCannotBeReached", func(t *testing.T) {
		s := open(t)
		app := mkApp(t, s, "bank")
		_, m := mkGroup(t, s, app, 2, 3, time.Hour)
		answer(t, s, m[0], twofold.Approved, t0.Add(time.Minute), nil)
		if _, g := answer(t, s, m[1], twofold.Denied, t0.Add(time.Minute), nil); g.Status != twofold.Pending {
			t.Fatalf("one denial of 3 for 2 needed: %+v", g)
		}
		if _, g := answer(t, s, m[2], twofold.Denied, t0.Add(time.Minute), nil); g.Status != twofold.Denied {
			t.Fatalf("two denials of 3 for 2 needed: %+v", g)
		}
	})

	t.Run("Expires", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "bank")
		g, m := mkGroup(t, s, app, 1, 2, time.Minute)
		if due, _ := s.DueGroupExpiries(ctx, t0.Add(time.Minute), 10); len(due) != 1 || due[0].ID != g.ID {
			t.Fatalf("due expiries: %+v", due)
		}
		// An approval after its time does not count; its expiry expires the group.
		if won, _ := answer(t, s, m[0], twofold.Approved, t0.Add(time.Minute), nil); won {
			t.Fatal("an approval after the group's time won")
		}
		if won, g := answer(t, s, m[0], twofold.Expired, t0.Add(time.Minute), nil); !won || g.Status != twofold.Expired {
			t.Fatalf("the member's expiry: %v %+v", won, g)
		}
		if r := getRequest(t, s, m[1]); r.Status != twofold.Expired {
			t.Fatalf("the other member after the group expired: %+v", r)
		}
	})

	// A group the application closes, or whose time passes with no member's request left to
	// expire it, is ended once, with its members' requests.
	t.Run("End", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "bank")
		g, m := mkGroup(t, s, app, 2, 2, time.Hour)
		var callbacks int
		cb := func(g twofold.ApprovalGroup, members []twofold.ApprovalRequest) (*twofold.Callback, error) {
			callbacks++
			return &twofold.Callback{AppID: g.AppID, RequestUUID: g.UUID, Payload: []byte(`{}`)}, nil
		}
		if won, _, err := s.EndApprovalGroup(ctx, app.ID, g.ID, "", t0.Add(time.Minute), cb, nil); err != nil || won {
			t.Fatalf("an expiry before the group's time: %v %v", won, err)
		}
		if won, _, err := s.EndApprovalGroup(ctx, app.ID+1, g.ID, "closed", t0.Add(time.Minute), nil, nil); !errors.Is(err, twofold.ErrNotFound) || won {
			t.Fatalf("another application closed the group: %v %v", won, err)
		}
		answer(t, s, m[0], twofold.Approved, t0.Add(time.Minute), nil)
		won, ended, err := s.EndApprovalGroup(ctx, app.ID, g.ID, "closed", t0.Add(2*time.Minute), nil, nil)
		if err != nil || !won || ended.Status != twofold.Expired || ended.Reason != "closed" || !ended.DecidedAt.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("closed: %v %+v %v", won, ended, err)
		}
		if r := getRequest(t, s, m[1]); r.Status != twofold.Expired || r.Reason != "closed" {
			t.Fatalf("the pending member after the close: %+v", r)
		}
		if r := getRequest(t, s, m[0]); r.Status != twofold.Approved {
			t.Fatalf("the member who had approved: %+v", r)
		}
		if won, _, _ := s.EndApprovalGroup(ctx, app.ID, g.ID, "closed", t0.Add(3*time.Minute), nil, nil); won {
			t.Fatal("closed twice")
		}

		g2, m2 := mkGroup(t, s, app, 1, 2, time.Hour)
		must(t, s.DeleteUser(ctx, app.ID, m2[0].UserID))
		must(t, s.DeleteUser(ctx, app.ID, m2[1].UserID))
		won, ended, err = s.EndApprovalGroup(ctx, app.ID, g2.ID, "", t0.Add(time.Hour), cb, nil)
		if err != nil || !won || ended.Status != twofold.Expired || ended.Reason != "" || callbacks != 1 {
			t.Fatalf("due expiry of a group without members: %v %+v %v, %d callbacks", won, ended, err, callbacks)
		}
		list, err := s.ListApprovalGroups(ctx, app.ID, 0, 10)
		must(t, err)
		if len(list) != 2 || list[0].ID != g2.ID || list[1].ID != g.ID {
			t.Fatalf("list: %+v", list)
		}
		if list, _ := s.ListApprovalGroups(ctx, app.ID, g2.ID, 10); len(list) != 1 || list[0].ID != g.ID {
			t.Fatalf("list before the newest: %+v", list)
		}
		if list, _ := s.ListApprovalGroups(ctx, app.ID+1, 0, 10); len(list) != 0 {
			t.Fatalf("another application's list: %+v", list)
		}
	})

	t.Run("AllOrNothing", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app, other := mkApp(t, s, "bank"), mkApp(t, s, "other")
		u := mkUser(t, s, app.ID, 1, "2015550100")
		stranger := mkUser(t, s, other.ID, 1, "2015550199")
		r1, r2 := newRequest(u, t0, time.Hour), newRequest(stranger, t0, time.Hour)
		r2.AppID = app.ID // another application's user, named in this one
		g := twofold.ApprovalGroup{UUID: "g-stranger", AppID: app.ID, Quorum: 1, Message: "x", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := s.CreateApprovalGroup(ctx, &g, []*twofold.ApprovalRequest{&r1, &r2}, 5); !errors.Is(err, twofold.ErrNotFound) {
			t.Fatalf("a member of another application: %v", err)
		}
		if _, _, err := s.GetApprovalGroup(ctx, app.ID, "g-stranger"); !errors.Is(err, twofold.ErrNotFound) {
			t.Fatalf("the refused group was kept: %v", err)
		}
		if list, _ := s.ListApprovalRequests(ctx, app.ID, u.ID, "", 10); len(list) != 0 {
			t.Fatalf("the refused group's requests were kept: %+v", list)
		}
		g2, _ := mkGroup(t, s, app, 1, 1, time.Hour)
		if _, _, err := s.GetApprovalGroup(ctx, other.ID, g2.UUID); !errors.Is(err, twofold.ErrNotFound) {
			t.Fatalf("another application's group: %v", err)
		}
		must(t, s.DeleteApp(ctx, app.ID))
		var n int
		must(t, s.r.QueryRowContext(ctx, `SELECT count(*) FROM approval_groups`).Scan(&n))
		if n != 0 {
			t.Fatalf("%d groups after their application was deleted", n)
		}
	})

	// Every member approves at once: the group is decided once, by exactly the quorum's answers,
	// with one callback; the other answers are refused.
	t.Run("ConcurrentAnswersDecideOnce", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "bank")
		const size = 12
		g, m := mkGroup(t, s, app, 3, size, time.Hour)
		var mu sync.Mutex
		var wins, callbacks int
		var audits atomic.Int32
		var wg sync.WaitGroup
		for _, r := range m {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.Status, r.ProcessedAt, r.UpdatedAt = twofold.Approved, t0.Add(time.Minute), t0.Add(time.Minute)
				won, _, err := s.FinishGroupMember(ctx, r, func(g twofold.ApprovalGroup, members []twofold.ApprovalRequest) (*twofold.Callback, error) {
					mu.Lock()
					callbacks++
					mu.Unlock()
					return &twofold.Callback{AppID: g.AppID, RequestUUID: g.UUID, Payload: []byte(`{}`)}, nil
				}, memberAudit(r, &audits))
				if err != nil {
					t.Error(err)
				}
				if won {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		got, members, err := s.GetApprovalGroup(ctx, app.ID, g.UUID)
		must(t, err)
		var approved, closed int
		for _, r := range members {
			switch {
			case r.Status == twofold.Approved:
				approved++
			case r.Status == twofold.Expired && r.Reason == GroupDecidedReason:
				closed++
			}
		}
		var n int
		must(t, s.r.QueryRowContext(ctx, `SELECT count(*) FROM callbacks WHERE request_uuid = $1`, g.UUID).Scan(&n))
		if got.Status != twofold.Approved || got.Approvals != 3 || wins != 3 || approved != 3 || closed != size-3 || n != 1 {
			t.Fatalf("group %+v: %d answers won, %d approved, %d closed, %d callbacks (%d made)", got, wins, approved, closed, n, callbacks)
		}
		// The answers that won were recorded with the decision the last of them made, and only
		// they: the refused answers appended nothing.
		log := trail(t, s)
		if len(log) != 4 || audits.Load() != 3 || log[3].Action != twofold.AuditApprovalGroupDecided || log[3].Details["approvals"] != "3" {
			t.Fatalf("audit trail %+v (%d entries made); want the 3 answers that won, then the decision", log, audits.Load())
		}
	})

	// A member's answer and the group's end commit with their audit entries, or not at all.
	t.Run("AuditInSameTransaction", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		app := mkApp(t, s, "bank")
		g, m := mkGroup(t, s, app, 2, 3, time.Hour)
		var calls atomic.Int32
		answerAudited := func(r twofold.ApprovalRequest, audit twofold.GroupAudit) (bool, twofold.ApprovalGroup) {
			t.Helper()
			r.Status, r.ProcessedAt, r.UpdatedAt = twofold.Approved, t0.Add(time.Minute), t0.Add(time.Minute)
			return noErr2(s.FinishGroupMember(ctx, r, groupCallback(nil), audit))(t)
		}
		if won, _ := answerAudited(m[0], memberAudit(m[0], &calls)); !won {
			t.Fatal("the first answer lost")
		}
		// The deciding answer, whose entries cannot be appended: the answer, the decision, the
		// other members' closing and the callback are undone with them.
		broken := func(g twofold.ApprovalGroup) []twofold.AuditEntry {
			return append(memberAudit(m[1], &calls)(g), panicking())
		}
		if v := recovered(func() { answerAudited(m[1], broken) }); v == nil {
			t.Fatal("an entry whose chaining panicked did not fail the answer")
		}
		got, members, err := s.GetApprovalGroup(ctx, app.ID, g.UUID)
		must(t, err)
		if got.Status != twofold.Pending || got.Approvals != 1 || members[1].Status != twofold.Pending || members[2].Status != twofold.Pending {
			t.Fatalf("after an answer whose entry failed: group %+v, members %+v; want pending with one approval", got, members)
		}
		same(t, "callbacks after an answer whose entry failed", []twofold.Callback(nil), recentCallbacks(t, s, app.ID))
		if log := trail(t, s); len(log) != 1 {
			t.Fatalf("audit trail %+v after an answer whose entry failed, want the first answer's alone", log)
		}
		won, decided := answerAudited(m[1], memberAudit(m[1], &calls))
		if !won || decided.Status != twofold.Approved {
			t.Fatalf("the deciding answer: %v, group %+v", won, decided)
		}
		calls.Store(0)
		if won, _ := answerAudited(m[2], memberAudit(m[2], &calls)); won || calls.Load() != 0 {
			t.Fatalf("an answer after the decision: won %v, %d entries made", won, calls.Load())
		}
		log := trail(t, s)
		want := []string{twofold.AuditApprovalApproved + " " + m[0].UUID, twofold.AuditApprovalApproved + " " + m[1].UUID,
			twofold.AuditApprovalGroupDecided + " " + g.UUID}
		if len(log) != len(want) {
			t.Fatalf("audit trail %+v, want %q", log, want)
		}
		for i, e := range log {
			if got := e.Action + " " + e.Details["uuid"]; got != want[i] {
				t.Errorf("entry %d: %s, want %s", i, got, want[i])
			}
		}
		if d := log[2].Details; d["status"] != "approved" || d["approvals"] != "2" || log[0].Details["group"] != g.UUID {
			t.Errorf("entries %+v: want the group as the deciding answer left it", log)
		}

		// Ending a group: its decision is appended when the end wins, and only then.
		g2, m2 := mkGroup(t, s, app, 2, 2, time.Hour)
		end := func(audit twofold.GroupAudit) bool {
			t.Helper()
			won, _, err := s.EndApprovalGroup(ctx, app.ID, g2.ID, "closed", t0.Add(2*time.Minute), groupCallback(nil), audit)
			must(t, err)
			return won
		}
		endAudit := func(g twofold.ApprovalGroup) []twofold.AuditEntry { return []twofold.AuditEntry{groupDecidedEntry(g)} }
		if v := recovered(func() {
			end(func(twofold.ApprovalGroup) []twofold.AuditEntry { return []twofold.AuditEntry{panicking()} })
		}); v == nil {
			t.Fatal("an entry whose chaining panicked did not fail the end")
		}
		if got, members, _ := s.GetApprovalGroup(ctx, app.ID, g2.UUID); got.Status != twofold.Pending || members[0].Status != twofold.Pending {
			t.Fatalf("after an end whose entry failed: group %+v, members %+v; want pending", got, members)
		}
		if !end(endAudit) || end(endAudit) {
			t.Fatal("the group was not ended once")
		}
		log = trail(t, s)
		if len(log) != 4 || log[3].Action != twofold.AuditApprovalGroupDecided || log[3].Details["uuid"] != g2.UUID ||
			log[3].Details["reason"] != "closed" || log[3].Details["status"] != "expired" {
			t.Fatalf("audit trail %+v, want the group's end last, once", log)
		}
		if r := getRequest(t, s, m2[0]); r.Status != twofold.Expired {
			t.Fatalf("a member of the ended group: %+v", r)
		}
	})
}
