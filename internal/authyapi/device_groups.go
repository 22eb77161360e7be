package authyapi

import (
	"context"
	"strconv"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// groupView is what an approver's device sees of the group its request belongs to (issue 19),
// so it can say "2 of 3 needed; approved by Bob; asked by Dan". The others are named only as
// the application named them: never by authy id or email, and never with their reasons.
type groupView struct {
	Status        string         `json:"status"`           // the group's: pending, approved, denied or expired
	Reason        string         `json:"reason,omitempty"` // "closed" when the application closed it
	Quorum        int            `json:"quorum"`
	Size          int            `json:"size"`
	Approvals     int            `json:"approvals"`
	Denials       int            `json:"denials"`
	RequesterName string         `json:"requester_name"` // "" when the application named no one
	Approvers     []approverView `json:"approvers"`      // in the order the application listed them
}

// approverView is one member of a group. You marks the device's own user.
type approverView struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	You    bool   `json:"you"`
}

// viewGroup is d as the device of userID sees it.
func viewGroup(d onetouch.GroupDecision, userID int64) *groupView {
	g := d.Group
	v := &groupView{Status: string(g.Status), Reason: g.Reason, Quorum: g.Quorum, Size: g.Size, Approvals: g.Approvals,
		Denials: g.Denials, RequesterName: g.RequesterName, Approvers: make([]approverView, 0, len(d.Members))}
	for i, m := range d.Members {
		name := m.ApproverName
		if name == "" {
			name = "Approver " + strconv.Itoa(i+1)
		}
		v.Approvers = append(v.Approvers, approverView{Name: name, Status: string(m.Status), You: m.UserID == userID})
	}
	return v
}

// groupState is what of a group a device's stream compares to tell that it changed.
type groupState struct {
	status    twofold.ApprovalStatus
	approvals int
	denials   int
}

func (v *groupView) state() groupState {
	if v == nil {
		return groupState{}
	}
	return groupState{twofold.ApprovalStatus(v.Status), v.Approvals, v.Denials}
}

// groupViews reads the groups of a user's requests as they are needed, each group once however
// many requests name it.
type groupViews struct {
	ot   *onetouch.Service
	seen map[int64]*groupView
}

// of is the group r belongs to as r's user sees it; nil for a request of no group.
func (gv *groupViews) of(ctx context.Context, r twofold.ApprovalRequest) (*groupView, error) {
	if r.GroupID == 0 {
		return nil, nil
	}
	if v, ok := gv.seen[r.GroupID]; ok {
		return v, nil
	}
	d, err := gv.ot.GroupOf(ctx, r)
	if err != nil {
		return nil, err
	}
	if gv.seen == nil {
		gv.seen = map[int64]*groupView{}
	}
	v := viewGroup(d, r.UserID)
	gv.seen[r.GroupID] = v
	return v, nil
}

// viewRequests is requests as their user's device sees them, with their groups.
func (a *API) viewRequests(ctx context.Context, list []twofold.ApprovalRequest, appName string) ([]requestView, error) {
	gv := groupViews{ot: a.onetouch}
	views := make([]requestView, 0, len(list))
	for _, r := range list {
		g, err := gv.of(ctx, r)
		if err != nil {
			return nil, err
		}
		views = append(views, viewRequest(r, appName, g))
	}
	return views, nil
}
