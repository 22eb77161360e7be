package otp

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	potp "github.com/pquerna/otp"
)

func TestSecretCodec(t *testing.T) {
	// "Hello!\xde\xad\xbe\xef" is the Google Authenticator wiki example.
	want := []byte("Hello!\xde\xad\xbe\xef")
	if got := EncodeSecret(want); got != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("EncodeSecret = %q", got)
	}
	good := []string{
		"JBSWY3DPEHPK3PXP",
		"jbswy3dpehpk3pxp",
		"JBSW Y3DP EHPK 3PXP",
		" jbsw y3dp\tehpk 3pxp\n",
	}
	for _, s := range good {
		got, err := DecodeSecret(s)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("DecodeSecret(%q) = %x, %v", s, got, err)
		}
	}
	// Padding is optional.
	for _, s := range []string{"GEZDGNBV", "GEZDGNA", "GEZDGNA=", "GEZDGNA=="} {
		if _, err := DecodeSecret(s); err != nil {
			t.Errorf("DecodeSecret(%q): %v", s, err)
		}
	}
	bad := []string{"", "   ", "====", "JBSWY3DPEHPK3PX1", "JBSW-Y3DP", "A", "ABC",
		"JBSW=Y3DP", "JBSWY3DPEHPK3PXı", "JBSWY3DP\x00"}
	for _, s := range bad {
		if b, err := DecodeSecret(s); err == nil {
			t.Errorf("DecodeSecret(%q) = %x, want error", s, b)
		} else if !errors.Is(err, ErrInvalidSecret) || !strings.HasPrefix(err.Error(), "otp: invalid secret") {
			t.Errorf("DecodeSecret(%q): error %q does not wrap ErrInvalidSecret", s, err)
		}
	}
}

func TestURI(t *testing.T) {
	secret := []byte("Hello!\xde\xad\xbe\xef")
	tests := []struct {
		key  Key
		want string
	}{
		{
			Key{Issuer: "Example", Account: "alice@google.com", TOTP: TOTP{Secret: secret}},
			"otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA1&digits=6&period=30",
		},
		{
			Key{Issuer: "ACME Co", Account: "john doe", TOTP: TOTP{Secret: secret, Digits: 7, Period: 10, Algorithm: SHA256}},
			"otpauth://totp/ACME%20Co:john%20doe?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Co&algorithm=SHA256&digits=7&period=10",
		},
		{
			Key{Account: "bob", TOTP: TOTP{Secret: secret, Algorithm: SHA512, Digits: 8}},
			"otpauth://totp/bob?secret=JBSWY3DPEHPK3PXP&algorithm=SHA512&digits=8&period=30",
		},
		{
			Key{Account: "a:b", TOTP: TOTP{Secret: secret}},
			"otpauth://totp/:a%3Ab?secret=JBSWY3DPEHPK3PXP&algorithm=SHA1&digits=6&period=30",
		},
		{
			Key{Issuer: "A:B/C?&+", Account: "x#y%z", TOTP: TOTP{Secret: secret}},
			"otpauth://totp/A%3AB%2FC%3F&+:x%23y%25z?secret=JBSWY3DPEHPK3PXP&issuer=A%3AB%2FC%3F%26%2B&algorithm=SHA1&digits=6&period=30",
		},
	}
	for _, tt := range tests {
		got := tt.key.URI()
		if got != tt.want {
			t.Errorf("URI()\n got %s\nwant %s", got, tt.want)
		}
		back, err := ParseURI(got)
		if err != nil {
			t.Errorf("ParseURI(%s): %v", got, err)
			continue
		}
		norm := tt.key
		norm.Digits, norm.Period = norm.digits(), int(norm.period())
		if norm.Algorithm == "" {
			norm.Algorithm = SHA1
		}
		if !keysEqual(back, norm) {
			t.Errorf("round trip of %s: got %+v, want %+v", got, back, norm)
		}
		// pquerna/otp must read our URIs the same way, except that it splits
		// the label at the first ':' after unescaping.
		if strings.Contains(tt.key.Issuer+tt.key.Account, ":") {
			continue
		}
		pk, err := potp.NewKeyFromURL(got)
		if err != nil {
			t.Errorf("pquerna NewKeyFromURL(%s): %v", got, err)
			continue
		}
		if pk.Issuer() != tt.key.Issuer || pk.AccountName() != tt.key.Account ||
			pk.Secret() != EncodeSecret(secret) || int(pk.Digits()) != norm.Digits ||
			int(pk.Period()) != norm.Period {
			t.Errorf("pquerna reads %s as issuer %q account %q secret %q digits %d period %d",
				got, pk.Issuer(), pk.AccountName(), pk.Secret(), pk.Digits(), pk.Period())
		}
	}
}

func keysEqual(a, b Key) bool {
	return a.Issuer == b.Issuer && a.Account == b.Account && bytes.Equal(a.Secret, b.Secret) &&
		a.Digits == b.Digits && a.Period == b.Period && a.Algorithm == b.Algorithm
}

func TestParseURI(t *testing.T) {
	secret := []byte("Hello!\xde\xad\xbe\xef")
	key := func(issuer, account string, digits, period int, alg Algorithm) Key {
		return Key{Issuer: issuer, Account: account,
			TOTP: TOTP{Secret: secret, Digits: digits, Period: period, Algorithm: alg}}
	}
	good := []struct {
		in   string
		want Key
	}{
		{"otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example",
			key("Example", "alice@google.com", 6, 30, SHA1)},
		{"otpauth://totp/alice@google.com?secret=JBSWY3DPEHPK3PXP",
			key("", "alice@google.com", 6, 30, SHA1)},
		{"otpauth://totp/Example%3Aalice?secret=JBSWY3DPEHPK3PXP",
			key("Example", "alice", 6, 30, SHA1)},
		{"otpauth://totp/Example:%20alice?secret=JBSWY3DPEHPK3PXP", // optional space after ':'
			key("Example", "alice", 6, 30, SHA1)},
		{"otpauth://totp/Label:alice?secret=JBSWY3DPEHPK3PXP&issuer=Param", // issuer param wins
			key("Param", "alice", 6, 30, SHA1)},
		{"otpauth://totp/Label:alice?secret=JBSWY3DPEHPK3PXP&issuer=", // empty param ignored
			key("Label", "alice", 6, 30, SHA1)},
		{"otpauth://totp/alice?issuer=ACME+Co&secret=jbsw+y3dp%20ehpk3pxp====",
			key("ACME Co", "alice", 6, 30, SHA1)},
		{"OTPAUTH://TOTP/Authy:%2B15551234567?secret=JBSWY3DPEHPK3PXP&digits=7&period=10",
			key("Authy", "+15551234567", 7, 10, SHA1)},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=sha256&digits=8&period=60",
			key("", "x", 8, 60, SHA256)},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=Sha512&digits=10&period=3600",
			key("", "x", 10, 3600, SHA512)},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=1&unknown=1#frag",
			key("", "x", 6, 1, SHA1)},
		{"otpauth://totp/ACME Co:john doe?secret=JBSW Y3DP EHPK 3PXP&issuer=ACME Co", // unescaped spaces
			key("ACME Co", "john doe", 6, 30, SHA1)},
		{"otpauth://totp/?secret=JBSWY3DPEHPK3PXP", key("", "", 6, 30, SHA1)},
		{"otpauth://totp?secret=JBSWY3DPEHPK3PXP", key("", "", 6, 30, SHA1)},
		{"otpauth://totp/Is%3Asuer:acc%3Aount?secret=JBSWY3DPEHPK3PXP",
			key("Is:suer", "acc:ount", 6, 30, SHA1)},
	}
	for _, tt := range good {
		got, err := ParseURI(tt.in)
		if err != nil {
			t.Errorf("ParseURI(%s): %v", tt.in, err)
			continue
		}
		if !keysEqual(got, tt.want) {
			t.Errorf("ParseURI(%s)\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}

	bad := []struct {
		in      string
		wantErr error
		msg     string
	}{
		{"", ErrInvalidURI, "scheme"},
		{"https://totp/x?secret=JBSWY3DPEHPK3PXP", ErrInvalidURI, "scheme"},
		{"otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=1", ErrInvalidURI, "unsupported type \"hotp\""},
		{"otpauth:totp/x?secret=JBSWY3DPEHPK3PXP", ErrInvalidURI, "unsupported type"},
		{"otpauth://user@totp/x?secret=JBSWY3DPEHPK3PXP", ErrInvalidURI, "unsupported type"},
		{"otpauth://totp:80/x?secret=JBSWY3DPEHPK3PXP", ErrInvalidURI, "unsupported type"},
		{"otpauth://totp/x", ErrInvalidSecret, "missing"},
		{"otpauth://totp/x?secret=", ErrInvalidSecret, "empty"},
		{"otpauth://totp/x?secret=%20=", ErrInvalidSecret, "empty"},
		{"otpauth://totp/x?secret=JBSWY3D1", ErrInvalidSecret, "illegal base32"},
		{"otpauth://totp/x?secret=A", ErrInvalidSecret, "not valid base32"},
		{"otpauth://totp/x?secret=GEZDGN", ErrInvalidSecret, "not valid base32"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=5", ErrInvalidURI, "digits must be 6..10"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=11", ErrInvalidURI, "digits"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=", ErrInvalidURI, "digits"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=six", ErrInvalidURI, "digits"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=99999999999999999999", ErrInvalidURI, "digits"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=0", ErrInvalidURI, "period must be 1..3600"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=-30", ErrInvalidURI, "period"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&period=3601", ErrInvalidURI, "period"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=MD5", ErrInvalidURI, "algorithm"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=", ErrInvalidURI, "algorithm"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&algorithm=SHA-1", ErrInvalidURI, "algorithm"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP;digits=6", ErrInvalidURI, "query"},
		{"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&issuer=%zz", ErrInvalidURI, "query"},
		{"otpauth://totp/a%zz?secret=JBSWY3DPEHPK3PXP", ErrInvalidURI, "invalid URL escape"},
		{"otpauth://totp/a\x7f?secret=JBSWY3DPEHPK3PXP", ErrInvalidURI, "control"},
	}
	for _, tt := range bad {
		k, err := ParseURI(tt.in)
		if err == nil {
			t.Errorf("ParseURI(%q) = %+v, want error", tt.in, k)
			continue
		}
		if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseURI(%q) error %q, want %v containing %q", tt.in, err, tt.wantErr, tt.msg)
		}
	}
}

func FuzzParseURI(f *testing.F) {
	seeds := []string{
		"otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example",
		"otpauth://totp/ACME%20Co:john?secret=jbsw%20y3dp====&issuer=ACME+Co&algorithm=sha256&digits=8&period=60",
		"otpauth://totp/Authy:%2B15551234567?secret=JBSWY3DPEHPK3PXP&digits=7&period=10",
		"otpauth://totp/Is%3Asuer:acc%3Aount?secret=GEZDGNA=&algorithm=SHA512&digits=10&period=3600",
		"otpauth://totp/a%3Ab?secret=GE",
		"otpauth://totp/:a%3Ab:c?secret=GE",
		"otpauth://totp/?secret=GEZDGNBVGY3TQOJQ",
		"otpauth://totp?secret=A",
		"otpauth://hotp/x?secret=JBSWY3DPEHPK3PXP&counter=0",
		"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP&digits=5&period=0",
		"otpauth://totp/x?secret=JBSWY3DPEHPK3PXP;&digits=%zz",
		"otpauth://totp/%zz:%?secret=ı",
		"otpauth:totp/x?secret=JBSWY3DPEHPK3PXP",
		"otpauth://user:pw@totp:80/x?secret=JBSWY3DPEHPK3PXP#frag",
		"otpauth://totp/%20a%20:%20b%20?secret=%20%20JBSW&issuer=%20",
		"",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseURI(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidURI) && !errors.Is(err, ErrInvalidSecret) {
				t.Fatalf("ParseURI(%q): unwrapped error %v", s, err)
			}
			return
		}
		if len(k.Secret) == 0 || k.Digits < MinDigits || k.Digits > MaxDigits ||
			k.Period < MinPeriod || k.Period > MaxPeriod || !k.Algorithm.Valid() || k.Algorithm == "" {
			t.Fatalf("ParseURI(%q) accepted invalid key %+v", s, k)
		}
		u := k.URI()
		k2, err := ParseURI(u)
		if err != nil {
			t.Fatalf("ParseURI(%q) -> %+v -> URI %q fails: %v", s, k, u, err)
		}
		if !bytes.Equal(k.Secret, k2.Secret) || k.Digits != k2.Digits ||
			k.Period != k2.Period || k.Algorithm != k2.Algorithm {
			t.Fatalf("round trip of %q via %q: %+v != %+v", s, u, k, k2)
		}
		if k.Issuer != k2.Issuer || k.Account != k2.Account {
			t.Fatalf("label round trip of %q via %q: %q:%q != %q:%q",
				s, u, k.Issuer, k.Account, k2.Issuer, k2.Account)
		}
	})
}
