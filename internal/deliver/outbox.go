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
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the outbox needs from persistence.
type Store interface {
	InsertMessage(ctx context.Context, m *twofold.Message) error
	UpdateMessage(ctx context.Context, m twofold.Message) error
	SetDelivery(ctx context.Context, provider, providerID, delivery, errText string, at time.Time) error
	ListMessages(ctx context.Context, f twofold.MessageFilter) ([]twofold.Message, error)
	AddRefusal(ctx context.Context, appID int64, at time.Time, ch twofold.Channel, reason string) error
	DeliverySummary(ctx context.Context, appID int64, since time.Time) ([]twofold.DeliveryCount, error)
}

// Outbox records every message handed to delivery, sealed, and what became of it. With no
// provider configured it is all there is: developers read codes with `twofold outbox`.
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

// prepare gives m a new SID and the given status and provider, and seals its body: the message
// as the outbox records it. An email's subject is kept as the body's first line, so the outbox
// shows it.
func (o *Outbox) prepare(m twofold.Message, status, provider string) twofold.Message {
	m.SID = newSID(m.Channel)
	m.CreatedAt = o.now().UTC()
	m.UpdatedAt = m.CreatedAt
	m.Status, m.Provider = status, provider
	m.BodySealed = o.keys.Seal([]byte(sealedBody(m)), BodyAD(m.SID))
	return m
}

// sealedBody is the text the outbox seals: the body, after an email's subject line.
func sealedBody(m twofold.Message) string {
	if m.Subject != "" {
		return "Subject: " + m.Subject + "\n\n" + m.Body
	}
	return m.Body
}

// insert stores a prepared message.
func (o *Outbox) insert(ctx context.Context, m *twofold.Message) error {
	if err := o.store.InsertMessage(ctx, m); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// logRecorded logs a message recorded, with its body redacted.
func (o *Outbox) logRecorded(ctx context.Context, m twofold.Message) {
	o.log.InfoContext(ctx, "message recorded", "sid", m.SID, "app_id", m.AppID, "user_id", m.UserID,
		"channel", m.Channel, "to", maskRecipient(m.To), "status", m.Status, "provider", m.Provider, "body", Redact(sealedBody(m)))
}

// Summary counts messages by channel, provider and status, and refusals by reason, since a time.
func (o *Outbox) Summary(ctx context.Context, appID int64, since time.Time) ([]twofold.DeliveryCount, error) {
	return o.store.DeliverySummary(ctx, appID, since)
}

// List returns recorded messages, newest last, with their bodies opened.
func (o *Outbox) List(ctx context.Context, f twofold.MessageFilter) ([]twofold.Message, error) {
	msgs, err := o.store.ListMessages(ctx, f)
	if err != nil {
		return nil, err
	}
	for i := range msgs {
		body, err := o.keys.Open(msgs[i].BodySealed, BodyAD(msgs[i].SID))
		if err != nil {
			return nil, fmt.Errorf("outbox: message %s: %w", msgs[i].SID, err)
		}
		msgs[i].Body = string(body)
	}
	return msgs, nil
}

// BodyAD binds a message's sealed body to its SID.
func BodyAD(sid string) string { return "message:" + sid }

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

// Redact hides every run of four or more digits (codes, possibly spaced out for voice) so a
// message can be logged: what the pattern \d(?:(?:,\s*|[\s-])?\d){3,} matches, each replaced
// by "•••". It is scanned by hand because every message logged runs it: the regular
// expression was a tenth of a send's work.
func Redact(body string) string {
	var b strings.Builder
	last := 0 // body[last:i] is not copied yet
	for i := 0; i < len(body); {
		if !isDigit(body[i]) {
			i++
			continue
		}
		end, digits := i+1, 1
		for {
			j := end
			switch {
			case j < len(body) && body[j] == ',':
				for j++; j < len(body) && isSpace(body[j]); j++ {
				}
			case j < len(body) && (isSpace(body[j]) || body[j] == '-'):
				j++
			}
			if j >= len(body) || !isDigit(body[j]) {
				break
			}
			end, digits = j+1, digits+1
		}
		if digits < 4 {
			i++
			continue
		}
		if b.Len() == 0 {
			b.Grow(len(body))
		}
		b.WriteString(body[last:i])
		b.WriteString("•••")
		last, i = end, end
	}
	if last == 0 {
		return body
	}
	b.WriteString(body[last:])
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isSpace is \s of Go's regular expressions.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r' }

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
