// Package otp implements RFC 4226 HOTP and RFC 6238 TOTP one-time passwords
// and the otpauth:// key URI format understood by authenticator apps.
//
// It uses only the standard library. Functions fail closed: invalid
// parameters (unknown algorithm, digits outside 6..10, empty secret) yield an
// empty code that never matches rather than a panic or a weak code.
package otp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
	"time"
)

// Algorithm names the HMAC hash function. The empty value means SHA1.
type Algorithm string

// Supported algorithms, spelled as in otpauth:// URIs.
const (
	SHA1   Algorithm = "SHA1"
	SHA256 Algorithm = "SHA256"
	SHA512 Algorithm = "SHA512"
)

// Parameter limits and defaults.
const (
	MinDigits     = 6
	MaxDigits     = 10 // a 31-bit truncated value has at most 10 decimal digits
	DefaultDigits = 6
	DefaultPeriod = 30 // seconds
)

// hash returns the constructor for a, or nil if a is not supported.
func (a Algorithm) hash() func() hash.Hash {
	switch a {
	case "", SHA1:
		return sha1.New
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return nil
}

// Valid reports whether a is a supported algorithm (the empty value is).
func (a Algorithm) Valid() bool { return a.hash() != nil }

// HOTP returns the RFC 4226 code for counter, zero-padded to digits (6..10).
// It returns "" if digits is out of range, alg is unknown or secret is empty.
func HOTP(secret []byte, counter uint64, digits int, alg Algorithm) string {
	newHash := alg.hash()
	if newHash == nil || digits < MinDigits || digits > MaxDigits || len(secret) == 0 {
		return ""
	}
	var buf [MaxDigits]byte
	return string(hotp(hmac.New(newHash, secret), counter, digits, buf[:0]))
}

// hotp computes one code with a reusable MAC, appending the digits to dst
// (which must have room for them) so that Match allocates nothing per step.
func hotp(mac hash.Hash, counter uint64, digits int, dst []byte) []byte {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Reset()
	mac.Write(msg[:])
	var sum [sha512.Size]byte
	h := mac.Sum(sum[:0])
	// Dynamic truncation (RFC 4226 section 5.3).
	off := h[len(h)-1] & 0x0f
	v := binary.BigEndian.Uint32(h[off:]) & 0x7fffffff
	dst = dst[:digits]
	for i := digits - 1; i >= 0; i-- {
		dst[i] = byte('0' + v%10)
		v /= 10
	}
	return dst
}

// TOTP holds the parameters of an RFC 6238 time-based generator.
type TOTP struct {
	Secret    []byte
	Digits    int       // 6..10; 0 means 6
	Period    int       // seconds; 0 (or negative) means 30
	Algorithm Algorithm // "" means SHA1
}

func (t TOTP) digits() int {
	if t.Digits == 0 {
		return DefaultDigits
	}
	return t.Digits
}

func (t TOTP) period() int64 {
	if t.Period <= 0 {
		return DefaultPeriod
	}
	return int64(t.Period)
}

// Step returns the time step containing at: floor(unix seconds / period).
func (t TOTP) Step(at time.Time) int64 {
	p, u := t.period(), at.Unix()
	s := u / p
	if u%p != 0 && u < 0 { // Go division truncates toward zero; we want floor
		s--
	}
	return s
}

// At returns the code for a time step ("" if the parameters are invalid).
// Steps before 1970 are negative and used as their two's-complement counter.
func (t TOTP) At(step int64) string {
	return HOTP(t.Secret, uint64(step), t.digits(), t.Algorithm)
}

// Code returns the code valid at the given time.
func (t TOTP) Code(at time.Time) string { return t.At(t.Step(at)) }

// Match checks code against the steps step(at)-skew .. step(at)+skew and
// returns the matched step, for the caller to record against replays.
//
// Every step in the window is computed and compared in constant time, so the
// timing does not reveal which step (if any) matched. When several steps match
// the one closest to now wins; on a tie the earlier one does. Codes of the
// wrong length or containing non-digits never match, nor does anything when
// the parameters are invalid. Negative skew is treated as 0.
func (t TOTP) Match(code string, at time.Time, skew int) (step int64, ok bool) {
	digits := t.digits()
	newHash := t.Algorithm.hash()
	if newHash == nil || digits < MinDigits || digits > MaxDigits ||
		len(t.Secret) == 0 || len(code) != digits {
		return 0, false
	}
	// Length and charset are public knowledge, so checking them early is fine.
	var want [MaxDigits]byte
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, false
		}
		want[i] = code[i]
	}
	if skew < 0 {
		skew = 0
	}

	now := t.Step(at)
	mac := hmac.New(newHash, t.Secret)
	var buf [MaxDigits]byte
	found, matched := 0, 0
	// Visit offsets 0, -1, +1, -2, +2, ... so the first match is the closest;
	// later matches are folded in without branching on secret data.
	for i := 0; i <= 2*skew; i++ {
		off := (i + 1) / 2
		if i%2 == 1 {
			off = -off
		}
		got := hotp(mac, uint64(now+int64(off)), digits, buf[:0])
		eq := subtle.ConstantTimeCompare(got, want[:digits])
		first := eq &^ found
		matched = subtle.ConstantTimeSelect(first, off, matched)
		found |= eq
	}
	if found == 0 {
		return 0, false
	}
	return now + int64(matched), true
}

// NewSecret returns n cryptographically random bytes (n <= 0 means 20, the
// 160 bits RFC 4226 recommends).
func NewSecret(n int) ([]byte, error) {
	if n <= 0 {
		n = 20
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("otp: generating secret: %w", err)
	}
	return b, nil
}
