package otp

import (
	"testing"
	"time"
)

// The hot path of every TOTP verify: one HMAC-SHA1 per step in the window, whatever the code
// (BenchmarkMatch in otp_test.go is the valid code of the previous step).
func BenchmarkMatchWindow(b *testing.B) {
	t := TOTP{Secret: []byte("12345678901234567890"), Digits: 6, Period: 30}
	at := time.Unix(1_700_000_000, 0)
	for _, bc := range []struct {
		name string
		code string
		skew int
	}{
		{"valid/skew1", t.Code(at), 1},
		{"wrong/skew1", "000000", 1},
		{"wrong/skew3", "000000", 3},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				t.Match(bc.code, at, bc.skew)
			}
		})
	}
}
