package phone

import (
	"errors"
	"strconv"
	"testing"

	"github.com/twofold-auth/twofold/internal/twofold"
)

func TestParse(t *testing.T) {
	tests := []struct {
		cc, number     string
		wantNational   string
		wantMasked     string
		wantMaskedUser string
		wantType       Type
	}{
		{"1", "775-461-5609", "7754615609", "+1-XXX-XXX-XX09", "XXX-XXX-5609", FixedOrMobile},
		{"+1", "(201) 555.0123", "2015550123", "+1-XXX-XXX-XX23", "XXX-XXX-0123", FixedOrMobile},
		{"57", "300 123 4512", "3001234512", "+57-XXX-XXX-XX12", "XXX-XXX-4512", Mobile},
		{"351", "912345678", "912345678", "+351-XXX-XXX-X78", "XXX-XX5-678", Mobile},
		{"44", "+44 7400 123456", "7400123456", "+44-XXX-XXX-XX56", "XXX-XXX-3456", Mobile},
		{"44", "020 7946 0018", "2079460018", "+44-XXX-XXX-XX18", "XXX-XXX-0018", Landline},
	}
	for _, tt := range tests {
		n, err := Parse(tt.cc, tt.number)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tt.cc, tt.number, err)
			continue
		}
		if n.National != tt.wantNational || n.Masked() != tt.wantMasked || n.MaskedLocal() != tt.wantMaskedUser || n.Type != tt.wantType {
			t.Errorf("Parse(%q, %q) = %+v masked %q local %q", tt.cc, tt.number, n, n.Masked(), n.MaskedLocal())
		}
		if n.E164() != "+"+tt.cc[len(tt.cc)-len(itoa(n.CountryCode)):]+tt.wantNational {
			t.Errorf("E164 = %q", n.E164())
		}
	}
}

func itoa(i int) string {
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		cc, number string
		want       error
	}{
		{"", "7754615609", ErrCountryCode},
		{"0", "7754615609", ErrCountryCode},
		{"999", "7754615609", ErrCountryCode},
		{"US", "7754615609", ErrCountryCode},
		{"1", "", ErrNumber},
		{"1", "123", ErrNumber},
		{"1", "tony", ErrNumber},
		{"1", "775-461-5609; drop", ErrNumber},
		{"1", "+57 300 123 4512", ErrNumber}, // a full number must agree with the calling code
		{"1", "12345678901234567890123456789012345678901234567890123456789012345", ErrNumber},
	}
	for _, tt := range tests {
		if _, err := Parse(tt.cc, tt.number); !errors.Is(err, tt.want) {
			t.Errorf("Parse(%q, %q) err = %v, want %v", tt.cc, tt.number, err, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("1", "775-461-5609")
	f.Add("+57", "300 123 4512")
	f.Add("44", "+44 7400 123456")
	f.Add("1", "+")
	f.Add("7", "((((((")
	f.Fuzz(func(t *testing.T, cc, number string) {
		n, err := Parse(cc, number)
		if err != nil {
			return
		}
		// Anything accepted must format, and re-parse to itself.
		_, _ = n.Masked(), n.MaskedLocal()
		again, err := Parse(itoa(n.CountryCode), n.National)
		if err != nil || again != n {
			t.Fatalf("round trip of %+v: %+v, %v", n, again, err)
		}
	})
}

// TestAnyDigits: a sandbox application's rules take any 7 to 15 digits under a known calling
// code, as Authy's sandbox did; numbers the plan knows keep what the plan says of them.
func TestAnyDigits(t *testing.T) {
	tests := []struct {
		cc, number   string
		wantNational string
		wantRegion   string
		wantType     Type
		offPlan      bool
	}{
		{"1", "111-111-1111", "1111111111", "US", Other, true},
		{"1", "432-123-1111", "4321231111", "US", Other, true},
		{"57", "825-589-8570", "8255898570", "CO", Other, true},
		{"54", "555-9302", "5559302", "AR", Other, true},
		{"+49", "123456789012345", "123456789012345", "DE", Other, true},
		{"1", "+1 111 111 1111", "1111111111", "US", Other, true},
		{"1", "775-461-5609", "7754615609", "US", FixedOrMobile, false},
		{"44", "020 7946 0018", "2079460018", "GB", Landline, false},
	}
	for _, tt := range tests {
		n, err := AnyDigits.Parse(tt.cc, tt.number)
		if err != nil {
			t.Errorf("AnyDigits.Parse(%q, %q): %v", tt.cc, tt.number, err)
			continue
		}
		if n.National != tt.wantNational || n.Region != tt.wantRegion || n.Type != tt.wantType || n.OffPlan != tt.offPlan {
			t.Errorf("AnyDigits.Parse(%q, %q) = %+v", tt.cc, tt.number, n)
		}
		again, err := AnyDigits.OfUser(n.CountryCode, n.National)
		if err != nil || again != n {
			t.Errorf("AnyDigits.OfUser(%d, %q) = %+v, %v; want %+v", n.CountryCode, n.National, again, err, n)
		}
		if _, err := Plan.Parse(tt.cc, tt.number); (err == nil) == tt.offPlan {
			t.Errorf("Plan.Parse(%q, %q): %v", tt.cc, tt.number, err)
		}
	}
	if n, _ := AnyDigits.Parse("1", "111-111-1111"); n.Masked() != "+1-XXX-XXX-XX11" || n.E164() != "+11111111111" {
		t.Errorf("masked %q, E.164 %q", n.Masked(), n.E164())
	}

	rejects := []struct {
		cc, number string
		want       error
	}{
		{"", "1111111111", ErrCountryCode},
		{"999", "1111111111", ErrCountryCode},
		{"-100", "1111111111", ErrCountryCode},
		{"1", "", ErrNumber},
		{"1", "111-111", ErrNumber},            // six digits
		{"1", "1234567890123456", ErrNumber},   // sixteen
		{"1", "555-CALL-NOW", ErrNumber},       // letters
		{"1", "+57 300 123 4512", ErrNumber},   // a full number must agree with the calling code
		{"1", "111 111 1111; drop", ErrNumber}, // anything but digits and separators
		{"1", "+", ErrNumber},
	}
	for _, tt := range rejects {
		if _, err := AnyDigits.Parse(tt.cc, tt.number); !errors.Is(err, tt.want) {
			t.Errorf("AnyDigits.Parse(%q, %q) err = %v, want %v", tt.cc, tt.number, err, tt.want)
		}
	}
}

func TestRulesFor(t *testing.T) {
	if RulesFor(twofold.App{Sandbox: true}) != AnyDigits || RulesFor(twofold.App{}) != Plan {
		t.Fatal("a sandbox application takes any digits; every other keeps the numbering plan")
	}
}

func FuzzParseAnyDigits(f *testing.F) {
	f.Add("1", "111-111-1111")
	f.Add("44", "+44 7400 123456")
	f.Add("49", "123456789012345")
	f.Add("1", "+1")
	f.Fuzz(func(t *testing.T, cc, number string) {
		n, err := AnyDigits.Parse(cc, number)
		if err != nil {
			return
		}
		_, _, _ = n.Masked(), n.MaskedLocal(), n.Format(true)
		if d := len(n.National); n.OffPlan && (d < 7 || d > 15) {
			t.Fatalf("%+v: %d digits", n, d)
		}
		again, err := AnyDigits.OfUser(n.CountryCode, n.National)
		if err != nil || again != n {
			t.Fatalf("round trip of %+v: %+v, %v", n, again, err)
		}
	})
}

func TestParseE164(t *testing.T) {
	for _, c := range []struct {
		in    string
		rules Rules
		want  string // E164 of the result; "" for an error
		typ   Type
	}{
		{"+15005550006", AnyDigits, "+15005550006", Other},
		{"+12015550123", Plan, "+12015550123", FixedOrMobile},
		{"+351912345678", Plan, "+351912345678", Mobile},
		{"+442079460018", Plan, "+442079460018", Landline},
		{"+573001234512", Plan, "+573001234512", Mobile},
		{"+11111111111", Plan, "", ""}, // not on the plan: only a sandbox takes it
		{"+11111111111", AnyDigits, "+11111111111", Other},
		{"15005550006", AnyDigits, "", ""},
		{"+1 201 555 0123", Plan, "", ""},
		{"+1-201-555-0123", Plan, "", ""},
		{"+", AnyDigits, "", ""},
		{"+1", AnyDigits, "", ""},
		{"+0123456789", AnyDigits, "", ""},
		{"+12015550123456789", AnyDigits, "", ""},
		{"+1２015550123", AnyDigits, "", ""},
		{"+999123456789", AnyDigits, "", ""},
	} {
		n, err := c.rules.ParseE164(c.in)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("ParseE164(%q) = %+v, want an error", c.in, n)
		case c.want != "" && (err != nil || n.E164() != c.want || n.Type != c.typ):
			t.Errorf("ParseE164(%q) = %+v, %v; want %s (%s)", c.in, n, err, c.want, c.typ)
		}
	}
}

func FuzzParseE164(f *testing.F) {
	for _, s := range []string{"+15005550006", "+351912345678", "+", "+1", "+0", "+99999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range []Rules{Plan, AnyDigits} {
			n, err := r.ParseE164(s)
			if err == nil && n.E164() != s {
				t.Fatalf("ParseE164(%q) = %s", s, n.E164())
			}
		}
	})
}

// A stored number reads the same from the cache as from the plan, under each rules apart: a
// number only AnyDigits accepts is never served to the plan's reading. The cache stays bounded.
func TestOfUserReadsAsParse(t *testing.T) {
	cases := []struct {
		cc       int
		national string
	}{{1, "2015550123"}, {57, "3001234567"}, {44, "7400123456"}, {1, "5555555"}, {999, "12345"}}
	for range 2 { // the second pass reads from the cache
		for _, rules := range []Rules{Plan, AnyDigits} {
			for _, c := range cases {
				want, wantErr := rules.Parse(strconv.Itoa(c.cc), c.national)
				got, err := rules.OfUser(c.cc, c.national)
				if got != want || (err == nil) != (wantErr == nil) {
					t.Errorf("rules %d OfUser(%d, %s) = %+v, %v; Parse gives %+v, %v", rules, c.cc, c.national, got, err, want, wantErr)
				}
			}
		}
	}
	c := &readingCache{max: 4}
	for i := range 10 {
		c.put(ofUserKey{Plan, 1, strconv.Itoa(i)}, Number{})
		if len(c.m) > c.max {
			t.Fatalf("the cache holds %d readings, more than its %d", len(c.m), c.max)
		}
	}
}

func BenchmarkOfUser(b *testing.B) {
	for b.Loop() {
		if _, err := Plan.OfUser(1, "2015550123"); err != nil {
			b.Fatal(err)
		}
	}
}
