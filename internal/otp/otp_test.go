package otp

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	potp "github.com/pquerna/otp"
	ptotp "github.com/pquerna/otp/totp"
)

var (
	seed20 = []byte("12345678901234567890")
	seed32 = []byte("12345678901234567890123456789012")
	seed64 = []byte("1234567890123456789012345678901234567890123456789012345678901234")
)

func TestHOTPRFC4226(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314",
		"254676", "287922", "162583", "399871", "520489"}
	for c, w := range want {
		if got := HOTP(seed20, uint64(c), 6, SHA1); got != w {
			t.Errorf("HOTP(counter=%d) = %q, want %q", c, got, w)
		}
		// The empty algorithm is SHA1.
		if got := HOTP(seed20, uint64(c), 6, ""); got != w {
			t.Errorf("HOTP(counter=%d, alg=\"\") = %q, want %q", c, got, w)
		}
	}
}

func TestHOTPInvalid(t *testing.T) {
	tests := []struct {
		name   string
		secret []byte
		digits int
		alg    Algorithm
	}{
		{"digits 5", seed20, 5, SHA1},
		{"digits 11", seed20, 11, SHA1},
		{"digits 0", seed20, 0, SHA1},
		{"unknown alg", seed20, 6, "MD5"},
		{"lowercase alg", seed20, 6, "sha1"},
		{"empty secret", nil, 6, SHA1},
	}
	for _, tt := range tests {
		if got := HOTP(tt.secret, 0, tt.digits, tt.alg); got != "" {
			t.Errorf("%s: HOTP = %q, want \"\"", tt.name, got)
		}
	}
}

func TestHOTPDigits(t *testing.T) {
	// Longer codes extend shorter ones to the left: all are the same
	// truncated value modulo 10^digits.
	for d := MinDigits; d <= MaxDigits; d++ {
		got := HOTP(seed20, 0, d, SHA1)
		if len(got) != d {
			t.Fatalf("digits %d: got %q", d, got)
		}
		if !strings.HasSuffix(got, "755224") {
			t.Errorf("digits %d: %q does not end in 755224", d, got)
		}
	}
	// The 10-digit code is the whole 31-bit value, zero-padded.
	if got := HOTP(seed20, 0, 10, SHA1); got != "1284755224" {
		t.Errorf("10 digits: got %q", got)
	}
}

func TestTOTPRFC6238(t *testing.T) {
	tests := []struct {
		unix int64
		alg  Algorithm
		want string
	}{
		{59, SHA1, "94287082"},
		{59, SHA256, "46119246"},
		{59, SHA512, "90693936"},
		{1111111109, SHA1, "07081804"},
		{1111111109, SHA256, "68084774"},
		{1111111109, SHA512, "25091201"},
		{1111111111, SHA1, "14050471"},
		{1111111111, SHA256, "67062674"},
		{1111111111, SHA512, "99943326"},
		{1234567890, SHA1, "89005924"},
		{1234567890, SHA256, "91819424"},
		{1234567890, SHA512, "93441116"},
		{2000000000, SHA1, "69279037"},
		{2000000000, SHA256, "90698825"},
		{2000000000, SHA512, "38618901"},
		{20000000000, SHA1, "65353130"},
		{20000000000, SHA256, "77737706"},
		{20000000000, SHA512, "47863826"},
	}
	seeds := map[Algorithm][]byte{SHA1: seed20, SHA256: seed32, SHA512: seed64}
	for _, tt := range tests {
		tp := TOTP{Secret: seeds[tt.alg], Digits: 8, Period: 30, Algorithm: tt.alg}
		at := time.Unix(tt.unix, 0)
		if got := tp.Code(at); got != tt.want {
			t.Errorf("%s at %d: Code = %q, want %q", tt.alg, tt.unix, got, tt.want)
		}
		step, ok := tp.Match(tt.want, at, 0)
		if !ok || step != tt.unix/30 {
			t.Errorf("%s at %d: Match = %d, %v; want %d, true", tt.alg, tt.unix, step, ok, tt.unix/30)
		}
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		unix   int64
		period int
		want   int64
	}{
		{0, 0, 0},
		{29, 0, 0},
		{30, 0, 1},
		{59, 30, 1},
		{-1, 30, -1}, // floor, not truncation
		{-30, 30, -1},
		{-31, 30, -2},
		{19, 10, 1},
		{100, -5, 3}, // negative period means the default 30
	}
	for _, tt := range tests {
		got := TOTP{Period: tt.period}.Step(time.Unix(tt.unix, 0))
		if got != tt.want {
			t.Errorf("Step(%d, period %d) = %d, want %d", tt.unix, tt.period, got, tt.want)
		}
	}
}

func TestTOTPDefaults(t *testing.T) {
	at := time.Unix(59, 0)
	zero := TOTP{Secret: seed20}
	full := TOTP{Secret: seed20, Digits: 6, Period: 30, Algorithm: SHA1}
	if got, want := zero.Code(at), full.Code(at); got != want || got != "287082" {
		t.Errorf("defaults: got %q, explicit %q, want 287082", got, want)
	}
}

// TestOracle compares against github.com/pquerna/otp as an independent
// implementation.
func TestOracle(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	algs := []struct {
		ours   Algorithm
		theirs potp.Algorithm
	}{{SHA1, potp.AlgorithmSHA1}, {SHA256, potp.AlgorithmSHA256}, {SHA512, potp.AlgorithmSHA512}}
	for i := 0; i < 500; i++ {
		secret := make([]byte, 1+r.IntN(64))
		for j := range secret {
			secret[j] = byte(r.Uint32())
		}
		digits := 6 + r.IntN(3)
		period := []int{10, 30}[r.IntN(2)]
		alg := algs[r.IntN(len(algs))]
		at := time.Unix(r.Int64N(1<<34), 0)

		want, err := ptotp.GenerateCodeCustom(EncodeSecret(secret), at, ptotp.ValidateOpts{
			Period: uint(period), Digits: potp.Digits(digits), Algorithm: alg.theirs,
		})
		if err != nil {
			t.Fatal(err)
		}
		tp := TOTP{Secret: secret, Digits: digits, Period: period, Algorithm: alg.ours}
		if got := tp.Code(at); got != want {
			t.Fatalf("secret %x at %d digits %d period %d %s: got %q, oracle %q",
				secret, at.Unix(), digits, period, alg.ours, got, want)
		}
	}
}

func TestMatchWindow(t *testing.T) {
	tp := TOTP{Secret: seed20}
	now := time.Unix(1_700_000_000, 0) // step 56666666, 20s into it
	cur := tp.Step(now)
	for skew := 0; skew <= 2; skew++ {
		for off := int64(-4); off <= 4; off++ {
			code := tp.At(cur + off)
			step, ok := tp.Match(code, now, skew)
			inWindow := off >= -int64(skew) && off <= int64(skew)
			if ok != inWindow {
				t.Errorf("skew %d offset %d: ok = %v, want %v", skew, off, ok, inWindow)
			}
			if ok && step != cur+off {
				t.Errorf("skew %d offset %d: step = %d, want %d", skew, off, step, cur+off)
			}
		}
	}
	// Negative skew behaves as 0.
	if _, ok := tp.Match(tp.At(cur-1), now, -3); ok {
		t.Error("negative skew accepted previous step")
	}
	if step, ok := tp.Match(tp.At(cur), now, -3); !ok || step != cur {
		t.Errorf("negative skew: Match(current) = %d, %v", step, ok)
	}
}

// TestMatchClosest uses two steps that share a code (found by brute force for
// this secret) and checks that the step closest to now is reported.
func TestMatchClosest(t *testing.T) {
	tp := TOTP{Secret: seed20, Digits: 6}
	const a, b = 285885, 285891 // both "965320"
	code := tp.At(a)
	if code != "965320" || tp.At(b) != code {
		t.Fatalf("fixture broken: At(a) = %q, At(b) = %q", code, tp.At(b))
	}
	at := func(step int64) time.Time { return time.Unix(step*DefaultPeriod+7, 0) }
	tests := []struct {
		now  int64
		skew int
		want int64
	}{
		{a + 1, 6, a},
		{b - 1, 6, b},
		{b - 2, 6, b},
		{a + 3, 3, a}, // equidistant: the earlier step wins
		{b + 1, 6, b},
	}
	for _, tt := range tests {
		if step, ok := tp.Match(code, at(tt.now), tt.skew); !ok || step != tt.want {
			t.Errorf("now %d skew %d: got %d, %v; want %d", tt.now, tt.skew, step, ok, tt.want)
		}
	}
}

func TestMatchRejects(t *testing.T) {
	tp := TOTP{Secret: seed20, Digits: 8}
	at := time.Unix(59, 0)
	good := "94287082"
	if _, ok := tp.Match(good, at, 0); !ok {
		t.Fatal("valid code rejected")
	}
	for _, code := range []string{
		"", "9428708", "942870820", "94287082 ", " 94287082", "9428708a",
		"+4287082", "-4287082", "９4287082", "94287082\x00", "287082",
	} {
		if _, ok := tp.Match(code, at, 2); ok {
			t.Errorf("Match(%q) accepted", code)
		}
	}
	invalid := []TOTP{
		{Secret: nil, Digits: 8},
		{Secret: seed20, Digits: 8, Algorithm: "SHA3"},
		{Secret: seed20, Digits: 11},
		{Secret: seed20, Digits: 4},
	}
	for _, p := range invalid {
		code := HOTP(seed20, 1, 8, SHA1)
		if _, ok := p.Match(code, at, 1); ok {
			t.Errorf("%+v: invalid parameters matched", p)
		}
		if got := p.Code(at); got != "" {
			t.Errorf("%+v: Code = %q, want \"\"", p, got)
		}
	}
}

// TestMatchAuthy covers Authy's 7-digit, 10-second tokens.
func TestMatchAuthy(t *testing.T) {
	tp := TOTP{Secret: seed20, Digits: 7, Period: 10}
	now := time.Unix(1_700_000_005, 0)
	code := tp.Code(now)
	if len(code) != 7 {
		t.Fatalf("code %q is not 7 digits", code)
	}
	if step, ok := tp.Match(code, now, 1); !ok || step != 170_000_000 {
		t.Errorf("Match = %d, %v", step, ok)
	}
	// Ten seconds later it is the previous step: still valid with skew 1.
	if step, ok := tp.Match(code, now.Add(10*time.Second), 1); !ok || step != 170_000_000 {
		t.Errorf("next step: Match = %d, %v", step, ok)
	}
	if _, ok := tp.Match(code, now.Add(20*time.Second), 1); ok {
		t.Error("two steps later still accepted")
	}
}

func TestNewSecret(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{0, 20}, {-1, 20}, {16, 16}, {64, 64}} {
		s, err := NewSecret(tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != tt.want {
			t.Errorf("NewSecret(%d) has %d bytes, want %d", tt.n, len(s), tt.want)
		}
	}
	a, _ := NewSecret(20)
	b, _ := NewSecret(20)
	if bytes.Equal(a, b) {
		t.Error("two secrets are equal")
	}
}

func BenchmarkMatch(b *testing.B) {
	tp := TOTP{Secret: seed20, Digits: 7, Period: 10}
	now := time.Unix(1_700_000_000, 0)
	code := tp.Code(now.Add(-10 * time.Second))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := tp.Match(code, now, 1); !ok {
			b.Fatal("no match")
		}
	}
}

func BenchmarkHOTP(b *testing.B) {
	b.ReportAllocs()
	var c uint64
	for b.Loop() {
		HOTP(seed20, c, 6, SHA1)
		c++
	}
}
