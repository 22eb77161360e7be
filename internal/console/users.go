package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

type usersData struct {
	App     twofold.App
	Query   string
	Users   []twofold.User
	Factors map[int64]twofold.UserFactors // by user id
}

func (c *console) userSearch(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	query := strings.TrimSpace(r.URL.Query().Get("q"))
	list, err := c.d.Queries.SearchUsers(r.Context(), a.ID, query, 50)
	var factors map[int64]twofold.UserFactors
	if err == nil {
		ids := make([]int64, len(list))
		for i, u := range list {
			ids[i] = u.ID
		}
		factors, err = c.d.Users.Factors(r.Context(), a.ID, ids)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.page(w, r, q, http.StatusOK, "users", "Users of "+a.Name, "apps", usersData{App: a, Query: query, Users: list, Factors: factors})
}

// user loads the path's user of application a, or answers 404.
func (c *console) user(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) (twofold.User, bool) {
	id, err := strconv.ParseInt(r.PathValue("user"), 10, 64)
	if err != nil {
		c.notFound(w, r, q)
		return twofold.User{}, false
	}
	u, err := c.d.Queries.GetUser(r.Context(), a.ID, id)
	if errors.Is(err, twofold.ErrNotFound) {
		c.notFound(w, r, q)
		return twofold.User{}, false
	}
	if err != nil {
		c.fail(w, r, err)
		return twofold.User{}, false
	}
	return u, true
}

type userData struct {
	App       twofold.App
	User      twofold.User
	Devices   []twofold.Device
	Factors   twofold.UserFactors
	Approvals []twofold.ApprovalRequest
	Messages  []twofold.Message
	Audit     []twofold.AuditEvent
	HasAudit  bool
	// PasswordlessBlockedUntil is when the user's passwordless sign-ins are no longer blocked;
	// zero: they are not.
	PasswordlessBlockedUntil time.Time
	// Recovery is the user's set of recovery codes; HasRecovery: the server has them at all.
	Recovery    twofold.RecoveryCodes
	HasRecovery bool
	// Passkeys are the user's passkeys; HasPasskeys: the server has passkeys at all.
	Passkeys    []twofold.Passkey
	HasPasskeys bool
}

func userURL(a twofold.App, u twofold.User) string {
	return appURL(a) + "/users/" + strconv.FormatInt(u.ID, 10)
}

func (c *console) userShow(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	u, ok := c.user(w, r, q, a)
	if !ok {
		return
	}
	ctx := r.Context()
	d := userData{App: a, User: u, HasAudit: c.d.Audit != nil}
	var err error
	if d.Devices, err = c.d.Queries.ListDevices(ctx, a.ID, u.ID); err == nil {
		if d.Approvals, err = c.d.Queries.ListApprovals(ctx, twofold.ApprovalFilter{AppID: a.ID, UserID: u.ID, Limit: 20}); err == nil {
			d.Messages, err = c.d.Queries.ListOutbox(ctx, twofold.OutboxFilter{AppID: a.ID, UserID: u.ID, Limit: 20})
		}
	}
	if err == nil {
		var f map[int64]twofold.UserFactors
		f, err = c.d.Users.Factors(ctx, a.ID, []int64{u.ID})
		d.Factors = f[u.ID]
	}
	if err == nil && c.d.Passwordless != nil {
		d.PasswordlessBlockedUntil, err = c.d.Passwordless.BlockedUntil(ctx, a, u.ID)
	}
	if err == nil && c.d.RecoveryCodes != nil {
		d.HasRecovery = true
		d.Recovery, err = c.d.RecoveryCodes.Remaining(ctx, a, u.ID)
	}
	if err == nil && c.d.Passkeys != nil {
		d.HasPasskeys = true
		d.Passkeys, err = c.d.Passkeys.List(ctx, a, u.ID)
	}
	if err == nil && c.d.Audit != nil {
		d.Audit, err = c.d.Audit.List(ctx, twofold.AuditFilter{AppID: a.ID, UserID: u.ID, Limit: 20, Newest: true})
		reverse(d.Audit)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	title := users.Label(u) + " of " + a.Name
	c.page(w, r, q, http.StatusOK, "user", title, "apps", d)
}

func reverse[T any](s []T) {
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
}

func (c *console) userDeleteConfirm(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	u, ok := c.user(w, r, q, a)
	if !ok {
		return
	}
	who := users.Label(u) + " (Authy id " + strconv.FormatInt(u.ID, 10) + ")"
	c.page(w, r, q, http.StatusOK, "confirm", "Delete "+users.Label(u), "apps", confirmData{
		App: a, Heading: "Delete " + who + " of " + a.Name + "?",
		Text:   "The user's authenticator, registered devices, codes and approval requests are deleted. Their outbox messages stay, as a record. The customer's backend will get 60026 (user not found) for this id.",
		Action: userURL(a, u) + "/delete", Button: "Delete the user", Danger: true, Cancel: userURL(a, u)})
}

func (c *console) userDelete(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	u, ok := c.user(w, r, q, a)
	if !ok {
		return
	}
	if err := c.d.Users.Delete(r.Context(), a.ID, u.ID); err != nil && twofold.ErrorCode(err) != twofold.CodeUserNotFound {
		c.fail(w, r, err)
		return
	}
	c.flash(q, "User "+users.Label(u)+" (Authy id "+strconv.FormatInt(u.ID, 10)+") deleted.")
	http.Redirect(w, r, appURL(a)+"/users", http.StatusSeeOther)
}

func (c *console) deviceDelete(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	u, ok := c.user(w, r, q, a)
	if !ok {
		return
	}
	id, err := strconv.ParseInt(r.PathValue("device"), 10, 64)
	if err != nil {
		c.notFound(w, r, q)
		return
	}
	devs, err := c.d.Queries.ListDevices(r.Context(), a.ID, u.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	found := false
	for _, d := range devs {
		found = found || d.ID == id
	}
	if !found { // a device of another user is not this user's to remove
		c.notFound(w, r, q)
		return
	}
	if _, err := c.d.Devices.Delete(r.Context(), a.ID, id); err != nil {
		c.fail(w, r, err)
		return
	}
	c.flash(q, "Device removed: it can no longer approve requests or give codes.")
	http.Redirect(w, r, userURL(a, u), http.StatusSeeOther)
}

// passkeyDelete removes one of the user's passkeys (recorded as passkey.removed by the
// operator); a passkey not the user's is not found.
func (c *console) passkeyDelete(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	u, ok := c.user(w, r, q, a)
	if !ok {
		return
	}
	if c.d.Passkeys == nil {
		c.notFound(w, r, q)
		return
	}
	err := c.d.Passkeys.Remove(r.Context(), a, u.ID, r.PathValue("passkey"))
	switch code := twofold.ErrorCode(err); {
	case err == nil:
	case code == twofold.CodePasskeyNotFound || code == twofold.CodeUserNotFound:
		c.notFound(w, r, q)
		return
	default:
		c.fail(w, r, err)
		return
	}
	c.flash(q, "Passkey removed: it can no longer sign this user in.")
	http.Redirect(w, r, userURL(a, u), http.StatusSeeOther)
}

// recoveryRevoke removes the user's whole set of recovery codes (recorded as
// recovery_codes.revoked, by the operator): the user, or whoever holds their codes, can no
// longer pass a step with one. The customer's backend can make a new set.
func (c *console) recoveryRevoke(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	u, ok := c.user(w, r, q, a)
	if !ok {
		return
	}
	n, err := c.d.RecoveryCodes.Revoke(r.Context(), a, u.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.flash(q, "Recovery codes revoked ("+strconv.FormatInt(n, 10)+" in the set): none of them works any more.")
	http.Redirect(w, r, userURL(a, u), http.StatusSeeOther)
}
