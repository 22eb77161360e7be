// Package pushtest has stand-ins for the far ends of a push, for tests: a browser's side of a
// Web Push subscription that decrypts what it is sent (RFC 8291 over RFC 8188's aes128gcm), a
// push service that checks each request's VAPID signature (RFC 8292) and headers, and an ntfy
// server. They are written from the RFCs, independently of the library that sends.
package pushtest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var b64 = base64.RawURLEncoding

// Browser is the user agent's side of a Web Push subscription: its ECDH key pair and its
// authentication secret.
type Browser struct {
	priv *ecdh.PrivateKey
	auth []byte
}

// NewBrowser makes fresh keys.
func NewBrowser() *Browser {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return &Browser{priv: priv, auth: auth}
}

// P256dh and Auth are the subscription's keys as PushSubscription.toJSON() gives them.
func (b *Browser) P256dh() string { return b64.EncodeToString(b.priv.PublicKey().Bytes()) }
func (b *Browser) Auth() string   { return b64.EncodeToString(b.auth) }

// Decrypt opens a push message body encrypted for b.
func (b *Browser) Decrypt(body []byte) ([]byte, error) {
	// RFC 8188 section 2.1: salt (16) | rs (uint32) | idlen (1) | keyid (idlen) | records.
	if len(body) < 21 {
		return nil, errors.New("body shorter than the aes128gcm header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if rs < 18 {
		return nil, fmt.Errorf("record size %d below 18", rs)
	}
	if len(body) < 21+idlen {
		return nil, errors.New("body shorter than its key id")
	}
	// RFC 8291 section 4: the key id is the application server's ephemeral public key.
	asPublic, records := body[21:21+idlen], body[21+idlen:]
	asKey, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, fmt.Errorf("key id is not a P-256 public key: %w", err)
	}
	ecdhSecret, err := b.priv.ECDH(asKey)
	if err != nil {
		return nil, err
	}
	// RFC 8291 section 3.4: IKM = HKDF(salt=auth_secret, ikm=ecdh_secret,
	// info="WebPush: info" 0x00 ua_public as_public, L=32).
	keyInfo := "WebPush: info\x00" + string(b.priv.PublicKey().Bytes()) + string(asPublic)
	ikm, err := hkdf.Key(sha256.New, ecdhSecret, b.auth, keyInfo, 32)
	if err != nil {
		return nil, err
	}
	// RFC 8188 section 2.2 and 2.3.
	cek, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, err
	}
	nonce, err := hkdf.Key(sha256.New, ikm, salt, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, err
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(records) == 0 {
		return nil, errors.New("no records")
	}
	var out []byte
	for seq := uint64(0); len(records) > 0; seq++ {
		rec := records[:min(int(rs), len(records))]
		records = records[len(rec):]
		iv := append([]byte(nil), nonce...)
		var s [8]byte
		binary.BigEndian.PutUint64(s[:], seq)
		for i := range s {
			iv[4+i] ^= s[i]
		}
		plain, err := gcm.Open(nil, iv, rec, nil)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", seq, err)
		}
		// Padding: the data, one delimiter (2 in the last record, 1 before), then zeros.
		end := len(plain) - 1
		for end >= 0 && plain[end] == 0 {
			end--
		}
		want := byte(1)
		if len(records) == 0 {
			want = 2
		}
		if end < 0 || plain[end] != want {
			return nil, fmt.Errorf("record %d: padding delimiter is not %d", seq, want)
		}
		out = append(out, plain[:end]...)
	}
	return out, nil
}

// VAPID is what an Authorization header said, once verified.
type VAPID struct {
	Key     string // k: the server's public key, base64url
	Subject string
	Expires time.Time
}

// CheckVAPID verifies an RFC 8292 Authorization header, "vapid t=<JWT>, k=<public key>": the
// JWT is ES256-signed by k, its aud is the origin of endpoint, its exp is in the future but
// within 24 hours, and it names a sub.
func CheckVAPID(header, endpoint string, now time.Time) (VAPID, error) {
	params, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		return VAPID{}, fmt.Errorf("authorization scheme is not vapid: %q", header)
	}
	var token, key string
	for _, p := range strings.Split(params, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
		switch name {
		case "t":
			token = value
		case "k":
			key = value
		}
	}
	keyBytes, err := b64.DecodeString(key)
	if err != nil {
		return VAPID{}, fmt.Errorf("k: %w", err)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), keyBytes)
	if err != nil {
		return VAPID{}, fmt.Errorf("k: %w", err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return VAPID{}, errors.New("t is not a JWT")
	}
	var head struct{ Alg string }
	if err := decodePart(parts[0], &head); err != nil || head.Alg != "ES256" {
		return VAPID{}, fmt.Errorf("JWT header: alg %q, %v", head.Alg, err)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return VAPID{}, errors.New("JWT signature is not 64 bytes of base64url")
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return VAPID{}, errors.New("JWT signature does not verify with k")
	}
	var claims struct {
		Aud string
		Exp json.Number
		Sub string
	}
	if err := decodePart(parts[1], &claims); err != nil {
		return VAPID{}, fmt.Errorf("JWT claims: %w", err)
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return VAPID{}, err
	}
	if origin := u.Scheme + "://" + u.Host; claims.Aud != origin {
		return VAPID{}, fmt.Errorf("aud %q, want %q", claims.Aud, origin)
	}
	exp, err := claims.Exp.Int64()
	if err != nil {
		return VAPID{}, fmt.Errorf("exp %q: %w", claims.Exp, err)
	}
	expires := time.Unix(exp, 0)
	if !expires.After(now) || expires.After(now.Add(24*time.Hour)) {
		return VAPID{}, fmt.Errorf("exp %v is not within 24 hours after %v", expires, now)
	}
	if !strings.HasPrefix(claims.Sub, "mailto:") && !strings.HasPrefix(claims.Sub, "https:") {
		return VAPID{}, fmt.Errorf("sub %q is not a mailto: or https: URL", claims.Sub)
	}
	return VAPID{Key: key, Subject: claims.Sub, Expires: expires}, nil
}

func decodePart(s string, v any) error {
	raw, err := b64.DecodeString(s)
	if err != nil {
		return err
	}
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	return d.Decode(v)
}

// Push is one request a stand-in received. Err says what was wrong with it, if anything.
type Push struct {
	Path    string
	Header  http.Header
	Body    []byte // for Web Push, the decrypted payload
	VAPID   VAPID
	TTL     int
	Urgency string
	Err     error
}

// Service is a Web Push service stand-in. Each subscription is a path of its own; a request to
// an unknown path is answered 410 Gone, as push services answer for expired subscriptions.
// Each accepted request is decrypted, checked and sent on C (buffered).
type Service struct {
	*httptest.Server
	C chan Push

	mu       sync.Mutex
	browsers map[string]*Browser
	status   map[string]int
	hold     map[string]chan struct{}
	seq      atomic.Int64
}

// NewService starts a push service; call Close when done.
func NewService() *Service {
	s := &Service{C: make(chan Push, 64), browsers: map[string]*Browser{}, status: map[string]int{}, hold: map[string]chan struct{}{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// Subscribe makes a subscription for b and returns its endpoint.
func (s *Service) Subscribe(b *Browser) string {
	path := "/push/" + strconv.FormatInt(s.seq.Add(1), 10)
	s.mu.Lock()
	s.browsers[path] = b
	s.mu.Unlock()
	return s.URL + path
}

// AnswerWith makes the endpoint answer status (instead of 201 Created).
func (s *Service) AnswerWith(endpoint string, status int) {
	s.mu.Lock()
	s.status[strings.TrimPrefix(endpoint, s.URL)] = status
	s.mu.Unlock()
}

// Hold makes the endpoint wait before answering until release is called or the sender gives up.
func (s *Service) Hold(endpoint string) (release func()) {
	ch := make(chan struct{})
	s.mu.Lock()
	s.hold[strings.TrimPrefix(endpoint, s.URL)] = ch
	s.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (s *Service) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	b, status, hold := s.browsers[r.URL.Path], s.status[r.URL.Path], s.hold[r.URL.Path]
	s.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}
	if b == nil {
		w.WriteHeader(http.StatusGone)
		return
	}
	p := Push{Path: r.URL.Path, Header: r.Header.Clone(), Urgency: r.Header.Get("Urgency")}
	body, err := io.ReadAll(r.Body)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	if r.Method != http.MethodPost {
		errs = append(errs, fmt.Errorf("method %s, want POST", r.Method))
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "aes128gcm" {
		errs = append(errs, fmt.Errorf("Content-Encoding %q, want aes128gcm", ce))
	}
	if p.TTL, err = strconv.Atoi(r.Header.Get("TTL")); err != nil || p.TTL < 0 {
		errs = append(errs, fmt.Errorf("TTL %q is not a non-negative integer", r.Header.Get("TTL")))
	}
	if p.VAPID, err = CheckVAPID(r.Header.Get("Authorization"), "http://"+r.Host+r.URL.Path, time.Now()); err != nil {
		errs = append(errs, fmt.Errorf("VAPID: %w", err))
	}
	if p.Body, err = b.Decrypt(body); err != nil {
		errs = append(errs, fmt.Errorf("decrypt: %w", err))
	}
	p.Err = errors.Join(errs...)
	s.C <- p
	if status == 0 {
		status = http.StatusCreated
	}
	w.WriteHeader(status)
}

// Ntfy is an ntfy server stand-in: every request is sent on C and answered 200 (or Status).
type Ntfy struct {
	*httptest.Server
	C      chan Push
	Status atomic.Int32
}

// NewNtfy starts an ntfy stand-in; call Close when done.
func NewNtfy() *Ntfy {
	n := &Ntfy{C: make(chan Push, 64)}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		p := Push{Path: r.URL.Path, Header: r.Header.Clone(), Body: body, Err: err}
		if r.Method != http.MethodPost {
			p.Err = errors.Join(p.Err, fmt.Errorf("method %s, want POST", r.Method))
		}
		n.C <- p
		status := int(n.Status.Load())
		if status == 0 {
			status = http.StatusOK
		}
		w.WriteHeader(status)
		fmt.Fprint(w, `{"id":"x","event":"message"}`)
	}))
	return n
}
