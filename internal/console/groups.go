package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

// Approval groups (issue 19): an application's groups, newest first, each with its approvers'
// answers; a group's own page, where an operator can close it while it is pending.

// Groups are an application's approval groups (*onetouch.Service).
type Groups interface {
	Groups(ctx context.Context, app twofold.App, beforeID int64, limit int) ([]onetouch.GroupDecision, error)
	Group(ctx context.Context, app twofold.App, uuid string) (onetouch.GroupDecision, error)
	GroupOf(ctx context.Context, r twofold.ApprovalRequest) (onetouch.GroupDecision, error)
	CloseGroup(ctx context.Context, app twofold.App, uuid string) (onetouch.GroupDecision, error)
}

// groupsPerPage is how many groups a page of the list shows.
const groupsPerPage = 50

// groupRow is a group as the console shows it.
type groupRow struct {
	G         twofold.ApprovalGroup
	State     string  // pending, approved, denied, expired, or closed (expired by the application or an operator)
	Requester userRef // ID 0: not named by a user
	Members   []memberRow
	Details   map[string]string // shown to the approvers (every member's request carries the group's)
	Hidden    map[string]string // hidden_details: the application's, never shown to the approvers
}

// memberRow is one approver's request and their answer.
type memberRow struct {
	R      twofold.ApprovalRequest
	Who    userRef
	Answer string // approved, denied, not answered, or closed
}

// person is someone a group names: as the application named them, with the user.
type person struct {
	Name     string
	Who      userRef
	Approver bool // an approver was a user when asked: without a label now, they were deleted since
}

// Person is the approver, named.
func (m memberRow) Person() person { return person{Name: m.R.ApproverName, Who: m.Who, Approver: true} }

// RequesterPerson is the group's requester, named.
func (g groupRow) RequesterPerson() person { return person{Name: g.G.RequesterName, Who: g.Requester} }

// AnswerClass is the badge class of the answer.
func (m memberRow) AnswerClass() string {
	switch m.Answer {
	case "approved", "denied", "closed":
		return m.Answer
	}
	return "unanswered"
}

// Answered reports whether the approver answered (the request's ProcessedAt is their answer's
// time; a request closed or expired has one too).
func (m memberRow) Answered() bool { return m.Answer == "approved" || m.Answer == "denied" }

// groupState names a group's state: "closed" for a group ended before its time.
func groupState(g twofold.ApprovalGroup) string {
	if g.Status == twofold.Expired && g.Reason == onetouch.ClosedGroupReason {
		return "closed"
	}
	return string(g.Status)
}

// answer names a member's answer. A request closed with its group (when the group was decided,
// or expired) is "not answered"; one the application or an operator closed is "closed".
func answer(r twofold.ApprovalRequest) string {
	switch {
	case r.Status == twofold.Approved || r.Status == twofold.Denied:
		return string(r.Status)
	case r.Status == twofold.Expired && r.Reason == onetouch.ClosedReason:
		return "closed"
	}
	return "not answered"
}

// groupRows describes the groups of application a, naming their requesters and approvers.
func (c *console) groupRows(r *http.Request, a twofold.App, list []onetouch.GroupDecision) ([]groupRow, error) {
	var refs []users.Ref
	for _, d := range list {
		if d.Group.RequesterID != 0 {
			refs = append(refs, users.Ref{AppID: a.ID, ID: d.Group.RequesterID})
		}
		for _, m := range d.Members {
			refs = append(refs, users.Ref{AppID: a.ID, ID: m.UserID})
		}
	}
	var f filters
	if err := c.named(r, &f, refs); err != nil {
		return nil, err
	}
	rows := make([]groupRow, len(list))
	for i, d := range list {
		row := groupRow{G: d.Group, State: groupState(d.Group), Members: make([]memberRow, len(d.Members))}
		if d.Group.RequesterID != 0 {
			row.Requester = f.Who(a.ID, d.Group.RequesterID)
		}
		for j, m := range d.Members {
			row.Members[j] = memberRow{R: m, Who: f.Who(a.ID, m.UserID), Answer: answer(m)}
		}
		if len(d.Members) > 0 {
			row.Details, row.Hidden = d.Members[0].Details, d.Members[0].HiddenDetails
		}
		rows[i] = row
	}
	return rows, nil
}

type groupsData struct {
	App    twofold.App
	Rows   []groupRow
	Before int64 // this page's cursor: 0 for the newest
	Older  int64 // the next page's cursor; 0 when there is none
}

func groupsURL(a twofold.App) string { return appURL(a) + "/groups" }

func (c *console) groupList(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	before, err := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	if err != nil || before < 0 {
		before = 0
	}
	// One more than a page tells whether there are older groups.
	list, err := c.d.Groups.Groups(r.Context(), a, before, groupsPerPage+1)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := groupsData{App: a, Before: before}
	if len(list) > groupsPerPage {
		list = list[:groupsPerPage]
		d.Older = list[len(list)-1].Group.ID
	}
	if d.Rows, err = c.groupRows(r, a, list); err != nil {
		c.fail(w, r, err)
		return
	}
	c.page(w, r, q, http.StatusOK, "groups", "Approval groups of "+a.Name, "approvals", d)
}

type groupData struct {
	App      twofold.App
	Row      groupRow
	HasAudit bool
	Decided  string // twofold.AuditApprovalGroupDecided, for the audit trail's filter
}

// group loads the path's group of application a, or answers 404: another application's group
// is not found through this one.
func (c *console) group(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) (onetouch.GroupDecision, bool) {
	d, err := c.d.Groups.Group(r.Context(), a, r.PathValue("group"))
	if twofold.ErrorCode(err) == twofold.CodeRequestNotFound || errors.Is(err, twofold.ErrNotFound) {
		c.notFound(w, r, q)
		return d, false
	}
	if err != nil {
		c.fail(w, r, err)
		return d, false
	}
	return d, true
}

func (c *console) groupShow(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	d, ok := c.group(w, r, q, a)
	if !ok {
		return
	}
	rows, err := c.groupRows(r, a, []onetouch.GroupDecision{d})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.page(w, r, q, http.StatusOK, "group", "Approval group of "+a.Name, "approvals", groupData{App: a, Row: rows[0],
		HasAudit: c.d.Audit != nil, Decided: twofold.AuditApprovalGroupDecided})
}

func groupURL(a twofold.App, uuid string) string { return groupsURL(a) + "/" + uuid }

// groupClose ends a pending group before its time (onetouch.CloseGroup): its approvers' requests
// are closed, so their devices drop them, and the decision is recorded with the operator as its
// actor. A group already decided is left as it is.
func (c *console) groupClose(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	d, err := c.d.Groups.CloseGroup(r.Context(), a, r.PathValue("group"))
	switch {
	case twofold.ErrorCode(err) == twofold.CodeRequestNotFound: // another application's, or none
		c.notFound(w, r, q)
		return
	case twofold.ErrorCode(err) == twofold.CodeNotPending:
		c.flash(q, "The group was not closed: it was already "+string(d.Group.Status)+".")
	case err != nil:
		c.fail(w, r, err)
		return
	case groupState(d.Group) == "closed":
		c.flash(q, "Group closed: its approvers' pending requests were closed too, and no callback is sent.")
	default:
		c.flash(q, "The group was not closed: it had already expired.")
	}
	http.Redirect(w, r, groupURL(a, d.Group.UUID), http.StatusSeeOther)
}

// groupLinks finds the uuid of the group of each request of rows that asks for a group's
// member's answer, by group id (a group asked of many is looked up once). A group gone since
// (its application deleted) has no link.
func (c *console) groupLinks(ctx context.Context, rows []twofold.ApprovalRequest) (map[int64]string, error) {
	out := map[int64]string{}
	for _, r := range rows {
		if r.GroupID == 0 {
			continue
		}
		if _, done := out[r.GroupID]; done {
			continue
		}
		d, err := c.d.Groups.GroupOf(ctx, r)
		if errors.Is(err, twofold.ErrNotFound) {
			out[r.GroupID] = ""
			continue
		}
		if err != nil {
			return nil, err
		}
		out[r.GroupID] = d.Group.UUID
	}
	return out, nil
}
