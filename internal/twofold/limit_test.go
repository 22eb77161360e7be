package twofold

import (
	"testing"
	"time"
)

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Limit
		str  string
	}{
		{"10/15m", Limit{10, 15 * time.Minute}, "10/15m"},
		{"200/1s", Limit{200, time.Second}, "200/1s"},
		{"5/m", Limit{5, time.Minute}, "5/1m"},
		{" 3/90m ", Limit{3, 90 * time.Minute}, "3/90m"},
		{"1000/1h", Limit{1000, time.Hour}, "1000/1h"},
		{"7/1h30m5s", Limit{7, time.Hour + 30*time.Minute + 5*time.Second}, "7/5405s"},
		{"off", Limit{}, "off"},
		{"0", Limit{}, "off"},
	} {
		got, err := ParseLimit(tc.in)
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("ParseLimit(%q) = %+v (%s), %v; want %+v (%s)", tc.in, got, got, err, tc.want, tc.str)
		}
		if again, err := ParseLimit(got.String()); err != nil || again != got {
			t.Errorf("ParseLimit(%q) does not read back %q: %+v, %v", tc.in, got.String(), again, err)
		}
	}
	for _, bad := range []string{"", "10", "x/1m", "-1/1m", "10/0s", "10/500ms", "10/800h", "10/forever", "1/", "2000000000/1h"} {
		if _, err := ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q) accepted", bad)
		}
	}
}
