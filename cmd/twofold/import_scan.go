package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"slices"

	"github.com/twofold-auth/twofold/internal/userimport"
	"github.com/twofold-auth/twofold/internal/userimport/records"
)

// failure is a record that was not imported, and why.
type failure struct {
	Line   int    `json:"line,omitempty"`
	ID     int64  `json:"authy_id,omitempty"`
	Reason string `json:"reason"`
}

// scanned is what the first pass over an input found.
type scanned struct {
	records int    // records in the input, valid or not
	valid   int    // records that can be imported
	ahead   int    // of those, the ones on line `from` or after it (what a resumed run imports)
	failed  []int  // lines of the records refused, ascending
	sha256  string // of the whole input, so a checkpoint can tell it is the same input
}

// skip reports whether the record on line was refused by the scan. Lines are asked for in
// ascending order, so the search only moves forward.
func (s *scanned) skip(line int, next *int) bool {
	for *next < len(s.failed) && s.failed[*next] < line {
		*next++
	}
	return *next < len(s.failed) && s.failed[*next] == line
}

// scanInput reads every record of an input once, before anything is written: it checks each
// (its form, then check), finds authy_ids and phone numbers given to more than one record, and
// hashes the input. Each refused record goes to fail once; records on lines before from are
// checked like the others (a resumed run must refuse what the first refused).
func scanInput(ctx context.Context, r io.Reader, open func(io.Reader) *records.Reader, check func(userimport.Record) error,
	from int, fail func(failure)) (scanned, error) {
	var s scanned
	h := sha256.New()
	rr := open(io.TeeReader(r, h))
	var dups records.Duplicates
	for {
		if s.records%1024 == 0 && ctx.Err() != nil {
			return s, ctx.Err()
		}
		rec, err := rr.Next()
		if err == io.EOF {
			break
		}
		var lerr *records.LineError
		if errors.As(err, &lerr) {
			s.records++
			s.failed = append(s.failed, lerr.Line)
			fail(failure{Line: lerr.Line, ID: lerr.ID, Reason: lerr.Reason})
			continue
		}
		if err != nil {
			return s, err
		}
		s.records++
		if err := check(rec); err != nil {
			s.failed = append(s.failed, rec.Line)
			fail(failure{Line: rec.Line, ID: rec.ID, Reason: checkReason(err)})
			continue
		}
		s.valid++
		if rec.Line >= from {
			s.ahead++
		}
		dups.Add(rec)
	}
	if _, err := io.Copy(h, r); err != nil { // what the reader left unread, if anything
		return s, err
	}
	s.sha256 = hex.EncodeToString(h.Sum(nil))
	for _, d := range dups.Find() {
		s.valid--
		if d.Line >= from {
			s.ahead--
		}
		s.failed = append(s.failed, d.Line)
		fail(failure{Line: d.Line, ID: d.ID, Reason: d.Reason})
	}
	slices.Sort(s.failed)
	return s, nil
}

// checkReason is what userimport.Check said, without the ErrInvalid prefix a report line does
// not need.
func checkReason(err error) string {
	msg := err.Error()
	prefix := userimport.ErrInvalid.Error() + ": "
	if len(msg) > len(prefix) && msg[:len(prefix)] == prefix {
		return msg[len(prefix):]
	}
	return msg
}
