package passwordless

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// maxName bounds a name typed, in bytes.
const maxName = 255

// The outcomes of Begin, as the audit trail records them. Only the first sends anything.
const (
	outcomeSent         = "sent"
	outcomeUnknown      = "unknown"
	outcomeNoDevice     = "no_device"
	outcomeBlocked      = "blocked"
	outcomeUserLimit    = "user_limit"
	outcomePendingLimit = "pending_limit" // or the user was deleted meanwhile
)

// name is the user a Start names: how to look them up, the text to look up, and the key the
// limit per name counts under (the same for every spelling of one name).
type name struct {
	match twofold.UserMatch
	text  string
	key   string
}

func (st Start) name() (name, error) {
	email, custom := strings.TrimSpace(st.Email), strings.TrimSpace(st.CustomUserID)
	given := 0
	for _, present := range []bool{email != "", custom != "", st.AuthyID != 0} {
		if present {
			given++
		}
	}
	if given != 1 {
		return name{}, twofold.ErrInvalidParam("email", "give exactly one of email, custom_user_id and authy_id")
	}
	switch {
	case email != "":
		if len(email) > maxName {
			return name{}, twofold.ErrInvalidParam("email", fmt.Sprintf("must be at most %d characters", maxName))
		}
		// Emails are compared without case, so every case of one is one name to the limit.
		return name{twofold.MatchEmail, email, "email:" + strings.ToLower(email)}, nil
	case custom != "":
		if len(custom) > maxName {
			return name{}, twofold.ErrInvalidParam("custom_user_id", fmt.Sprintf("must be at most %d characters", maxName))
		}
		return name{twofold.MatchCustomID, custom, "custom:" + custom}, nil
	case st.AuthyID < 0:
		return name{}, twofold.ErrInvalidParam("authy_id", "must be a user's id, a positive number")
	}
	id := strconv.FormatInt(st.AuthyID, 10)
	return name{twofold.MatchID, id, "id:" + id}, nil
}

// clientKey is the client address a limit per address counts: the address, or for IPv6 the /64
// it is in, which one client usually has whole.
func clientKey(ip string) (netip.Prefix, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return netip.Prefix{}, twofold.ErrInvalidParam("user_ip", "must be the IP address of the client who typed the name")
	}
	a = a.WithZone("").Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	return a.Prefix(bits)
}

// limitName is the store's name of a limit of the application: kind and a hash of what is
// counted, so that no name typed nor address is kept in clear.
func limitName(kind string, app twofold.App, counted string) string {
	h := sha256.Sum256([]byte(counted))
	return kind + ":" + strconv.FormatInt(app.ID, 10) + ":" + hex.EncodeToString(h[:16])
}

// Begin starts a passwordless sign-in for the user st names, and answers, whoever that is, with
// a pending Signin: a UUID, a number and an expiry. When the name is of a user of the
// application with a registered device, not blocked and not asked too often already, an approval
// request with that number (number matching always on) goes to their devices; otherwise nothing
// is sent and the request is a phantom. Both are made by the same store work (see Store).
//
// Before any lookup, the request is counted per name and per client address: over either limit
// it is refused with 60003, whether the name is of a user or not. Malformed requests are refused
// with 60004 and count nothing.
func (s *Service) Begin(ctx context.Context, app twofold.App, st Start) (Signin, error) {
	who, err := st.name()
	if err != nil {
		return Signin{}, err
	}
	addr, err := clientKey(st.UserIP)
	if err != nil {
		return Signin{}, err
	}
	ttl := int64(s.cfg.DefaultTTL / time.Second)
	if st.SecondsToExpire != nil {
		ttl = *st.SecondsToExpire
	}
	if most := int64(s.cfg.MaxTTL / time.Second); ttl < 1 || ttl > most {
		return Signin{}, twofold.ErrInvalidParam("seconds_to_expire", fmt.Sprintf("must be 1 to %d", most))
	}
	msg := st.Message
	if strings.TrimSpace(msg) == "" {
		msg = "Sign in to " + app.Name + "?"
	}
	matching := true
	// The request is built, and checked, before anything is counted, and alike for everyone:
	// a phantom's is simply never stored.
	r, err := s.approvals.Prepare(app, 0, onetouch.CreateParams{Message: msg, Details: st.Details, HiddenDetails: st.HiddenDetails,
		Logos: st.Logos, SecondsToExpire: &ttl, NumberMatching: &matching})
	if err != nil {
		return Signin{}, err
	}

	now := s.now()
	if err := s.limit(ctx, app, limitName("passwordless_address", app, addr.String()), "passwordless_address", s.cfg.PerAddress,
		"sign-in requests from this address", now); err != nil {
		return Signin{}, err
	}
	if err := s.limit(ctx, app, limitName("passwordless_username", app, who.key), "passwordless_username", s.cfg.PerUsername,
		"sign-in requests for this username", now); err != nil {
		return Signin{}, err
	}

	sub, err := s.store.PasswordlessSubject(ctx, app.ID, who.match, who.text)
	outcome := outcomeSent
	switch {
	case errors.Is(err, twofold.ErrNotFound):
		sub, outcome = twofold.PasswordlessSubject{}, outcomeUnknown
	case err != nil:
		return Signin{}, err
	case !sub.HasDevice:
		outcome = outcomeNoDevice
	case s.blockedUntil(sub).After(now):
		outcome = outcomeBlocked
	}
	// Requests sent to one user, however named. A name of nobody is counted under itself, so
	// that every request makes this count.
	counted := who.key
	if sub.UserID != 0 {
		counted = "user:" + strconv.FormatInt(sub.UserID, 10)
	}
	over, err := s.over(ctx, limitName("passwordless_user", app, counted), s.cfg.PerUser, now)
	if err != nil {
		return Signin{}, err
	}
	if over && outcome == outcomeSent {
		outcome = outcomeUserLimit
	}

	p := twofold.PasswordlessRequest{UUID: r.UUID, AppID: app.ID, Number: r.Number, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt}
	var send *twofold.ApprovalRequest
	if outcome == outcomeSent {
		r.UserID = sub.UserID
		send = &r
	}
	sent, err := s.store.CreatePasswordless(ctx, &p, send, s.approvals.MaxPending())
	if err != nil {
		return Signin{}, err
	}
	if send != nil && !sent {
		outcome = outcomePendingLimit
	}
	if sent {
		s.approvals.Announce(r)
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditPasswordlessStarted, AppID: app.ID, UserID: sub.UserID,
		Details: map[string]string{"uuid": p.UUID, "outcome": outcome}})
	return Signin{UUID: p.UUID, Number: p.Number, ExpiresAt: p.ExpiresAt, Status: twofold.Pending}, nil
}

// limit counts one request against l under the store's name: over it, the request is refused
// with 60003, and the first refusal within a window's length is recorded in the audit trail
// (kind names the limit; never what was counted).
func (s *Service) limit(ctx context.Context, app twofold.App, name, kind string, l twofold.Limit, what string, now time.Time) error {
	if l.Off() {
		return nil
	}
	h, err := s.store.Hit(ctx, name, now, l)
	if err != nil {
		return err
	}
	if !h.Refused {
		return nil
	}
	if h.FirstRefusal {
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditLimitHit, AppID: app.ID,
			Details: map[string]string{"limit": kind, "max": strconv.Itoa(l.N), "window": l.Window.String()}})
	}
	// Retry-After: when the oldest request counted leaves the window, in whole seconds.
	wait := h.Oldest.Add(l.Window).Sub(now)
	return twofold.ErrLimit(what, max((wait+time.Second-1).Truncate(time.Second), time.Second))
}

// over counts one request against l under name and reports whether l was full.
func (s *Service) over(ctx context.Context, name string, l twofold.Limit, now time.Time) (bool, error) {
	if l.Off() {
		return false, nil
	}
	h, err := s.store.Hit(ctx, name, now, l)
	return h.Refused, err
}

// record appends e to the audit trail, if the service keeps one.
func (s *Service) record(ctx context.Context, e twofold.AuditEvent) {
	if s.audit != nil {
		s.audit.Record(ctx, e)
	}
}
