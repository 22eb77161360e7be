package records

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"

	"github.com/twofold-auth/twofold/internal/userimport"
)

// Duplicates finds authy_ids and phone numbers that more than one record of an input has. It
// keeps 16 bytes per record for ids and 24 per record with a phone number, sorted once at the
// end: a million users take some 40 MB, where a map would take more. The zero value is ready
// to use.
type Duplicates struct {
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

// Add takes one record (its ID, Line and phone number).
func (d *Duplicates) Add(r userimport.Record) {
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

// Find returns an error for every record whose authy_id or phone number another record has,
// each naming the first other line: first those of ids, then those of phone numbers, each by
// the value, then the line. A record with both is reported for its id only. Find empties d.
func (d *Duplicates) Find() []LineError {
	var out []LineError
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
				out = append(out, LineError{Line: d.ids[k].line, ID: d.ids[k].key,
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
				out = append(out, LineError{Line: d.phones[k].line, ID: d.phones[k].id,
					Reason: fmt.Sprintf("the phone number is also on line %d", other)})
			}
		}
		i = j
	}
	d.ids, d.phones = nil, nil
	return out
}
