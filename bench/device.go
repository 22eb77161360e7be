package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// device is an authenticator registered through the public device API, as the CLI and web
// authenticators register: an ECDSA P-256 key whose SPKI goes to POST /device/v1/registrations.
type device struct {
	userID int64
	token  string // access token
	key    *ecdsa.PrivateKey
}

// registerDevice asks for a registration token with the API key, then registers a new key.
func (a *apiClient) registerDevice(ctx context.Context, c *http.Client, userID int64) (*device, error) {
	var reg struct {
		Token string `json:"registration_token"`
	}
	if err := a.call(ctx, c, http.MethodPost, "/protected/json/sdk/registrations", "authy_id="+strconv.FormatInt(userID, 10), 200, &reg); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(map[string]string{"registration_token": reg.Token,
		"public_key": base64.StdEncoding.EncodeToString(spki), "name": "bench", "os_type": "bench"})
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := a.callJSON(ctx, c, http.MethodPost, "/device/v1/registrations", "", body, 200, &out); err != nil {
		return nil, err
	}
	return &device{userID: userID, token: out.AccessToken, key: key}, nil
}

// answer signs and sends the device's decision, as `twofold device approve` does.
func (a *apiClient) answer(ctx context.Context, c *http.Client, d *device, uuid string) error {
	ts := time.Now().Unix()
	digest := sha256.Sum256(onetouch.AnswerMessage(uuid, twofold.Approved, ts, "", ""))
	sig, err := ecdsa.SignASN1(rand.Reader, d.key, digest[:])
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]any{"status": "approved", "timestamp": ts,
		"signature": base64.StdEncoding.EncodeToString(sig), "number": "", "reason": ""})
	return a.callJSON(ctx, c, http.MethodPost, "/device/v1/approval_requests/"+uuid, d.token, body, 200, nil)
}

// stream opens the device's event stream and calls seen with the uuid of every
// approval_request event until ctx ends. ready is closed once the stream is open.
func (a *apiClient) stream(ctx context.Context, c *http.Client, d *device, ready chan<- error, seen func(uuid string)) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/device/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Accept", "text/event-stream")
	res, err := c.Do(req)
	if err != nil {
		ready <- err
		return
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		ready <- fmt.Errorf("events: status %d", res.StatusCode)
		return
	}
	ready <- nil
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			event = ""
		case strings.HasPrefix(line, "event: "):
			event = line[len("event: "):]
		case strings.HasPrefix(line, "data: ") && event == "approval_request":
			var v struct {
				UUID string `json:"uuid"`
			}
			if json.Unmarshal([]byte(line[len("data: "):]), &v) == nil && v.UUID != "" {
				seen(v.UUID)
			}
		}
	}
}

// rendezvous hands a value from one side to the other whichever arrives first (an SSE event
// may come before the create call returns).
type rendezvous struct {
	mu sync.Mutex
	m  map[string]chan time.Time
}

func newRendezvous() *rendezvous { return &rendezvous{m: map[string]chan time.Time{}} }

func (r *rendezvous) ch(k string) chan time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.m[k]
	if !ok {
		c = make(chan time.Time, 1)
		r.m[k] = c
	}
	return c
}

func (r *rendezvous) signal(k string) {
	select {
	case r.ch(k) <- time.Now():
	default:
	}
}

// wait returns when k is signalled, and forgets k.
func (r *rendezvous) wait(ctx context.Context, k string) (time.Time, error) {
	c := r.ch(k)
	select {
	case t := <-c:
		r.mu.Lock()
		delete(r.m, k)
		r.mu.Unlock()
		return t, nil
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
}

// callbackReceiver is the customer's callback endpoint: it checks each callback's signature
// with the public client package, as a customer would, and signals its uuid.
type callbackReceiver struct {
	url      string
	key      string // set once the application exists (setKey); guarded by mu
	got      *rendezvous
	mu       sync.Mutex
	bad      int
	srv      *http.Server
	verifyOn bool
}

func startCallbackReceiver() (*callbackReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	cr := &callbackReceiver{url: "http://" + ln.Addr().String() + "/callback", got: newRendezvous(), verifyOn: true}
	cr.srv = &http.Server{Handler: http.HandlerFunc(cr.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = cr.srv.Serve(ln) }()
	return cr, nil
}

func (cr *callbackReceiver) serve(w http.ResponseWriter, r *http.Request) {
	if cr.verifyOn {
		cr.mu.Lock()
		key := cr.key
		cr.mu.Unlock()
		if err := client.VerifyCallback(r, key, cr.url); err != nil {
			cr.mu.Lock()
			cr.bad++
			cr.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	var v struct {
		UUID   string `json:"uuid"`
		Status string `json:"status"`
	}
	if err := json.NewDecoder(r.Body).Decode(&v); err == nil && v.UUID != "" {
		cr.got.signal(v.UUID)
	}
	w.WriteHeader(http.StatusOK)
}

// setKey makes key the application key callbacks are signed with (each store has its own).
func (cr *callbackReceiver) setKey(key string) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	cr.key = key
}

func (cr *callbackReceiver) badCount() int {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.bad
}
