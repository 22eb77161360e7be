package seal

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// MasterKeyFile is the name of the master key file inside the data directory.
const MasterKeyFile = "master.key"

// OtherKeysFile is the name of the file, beside MasterKeyFile, of the other master keys a
// server accepts while the master key is rotated: one key per line.
const OtherKeysFile = "master.key.others"

// ParseMasterKey accepts 32 bytes written as base64 (standard or URL, padded or not) or hex.
func ParseMasterKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, errors.New("master key must be 32 bytes encoded as base64 or hex")
}

// LoadMasterKey returns the master key: from env when it is set, otherwise from the 0600 key file
// in dataDir, creating that file with a fresh random key when create is true and none exists.
// created reports whether a new key was written.
func LoadMasterKey(dataDir, env string, create bool) (key []byte, created bool, err error) {
	if env != "" {
		key, err := ParseMasterKey(env)
		if err != nil {
			return nil, false, fmt.Errorf("TWOFOLD_MASTER_KEY: %w", err)
		}
		return key, false, nil
	}
	path := filepath.Join(dataDir, MasterKeyFile)
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if info, statErr := os.Stat(path); statErr == nil && info.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("master key file %s is readable by others (mode %v); run chmod 600 on it", path, info.Mode().Perm())
		}
		key, err := ParseMasterKey(string(raw))
		if err != nil {
			return nil, false, fmt.Errorf("master key file %s: %w", path, err)
		}
		return key, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, false, fmt.Errorf("read master key: %w", err)
	case !create:
		return nil, false, fmt.Errorf("no master key: %s does not exist and TWOFOLD_MASTER_KEY is not set (has the server been started with this data directory?)", path)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("generate master key: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, fmt.Errorf("create data directory: %w", err)
	}
	// Write a temporary file, then hard-link it into place: the link fails if another process
	// won the race, and nobody ever reads a half-written key.
	tmp, err := os.CreateTemp(dataDir, ".master.key-*")
	if err != nil {
		return nil, false, fmt.Errorf("create master key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(base64.StdEncoding.EncodeToString(key) + "\n")
	if werr == nil {
		werr = tmp.Chmod(0o600)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, false, fmt.Errorf("write master key file: %w", werr)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return LoadMasterKey(dataDir, "", false)
	} else if err != nil {
		return nil, false, fmt.Errorf("install master key file: %w", err)
	}
	return key, true, nil
}

// LoadOtherKeys returns the other master keys to accept beside the current one: from env (keys
// separated by commas) when it is set, otherwise from the 0600 file OtherKeysFile in dataDir
// (one key per line; blank lines and lines starting with # are skipped), otherwise none.
func LoadOtherKeys(dataDir, env string) ([][]byte, error) {
	if env != "" {
		var keys [][]byte
		for i, part := range strings.Split(env, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			key, err := ParseMasterKey(part)
			if err != nil {
				return nil, fmt.Errorf("TWOFOLD_MASTER_KEY_OTHERS, key %d: %w", i+1, err)
			}
			keys = append(keys, key)
		}
		return keys, nil
	}
	path := filepath.Join(dataDir, OtherKeysFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read other master keys: %w", err)
	}
	if info, statErr := os.Stat(path); statErr == nil && info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s is readable by others (mode %v); run chmod 600 on it", path, info.Mode().Perm())
	}
	var keys [][]byte
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := ParseMasterKey(line)
		if err != nil {
			return nil, fmt.Errorf("%s, line %d: %w", path, i+1, err)
		}
		keys = append(keys, key)
	}
	return keys, nil
}
