package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Report is the outcome of a verification.
type Report struct {
	Checked  int64  // entries found intact, from the first
	FirstBad int64  // id of the first entry that fails, 0 if none does (a forged entry may have id 0)
	Problem  string // what is wrong with it, "" if nothing
	// LastID and LastHash are the newest intact entry: the chain cannot show that entries were
	// cut off its end, so keep these somewhere else and compare them with a later run.
	LastID   int64
	LastHash []byte
}

// OK reports whether the whole trail verified.
func (r Report) OK() bool { return r.Problem == "" }

// Verify walks the whole trail, oldest first, page by page: ids must run 1, 2, 3… without gaps
// (a deleted entry shows even if the database's guards were removed), each entry must link to
// the hash of the one before, and each hash must be the keyed hash of the entry's contents. It
// stops at the first entry that fails. progress, when not nil, is called after every page with
// the number of entries checked so far. The error is for failures to read, not for tampering.
func (l *Log) Verify(ctx context.Context, progress func(checked int64)) (Report, error) {
	var r Report
	var prev []byte
	for {
		page, err := l.store.AuditPage(ctx, r.LastID, l.pageSize)
		if err != nil {
			return r, fmt.Errorf("read audit trail after entry %d: %w", r.LastID, err)
		}
		for _, e := range page {
			if problem := l.check(r.LastID, prev, e); problem != "" {
				r.FirstBad, r.Problem = e.ID, problem
				return r, nil
			}
			r.Checked++
			r.LastID, r.LastHash, prev = e.ID, e.Hash, e.Hash
		}
		if progress != nil && len(page) > 0 {
			progress(r.Checked)
		}
		if len(page) < l.pageSize {
			return r, nil
		}
	}
}

// check says what is wrong with e, which follows entry lastID (0: none) whose hash is prev.
func (l *Log) check(lastID int64, prev []byte, e twofold.AuditEvent) string {
	switch want := lastID + 1; {
	case e.ID == want+1:
		return fmt.Sprintf("entry %d, before it, is missing: deleted", want)
	case e.ID > want:
		return fmt.Sprintf("entries %d to %d, before it, are missing: deleted", want, e.ID-1)
	case e.ID != want:
		return fmt.Sprintf("its id is out of sequence after entry %d: an entry was inserted", lastID)
	case !bytes.Equal(e.PrevHash, prev):
		if lastID == 0 {
			return "the first entry links to a previous one: entries before it were removed"
		}
		return fmt.Sprintf("it does not link to entry %d: entries were swapped, replaced or re-chained", lastID)
	case !hmac.Equal(e.Hash, l.chain(prev, e)):
		return "its hash does not match its contents: it was changed, or written without the master key"
	}
	return ""
}

// Entry is an audit event as exported: one JSON object per line, hashes in hex. With the master
// key the chain can be checked from these lines alone (Encode's fields are all here; at keeps
// its nanoseconds).
type Entry struct {
	ID       int64             `json:"id"`
	At       time.Time         `json:"at"`
	Actor    string            `json:"actor"`
	Action   string            `json:"action"`
	AppID    int64             `json:"app_id"`
	UserID   int64             `json:"user_id"`
	Details  map[string]string `json:"details"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
}

// ToEntry is e in its exported form.
func ToEntry(e twofold.AuditEvent) Entry {
	d := e.Details
	if d == nil {
		d = map[string]string{}
	}
	return Entry{ID: e.ID, At: e.At.UTC(), Actor: e.Actor, Action: e.Action, AppID: e.AppID, UserID: e.UserID, Details: d,
		PrevHash: hex.EncodeToString(e.PrevHash), Hash: hex.EncodeToString(e.Hash)}
}

// Export writes every entry that matches f (its Limit and Newest aside) as JSON lines, oldest
// first, reading page by page.
func (l *Log) Export(ctx context.Context, w io.Writer, f twofold.AuditFilter) error {
	enc := json.NewEncoder(w)
	f.Limit, f.Newest = l.pageSize, false
	for {
		page, err := l.store.ListAudit(ctx, f)
		if err != nil {
			return fmt.Errorf("read audit trail: %w", err)
		}
		for _, e := range page {
			if err := enc.Encode(ToEntry(e)); err != nil {
				return err
			}
		}
		if len(page) < l.pageSize {
			return nil
		}
		f.AfterID = page[len(page)-1].ID
	}
}
