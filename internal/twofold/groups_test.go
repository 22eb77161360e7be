package twofold

import (
	"testing"
	"time"
)

func TestGroupDecide(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		quorum, size, approvals, denials int
		expires                          time.Time
		want                             ApprovalStatus
	}{
		{2, 3, 0, 0, time.Time{}, Pending},
		{2, 3, 1, 1, time.Time{}, Pending},  // one more approval would still do
		{2, 3, 2, 0, time.Time{}, Approved}, // 2 of 3
		{2, 3, 2, 1, time.Time{}, Approved}, // a denial does not undo a reached quorum
		{2, 3, 0, 2, time.Time{}, Denied},   // one left cannot make two
		{3, 3, 2, 1, time.Time{}, Denied},   // all needed, one denied
		{1, 1, 0, 0, now, Expired},          // its time has passed
		{1, 1, 0, 0, now.Add(time.Second), Pending},
		{2, 2, 2, 0, now.Add(-time.Hour), Approved}, // counts decide before time
	} {
		g := ApprovalGroup{Quorum: tc.quorum, Size: tc.size, Approvals: tc.approvals, Denials: tc.denials, ExpiresAt: tc.expires}
		if got := g.Decide(now); got != tc.want {
			t.Errorf("%d of %d, %d approved, %d denied, expires %v: %s, want %s", tc.quorum, tc.size, tc.approvals, tc.denials, tc.expires, got, tc.want)
		}
	}
}
