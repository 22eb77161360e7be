// Package password hashes passwords with argon2id and checks them in constant time. Hashes are
// PHC strings ("$argon2id$v=19$m=65536,t=3,p=2$salt$hash"), so the parameters travel with them
// and can be raised later without breaking old hashes.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's costs.
type Params struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// Default follows RFC 9106's second recommended option (64 MiB, 3 passes).
var Default = Params{Time: 3, Memory: 64 * 1024, Threads: 2}

const saltLen, keyLen = 16, 32

// ErrMismatch is returned by Check for a wrong password.
var ErrMismatch = errors.New("password does not match")

// Hash returns the PHC string of pw with a fresh random salt.
func Hash(pw string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Check reports nil when pw matches the PHC string hash, ErrMismatch when it does not, and
// another error when hash is not a hash this package made.
func Check(pw, hash string) error {
	p, salt, want, err := parse(hash)
	if err != nil {
		return err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// Dummy spends the time and memory of a Check of a hash made with p, for answers about unknown
// accounts that must cost as much as answers about known ones.
func Dummy(pw string, p Params) {
	argon2.IDKey([]byte(pw), make([]byte, saltLen), p.Time, p.Memory, p.Threads, keyLen)
}

func parse(hash string) (Params, []byte, []byte, error) {
	bad := errors.New("password: not an argon2id hash")
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, bad
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, bad
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Time == 0 || p.Threads == 0 || p.Memory < 8*uint32(p.Threads) || p.Memory > 256*1024 || p.Time > 16 { // bounds a forged hash's cost
		return Params{}, nil, nil, bad
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	key, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return Params{}, nil, nil, bad
	}
	return p, salt, key, nil
}
