// Package audit keeps the audit trail: security-relevant events (keys created and rotated, users
// and devices added and removed, verifications, approvals, limits hit, operator sign-ins),
// appended once and never changed. Every entry carries an HMAC-SHA256, under the trail's key
// (kept sealed with the master key), of the previous entry's hash and its own fields, so a
// changed, deleted, inserted or reordered entry breaks the chain, and someone who can write the
// database but lacks the master key cannot forge a valid one. Verify walks the chain; Export writes it as JSON lines.
//
// Recording never fails the action it records: a write that fails is logged at ERROR and
// counted, and the action stands. (An audit trail that can veto logins is a denial of service.)
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"sort"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the audit trail needs from persistence.
type Store interface {
	AppendAudit(ctx context.Context, e *twofold.AuditEvent, chain func(prev []byte, e twofold.AuditEvent) []byte) error
	ListAudit(ctx context.Context, f twofold.AuditFilter) ([]twofold.AuditEvent, error)
	AuditPage(ctx context.Context, afterID int64, n int) ([]twofold.AuditEvent, error)
}

// KeyLabel names the master key's subkey that keys the chain (seal.Keyring.Subkey). Servers
// derive it once, from the master key the database is set up with, and keep it in the database
// sealed (masterkey.AuditKey), so the chain outlives a rotation of the master key.
const KeyLabel = "audit v1"

// writeTimeout bounds one append, which runs even when the request that caused it has ended.
const writeTimeout = 10 * time.Second

// Log is the audit trail. It is safe for concurrent use.
type Log struct {
	store    Store
	key      []byte
	now      func() time.Time
	log      *slog.Logger
	failed   func()
	pageSize int // entries Verify and Export read at a time
}

// New returns the trail kept in store, chained with key (the stored key, see KeyLabel).
// now may be nil for time.Now, logger nil for slog.Default().
func New(store Store, key []byte, now func() time.Time, logger *slog.Logger) *Log {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Log{store: store, key: append([]byte(nil), key...), now: now, log: logger, pageSize: 1000}
}

// OnWriteFailure sets a function called for every event that could not be recorded (a metric).
// Set it before the Log is used.
func (l *Log) OnWriteFailure(f func()) { l.failed = f }

// Record appends e to the trail, filling in At (now) and Actor (the context's, see WithActor)
// when they are empty. It never fails the caller: the action it records has happened. A failed
// write is logged at ERROR with what was lost and counted (OnWriteFailure). The write outlives
// ctx's cancellation, so a client that hangs up does not erase its trace.
func (l *Log) Record(ctx context.Context, e twofold.AuditEvent) {
	if e.Actor == "" {
		e.Actor = ActorFrom(ctx)
	}
	if _, err := l.Append(ctx, e); err != nil {
		l.log.ErrorContext(ctx, "audit trail: event NOT recorded", "action", e.Action, "actor", e.Actor,
			"app_id", e.AppID, "user_id", e.UserID, "err", err)
		if l.failed != nil {
			l.failed()
		}
	}
}

// Append is Record that reports the outcome: the entry as written, or the error.
func (l *Log) Append(ctx context.Context, e twofold.AuditEvent) (twofold.AuditEvent, error) {
	if e.At.IsZero() {
		e.At = l.now()
	}
	e.At = e.At.UTC()
	if e.Actor == "" {
		e.Actor = ActorFrom(ctx)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	err := l.store.AppendAudit(ctx, &e, l.chain)
	return e, err
}

// Entry makes e ready to be appended inside the store transaction that makes the change it
// records (store.Decide), with At (now) and Actor (the context's) filled in when empty: the
// change and its record then commit together, or neither does. Unlike Record, a failure to
// write it fails the change, which has not happened.
func (l *Log) Entry(ctx context.Context, e twofold.AuditEvent) twofold.AuditEntry {
	if e.At.IsZero() {
		e.At = l.now()
	}
	e.At = e.At.UTC()
	if e.Actor == "" {
		e.Actor = ActorFrom(ctx)
	}
	return twofold.AuditEntry{Event: e, Chain: l.chain}
}

// List returns entries that match f, oldest first.
func (l *Log) List(ctx context.Context, f twofold.AuditFilter) ([]twofold.AuditEvent, error) {
	return l.store.ListAudit(ctx, f)
}

// chain is the entry's hash: HMAC-SHA256 under the trail's key of Encode(prev, e).
func (l *Log) chain(prev []byte, e twofold.AuditEvent) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write(Encode(prev, e))
	return m.Sum(nil)
}

// Encode is the canonical byte form the hash covers: a version tag, the previous hash, and the
// entry's id, time (Unix nanoseconds), actor, action, application, user and details (sorted by
// key). Every variable field is length-prefixed, so no two different entries encode alike.
// PrevHash and Hash of e are not read.
func Encode(prev []byte, e twofold.AuditEvent) []byte {
	b := make([]byte, 0, 128)
	b = appendField(b, "twofold-audit-v1")
	b = appendField(b, string(prev))
	b = binary.BigEndian.AppendUint64(b, uint64(e.ID))
	var at int64
	if !e.At.IsZero() {
		at = e.At.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	b = appendField(b, e.Actor)
	b = appendField(b, e.Action)
	b = binary.BigEndian.AppendUint64(b, uint64(e.AppID))
	b = binary.BigEndian.AppendUint64(b, uint64(e.UserID))
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = appendField(b, k)
		b = appendField(b, e.Details[k])
	}
	return b
}

func appendField(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

type actorKey struct{}

// WithActor returns a context that attributes the events recorded under it to actor: the wire
// adapters set it once per authenticated request ("api:app/3", "device:12"), the CLI to "cli".
// It is request-scoped data, not a dependency.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the context's actor, or "system" when none was set.
func ActorFrom(ctx context.Context) string {
	if a, ok := ctx.Value(actorKey{}).(string); ok && a != "" {
		return a
	}
	return "system"
}
