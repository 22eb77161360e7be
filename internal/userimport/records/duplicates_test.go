package records

import (
	"reflect"
	"testing"

	"github.com/twofold-auth/twofold/internal/userimport"
)

func TestDuplicates(t *testing.T) {
	var d Duplicates
	for _, r := range []userimport.Record{
		{Line: 2, ID: 1, CountryCode: 1, Phone: "2015550123"},  // its phone is line 6's
		{Line: 3, ID: 2, CountryCode: 1, Phone: "2015550124"},  // its id is line 8's
		{Line: 4, ID: 3, CountryCode: 1, Phone: "02015550123"}, // the same digits but a leading zero: another number
		{Line: 6, ID: 4, CountryCode: 1, Phone: "2015550123"},
		{Line: 8, ID: 2, CountryCode: 44, Phone: "2015550124"}, // same national digits, another country
		{Line: 9, ID: 6},
		{Line: 10, ID: 7, CountryCode: 1, Phone: "2015550129"}, // both its id and its phone are line 11's
		{Line: 11, ID: 7, CountryCode: 1, Phone: "2015550129"},
		{Line: 12, ID: 8, CountryCode: 1, Phone: "2015550129"}, // its phone is lines 10 and 11's
	} {
		d.Add(r)
	}
	want := []LineError{
		{Line: 3, ID: 2, Reason: "authy_id 2 is also on line 8"},
		{Line: 8, ID: 2, Reason: "authy_id 2 is also on line 3"},
		{Line: 10, ID: 7, Reason: "authy_id 7 is also on line 11"},
		{Line: 11, ID: 7, Reason: "authy_id 7 is also on line 10"},
		{Line: 2, ID: 1, Reason: "the phone number is also on line 6"},
		{Line: 6, ID: 4, Reason: "the phone number is also on line 2"},
		{Line: 12, ID: 8, Reason: "the phone number is also on line 10"},
	}
	if got := d.Find(); !reflect.DeepEqual(got, want) {
		t.Errorf("duplicates:\n%+v\nwant\n%+v", got, want)
	}
	if got := d.Find(); len(got) != 0 {
		t.Errorf("Find again: %+v", got)
	}
}

func TestPhoneKey(t *testing.T) {
	for _, tc := range []struct {
		cc       int
		national string
		ok       bool
	}{
		{1, "2015550123", true},
		{999, "123456789012345", true},
		{0, "2015550123", false},
		{1000, "2015550123", false},
		{1, "", false},
		{1, "1234567890123456", false},
		{1, "20155501x3", false},
	} {
		if _, ok := phoneKey(tc.cc, tc.national); ok != tc.ok {
			t.Errorf("phoneKey(%d, %q): ok %v", tc.cc, tc.national, ok)
		}
	}
	a, _ := phoneKey(1, "2015550123")
	b, _ := phoneKey(1, "02015550123")
	c, _ := phoneKey(12, "015550123")
	if a == b || a == c || b == c {
		t.Errorf("keys collide: %d %d %d", a, b, c)
	}
}
