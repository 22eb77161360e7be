package main

import (
	"context"
	"fmt"
	"github.com/twofold-auth/twofold/internal/otp"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// bench is one store (an engine and a number of users) and its server: the users seeded in it
// and what the scenarios pass on to each other.
type bench struct {
	cfg    config
	engine string // "sqlite" or "postgres"
	size   int    // users seeded
	srv    *server
	db     *storeDB // the bench's own connection to the server's database
	api    *apiClient
	recv   *callbackReceiver
	tmp    string
	phone  atomic.Int64 // next phone number suffix of users registered through the API

	seed    seeded
	totp    *totpPool // seeded users with an authenticator
	sms     *smsPool  // seeded users without one
	devices map[string][]*device
	uuids   []string // approval requests made by approval-create
	uuidMu  sync.Mutex
	okBody  []byte // verify's success answer, served by the floor
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

// checkSeeded proves the seeding right through the real API before anything is measured: two
// seeded users' current TOTP codes and two seeded SMS codes must verify, and a wrong code of
// each kind must not (so neither passes for another reason, such as an unconfirmed user let
// through). The first success answer is what the floor serves.
func (b *bench) checkSeeded(ctx context.Context) error {
	c := b.setupClient(1)
	verify := func(what string, id int64, code string, want int) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.verifyURL(code, id), nil)
		req.Header.Set("X-Authy-API-Key", b.api.key)
		body, err := do(c, req, want)
		if err != nil {
			return fmt.Errorf("seeding is wrong: %s of seeded user %d: %w (has the schema, the sealing or "+
				"seedAD/codeContext in internal/verify changed? see bench/seed.go)", what, id, err)
		}
		if want == 200 && b.okBody == nil {
			b.okBody = body
		}
		return nil
	}
	for range 2 {
		id, code, ok := b.totp.take(time.Now())
		if !ok {
			return fmt.Errorf("seeding is wrong: no seeded TOTP user to check")
		}
		if err := verify("the current TOTP code", id, code, 200); err != nil {
			return err
		}
	}
	id, g := b.totp.any(int(b.totp.cursor.Load()))
	if err := verify("a TOTP code an hour away", id, g.Code(time.Now().Add(time.Hour)), 401); err != nil {
		return err
	}
	if err := b.sms.issue(ctx, b.db, 3); err != nil {
		return err
	}
	for range 2 {
		id, code, _ := b.sms.take()
		if err := verify("an issued SMS code", id, code, 200); err != nil {
			return err
		}
	}
	id, code, ok := b.sms.take()
	if !ok {
		return fmt.Errorf("seeding is wrong: no third seeded SMS user to check")
	}
	wrong := []byte(code)
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	return verify("a wrong SMS code", id, string(wrong), 401)
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
	return r, nil
}

// scenarioUsersNew registers new users, then deletes them from the store (straight in the
// database), so that the store keeps its size for the scenarios after it.
func (b *bench) scenarioUsersNew(ctx context.Context) (result, error) {
	before, err := b.db.maxUserID(ctx)
	if err != nil {
		return result{}, err
	}
	r := run("users/new", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, _ int) error {
		_, err := b.newUser(ctx, c)
		return err
	})
	after, err := b.db.maxUserID(ctx)
	if err != nil {
		return result{}, err
	}
	if err := b.db.deleteUsers(ctx, before, after); err != nil {
		return result{}, err
	}
	r.Note = "a new user with a new phone number per request; deleted afterwards, so the store keeps its size"
	return r, nil
}

// scenarioVerifyTOTP verifies seeded users' current codes. A code verifies once per step
// (replay protection), so each user is taken at most once per step; when every user of the
// store has verified in the current step, the clock stops, the users' replay records are reset
// in the database and the load resumes (a phase), until the whole duration is measured.
func (b *bench) scenarioVerifyTOTP(ctx context.Context, name string) (result, error) {
	p := b.totp
	resets := p.resets
	r, err := runRefill(name, b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, _ int) error {
		id, code, ok := p.take(time.Now())
		if !ok {
			return errDone
		}
		return b.get(ctx, c, b.verifyURL(code, id), 200)
	}, func(float64, time.Duration) error { return p.reset(ctx, b.db) })
	r.Note = fmt.Sprintf("the current code of a different user per request, over %s seeded users with an authenticator app (confirmed)", commas(int64(p.s.totpN)))
	if n := p.resets - resets; n > 0 {
		r.Note += fmt.Sprintf("; every one had verified in this step %d times: %d phases, replay records reset between them with the clock stopped", n, r.Phases)
	}
	return r, err
}

// withFailureLimit runs fn with the application's failure limit at the server's default (10 per
// user per 15 minutes), set with the CLI, and puts it back to off after fn, as every other
// scenario runs it.
func (b *bench) withFailureLimit(fn func() (result, error)) (result, error) {
	app := strconv.FormatInt(b.srv.appID, 10)
	if _, err := b.srv.cli("app", "update", app, "--limit", "failures=10/15m"); err != nil {
		return result{}, err
	}
	r, err := fn()
	if _, uerr := b.srv.cli("app", "update", app, "--limit", "failures=off"); err == nil {
		err = uerr
	}
	return r, err
}

// scenarioVerifyTOTPLimited is verify-totp with the failure limit on, as in production: every
// verification then also counts an attempt before judging the code and gives it back once the
// code is accepted, two more durable writes.
func (b *bench) scenarioVerifyTOTPLimited(ctx context.Context) (result, error) {
	r, err := b.withFailureLimit(func() (result, error) {
		return b.scenarioVerifyTOTP(ctx, "verify TOTP (valid), failure limit on")
	})
	r.Note += "; the failure limit at the default, 10 per user per 15 minutes: each verification reads the count and, when the code is wrong, counts it, in the decision that judges the code"
	return r, err
}

// scenarioVerifyTOTPLocked is a guessing attack past the failure limit (withFailureLimit). Up to
// 1,000 seeded users are first locked out, each by ten wrong codes; then wrong codes for them
// are answered 429/60003 without being judged or counted again (a read each, no write): this is
// what an attacker's load costs. Their counts are deleted afterwards.
func (b *bench) scenarioVerifyTOTPLocked(ctx context.Context) (result, error) {
	p, locked := b.totp, min(b.totp.s.totpN, 1000)
	r, err := b.withFailureLimit(func() (result, error) {
		c := b.setupClient(b.cfg.conns)
		err := parallel(locked, b.cfg.conns, func(i int) error {
			id, g := p.any(i)
			url := b.verifyURL(wrongCode(g, time.Now()), id)
			for range 10 {
				if err := b.get(ctx, c, url, 401); err != nil {
					return fmt.Errorf("locking user %d out: %w", id, err)
				}
			}
			return b.get(ctx, c, url, 429)
		})
		if err != nil {
			return result{}, err
		}
		r := run("verify TOTP (locked out)", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, i int) error {
			id, g := p.any(i % locked)
			return b.get(ctx, c, b.verifyURL(wrongCode(g, time.Now()), id), 429)
		})
		r.Note = fmt.Sprintf("a guessing attack: wrong codes for %s users locked out by the failure limit (10 per 15 minutes); answered 429/60003 without being counted again", commas(int64(locked)))
		return r, nil
	})
	if cerr := b.db.clearFailures(ctx); err == nil {
		err = cerr
	}
	return r, err
}

func (b *bench) scenarioVerifyTOTPWrong() (result, error) {
	p := b.totp
	r := run("verify TOTP (wrong)", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, i int) error {
		id, g := p.any(i)
		return b.get(ctx, c, b.verifyURL(wrongCode(g, time.Now()), id), 401)
	})
	r.Note = fmt.Sprintf("a well-formed code outside the window, %s seeded users in rotation; answered 401/60020", commas(int64(p.s.totpN)))
	return r, nil
}

// wrongCode is a well-formed code of g an hour away that is none of the codes the server
// accepts now (the window of ±3 steps covers any skew): one code in a million would otherwise
// verify by chance.
func wrongCode(g otp.TOTP, now time.Time) string {
	for later := time.Hour; ; later += time.Duration(g.Period) * time.Second {
		code, clash := g.Code(now.Add(later)), false
		for k := -3; k <= 3; k++ {
			clash = clash || g.Code(now.Add(time.Duration(k*g.Period)*time.Second)) == code
		}
		if !clash {
			return code
		}
	}
}

func (b *bench) scenarioSMS() (result, error) {
	p := b.sms
	r := run("sms/{id} (outbox)", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, i int) error {
		return b.get(ctx, c, b.api.base+"/protected/json/sms/"+strconv.FormatInt(p.user(i), 10), 200)
	})
	r.Note = fmt.Sprintf("a code per request, %s seeded users without an authenticator in rotation, kept in the outbox", commas(int64(p.n)))
	return r, nil
}

// scenarioVerifySMS verifies live SMS codes, each once. The codes are issued straight into the
// database (as sms/{id} stores them, without the message) before the load, for a batch of
// users sized from the rate; when a batch is spent the clock stops and the next is issued.
func (b *bench) scenarioVerifySMS(ctx context.Context) (result, error) {
	p := b.sms
	issued := p.issued
	if err := p.issue(ctx, b.db, 20_000); err != nil {
		return result{}, err
	}
	r, err := runRefill("verify SMS (valid)", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, _ int) error {
		id, code, ok := p.take()
		if !ok {
			return errDone
		}
		return b.get(ctx, c, b.verifyURL(code, id), 200)
	}, func(rate float64, left time.Duration) error {
		k := 20_000
		if rate > 0 {
			k = max(1000, int(rate*(left+b.cfg.warmup).Seconds()*1.2))
		}
		return p.issue(ctx, b.db, k)
	})
	r.Note = fmt.Sprintf("a live code of a different user per request, each once; %s codes issued to %s seeded users without an authenticator (confirmed) in %d phases",
		commas(int64(p.issued-issued)), commas(int64(p.n)), r.Phases)
	return r, err
}

// scenarioVerifySMSWrong tries a wrong code on users with no live code: their codes are deleted
// first (as the sweep deletes them once expired), so the result does not depend on what ran
// before.
func (b *bench) scenarioVerifySMSWrong(ctx context.Context) (result, error) {
	p := b.sms
	if err := b.db.deleteCodes(ctx, p.first, p.first+int64(p.n)); err != nil {
		return result{}, err
	}
	r := run("verify SMS (wrong)", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, i int) error {
		return b.get(ctx, c, b.verifyURL("0000000", p.user(i)), 401)
	})
	r.Note = fmt.Sprintf("a wrong 7-digit code, %s seeded users with no live code in rotation; answered 401/60020", commas(int64(p.n)))
	return r, nil
}

// scenarioUserStatus looks users up: GET users/{id}/status over every seeded user, scattered.
func (b *bench) scenarioUserStatus() (result, error) {
	perm := newPermutation(b.seed.n)
	r := run("users/{id}/status", b.cfg.conns, b.cfg.duration, b.cfg.warmup, func(ctx context.Context, c *http.Client, _, i int) error {
		return b.get(ctx, c, b.api.base+"/protected/json/users/"+strconv.FormatInt(b.seed.id(perm.at(i)), 10)+"/status", 200)
	})
	r.Note = fmt.Sprintf("every one of the %s seeded users in rotation, scattered over the table", commas(int64(b.seed.n)))
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

// devicesFor is registerDevices once per purpose: repeated runs reuse the users and devices, so
// the store does not grow from run to run.
func (b *bench) devicesFor(ctx context.Context, purpose string, n int) ([]*device, error) {
	if d, ok := b.devices[purpose]; ok {
		return d, nil
	}
	d, err := b.registerDevices(ctx, n)
	if err != nil {
		return nil, err
	}
	if b.devices == nil {
		b.devices = map[string][]*device{}
	}
	b.devices[purpose] = d
	return d, nil
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
	devs, err := b.devicesFor(ctx, "approval-create", b.cfg.devices)
	if err != nil {
		return result{}, err
	}
	// The requests of earlier runs are expired first: a user has a handful pending, not hundreds
	// (the server's default cap is 5), and counting them is part of creating one.
	ids := make([]int64, len(devs))
	for i, d := range devs {
		ids[i] = d.userID
	}
	if err := b.db.expirePending(ctx, ids); err != nil {
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
	r.Note = fmt.Sprintf("%d users with a device (not connected), in rotation, their earlier requests expired", len(devs))
	return r, nil
}

func (b *bench) scenarioApprovalStatus(ctx context.Context) (result, error) {
	if len(b.uuids) == 0 {
		devs, err := b.devicesFor(ctx, "approval-status", 1)
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
	devs, err := b.devicesFor(ctx, fmt.Sprintf("onetouch-%d", conns), conns)
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
	r.Note = "create → seen on SSE → signed approval → signed callback received and checked; req/s are rounds/s, CPU per round"
	r.Rounds = true
	out := []result{r}
	for i, s := range []string{"request created", "seen by the device (SSE)", "approval answered", "callback received"} {
		st := summarize("  ↳ "+s, conns, stages[i], 0, 0, "")
		st.StageOf = name
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
	var memBefore runtimeMem
	if base := pprofBase(b.srv.logText()); base != "" {
		memBefore, _ = serverRuntimeMem(base)
	}
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
	if open, err := b.sseStreamsOpen(ctx); err == nil {
		r.Note += fmt.Sprintf("; %d streams open on the server when measured", open)
	}
	if base := pprofBase(b.srv.logText()); base != "" { // TWOFOLD_PPROF_ADDR=127.0.0.1:0
		if m, err := serverRuntimeMem(base); err != nil {
			logf("sse-memory: runtime figures: %v", err)
		} else {
			r.Note += fmt.Sprintf("; after a forced GC: RSS %.1f MB, %s (before the streams: %s)", float64(rssKB(pid))/1024, m, memBefore)
		}
		if b.cfg.keep {
			if err := saveProfiles(base, b.tmp); err != nil {
				logf("sse-memory: profiles: %v", err)
			} else {
				logf("sse-memory: heap.pb.gz and goroutine.txt of the server with %d streams in %s", n, b.tmp)
			}
		}
	}
	return r, nil
}
