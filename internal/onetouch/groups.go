package onetouch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

// Approvals by several people (issue 19): an application asks several of its users to approve
// one thing, with a quorum ("any 2 of these 3", "all of these"). Each approver gets an ordinary
// approval request on their own devices (so every device, push channel and authenticator works
// unchanged), and the group is decided once, in the store, by the answers as they arrive: one
// request per person, so two devices of one approver are one answer.

// GroupStore is what approval groups need from persistence, beside Store.
type GroupStore interface {
	// CreateApprovalGroup appends the audit entries in the group's transaction.
	CreateApprovalGroup(ctx context.Context, g *twofold.ApprovalGroup, members []*twofold.ApprovalRequest, maxPending int, audit ...twofold.AuditEntry) error
	GetApprovalGroup(ctx context.Context, appID int64, uuid string) (twofold.ApprovalGroup, []twofold.ApprovalRequest, error)
	GetApprovalGroupByID(ctx context.Context, appID, id int64) (twofold.ApprovalGroup, []twofold.ApprovalRequest, error)
	ListApprovalGroups(ctx context.Context, appID, beforeID int64, limit int) ([]twofold.ApprovalGroup, error)
	// FinishGroupMember and EndApprovalGroup append the entries audit makes (when not nil) in the
	// change's transaction when it wins, from the group as it left it.
	FinishGroupMember(ctx context.Context, r twofold.ApprovalRequest, cb twofold.GroupCallback, audit twofold.GroupAudit) (bool, twofold.ApprovalGroup, error)
	EndApprovalGroup(ctx context.Context, appID, id int64, reason string, at time.Time, cb twofold.GroupCallback, audit twofold.GroupAudit) (bool, twofold.ApprovalGroup, error)
	DueGroupExpiries(ctx context.Context, now time.Time, limit int) ([]twofold.ApprovalGroup, error)
}

// Approver is a user asked to approve, as the application names them.
type Approver struct {
	UserID int64  // the user's authy_id
	Name   string // shown to the other approvers ("approved by Ana"); "" for none
}

// GroupParams are the parameters of POST approval_groups. Number matching is not offered: an
// approver is not at a sign-in page showing a number.
type GroupParams struct {
	Message         string
	Details         map[string]string
	HiddenDetails   map[string]string
	Logos           []twofold.Logo
	SecondsToExpire *int64 // nil: the default; 0: never
	Approvers       []Approver
	Quorum          int      // approvals needed; 0: every approver's
	Requester       Approver // who asks, shown to the approvers; UserID 0 when not a user
	// ExcludeRequester leaves the requester out of the approvers even when listed (separation of
	// duties: "any 2 of the finance team, but not the one who asked").
	ExcludeRequester bool
}

// Limits of a group.
const (
	MaxApprovers    = 20
	MaxApproverName = 60 // characters
)

// GroupDecision is a group and its members' requests, in the order they were made.
type GroupDecision struct {
	Group   twofold.ApprovalGroup
	Members []twofold.ApprovalRequest
}

// CreateGroup asks each approver for their approval through a request of their own. The
// approvers must be distinct users of the application, each with a registered device (except in
// a sandbox application); the quorum is 1 to the number of approvers. The group and every
// request are made together or not at all.
func (s *Service) CreateGroup(ctx context.Context, app twofold.App, p GroupParams) (GroupDecision, error) {
	if err := s.validate(CreateParams{Message: p.Message, Details: p.Details, HiddenDetails: p.HiddenDetails, Logos: p.Logos,
		SecondsToExpire: p.SecondsToExpire}); err != nil {
		return GroupDecision{}, err
	}
	approvers, pushable, err := s.approvers(ctx, app, p)
	if err != nil {
		return GroupDecision{}, err
	}
	quorum := p.Quorum
	if quorum == 0 {
		quorum = len(approvers)
	}
	if quorum < 1 || quorum > len(approvers) {
		return GroupDecision{}, twofold.ErrInvalidParam("quorum", fmt.Sprintf("must be 1 to the number of approvers (%d)", len(approvers)))
	}
	now := s.now().UTC()
	ttl := int64(s.cfg.DefaultTTL / time.Second)
	if p.SecondsToExpire != nil {
		ttl = *p.SecondsToExpire
	}
	g := twofold.ApprovalGroup{UUID: newUUID(), AppID: app.ID, Quorum: quorum, Message: p.Message, CreatedAt: now,
		RequesterID: p.Requester.UserID, RequesterName: p.Requester.Name}
	if ttl > 0 {
		g.ExpiresAt = now.Add(time.Duration(ttl) * time.Second)
	}
	members := make([]*twofold.ApprovalRequest, len(approvers))
	off := false // no one is at a sign-in page showing a number
	for i, a := range approvers {
		r, err := s.Prepare(app, a.UserID, CreateParams{Message: p.Message, Details: p.Details, HiddenDetails: p.HiddenDetails,
			Logos: p.Logos, SecondsToExpire: &ttl, NumberMatching: &off})
		if err != nil {
			return GroupDecision{}, err
		}
		r.CreatedAt, r.UpdatedAt, r.ExpiresAt, r.ApproverName = now, now, g.ExpiresAt, a.Name
		members[i] = &r
	}
	created := s.entries(ctx, twofold.AuditEvent{Action: twofold.AuditApprovalGroupCreated, AppID: app.ID, UserID: g.RequesterID,
		Details: map[string]string{"uuid": g.UUID, "quorum": strconv.Itoa(g.Quorum), "size": strconv.Itoa(len(members))}})
	if err := s.store.CreateApprovalGroup(ctx, &g, members, s.cfg.MaxPending, created...); err != nil {
		switch {
		case errors.Is(err, twofold.ErrTooMany):
			return GroupDecision{}, twofold.ErrLimit(fmt.Sprintf("an approver already has %d pending approval requests", s.cfg.MaxPending), time.Minute)
		case errors.Is(err, twofold.ErrNotFound): // a user deleted since it was looked up
			return GroupDecision{}, twofold.ErrUserNotFound()
		}
		return GroupDecision{}, err
	}
	out := GroupDecision{Group: g, Members: make([]twofold.ApprovalRequest, len(members))}
	for i, r := range members {
		out.Members[i] = *r
		s.announce(*r, pushable[r.UserID])
	}
	return out, nil
}

// approvers checks p's approvers and returns them, less the requester when excluded, with the
// approvers (by user id) who have a device with a push subscription.
func (s *Service) approvers(ctx context.Context, app twofold.App, p GroupParams) ([]Approver, map[int64]bool, error) {
	if err := checkName("requester_name", p.Requester.Name); err != nil {
		return nil, nil, err
	}
	if p.Requester.UserID < 0 {
		return nil, nil, twofold.ErrInvalidParam("requester_id", "must be a user's authy_id")
	}
	if p.ExcludeRequester && p.Requester.UserID == 0 {
		return nil, nil, twofold.ErrInvalidParam("exclude_requester", "needs requester_id: the user to leave out")
	}
	var out []Approver
	seen := map[int64]bool{}
	for _, a := range p.Approvers {
		if a.UserID <= 0 {
			return nil, nil, twofold.ErrInvalidParam("approvers", "each approver must be a user's authy_id")
		}
		if seen[a.UserID] {
			return nil, nil, twofold.ErrInvalidParam("approvers", fmt.Sprintf("lists user %d twice: each person is one approver", a.UserID))
		}
		seen[a.UserID] = true
		if err := checkName("approvers", a.Name); err != nil {
			return nil, nil, err
		}
		if p.ExcludeRequester && a.UserID == p.Requester.UserID {
			continue
		}
		out = append(out, a)
	}
	switch {
	case len(p.Approvers) == 0:
		return nil, nil, twofold.ErrInvalidParam("approvers", "Parameter is required: the users asked to approve")
	case len(p.Approvers) > MaxApprovers:
		return nil, nil, twofold.ErrInvalidParam("approvers", fmt.Sprintf("must be at most %d users", MaxApprovers))
	case len(out) == 0:
		return nil, nil, twofold.ErrInvalidParam("approvers", "lists no one but the requester, who is excluded")
	}
	pushable := map[int64]bool{}
	for _, a := range out {
		hasDevice, hasPush, err := s.store.UserReach(ctx, app.ID, a.UserID)
		if errors.Is(err, twofold.ErrNotFound) {
			return nil, nil, &twofold.Error{Code: twofold.CodeUserNotFound, Message: fmt.Sprintf("User not found: approver %d is not a user of this application.", a.UserID)}
		}
		if err != nil {
			return nil, nil, err
		}
		if !hasDevice && !app.Sandbox {
			return nil, nil, twofold.Errorf(twofold.CodeUnregisteredUser, "Approver %d has no registered device for OneTouch.", a.UserID)
		}
		pushable[a.UserID] = hasPush
	}
	return out, pushable, nil
}

func checkName(param, name string) error {
	if len([]rune(name)) > MaxApproverName || strings.TrimSpace(name) != name {
		return twofold.ErrInvalidParam(param, fmt.Sprintf("names must be at most %d characters, without spaces around them", MaxApproverName))
	}
	return nil
}

// Group returns the application's group, expiring it first if its time has passed.
func (s *Service) Group(ctx context.Context, app twofold.App, uuid string) (GroupDecision, error) {
	g, members, err := s.store.GetApprovalGroup(ctx, app.ID, uuid)
	if errors.Is(err, twofold.ErrNotFound) {
		return GroupDecision{}, &twofold.Error{Code: twofold.CodeRequestNotFound, Message: "Approval group not found: " + wiretext.Clip(uuid)}
	}
	if err != nil {
		return GroupDecision{}, err
	}
	if g.Status == twofold.Pending && !g.ExpiresAt.IsZero() && !s.now().Before(g.ExpiresAt) {
		if err := s.endGroup(ctx, app, g, ""); err != nil {
			return GroupDecision{}, err
		}
		if g, members, err = s.store.GetApprovalGroup(ctx, app.ID, uuid); err != nil {
			return GroupDecision{}, err
		}
	}
	return GroupDecision{g, members}, nil
}

// GroupOf returns the group a member's request r asks for, as it stands: what the member's
// devices show beside the request ("2 of 3 needed; approved by Ana").
func (s *Service) GroupOf(ctx context.Context, r twofold.ApprovalRequest) (GroupDecision, error) {
	g, members, err := s.store.GetApprovalGroupByID(ctx, r.AppID, r.GroupID)
	if err != nil {
		return GroupDecision{}, fmt.Errorf("the group of request %s: %w", r.UUID, err)
	}
	return GroupDecision{g, members}, nil
}

// Groups lists the application's groups with ids below beforeID (0: the newest), newest first,
// with their members.
func (s *Service) Groups(ctx context.Context, app twofold.App, beforeID int64, limit int) ([]GroupDecision, error) {
	list, err := s.store.ListApprovalGroups(ctx, app.ID, beforeID, limit)
	if err != nil {
		return nil, err
	}
	out := make([]GroupDecision, 0, len(list))
	for _, g := range list {
		g, members, err := s.store.GetApprovalGroupByID(ctx, app.ID, g.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, GroupDecision{g, members})
	}
	return out, nil
}

// ClosedGroupReason is the reason of a group its application closed, and of its members'
// requests closed with it.
const ClosedGroupReason = ClosedReason

// CloseGroup ends the application's pending group before its time (the action was called off):
// it becomes expired with the reason "closed", and its members' pending requests are closed, so
// their devices drop them. As Close, it is idempotent, sends no callback (the application did
// it), and refuses a group already approved or denied (60079).
func (s *Service) CloseGroup(ctx context.Context, app twofold.App, uuid string) (GroupDecision, error) {
	d, err := s.Group(ctx, app, uuid) // expires it first if its time has passed
	if err != nil {
		return GroupDecision{}, err
	}
	if d.Group.Status == twofold.Pending {
		if err := s.endGroup(ctx, app, d.Group, ClosedGroupReason); err != nil {
			return GroupDecision{}, err
		}
		if d, err = s.Group(ctx, app, uuid); err != nil {
			return GroupDecision{}, err
		}
	}
	if d.Group.Status != twofold.Expired {
		return d, twofold.Errorf(twofold.CodeNotPending, "Approval group was already decided: it is %s.", d.Group.Status)
	}
	return d, nil
}

// endGroup ends a pending group: closed (reason "closed") or, when reason is "", expired if its
// time has passed. The decision is recorded in the audit trail with it, once, and its members'
// devices are woken.
func (s *Service) endGroup(ctx context.Context, app twofold.App, g twofold.ApprovalGroup, reason string) error {
	var queued bool
	var members []twofold.ApprovalRequest
	cb := func(g twofold.ApprovalGroup, m []twofold.ApprovalRequest) (*twofold.Callback, error) {
		members, queued = m, false
		c, err := s.groupCallback(app, g, m)
		queued = c != nil
		return c, err
	}
	var audit twofold.GroupAudit
	if s.audit != nil {
		audit = func(g twofold.ApprovalGroup) []twofold.AuditEntry { return s.entries(ctx, groupDecidedEvent(g)) }
	}
	won, g, err := s.store.EndApprovalGroup(ctx, app.ID, g.ID, reason, s.now().UTC(), cb, audit)
	if err != nil || !won {
		return err
	}
	s.groupDecided(g, members, queued)
	return nil
}

// finishMember is finish for a member's request: the store counts the answer and decides the
// group in the same transaction, which appends the answer's audit entry (by's, when not nil) and
// the group's decision when the answer made it. It reports whether the answer won, the group as
// it left it, and whether this answer decided it.
func (s *Service) finishMember(ctx context.Context, app twofold.App, r twofold.ApprovalRequest, by *answerer) (outcome, error) {
	var queued bool
	var members []twofold.ApprovalRequest
	cb := func(g twofold.ApprovalGroup, m []twofold.ApprovalRequest) (*twofold.Callback, error) {
		members, queued = m, false // the transaction may run again
		c, err := s.groupCallback(app, g, m)
		queued = c != nil
		return c, err
	}
	var audit twofold.GroupAudit
	if s.audit != nil {
		audit = func(g twofold.ApprovalGroup) []twofold.AuditEntry {
			entries := s.answerEntries(ctx, r, by, g.UUID)
			if g.Status != twofold.Pending { // this answer decided the group
				entries = append(entries, s.entries(ctx, groupDecidedEvent(g))...)
			}
			return entries
		}
	}
	won, g, err := s.store.FinishGroupMember(ctx, r, cb, audit)
	if err != nil || !won {
		return outcome{group: g}, err
	}
	s.hooks.Changed(r.AppID, r.UserID)
	if g.Status == twofold.Pending {
		s.wakeMembers(ctx, r)
	}
	// A winning answer that leaves the group decided decided it (cb ran then).
	return outcome{won: true, group: g, decided: g.Status != twofold.Pending, members: members, queued: queued}, nil
}

// wakeMembers wakes the devices of the other members of r's group after r's answer left the
// group pending: their requests did not change, but what they show of the group did ("approved
// by Bob"). A decision wakes them through groupDecided. The answer stands whatever happens
// here, so a failed read only makes the others' devices learn of it on their next look.
func (s *Service) wakeMembers(ctx context.Context, r twofold.ApprovalRequest) {
	_, members, err := s.store.GetApprovalGroupByID(ctx, r.AppID, r.GroupID)
	if err != nil {
		return
	}
	for _, m := range members {
		if m.UserID != r.UserID {
			s.hooks.Changed(m.AppID, m.UserID)
		}
	}
}

// groupDecided tells the members' devices that the group was decided (their requests closed)
// and wakes the callback dispatcher. The decision's audit entry (groupDecidedEvent) was appended
// in the transaction that made it.
func (s *Service) groupDecided(g twofold.ApprovalGroup, members []twofold.ApprovalRequest, queued bool) {
	if queued {
		s.hooks.CallbackQueued()
	}
	for _, m := range members {
		s.hooks.Changed(m.AppID, m.UserID)
	}
}

// groupDecidedEvent is the audit event of group g's decision, as the deciding change left it.
func groupDecidedEvent(g twofold.ApprovalGroup) twofold.AuditEvent {
	details := map[string]string{"uuid": g.UUID, "status": string(g.Status), "approvals": strconv.Itoa(g.Approvals),
		"denials": strconv.Itoa(g.Denials), "quorum": strconv.Itoa(g.Quorum)}
	if g.Reason != "" {
		details["reason"] = g.Reason
	}
	return twofold.AuditEvent{Action: twofold.AuditApprovalGroupDecided, AppID: g.AppID, Details: details}
}

// groupCallback is the callback of a decided group, when the application wants it: not for a
// group it closed itself, nor for an expired one unless it asked for expiries.
func (s *Service) groupCallback(app twofold.App, g twofold.ApprovalGroup, members []twofold.ApprovalRequest) (*twofold.Callback, error) {
	if app.CallbackURL == "" || g.Reason == ClosedGroupReason || (g.Status == twofold.Expired && !app.CallbackExpired) {
		return nil, nil
	}
	payload, err := GroupCallbackPayload(app, g, members)
	if err != nil {
		return nil, err
	}
	return &twofold.Callback{AppID: app.ID, RequestUUID: g.UUID, Payload: payload}, nil
}

// ExpireDueGroups ends pending groups whose time has passed and whose members' requests did not
// (the background sweep; a member's expiry usually decides its group first), up to 1000 a call.
func (s *Service) ExpireDueGroups(ctx context.Context) (int, error) {
	due, err := s.store.DueGroupExpiries(ctx, s.now().UTC(), 1000)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, g := range due {
		app, err := s.store.GetApp(ctx, g.AppID)
		if err != nil {
			return n, err
		}
		if err := s.endGroup(ctx, app, g, ""); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
