// Package onetouch is the push-approval flow: a customer asks a user to approve something, the
// user's registered device answers with a signature only it can make, and the customer learns
// the result by polling or by a signed callback queued atomically with the answer.
package onetouch

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

// Store is what the service needs from persistence.
type Store interface {
	GetApp(ctx context.Context, id int64) (twofold.App, error)
	GetUser(ctx context.Context, appID, id int64) (twofold.User, error)
	// UserReach reports whether the user has a registered device and whether any of their
	// devices has a push subscription; ErrNotFound for no user.
	UserReach(ctx context.Context, appID, userID int64) (hasDevice, hasPush bool, err error)
	CreateApprovalRequest(ctx context.Context, r *twofold.ApprovalRequest, maxPending int) error
	GetApprovalRequest(ctx context.Context, appID int64, uuid string) (twofold.ApprovalRequest, error)
	ListApprovalRequests(ctx context.Context, appID, userID int64, status twofold.ApprovalStatus, limit int) ([]twofold.ApprovalRequest, error)
	ListApprovalRequestsSince(ctx context.Context, appID, userID, after int64, ids []int64, limit int) ([]twofold.ApprovalRequest, error)
	MarkNotified(ctx context.Context, ids []int64) error
	// FinishApprovalRequest and CloseApprovalRequest append the audit entries in the change's
	// transaction when it wins, and none when it loses.
	FinishApprovalRequest(ctx context.Context, r twofold.ApprovalRequest, cb *twofold.Callback, audit ...twofold.AuditEntry) (bool, error)
	CloseApprovalRequest(ctx context.Context, appID, id int64, reason string, at time.Time, audit ...twofold.AuditEntry) (bool, error)
	DueExpiries(ctx context.Context, now time.Time, limit int) ([]twofold.ApprovalRequest, error)
	// Decide runs fn in one write transaction about the user, serialised with the user's other
	// decisions (wrong matching numbers, counted with their audit entry).
	Decide(ctx context.Context, appID, userID int64, fn func(twofold.Decision) error) error
	GroupStore
}

// Config tunes the service; zero fields take DefaultConfig's values.
type Config struct {
	DefaultTTL    time.Duration // when seconds_to_expire is not given: 86400 s, as Authy
	MaxTTL        time.Duration
	MaxPending    int           // pending requests per user
	MaxMessage    int           // characters of message
	SignatureSkew time.Duration // how far a device's answer timestamp may be from now
}

// DefaultConfig is what a server runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{DefaultTTL: 24 * time.Hour, MaxTTL: 30 * 24 * time.Hour, MaxPending: 5, MaxMessage: 200, SignatureSkew: 5 * time.Minute}
}

// Hooks tell other parts of the server about changes; nil fields are ignored.
type Hooks struct {
	CallbackQueued func()                    // wakes the callback dispatcher
	Changed        func(appID, userID int64) // a request of the user was created or finished: wakes devices
	// Created is told of a new request, to push it to devices that are not connected. Create and
	// CreateGroup call it only for a user who had a device with a push subscription when they
	// looked the user up: for the others there is nowhere to push. Announce always calls it.
	Created func(twofold.ApprovalRequest)
}

// Auditor records security-relevant events (the audit trail, *audit.Log). Record never fails;
// Entry makes an event ready to be appended in the store's transaction that makes the change it
// records (an answer, a close, a group's decision), so that the change and its record commit
// together, in one commit, or neither does.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
	Entry(ctx context.Context, e twofold.AuditEvent) twofold.AuditEntry
}

// Handoff passes the callback of an answer straight to an idle delivery worker
// (callback.Dispatcher), so that it needs no claim before it goes out. A worker is reserved
// before the answer's transaction, which inserts the callback already leased to this server
// until leaseUntil (as the dispatcher's claim would lease it); after the commit the callback is
// handed over, or the worker given back. A server that dies between the two leaves the callback
// to the claims after the lease.
type Handoff interface {
	// Reserve takes an idle worker; ok is false when none is (the callback is queued unleased
	// and CallbackQueued wakes the dispatcher, as without a hand-off).
	Reserve() (leaseUntil time.Time, ok bool)
	// Deliver hands the reserved worker c, committed leased until c.NextAttemptAt.
	Deliver(c twofold.Callback)
	// Release gives back a reserved worker not used.
	Release()
}

// Service runs approval requests.
type Service struct {
	store   Store
	cfg     Config
	now     func() time.Time
	hooks   Hooks
	audit   Auditor // nil: nothing is recorded
	handoff Handoff // nil: callbacks wait for the dispatcher's claim
}

// SetAuditor makes the service record devices' answers. Call it before the service is used.
func (s *Service) SetAuditor(a Auditor) { s.audit = a }

// SetHandoff makes the service hand answers' callbacks to h's workers. Call it before the
// service is used.
func (s *Service) SetHandoff(h Handoff) { s.handoff = h }

// New returns a Service. now may be nil.
func New(store Store, cfg Config, hooks Hooks, now func() time.Time) *Service {
	def := DefaultConfig()
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = def.DefaultTTL
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = def.MaxTTL
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = def.MaxPending
	}
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = def.MaxMessage
	}
	if cfg.SignatureSkew <= 0 {
		cfg.SignatureSkew = def.SignatureSkew
	}
	if now == nil {
		now = time.Now
	}
	if hooks.CallbackQueued == nil {
		hooks.CallbackQueued = func() {}
	}
	if hooks.Changed == nil {
		hooks.Changed = func(int64, int64) {}
	}
	if hooks.Created == nil {
		hooks.Created = func(twofold.ApprovalRequest) {}
	}
	return &Service{store: store, cfg: cfg, hooks: hooks, now: now}
}

// CreateParams are the parameters of POST approval_requests.
type CreateParams struct {
	Message         string
	Details         map[string]string
	HiddenDetails   map[string]string
	Logos           []twofold.Logo
	SecondsToExpire *int64 // nil: the default; 0: never
	NumberMatching  *bool  // nil: the application's setting
}

var resolutions = map[string]bool{"default": true, "low": true, "med": true, "high": true}

// Create makes a pending request for the user, who must have a registered device, except in a
// sandbox application: there, as in Authy's sandbox, a user without one gets a request too,
// which stays pending until it expires or its developer answers it (AnswerSandbox).
func (s *Service) Create(ctx context.Context, app twofold.App, userID int64, p CreateParams) (twofold.ApprovalRequest, error) {
	// One read for the user, whether a device of theirs can answer and whether there is
	// anywhere to push the request. Read from the store on every create, it holds across
	// instances and restarts; a subscription made between this read and the push misses only
	// this push, and its device, which has just subscribed, sees the request on its stream or
	// when it next looks, as it would any push that failed.
	hasDevice, hasPush, err := s.store.UserReach(ctx, app.ID, userID)
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.ApprovalRequest{}, twofold.ErrUserNotFound()
	}
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	r, err := s.Prepare(app, userID, p) // validates p
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	if !hasDevice && !app.Sandbox {
		return twofold.ApprovalRequest{}, twofold.Errorf(twofold.CodeUnregisteredUser,
			"User has no registered device for OneTouch. Send a code by SMS or another channel instead.")
	}
	if err := s.store.CreateApprovalRequest(ctx, &r, s.cfg.MaxPending); err != nil {
		if errors.Is(err, twofold.ErrTooMany) {
			return twofold.ApprovalRequest{}, twofold.ErrLimit(fmt.Sprintf("this user already has %d pending approval requests", s.cfg.MaxPending), time.Minute)
		}
		return twofold.ApprovalRequest{}, err
	}
	s.announce(r, hasPush)
	return r, nil
}

// Prepare validates p and builds a new pending request of the user userID, with its UUID,
// expiry and, when asked, its matching number, but does not store it. Create stores it; a
// service that stores it with rows of its own in one transaction (passwordless sign-in) calls
// Announce once it is stored.
func (s *Service) Prepare(app twofold.App, userID int64, p CreateParams) (twofold.ApprovalRequest, error) {
	if err := s.validate(p); err != nil {
		return twofold.ApprovalRequest{}, err
	}
	now := s.now().UTC()
	ttl := int64(s.cfg.DefaultTTL / time.Second)
	if p.SecondsToExpire != nil {
		ttl = *p.SecondsToExpire
	}
	r := twofold.ApprovalRequest{
		UUID: newUUID(), AppID: app.ID, UserID: userID, Message: p.Message,
		Details: nonNil(p.Details), HiddenDetails: nonNil(p.HiddenDetails), Logos: p.Logos,
		SecondsToExpire: ttl, Status: twofold.Pending, CreatedAt: now, UpdatedAt: now,
	}
	if ttl > 0 {
		r.ExpiresAt = now.Add(time.Duration(ttl) * time.Second)
	}
	if (p.NumberMatching == nil && app.NumberMatching) || (p.NumberMatching != nil && *p.NumberMatching) {
		r.Number = matchingNumber()
	}
	return r, nil
}

// Announce tells the user's devices of a request just stored: their event streams, and a push
// to those that are not connected.
func (s *Service) Announce(r twofold.ApprovalRequest) { s.announce(r, true) }

// announce is Announce, with the push only when push is true (the user has a subscription).
func (s *Service) announce(r twofold.ApprovalRequest, push bool) {
	s.hooks.Changed(r.AppID, r.UserID)
	if push {
		s.hooks.Created(r)
	}
}

// MaxPending is how many pending requests a user may have at once.
func (s *Service) MaxPending() int { return s.cfg.MaxPending }

// matchingNumber returns a random number matching's number: two digits, 10 to 99.
func matchingNumber() string {
	n, err := rand.Int(rand.Reader, big.NewInt(90))
	if err != nil {
		panic("onetouch: crypto/rand failed: " + err.Error())
	}
	return strconv.FormatInt(n.Int64()+10, 10)
}

func (s *Service) validate(p CreateParams) error {
	msg := strings.TrimSpace(p.Message)
	switch {
	case msg == "":
		return twofold.ErrInvalidParam("message", "Parameter is required")
	case len([]rune(p.Message)) > s.cfg.MaxMessage:
		return twofold.ErrInvalidParam("message", fmt.Sprintf("must be at most %d characters", s.cfg.MaxMessage))
	}
	for name, m := range map[string]map[string]string{"details": p.Details, "hidden_details": p.HiddenDetails} {
		if len(m) > 50 {
			return twofold.ErrInvalidParam(name, "has more than 50 entries")
		}
		for k, v := range m {
			if len(k) > 100 || len(v) > 1000 {
				return twofold.ErrInvalidParam(name, "keys must be at most 100 and values 1000 characters")
			}
		}
	}
	if len(p.Logos) > 10 {
		return twofold.ErrInvalidParam("logos", "has more than 10 entries")
	}
	for _, l := range p.Logos {
		u, err := url.Parse(l.URL)
		if !resolutions[l.Res] || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(l.URL) > 500 {
			return twofold.ErrInvalidParam("logos", "each logo needs res (default, low, med or high) and an http(s) url of at most 500 characters")
		}
	}
	if p.SecondsToExpire != nil && (*p.SecondsToExpire < 0 || *p.SecondsToExpire > int64(s.cfg.MaxTTL/time.Second)) {
		return twofold.ErrInvalidParam("seconds_to_expire", fmt.Sprintf("must be 0 (never) to %d", int64(s.cfg.MaxTTL/time.Second)))
	}
	return nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Get returns the application's request, expiring it first if its time has passed.
func (s *Service) Get(ctx context.Context, app twofold.App, uuid string) (twofold.ApprovalRequest, error) {
	r, err := s.store.GetApprovalRequest(ctx, app.ID, uuid)
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.ApprovalRequest{}, &twofold.Error{Code: twofold.CodeRequestNotFound, Message: "Approval request not found: " + wiretext.Clip(uuid)}
	}
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	return s.expireIfDue(ctx, app, r)
}

// expireIfDue applies expiry on read: a pending request past its time becomes expired, once.
func (s *Service) expireIfDue(ctx context.Context, app twofold.App, r twofold.ApprovalRequest) (twofold.ApprovalRequest, error) {
	now := s.now().UTC()
	if r.Status != twofold.Pending || r.ExpiresAt.IsZero() || now.Before(r.ExpiresAt) {
		return r, nil
	}
	out, err := s.finish(ctx, app, r, twofold.Expired, "", twofold.Device{}, "", now, nil)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	if out.decided {
		s.groupDecided(out.group, out.members, out.queued)
	}
	// Whoever won, the request is final now; read what was recorded.
	return s.store.GetApprovalRequest(ctx, app.ID, r.UUID)
}

// ExpireDue expires pending requests whose time has passed (the background sweep), up to 1000
// a call: bounded, so a row it cannot change never keeps it spinning; the next sweep goes on.
// Groups whose time has passed with no member's request to expire them end too.
func (s *Service) ExpireDue(ctx context.Context) (int, error) {
	due, err := s.store.DueExpiries(ctx, s.now().UTC(), 1000)
	if err != nil {
		return 0, err
	}
	n, err := s.ExpireDueGroups(ctx)
	if err != nil {
		return n, err
	}
	for _, r := range due {
		app, err := s.store.GetApp(ctx, r.AppID)
		if err != nil {
			return n, err
		}
		if _, err := s.expireIfDue(ctx, app, r); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// outcome is what finishing a request changed.
type outcome struct {
	won bool
	// For a member of a group: the group as the answer left it, whether this answer decided it,
	// the members as the decision left them and whether a callback was queued.
	group   twofold.ApprovalGroup
	decided bool
	members []twofold.ApprovalRequest
	queued  bool
}

// answerer is who answered a request, for the answer's audit entry (approval.approved or
// denied): actor is the device's, or "" for the context's (whoever answered a sandbox request);
// details are added to the request's.
type answerer struct {
	actor   string
	details map[string]string
}

// finish records a final status and, when the application has a callback URL, queues its
// callback in the same transaction; when by is not nil (an answer, not an expiry), the answer's
// audit entry, and for a group's member the group's decision when the answer decided it, are
// appended in that transaction too. It reports whether this change won; for a group's member,
// also what it did to the group.
func (s *Service) finish(ctx context.Context, app twofold.App, r twofold.ApprovalRequest, status twofold.ApprovalStatus,
	reason string, dev twofold.Device, signature string, at time.Time, by *answerer) (outcome, error) {
	r.Status, r.Reason, r.DeviceID, r.Signature, r.ProcessedAt, r.UpdatedAt = status, reason, dev.ID, signature, at, at
	if r.GroupID != 0 {
		return s.finishMember(ctx, app, r, by)
	}
	var cb *twofold.Callback
	if app.CallbackURL != "" && (status != twofold.Expired || app.CallbackExpired) {
		u, err := s.store.GetUser(ctx, app.ID, r.UserID)
		if err != nil {
			return outcome{}, err
		}
		payload, err := CallbackPayload(app, u, r, dev)
		if err != nil {
			return outcome{}, err
		}
		cb = &twofold.Callback{AppID: app.ID, RequestUUID: r.UUID, Payload: payload}
	}
	won, handed, err := s.finishRequest(ctx, app, r, cb, s.answerEntries(ctx, r, by, ""))
	if err != nil {
		return outcome{}, err
	}
	if won && cb != nil && !handed {
		s.hooks.CallbackQueued()
	}
	if won {
		s.hooks.Changed(r.AppID, r.UserID)
	}
	return outcome{won: won}, nil
}

// finishRequest is the store's FinishApprovalRequest, with cb (if not nil) handed to a
// delivery worker when one is idle; handed reports whether it was. The reservation ends
// whatever happens, a panic included, so that no worker stays reserved for nothing.
func (s *Service) finishRequest(ctx context.Context, app twofold.App, r twofold.ApprovalRequest, cb *twofold.Callback,
	audit []twofold.AuditEntry) (won, handed bool, err error) {
	reserved := s.reserve(cb, app)
	defer func() { handed = s.handOver(reserved, cb, won && err == nil, r.ProcessedAt) }()
	won, err = s.store.FinishApprovalRequest(ctx, r, cb, audit...)
	return won, false, err
}

// reserve takes a delivery worker for cb (nil: none to queue) when there is one and app's
// callbacks are enabled, and asks the store to insert cb leased to it. It reports whether it did.
func (s *Service) reserve(cb *twofold.Callback, app twofold.App) bool {
	if cb == nil || s.handoff == nil || app.CallbackDisabled() {
		return false
	}
	lease, ok := s.handoff.Reserve()
	if ok {
		cb.NextAttemptAt = lease
	}
	return ok
}

// handOver ends reserve's reservation: cb goes to the reserved worker when it was committed
// (queued is true) leased, after at (the store queues it unleased when the application's
// callbacks were disabled meanwhile); the worker is given back otherwise. It reports whether cb
// was handed over.
func (s *Service) handOver(reserved bool, cb *twofold.Callback, queued bool, at time.Time) bool {
	if !reserved {
		return false
	}
	if queued && cb.NextAttemptAt.After(at) {
		s.handoff.Deliver(*cb)
		return true
	}
	s.handoff.Release()
	return false
}

// entries makes events ready to be appended with the change they record (none when the service
// keeps no audit trail).
func (s *Service) entries(ctx context.Context, events ...twofold.AuditEvent) []twofold.AuditEntry {
	if s.audit == nil {
		return nil
	}
	out := make([]twofold.AuditEntry, len(events))
	for i, e := range events {
		out[i] = s.audit.Entry(ctx, e)
	}
	return out
}

// answerEntries is the audit entry of by's answer to r (r's status and reason set), with group
// the UUID of r's group ("" for none); none when by is nil (an expiry) or there is no trail.
func (s *Service) answerEntries(ctx context.Context, r twofold.ApprovalRequest, by *answerer, group string) []twofold.AuditEntry {
	if by == nil || s.audit == nil {
		return nil
	}
	action := twofold.AuditApprovalApproved
	if r.Status == twofold.Denied {
		action = twofold.AuditApprovalDenied
	}
	all := map[string]string{"uuid": r.UUID}
	for k, v := range by.details {
		all[k] = v
	}
	if r.Reason != "" {
		all["reason"] = r.Reason
	}
	if group != "" {
		all["group"] = group
	}
	return s.entries(ctx, twofold.AuditEvent{Actor: by.actor, Action: action, AppID: r.AppID, UserID: r.UserID, Details: all})
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("onetouch: crypto/rand failed: " + err.Error())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// ObjectID renders an id as the 24-hex-digit strings Authy used for _id, app_id and user_id.
func ObjectID(kind byte, id int64) string { return fmt.Sprintf("%02x%022x", kind, id) }

// decodeSignature accepts base64 (standard or URL-safe, padded or not).
func decodeSignature(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("signature is not base64")
}
