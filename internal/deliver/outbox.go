// Package deliver hands messages (one-time codes by SMS, voice or email) to whatever delivers
// them. The Outbox is the default: it records every message in the store, sealed, and delivers
// nothing, so developers read codes with `twofold outbox`. Real providers come beside it.
package deliver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Statuses of recorded messages.
const (
	StatusRecorded = "recorded" // kept in the outbox; no provider configured
	StatusSandbox  = "sandbox"  // sandbox application: never delivered
)

// Store is what the outbox needs from persistence.
type Store interface {
	InsertMessage(ctx context.Context, m *twofold.Message) error
	ListMessages(ctx context.Context, f twofold.MessageFilter) ([]twofold.Message, error)
}

// Outbox records messages instead of sending them.
type Outbox struct {
	store Store
	keys  *seal.Keyring
	log   *slog.Logger
	now   func() time.Time
}

// NewOutbox returns an Outbox. now may be nil for time.Now.
func NewOutbox(store Store, keys *seal.Keyring, log *slog.Logger, now func() time.Time) *Outbox {
	if now == nil {
		now = time.Now
	}
	return &Outbox{store: store, keys: keys, log: log, now: now}
}

// Send records m and returns it as stored (with SID, status and time set).
func (o *Outbox) Send(ctx context.Context, m twofold.Message, sandbox bool) (twofold.Message, error) {
	m.SID = newSID(m.Channel)
	m.CreatedAt = o.now().UTC()
	m.Status = StatusRecorded
	if sandbox {
		m.Status = StatusSandbox
	}
	m.BodySealed = o.keys.Seal([]byte(m.Body), bodyAD(m.SID))
	if err := o.store.InsertMessage(ctx, &m); err != nil {
		return twofold.Message{}, fmt.Errorf("outbox: %w", err)
	}
	o.log.InfoContext(ctx, "message recorded in outbox", "sid", m.SID, "app_id", m.AppID, "user_id", m.UserID,
		"channel", m.Channel, "to", maskRecipient(m.To), "status", m.Status, "body", Redact(m.Body))
	return m, nil
}

// List returns recorded messages, newest last, with their bodies opened.
func (o *Outbox) List(ctx context.Context, f twofold.MessageFilter) ([]twofold.Message, error) {
	msgs, err := o.store.ListMessages(ctx, f)
	if err != nil {
		return nil, err
	}
	for i := range msgs {
		body, err := o.keys.Open(msgs[i].BodySealed, bodyAD(msgs[i].SID))
		if err != nil {
			return nil, fmt.Errorf("outbox: message %s: %w", msgs[i].SID, err)
		}
		msgs[i].Body = string(body)
	}
	return msgs, nil
}

func bodyAD(sid string) string { return "message:" + sid }

// newSID returns a public message id in Twilio's style: a two-letter prefix and 32 hex digits.
func newSID(c twofold.Channel) string {
	prefix := map[twofold.Channel]string{twofold.SMS: "SM", twofold.Call: "CA", twofold.Email: "EM"}[c]
	if prefix == "" {
		prefix = "MM"
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic("deliver: crypto/rand failed: " + err.Error())
	}
	return prefix + hex.EncodeToString(b)
}

var digitRun = regexp.MustCompile(`\d(?:(?:,\s*|[\s-])?\d){3,}`)

// Redact hides every run of four or more digits (codes, possibly spaced out for voice) so a
// message can be logged.
func Redact(body string) string {
	return digitRun.ReplaceAllStringFunc(body, func(s string) string { return strings.Repeat("•", 3) })
}

// maskRecipient keeps logs useful without writing out whole phone numbers and addresses:
// "+1*******23", "a***@example.com".
func maskRecipient(to string) string {
	if at := strings.LastIndex(to, "@"); at > 0 {
		return to[:1] + "***" + to[at:]
	}
	if len(to) <= 4 {
		return to
	}
	return to[:2] + strings.Repeat("*", len(to)-4) + to[len(to)-2:]
}
