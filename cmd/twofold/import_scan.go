package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/twofold-auth/twofold/internal/userimport"
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
func scanInput(ctx context.Context, r io.Reader, open func(io.Reader) *recordReader, check func(userimport.Record) error,
	from int, fail func(failure)) (scanned, error) {
	var s scanned
	h := sha256.New()
	rr := open(io.TeeReader(r, h))
	var dups dupFinder
	for {
		if s.records%1024 == 0 && ctx.Err() != nil {
			return s, ctx.Err()
		}
		rec, err := rr.next()
		if err == io.EOF {
			break
		}
		var lerr *lineError
		if errors.As(err, &lerr) {
			s.records++
			s.failed = append(s.failed, lerr.line)
			fail(failure{Line: lerr.line, ID: lerr.id, Reason: lerr.msg})
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
		dups.add(rec)
	}
	if _, err := io.Copy(h, r); err != nil { // what the reader left unread, if anything
		return s, err
	}
	s.sha256 = hex.EncodeToString(h.Sum(nil))
	for _, f := range dups.find() {
		s.valid--
		if f.Line >= from {
			s.ahead--
		}
		s.failed = append(s.failed, f.Line)
		fail(f)
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

// dupFinder finds authy_ids and phone numbers that more than one record of a file has. It keeps
// 16 bytes per record for ids and 24 per record with a phone number, sorted once at the end: a
// million users take some 40 MB, where a map would take more.
type dupFinder struct {
	ids    []keyLine
	phones []phoneLine
}

type keyLine struct {
	key  int64
	line int
}

type phoneLine struct {
	key  uint64
	id   int64
	line int
}

func (d *dupFinder) add(r userimport.Record) {
	d.ids = append(d.ids, keyLine{r.ID, r.Line})
	if k, ok := phoneKey(r.CountryCode, r.Phone); ok {
		d.phones = append(d.phones, phoneLine{k, r.ID, r.Line})
	}
}

// phoneKey packs a calling code and up to 15 national digits into a number, keeping leading
// zeros apart ("06…" is not "6…").
func phoneKey(cc int, national string) (uint64, bool) {
	if cc <= 0 || cc > 999 || national == "" || len(national) > 15 {
		return 0, false
	}
	n, err := strconv.ParseUint(national, 10, 64)
	if err != nil {
		return 0, false
	}
	return (uint64(cc)*16+uint64(len(national)))*1e15 + n, true
}

// find returns a failure for every record whose authy_id or phone number another record has,
// each naming the first other line; a record with both is reported for its id only.
func (d *dupFinder) find() []failure {
	var out []failure
	slices.SortFunc(d.ids, func(a, b keyLine) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.line, b.line)) })
	var idDups []int
	for i := 0; i < len(d.ids); {
		j := i + 1
		for j < len(d.ids) && d.ids[j].key == d.ids[i].key {
			j++
		}
		if j-i > 1 {
			for k := i; k < j; k++ {
				other := d.ids[i].line
				if k == i {
					other = d.ids[i+1].line
				}
				out = append(out, failure{Line: d.ids[k].line, ID: d.ids[k].key,
					Reason: fmt.Sprintf("authy_id %d is also on line %d", d.ids[k].key, other)})
				idDups = append(idDups, d.ids[k].line)
			}
		}
		i = j
	}
	slices.Sort(idDups)
	slices.SortFunc(d.phones, func(a, b phoneLine) int { return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.line, b.line)) })
	for i := 0; i < len(d.phones); {
		j := i + 1
		for j < len(d.phones) && d.phones[j].key == d.phones[i].key {
			j++
		}
		if j-i > 1 {
			for k := i; k < j; k++ {
				if _, found := slices.BinarySearch(idDups, d.phones[k].line); found {
					continue
				}
				other := d.phones[i].line
				if k == i {
					other = d.phones[i+1].line
				}
				// The number itself is not repeated in the report: the line says where it is.
				out = append(out, failure{Line: d.phones[k].line, ID: d.phones[k].id,
					Reason: fmt.Sprintf("the phone number is also on line %d", other)})
			}
		}
		i = j
	}
	d.ids, d.phones = nil, nil
	return out
}
