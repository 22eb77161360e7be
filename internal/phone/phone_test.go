package phone

import (
	"errors"
	"testing"
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
