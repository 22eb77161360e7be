// Package vault keeps an authenticator's secrets in one file sealed under a passphrase: the
// device keys and access tokens of OneTouch devices and the seeds of TOTP accounts.
//
// The file is a JSON envelope. Its contents are AES-256-GCM sealed under a key derived from the
// passphrase with argon2id; the KDF parameters and a random salt are in the envelope, and the
// envelope's header is the additional data, so no field can be changed unnoticed. A check value
// (a hash of a second derived key) tells a wrong passphrase from a damaged file. Writes go to a
// temporary file in the same directory that is renamed over the vault, so a crash leaves the
// old vault or the new one, never half of each.
package vault

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/crypto/argon2"
)

// Errors Open reports; they are wrapped with the vault's path.
var (
	ErrWrongPassphrase = errors.New("wrong passphrase")
	ErrTampered        = errors.New("the vault file is damaged or was modified")
	ErrFormat          = errors.New("not a twofold vault")
)

const (
	format  = "twofold-vault"
	version = 1
	saltLen = 16
)

// Params are argon2id's cost parameters.
type Params struct {
	Time    uint32 `json:"time"`       // passes over memory
	Memory  uint32 `json:"memory_kib"` // KiB
	Threads uint8  `json:"threads"`
}

// DefaultParams are RFC 9106's second recommended option (t=3, 64 MiB, p=4): about a third of a
// second on a laptop.
var DefaultParams = Params{Time: 3, Memory: 64 * 1024, Threads: 4}

func (p Params) valid() error {
	if p.Time < 1 || p.Time > 64 || p.Threads < 1 || p.Threads > 64 ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > 4*1024*1024 {
		return fmt.Errorf("argon2id parameters out of range: %+v", p)
	}
	return nil
}

// Device is a OneTouch device registered with a Twofold (or Authy-compatible) server.
type Device struct {
	Server      string    `json:"server"` // base URL, no trailing slash
	AccessToken string    `json:"access_token"`
	DeviceID    int64     `json:"device_id"`
	AuthyID     int64     `json:"authy_id"`
	AppID       int64     `json:"app_id"`
	AppName     string    `json:"app_name"`
	Name        string    `json:"name"`        // the name the device registered with
	PrivateKey  []byte    `json:"private_key"` // ECDSA P-256, PKCS#8 DER
	TOTPSecret  []byte    `json:"totp_secret"` // the device's own seed
	Digits      int       `json:"digits"`
	Period      int       `json:"period"`
	AddedAt     time.Time `json:"added_at"`
}

// Account is a plain TOTP account (from an otpauth:// URI).
type Account struct {
	Issuer    string    `json:"issuer"`
	Account   string    `json:"account"`
	Secret    []byte    `json:"secret"`
	Digits    int       `json:"digits"`
	Period    int       `json:"period"`
	Algorithm string    `json:"algorithm"` // SHA1, SHA256 or SHA512
	AddedAt   time.Time `json:"added_at"`
}

// Vault is an open vault: its contents and what is needed to seal them again.
type Vault struct {
	Devices  []Device
	Accounts []Account

	path   string
	params Params
	salt   []byte
	key    []byte // AES-256 key
	check  []byte // stored check value
}

// contents is the sealed plaintext.
type contents struct {
	Version  int       `json:"version"`
	Devices  []Device  `json:"devices"`
	Accounts []Account `json:"accounts"`
}

// envelope is the file.
type envelope struct {
	Format     string `json:"format"`
	Version    int    `json:"version"`
	KDF        kdf    `json:"kdf"`
	Cipher     string `json:"cipher"`
	Check      []byte `json:"check"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

type kdf struct {
	Algorithm string `json:"algorithm"`
	Params
	Salt []byte `json:"salt"`
}

// additionalData binds the header to the ciphertext. The check value is left out, so a
// changed check is told apart from a wrong passphrase (see Open).
func (e *envelope) additionalData() []byte {
	var b bytes.Buffer
	for _, s := range []string{e.Format, strconv.Itoa(e.Version), e.KDF.Algorithm,
		strconv.FormatUint(uint64(e.KDF.Time), 10), strconv.FormatUint(uint64(e.KDF.Memory), 10),
		strconv.FormatUint(uint64(e.KDF.Threads), 10), fmt.Sprintf("%x", e.KDF.Salt), e.Cipher} {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// parseEnvelope decodes and checks the file's structure, before any key is derived.
func parseEnvelope(data []byte) (*envelope, error) {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil || e.Format != format {
		return nil, ErrFormat
	}
	if e.Version != version {
		return nil, fmt.Errorf("vault format version %d is not supported by this twofold (it reads %d)", e.Version, version)
	}
	if e.KDF.Algorithm != "argon2id" || e.Cipher != "AES-256-GCM" {
		return nil, fmt.Errorf("%w: unsupported algorithms %q, %q", ErrFormat, e.KDF.Algorithm, e.Cipher)
	}
	if err := e.KDF.Params.valid(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if len(e.KDF.Salt) < saltLen || len(e.Check) != sha256.Size || len(e.Nonce) != 12 || len(e.Ciphertext) < 16 {
		return nil, fmt.Errorf("%w: truncated header", ErrFormat)
	}
	return &e, nil
}

// derive returns the AES key and the check value for a passphrase.
func derive(passphrase, salt []byte, p Params) (key, check []byte) {
	out := argon2.IDKey(passphrase, salt, p.Time, p.Memory, p.Threads, 64)
	sum := sha256.Sum256(out[32:])
	return out[:32], sum[:]
}

// Create returns a new, empty vault for path sealed under passphrase; nothing is written until
// Save. It refuses an empty passphrase.
func Create(path string, passphrase []byte, p Params) (*Vault, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("the vault passphrase must not be empty")
	}
	if err := p.valid(); err != nil {
		return nil, err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	key, check := derive(passphrase, salt, p)
	return &Vault{path: path, params: p, salt: salt, key: key, check: check}, nil
}

// Open reads and decrypts the vault at path. A missing file is an error wrapping
// fs.ErrNotExist; a wrong passphrase wraps ErrWrongPassphrase; a modified file wraps ErrTampered.
func Open(path string, passphrase []byte) (*Vault, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	e, err := parseEnvelope(data)
	if err != nil {
		return nil, fmt.Errorf("vault %s: %w", path, err)
	}
	key, check := derive(passphrase, e.KDF.Salt, e.KDF.Params)
	plain, openErr := openGCM(key, e.Nonce, e.Ciphertext, e.additionalData())
	switch {
	case subtle.ConstantTimeCompare(check, e.Check) != 1 && openErr != nil:
		return nil, fmt.Errorf("vault %s: %w", path, ErrWrongPassphrase)
	case openErr != nil, subtle.ConstantTimeCompare(check, e.Check) != 1:
		return nil, fmt.Errorf("vault %s: %w", path, ErrTampered)
	}
	var c contents
	if err := json.Unmarshal(plain, &c); err != nil || c.Version != version {
		return nil, fmt.Errorf("vault %s: %w: bad contents", path, ErrTampered)
	}
	return &Vault{Devices: c.Devices, Accounts: c.Accounts, path: path, params: e.KDF.Params,
		salt: e.KDF.Salt, key: key, check: check}, nil
}

func openGCM(key, nonce, ciphertext, ad []byte) ([]byte, error) {
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return aead.Open(nil, nonce, ciphertext, ad)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// Path is the vault's file.
func (v *Vault) Path() string { return v.path }

// beforeRename, when set by tests, runs after the temporary file is written and before it
// replaces the vault; an error aborts the save.
var beforeRename func(tmp string) error

// Save seals the vault with a fresh nonce (same passphrase, salt and parameters) and replaces
// the file atomically, with mode 0600, creating its directory (0700) if needed.
func (v *Vault) Save() error {
	plain, err := json.Marshal(contents{Version: version, Devices: v.Devices, Accounts: v.Accounts})
	if err != nil {
		return err
	}
	e := envelope{Format: format, Version: version, Cipher: "AES-256-GCM", Check: v.check,
		KDF: kdf{Algorithm: "argon2id", Params: v.params, Salt: v.salt}, Nonce: make([]byte, 12)}
	if _, err := rand.Read(e.Nonce); err != nil {
		return err
	}
	aead, err := newGCM(v.key)
	if err != nil {
		return err
	}
	e.Ciphertext = aead.Seal(nil, e.Nonce, plain, e.additionalData())
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(v.path, append(data, '\n'))
}

func writeAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if beforeRename != nil {
		if err = beforeRename(tmp); err != nil {
			return err
		}
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable; best effort
		d.Sync()
		d.Close()
	}
	return nil
}

// Exists reports whether a vault file is at path.
func Exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}
