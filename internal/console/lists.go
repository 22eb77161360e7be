package console

import (
	"net/http"
	"slices"
	"strconv"

	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

// The lists of approval requests, outbox messages, callbacks and audit entries, across
// applications or for one, with filters in the query string. The pages refresh themselves
// while "Live" is on (static/console.js).

type filters struct {
	App      int64
	Status   string
	Channel  string
	Action   string
	User     int64
	Since    string
	Console  int64            // the console's own application, whose users are operators
	Apps     []twofold.App    // for the application filter
	AppNames map[int64]string // every application's name, the console's included
	Statuses []string
	Channels []string
	Actions  []string
	byID     map[int64]twofold.App      // every application, the console's included
	people   map[users.Ref]twofold.User // the users the rows name (named)
}

// UserLink reports whether a user of application appID has a page in the console.
func (f filters) UserLink(appID, userID int64) bool { return userID != 0 && appID != f.Console }

// userRef is a user as a list shows them: by email or the customer's id, with the Authy id.
type userRef struct {
	AppID, ID int64
	Label     string // users.Label; "" for a user deleted since
	Link      bool   // the user has a page in the console
}

// Who is the user id of application appID, named.
func (f filters) Who(appID, userID int64) userRef {
	u, ok := f.people[users.Ref{AppID: appID, ID: userID}]
	ref := userRef{AppID: appID, ID: userID}
	if ok {
		ref.Label, ref.Link = users.Label(u), f.UserLink(appID, userID)
	}
	return ref
}

// named looks up the users refs names, for Who.
func (c *console) named(r *http.Request, f *filters, refs []users.Ref) error {
	people, err := c.d.Users.Find(r.Context(), refs)
	f.people = people
	return err
}

func (f filters) AppName(id int64) string {
	if n, ok := f.AppNames[id]; ok {
		return n
	}
	return "#" + strconv.FormatInt(id, 10)
}

// readFilters reads the common filters; a value not among allowed is ignored.
func (c *console) readFilters(r *http.Request, statuses []string) (filters, error) {
	v := r.URL.Query()
	f := filters{Statuses: statuses, AppNames: map[int64]string{}, byID: map[int64]twofold.App{}}
	all, err := c.d.Apps.List(r.Context())
	if err != nil {
		return f, err
	}
	for _, a := range all {
		f.AppNames[a.ID] = a.Name
		f.byID[a.ID] = a
		if a.Console {
			f.Console = a.ID
		} else {
			f.Apps = append(f.Apps, a)
		}
	}
	if id, err := strconv.ParseInt(v.Get("app"), 10, 64); err == nil {
		if _, ok := f.AppNames[id]; ok {
			f.App = id
		}
	}
	if id, err := strconv.ParseInt(v.Get("user"), 10, 64); err == nil && id > 0 {
		f.User = id
	}
	if s := v.Get("status"); slices.Contains(statuses, s) {
		f.Status = s
	}
	return f, nil
}

type listData[T any] struct {
	F     filters
	Rows  []T
	Limit int
}

const listLimit = 200

type approvalsData struct {
	listData[twofold.ApprovalRequest]
	Groups map[int64]string // the uuid of each row's group, by group id
}

func (c *console) approvalList(w http.ResponseWriter, r *http.Request, q *request) {
	f, err := c.readFilters(r, []string{"pending", "approved", "denied", "expired"})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var from = c.cfg.Now()
	from, f.Since = since(from, r.URL.Query().Get("since"))
	rows, err := c.d.Queries.ListApprovals(r.Context(), twofold.ApprovalFilter{AppID: f.App, UserID: f.User,
		Status: twofold.ApprovalStatus(f.Status), Since: from, Limit: listLimit})
	if err == nil {
		refs := make([]users.Ref, len(rows))
		for i, a := range rows {
			refs[i] = users.Ref{AppID: a.AppID, ID: a.UserID}
		}
		err = c.named(r, &f, refs)
	}
	var groups map[int64]string
	if err == nil {
		groups, err = c.groupLinks(r.Context(), rows)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.page(w, r, q, http.StatusOK, "approvals", "Approval requests", "approvals", approvalsData{
		listData: listData[twofold.ApprovalRequest]{F: f, Rows: rows, Limit: listLimit}, Groups: groups})
}

func (c *console) outboxList(w http.ResponseWriter, r *http.Request, q *request) {
	f, err := c.readFilters(r, []string{twofold.MessageRecorded, twofold.MessageSandbox, twofold.MessageSending,
		twofold.MessageSent, twofold.MessageFailed})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	f.Channels = []string{string(twofold.SMS), string(twofold.Call), string(twofold.Email)}
	if ch := r.URL.Query().Get("channel"); slices.Contains(f.Channels, ch) {
		f.Channel = ch
	}
	var from = c.cfg.Now()
	from, f.Since = since(from, r.URL.Query().Get("since"))
	rows, err := c.d.Queries.ListOutbox(r.Context(), twofold.OutboxFilter{AppID: f.App, UserID: f.User,
		Channel: twofold.Channel(f.Channel), Status: f.Status, Since: from, Limit: listLimit})
	if err == nil {
		refs := make([]users.Ref, len(rows))
		for i, m := range rows {
			refs[i] = users.Ref{AppID: m.AppID, ID: m.UserID}
		}
		err = c.named(r, &f, refs)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.page(w, r, q, http.StatusOK, "outbox", "Outbox", "outbox", listData[twofold.Message]{F: f, Rows: rows, Limit: listLimit})
}

func (c *console) callbackList(w http.ResponseWriter, r *http.Request, q *request) {
	f, err := c.readFilters(r, []string{"pending", "delivered", "dropped"})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var from = c.cfg.Now()
	from, f.Since = since(from, r.URL.Query().Get("since"))
	list, err := c.d.Queries.ListCallbacks(r.Context(), twofold.CallbackFilter{AppID: f.App, Status: f.Status, Since: from, Limit: listLimit})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.page(w, r, q, http.StatusOK, "callbacks", "Callbacks", "callbacks", listData[callbackRow]{F: f,
		Rows: c.describeCallbacks(list, f.byID), Limit: listLimit})
}

type auditData struct {
	listData[twofold.AuditEvent]
	Off bool // no audit trail
}

func (c *console) auditList(w http.ResponseWriter, r *http.Request, q *request) {
	f, err := c.readFilters(r, nil)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	f.Actions = twofold.AuditActions
	if a := r.URL.Query().Get("action"); slices.Contains(f.Actions, a) {
		f.Action = a
	}
	var from = c.cfg.Now()
	from, f.Since = since(from, r.URL.Query().Get("since"))
	d := auditData{listData: listData[twofold.AuditEvent]{F: f, Limit: listLimit}, Off: c.d.Audit == nil}
	if c.d.Audit != nil {
		d.Rows, err = c.d.Audit.List(r.Context(), twofold.AuditFilter{AppID: f.App, UserID: f.User, Action: f.Action,
			Since: from, Limit: listLimit, Newest: true})
		if err != nil {
			c.fail(w, r, err)
			return
		}
		reverse(d.Rows) // newest first, as the other lists
		refs := make([]users.Ref, len(d.Rows))
		for i, e := range d.Rows {
			refs[i] = users.Ref{AppID: e.AppID, ID: e.UserID}
		}
		if err := c.named(r, &d.F, refs); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	c.page(w, r, q, http.StatusOK, "audit", "Audit trail", "audit", d)
}

type activityData struct {
	F      filters
	Charts []chart
}

func (c *console) activity(w http.ResponseWriter, r *http.Request, q *request) {
	f, err := c.readFilters(r, nil)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	charts, err := c.charts(r, f.App)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.page(w, r, q, http.StatusOK, "activity", "Activity", "activity", activityData{F: f, Charts: charts})
}
