package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
)

// bench is one run: the server, its users and what the scenarios pass on to each other.
type bench struct {
	cfg   config
	srv   *server
	api   *apiClient
	recv  *callbackReceiver
	tmp   string
	phone atomic.Int64 // next phone number suffix

	users    []int64    // registered in setup
	totp     []totpUser // enrolled authenticators (from the first half of users)
	smsPool  []int64    // users without an authenticator
	uuids    []string   // approval requests made by approval-create
	uuidMu   sync.Mutex
	okBody   []byte // verify's success answer, served by the floor
	results  []result
	floorRPS float64
}

type totpUser struct {
	id  int64
	gen otp.TOTP
}

func (b *bench) setupClient(conns int) *http.Client {
	return &http.Client{Transport: newTransport(conns), Timeout: 30 * time.Second}
}

// newUser registers one user with a fresh phone number and returns its id.
func (b *bench) newUser(ctx context.Context, c *http.Client) (int64, error) {
	n := b.phone.Add(1)
	form := fmt.Sprintf("user[email]=u%d%%40bench.example&user[cellphone]=201%07d&user[country_code]=1", n, 2000000+n)
	var out struct {
		User struct {
			ID int64 `json:"id"`
		} `json:"user"`
	}
	if err := b.api.call(ctx, c, http.MethodPost, "/protected/json/users/new", form, 200, &out); err != nil {
		return 0, err
	}
	return out.User.ID, nil
}

// parallel runs fn(i) for i in [0,n) on conns workers and returns the first error.
func parallel(n, conns int, fn func(i int) error) error {
	var next atomic.Int64
	var first error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range min(conns, max(n, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// setupUsers registers cfg.users users (the store's size for every scenario) and enrols an
// authenticator for the first half of them.
func (b *bench) setupUsers(ctx context.Context, enrol bool) error {
	c := b.setupClient(b.cfg.conns)
	t0 := time.Now()
	b.users = make([]int64, b.cfg.users)
	if err := parallel(b.cfg.users, b.cfg.conns, func(i int) (err error) {
		b.users[i], err = b.newUser(ctx, c)
		return err
	}); err != nil {
		return fmt.Errorf("registering users: %w", err)
	}
	logf("setup: %d users registered in %s", len(b.users), time.Since(t0).Round(time.Millisecond))
	half := len(b.users) / 2
	b.smsPool = b.users[half:]
	if !enrol {
		return nil
	}
	t0 = time.Now()
	b.totp = make([]totpUser, half)
	if err := parallel(half, b.cfg.conns, func(i int) error {
		var out struct {
			URI string `json:"uri"`
		}
		id := b.users[i]
		if err := b.api.call(ctx, c, http.MethodPost, "/protected/json/users/"+strconv.FormatInt(id, 10)+"/secret", "", 200, &out); err != nil {
			return err
		}
		k, err := otp.ParseURI(out.URI)
		if err != nil {
			return err
		}
		b.totp[i] = totpUser{id: id, gen: k.TOTP}
		return nil
	}); err != nil {
		return fmt.Errorf("enrolling authenticators: %w", err)
	}
	logf("setup: %d authenticators enrolled in %s", half, time.Since(t0).Round(time.Millisecond))
	// One real verify gives the bytes the floor serves.
	u := b.totp[0]
	b.totp = b.totp[1:]
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.verifyURL(u.gen.Code(time.Now()), u.id), nil)
	req.Header.Set("X-Authy-API-Key", b.api.key)
	body, err := do(c, req, 200)
	if err != nil {
		return fmt.Errorf("first TOTP verify: %w", err)
	}
	b.okBody = body
	return nil
}

func (b *bench) verifyURL(token string, id int64) string {
	return b.api.base + "/protected/json/verify/" + token + "/" + strconv.FormatInt(id, 10)
}

func (b *bench) getOp(url string, want int) op {
	return func(ctx context.Context, c *http.Client, _, _ int) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set("X-Authy-API-Key", b.api.key)
		_, err := do(c, req, want)
		return err
	}
}

func (b *bench) get(ctx context.Context, c *http.Client, url string, want int) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("X-Authy-API-Key", b.api.key)
	_, err := do(c, req, want)
	return err
}

// scenarioFloor loads the bare handler with the same generator.
func (b *bench) scenarioFloor() (result, error) {
	body := b.okBody
	if body == nil {
		body = []byte(`{"message":"Token is valid.","token":"is valid","success":"true","device":{}}`)
	}
	f := filepath.Join(b.tmp, "floor-body.json")
	if err := os.WriteFile(f, body, 0o600); err != nil {
		return result{}, err
	}
	url, cmd, err := startFloor(f)
	if err != nil {
		return result{}, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	serverPID = cmd.Process.Pid
	defer func() { serverPID = b.srv.cmd.Process.Pid }()
	r := run("floor", b.cfg.conns, b.cfg.duration, b.cfg.warmup, b.getOp(url+"/protected/json/verify/1234567/1", 200))
	r.Note = fmt.Sprintf("bare net/http, same %d-byte body as verify's success", len(body))
	b.floorRPS = r.RPS
	return r, nil
}

func (b *bench) scenarioUsersNew() (result, error) {
	r := run("users/new", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, _ int) error {
		_, err := b.newUser(ctx, c)
		return err
	})
	r.Note = "a new user with a new phone number per request"
	return r, nil
}

// scenarioVerifyTOTP verifies each enrolled user's current code once (a code verifies once per
// step: replay protection), until the users run out or the time does.
func (b *bench) scenarioVerifyTOTP() (result, error) {
	pool := b.totp
	r := run("verify TOTP (valid)", b.cfg.conns, b.cfg.duration, 0, func(ctx context.Context, c *http.Client, _, i int) error {
		if i >= len(pool) {
			return errDone
		}
		u := pool[i]
		return b.get(ctx, c, b.verifyURL(u.gen.Code(time.Now()), u.id), 200)
	})
	r.Note = fmt.Sprintf("each of %d users' current code once", len(pool))
	return r, nil
}

func (b *bench) scenarioVerifyTOTPWrong() (result, error) {
	pool := b.totp
	r := run("verify TOTP (wrong)", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, i int) error {
		u := pool[i%len(pool)]
		wrong := u.gen.Code(time.Now().Add(time.Hour)) // well formed, outside the window
		return b.get(ctx, c, b.verifyURL(wrong, u.id), 401)
	})
	r.Note = "a well-formed code outside the window, users in rotation; answered 401/60020"
	return r, nil
}

func (b *bench) scenarioSMS() (result, error) {
	pool := b.smsPool
	r := run("sms/{id} (outbox)", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, i int) error {
		return b.get(ctx, c, b.api.base+"/protected/json/sms/"+strconv.FormatInt(pool[i%len(pool)], 10), 200)
	})
	r.Note = "a code per request, users in rotation, kept in the outbox"
	return r, nil
}

// scenarioVerifySMS verifies the newest code of every user the sms scenario sent to, once each.
func (b *bench) scenarioVerifySMS(ctx context.Context) (result, error) {
	c := b.setupClient(1)
	// Users the sms scenario did not reach get one code now.
	codes, err := b.srv.outboxCodes(10_000_000)
	if err != nil && len(b.smsPool) > 0 {
		if err := parallel(len(b.smsPool), b.cfg.conns, func(i int) error {
			return b.get(ctx, c, b.api.base+"/protected/json/sms/"+strconv.FormatInt(b.smsPool[i], 10), 200)
		}); err != nil {
			return result{}, err
		}
		codes, err = b.srv.outboxCodes(10_000_000)
	}
	if err != nil {
		return result{}, err
	}
	type pending struct {
		id   int64
		code string
	}
	var list []pending
	for _, id := range b.smsPool {
		if code, ok := codes[id]; ok {
			list = append(list, pending{id, code})
		}
	}
	r := run("verify SMS (valid)", b.cfg.conns, b.cfg.duration, 0, func(ctx context.Context, c *http.Client, _, i int) error {
		if i >= len(list) {
			return errDone
		}
		return b.get(ctx, c, b.verifyURL(list[i].code, list[i].id), 200)
	})
	r.Note = fmt.Sprintf("each of %d users' newest code (read from the outbox) once", len(list))
	return r, nil
}

func (b *bench) scenarioVerifySMSWrong() (result, error) {
	pool := b.smsPool
	r := run("verify SMS (wrong)", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, i int) error {
		return b.get(ctx, c, b.verifyURL("0000000", pool[i%len(pool)]), 401)
	})
	r.Note = "a wrong 7-digit code, users in rotation; answered 401/60020"
	return r, nil
}

// registerDevices makes n new users, each with one registered device.
func (b *bench) registerDevices(ctx context.Context, n int) ([]*device, error) {
	c := b.setupClient(b.cfg.conns)
	devs := make([]*device, n)
	err := parallel(n, b.cfg.conns, func(i int) error {
		id, err := b.newUser(ctx, c)
		if err != nil {
			return err
		}
		devs[i], err = b.api.registerDevice(ctx, c, id)
		return err
	})
	return devs, err
}

func (b *bench) createApproval(ctx context.Context, c *http.Client, userID int64) (string, error) {
	var out struct {
		ApprovalRequest struct {
			UUID string `json:"uuid"`
		} `json:"approval_request"`
	}
	err := b.api.call(ctx, c, http.MethodPost, "/onetouch/json/users/"+strconv.FormatInt(userID, 10)+"/approval_requests",
		"message=Sign+in+to+Bench&details[ip]=127.0.0.1&seconds_to_expire=3600", 200, &out)
	return out.ApprovalRequest.UUID, err
}

func (b *bench) scenarioApprovalCreate(ctx context.Context) (result, error) {
	devs, err := b.registerDevices(ctx, b.cfg.devices)
	if err != nil {
		return result{}, err
	}
	r := run("approval request create", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, i int) error {
		uuid, err := b.createApproval(ctx, c, devs[i%len(devs)].userID)
		if err == nil {
			b.uuidMu.Lock()
			b.uuids = append(b.uuids, uuid)
			b.uuidMu.Unlock()
		}
		return err
	})
	r.Note = fmt.Sprintf("%d users with a device (not connected), in rotation", len(devs))
	return r, nil
}

func (b *bench) scenarioApprovalStatus(ctx context.Context) (result, error) {
	if len(b.uuids) == 0 {
		devs, err := b.registerDevices(ctx, 1)
		if err != nil {
			return result{}, err
		}
		c := b.setupClient(1)
		for range 100 {
			uuid, err := b.createApproval(ctx, c, devs[0].userID)
			if err != nil {
				return result{}, err
			}
			b.uuids = append(b.uuids, uuid)
		}
	}
	uuids := b.uuids
	r := run("approval request status", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, i int) error {
		return b.get(ctx, c, b.api.base+"/onetouch/json/approval_requests/"+uuids[i%len(uuids)], 200)
	})
	r.Note = fmt.Sprintf("GET of %d pending requests in rotation", len(uuids))
	return r, nil
}

// scenarioOneTouch measures the whole round: the customer creates a request; the device, whose
// event stream is open, sees it; the device signs and sends its approval; the customer's
// callback endpoint receives the signed callback (and checks the signature). conns rounds run at
// once, each for its own user and device.
func (b *bench) scenarioOneTouch(ctx context.Context, conns int) ([]result, error) {
	devs, err := b.registerDevices(ctx, conns)
	if err != nil {
		return nil, err
	}
	sctx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	streamClient := &http.Client{Transport: newTransport(conns + 1)}
	seen := newRendezvous()
	for _, d := range devs {
		ready := make(chan error, 1)
		go b.api.stream(sctx, streamClient, d, ready, seen.signal)
		if err := <-ready; err != nil {
			return nil, err
		}
	}
	var mu sync.Mutex
	var stages [4][]time.Duration // created, seen, answered, callback: each since the start
	name := fmt.Sprintf("OneTouch end to end, %d at once", conns)
	measureFrom := time.Now().Add(b.cfg.warmup) // stages of warm-up rounds are not kept
	r := run(name, conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, w, _ int) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		d := devs[w]
		t0 := time.Now()
		uuid, err := b.createApproval(ctx, c, d.userID)
		if err != nil {
			return err
		}
		t1 := time.Now()
		t2, err := seen.wait(ctx, uuid)
		if err != nil {
			return fmt.Errorf("device never saw %s on its event stream: %w", uuid, err)
		}
		if err := b.api.answer(ctx, c, d, uuid); err != nil {
			return err
		}
		t3 := time.Now()
		t4, err := b.recv.got.wait(ctx, uuid)
		if err != nil {
			return fmt.Errorf("no callback for %s: %w", uuid, err)
		}
		if t0.Before(measureFrom) {
			return nil
		}
		mu.Lock()
		for i, t := range []time.Time{t1, t2, t3, t4} {
			stages[i] = append(stages[i], t.Sub(t0))
		}
		mu.Unlock()
		return nil
	})
	r.Note = "create → seen on SSE → signed approval → signed callback received and checked"
	out := []result{r}
	for i, s := range []string{"request created", "seen by the device (SSE)", "approval answered", "callback received"} {
		st := summarize("  ↳ "+s, conns, stages[i], 0, 0, "")
		if i == 0 {
			st.Note = "stages of the rounds above, each as time since its round started"
		}
		out = append(out, st)
	}
	return out, nil
}

// scenarioSSEMemory connects n devices' event streams and reports the server's resident memory
// before and after.
func (b *bench) scenarioSSEMemory(ctx context.Context, n int) (result, error) {
	t0 := time.Now()
	devs, err := b.registerDevices(ctx, n)
	if err != nil {
		return result{}, err
	}
	logf("sse-memory: %d devices registered in %s", n, time.Since(t0).Round(time.Millisecond))
	pid := b.srv.cmd.Process.Pid
	before := rssKB(pid)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	tr := newTransport(0)
	tr.MaxConnsPerHost, tr.MaxIdleConnsPerHost = 0, 0
	c := &http.Client{Transport: tr}
	t0 = time.Now()
	var open atomic.Int64
	err = parallel(n, b.cfg.conns, func(i int) error {
		ready := make(chan error, 1)
		go b.api.stream(sctx, c, devs[i], ready, func(string) {})
		if err := <-ready; err != nil {
			return err
		}
		open.Add(1)
		return nil
	})
	if err != nil {
		return result{}, fmt.Errorf("after %d streams: %w", open.Load(), err)
	}
	took := time.Since(t0)
	time.Sleep(2 * time.Second) // let the server settle
	after := rssKB(pid)
	r := result{Name: fmt.Sprintf("%d SSE devices connected", n), Conns: n, Requests: n, Elapsed: took,
		Note: fmt.Sprintf("server RSS %.1f MB before, %.1f MB after (%.1f KB per stream); connected in %s",
			float64(before)/1024, float64(after)/1024, float64(after-before)/float64(n), took.Round(time.Millisecond))}
	return r, nil
}
