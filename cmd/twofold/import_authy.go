package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/internal/userimport"
)

// authySource reads users from the Authy API's migration exports, or from a Twofold server
// that answers them (spec 2.8 and the Authy export docs): per user, GET
// users/{id}/phone_number, then GET users/{id}/secret/export, with the customer's API key in
// X-Authy-API-Key.
//
// The base URL is chosen by the operator running this command on their own machine, not by a
// remote party, so unlike the server's callbacks and push endpoints it goes through no egress
// guard: pointing it at a loopback or private address is the operator's right (and how tests
// and Twofold-to-Twofold moves on one network work). What the source answers is hostile input
// all the same: bodies are bounded, texts made printable, and redirects are not followed, so
// the key is sent to that one address only.
type authySource struct {
	base   string // without a trailing slash
	key    string
	client *http.Client
	gate   *gate
	// tolerant: a source that keeps failing (5xx, network, unreadable answers) fails the user
	// and the run goes on (--continue-on-error); otherwise it stops the run, to be resumed.
	tolerant bool
	tries    int // per request, for network errors and 5xx
	// limitedTries bounds the 429s one request may meet before the run stops.
	limitedTries int
	backoff      func(attempt int) time.Duration
}

const maxAnswer = 64 << 10 // an export answer is a few hundred bytes

func newAuthySource(base, key string, concurrency int, timeout time.Duration, tolerant bool) (*authySource, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--authy-url %q: want http(s)://host[:port][/prefix]", printable(base, 80))
	}
	if key == "" {
		return nil, errors.New("the Authy API key is missing: give --authy-key or set TWOFOLD_AUTHY_API_KEY")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = concurrency // keep every worker's connection open
	return &authySource{
		base: strings.TrimRight(base, "/"),
		key:  key,
		client: &http.Client{
			Transport: transport,
			Timeout:   timeout,
			// A redirect would carry the key to wherever the source points; stop instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		gate:         newGate(concurrency),
		tolerant:     tolerant,
		tries:        5,
		limitedTries: 30,
		backoff:      jittered,
	}, nil
}

// jittered is exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to a minute, each between
// half and all of that, so workers that were limited together do not retry together.
func jittered(attempt int) time.Duration {
	d := 500 * time.Millisecond << min(attempt, 7)
	d = min(d, time.Minute)
	return d/2 + rand.N(d/2+1)
}

// stopError stops the run: the source refuses us (key, disabled exports) or keeps failing.
type stopError struct{ msg string }

func (e *stopError) Error() string { return e.msg }

// answer is one response of the source.
type answer struct {
	status int
	body   []byte
	code   string // error_code of an error envelope
	msg    string // its message, printable
}

// fetch reads one user: its phone number and, if it has one, its authenticator's seed. fail is
// why this user cannot be imported; err stops the run (or is the context's).
func (s *authySource) fetch(ctx context.Context, it idItem) fetched {
	rec := userimport.Record{ID: it.id, Email: it.email, Line: it.line}
	a, fail, err := s.get(ctx, fmt.Sprintf("/protected/json/users/%d/phone_number", it.id))
	switch {
	case fail != "" || err != nil:
		return fetched{rec, fail, err}
	case a.status == http.StatusNotFound:
		return fetched{rec, "not found at the source" + a.said(), nil}
	case a.status != http.StatusOK:
		fail, err := s.refused("phone_number", a)
		return fetched{rec, fail, err}
	}
	if rec.CountryCode, rec.Phone, fail = phoneAnswer(a.body); fail != "" {
		fail, err := s.unreadable("phone_number", fail)
		return fetched{rec, fail, err}
	}

	a, fail, err = s.get(ctx, fmt.Sprintf("/protected/json/users/%d/secret/export", it.id))
	switch {
	case fail != "" || err != nil:
		return fetched{rec, fail, err}
	case a.status == http.StatusNotFound: // no exportable seed: the user had the Authy app, or none
		return fetched{rec, "", nil}
	case a.status != http.StatusOK:
		fail, err := s.refused("secret/export", a)
		return fetched{rec, fail, err}
	}
	if rec.Secret, rec.Digits, rec.Period, fail = seedAnswer(a.body); fail != "" {
		fail, err := s.unreadable("secret/export", fail)
		return fetched{rec, fail, err}
	}
	return fetched{rec, "", nil}
}

// said quotes the source's message for a report line.
func (a answer) said() string {
	switch {
	case a.msg != "" && a.code != "":
		return fmt.Sprintf(" (%d %s: %s)", a.status, a.code, a.msg)
	case a.msg != "":
		return fmt.Sprintf(" (%d: %s)", a.status, a.msg)
	}
	return fmt.Sprintf(" (%d)", a.status)
}

// refused judges an answer other than 200 and 404: some stop the run (the key, the exports
// being disabled, a redirect), others fail this user only.
func (s *authySource) refused(what string, a answer) (string, error) {
	switch {
	case a.code == "60154":
		return "", &stopError{"the source refuses to export users" + a.said() + ": its migration tools are " +
			"disabled for this application. Ask Twilio (Authy) support to enable the Authy migration tools (the phone " +
			"number and secret exports) for your application (on a Twofold source: twofold app update ID --migration-tools), " +
			"then run this command again"}
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		return "", &stopError{"the source refused the API key" + a.said() +
			": check --authy-key or TWOFOLD_AUTHY_API_KEY (the key of the application the users belong to)"}
	case a.status >= 300 && a.status < 400:
		return "", &stopError{fmt.Sprintf("the source redirects (%d) instead of answering: give --authy-url "+
			"its final address (redirects are not followed, so the API key goes to that address only)", a.status)}
	}
	return what + ": the source answered" + a.said(), nil
}

// unreadable is an answer of 200 that is not what the export gives: a source that is not what
// it seems (a login page, a proxy) stops the run unless --continue-on-error.
func (s *authySource) unreadable(what, why string) (string, error) {
	msg := what + ": " + why
	if s.tolerant {
		return msg, nil
	}
	return "", &stopError{"the source's answer cannot be read: " + msg + " (is --authy-url the Authy API?)"}
}

// get sends one GET, waiting on the gate, retrying 429 (after Retry-After, else backing off)
// and, a few times, network errors and 5xx. fail is set when the source keeps failing and the
// run is tolerant; err when it is not, or when the context ends.
func (s *authySource) get(ctx context.Context, path string) (a answer, fail string, err error) {
	failures, limited := 0, 0
	for {
		if err := s.gate.acquire(ctx); err != nil {
			return answer{}, "", err
		}
		a, retryAfter, err := s.once(ctx, path)
		var why string
		switch {
		case err != nil:
			s.gate.release(false, 0)
			if ctx.Err() != nil {
				return answer{}, "", ctx.Err()
			}
			why = s.scrub(err.Error())
		case a.status == http.StatusTooManyRequests:
			limited++
			wait := retryAfter
			if wait <= 0 {
				wait = s.backoff(limited - 1)
			}
			s.gate.release(false, wait)
			if limited >= s.limitedTries {
				return answer{}, "", &stopError{fmt.Sprintf("the source still limits the rate after %d tries (%s): run this again later "+
					"to resume, perhaps with a lower --concurrency", limited, path)}
			}
			continue
		case a.status >= 500:
			s.gate.release(false, 0)
			why = "the source answered" + a.said()
		default:
			s.gate.release(true, 0)
			return a, "", nil
		}
		failures++
		if failures >= s.tries {
			msg := fmt.Sprintf("%s after %d tries: %s", path, failures, why)
			if s.tolerant {
				return answer{}, msg, nil
			}
			return answer{}, "", &stopError{msg}
		}
		if err := sleep(ctx, s.backoff(failures-1)); err != nil {
			return answer{}, "", err
		}
	}
}

// once sends one request and reads its answer.
func (s *authySource) once(ctx context.Context, path string) (answer, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return answer{}, 0, err
	}
	req.Header.Set("X-Authy-API-Key", s.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "twofold-import")
	res, err := s.client.Do(req)
	if err != nil {
		return answer{}, 0, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxAnswer+1))
	if err != nil {
		return answer{}, 0, err
	}
	if len(body) > maxAnswer {
		return answer{}, 0, fmt.Errorf("an answer of more than %d bytes", maxAnswer)
	}
	a := answer{status: res.StatusCode, body: body}
	if a.status != http.StatusOK {
		var env struct {
			Code    json.RawMessage `json:"error_code"`
			Message string          `json:"message"`
		}
		if json.Unmarshal(body, &env) == nil {
			code, _ := jsonText(env.Code, true, true)
			a.code = printable(code, 10)
			a.msg = s.scrub(printable(env.Message, 200))
		}
	}
	return a, retryAfter(res.Header.Get("Retry-After"), time.Now()), nil
}

// scrub keeps the API key out of a text the source or the network stack made, should a
// hostile source echo it back.
func (s *authySource) scrub(text string) string {
	return strings.ReplaceAll(text, s.key, "[the API key]")
}

// retryAfter reads a Retry-After header (seconds or an HTTP date); 0 when there is none. A
// source asking for more than a quarter of an hour gets a quarter of an hour.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, 15*time.Minute))
}

// phoneAnswer reads a phone_number export: {"phone_number":"<national>","country_code":<n or
// "n">,"e164":"+…"}. A user without a phone number has none of them.
func phoneAnswer(body []byte) (cc int, national, fail string) {
	var b struct {
		PhoneNumber json.RawMessage `json:"phone_number"`
		CountryCode json.RawMessage `json:"country_code"`
		E164        json.RawMessage `json:"e164"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return 0, "", "not a JSON object"
	}
	number, msg := jsonText(b.PhoneNumber, false, true)
	if msg != "" {
		return 0, "", "phone_number: " + msg
	}
	code, msg := jsonText(b.CountryCode, true, true)
	if msg != "" {
		return 0, "", "country_code: " + msg
	}
	e164, msg := jsonText(b.E164, false, true)
	if msg != "" {
		return 0, "", "e164: " + msg
	}
	if code = strings.TrimPrefix(strings.TrimSpace(code), "+"); code != "" {
		n, err := strconv.Atoi(code)
		if err != nil || !isNumber(code) {
			return 0, "", fmt.Sprintf("country_code %q is not a number", printable(code, 10))
		}
		cc = n
	}
	if number == "" && cc > 0 && strings.HasPrefix(e164, "+"+code) {
		number = strings.TrimPrefix(e164, "+"+code)
	}
	if number == "" && cc == 0 {
		return 0, "", "" // no phone number
	}
	digits, ok := phoneDigits(number, cc)
	if !ok {
		return 0, "", fmt.Sprintf("phone_number %q is not a phone number", printable(number, 24))
	}
	return cc, digits, ""
}

// seedAnswer reads a secret export: {"secret":"BASE32","otp":"123456","success":true}, with
// "digits" and "period" when the source is a Twofold. Without them the code's length gives the
// digits, and the period is Authy's 30 seconds. No secret is no seed.
func seedAnswer(body []byte) (secret string, digits, period int, fail string) {
	var b struct {
		Secret json.RawMessage `json:"secret"`
		OTP    json.RawMessage `json:"otp"`
		Digits json.RawMessage `json:"digits"`
		Period json.RawMessage `json:"period"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return "", 0, 0, "not a JSON object"
	}
	s, msg := jsonText(b.Secret, false, true)
	if msg != "" {
		return "", 0, 0, "secret: " + msg // never the value: it is the seed
	}
	if secret = normalSecret(s); secret == "" {
		return "", 0, 0, ""
	}
	otp, msg := jsonText(b.OTP, true, true)
	if msg != "" {
		return "", 0, 0, "otp: " + msg
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		to   *int
	}{{"digits", b.Digits, &digits}, {"period", b.Period, &period}} {
		v, msg := jsonText(f.raw, true, true)
		if msg != "" {
			return "", 0, 0, f.name + ": " + msg
		}
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return "", 0, 0, fmt.Sprintf("%s %q is not a whole number", f.name, printable(v, 10))
		}
		*f.to = n
	}
	if digits == 0 {
		digits = len(strings.TrimSpace(otp)) // 0 (no code given) means 6
	}
	return secret, digits, period, ""
}

// gate bounds the requests in flight and adapts to the source's rate limit: a 429 halves how
// many may be in flight (once for the 429s that come together) and pauses every request until
// the source's Retry-After (or a backoff); each run of successes as long as the current bound
// raises it by one again, up to --concurrency.
type gate struct {
	mu         sync.Mutex
	max, limit int
	inFlight   int
	successes  int
	pauseUntil time.Time
	changed    chan struct{} // closed and replaced whenever a slot may have opened
	onChange   func(limit, max int, pause time.Time)
}

func newGate(max int) *gate {
	return &gate{max: max, limit: max, changed: make(chan struct{})}
}

func (g *gate) acquire(ctx context.Context) error {
	for {
		g.mu.Lock()
		wait := time.Until(g.pauseUntil)
		if wait <= 0 && g.inFlight < g.limit {
			g.inFlight++
			g.mu.Unlock()
			return nil
		}
		changed := g.changed
		g.mu.Unlock()
		var t *time.Timer
		var timer <-chan time.Time
		if wait > 0 {
			t = time.NewTimer(wait)
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-changed:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// release frees a slot; ok is a request the source answered, pause (if > 0) a 429.
func (g *gate) release(ok bool, pause time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	switch {
	case pause > 0:
		now := time.Now()
		if !now.Before(g.pauseUntil) { // the requests limited together halve the bound once
			g.limit = max(1, g.limit/2)
		}
		g.successes = 0
		if until := now.Add(pause); until.After(g.pauseUntil) {
			g.pauseUntil = until
		}
	case ok:
		if g.successes++; g.successes >= g.limit && g.limit < g.max {
			g.limit++
			g.successes = 0
		}
	}
	if g.onChange != nil && (pause > 0 || ok) {
		g.onChange(g.limit, g.max, g.pauseUntil)
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// sleep waits d, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// idItem is one user of the id list.
type idItem struct {
	line  int
	id    int64
	email string
}

// fetched is one user as the source gave it, in the order of the list.
type fetched struct {
	rec  userimport.Record
	fail string // the user cannot be imported, and why
	err  error  // the run stops here
}

// fetchInOrder fetches the users ids yields with workers requests at most in flight, and
// delivers them in the order of the list (a checkpoint can only say "everything before this
// line"). At most window users are being fetched or waiting for an earlier one, and buffer
// fetched ones wait for the consumer (so fetching goes on while a batch is written): memory
// stays bounded whatever the list's length. stop ends the fetching and waits for it.
func fetchInOrder(ctx context.Context, ids func(yield func(idItem, error) bool), workers, window, buffer int,
	fetch func(context.Context, idItem) fetched) (out <-chan fetched, stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	type job struct {
		seq int
		it  idItem
		err error
	}
	type result struct {
		seq int
		f   fetched
	}
	jobs := make(chan job)
	results := make(chan result)
	ordered := make(chan fetched, buffer)
	slots := make(chan struct{}, window)
	var wg sync.WaitGroup

	go func() { // the dispatcher: the list, in order, no further than window ahead
		defer close(jobs)
		seq := 0
		for it, err := range ids {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{seq, it, err}:
			case <-ctx.Done():
				return
			}
			seq++
			if err != nil {
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				f := fetched{err: j.err}
				if j.err == nil {
					f = fetch(ctx, j.it)
				}
				select {
				case results <- result{j.seq, f}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(results) }()
	go func() { // the collector: puts the results back in the list's order
		defer close(ordered)
		pending := map[int]fetched{}
		next := 0
		for r := range results {
			pending[r.seq] = r.f
			for f, ok := pending[next]; ok; f, ok = pending[next] {
				delete(pending, next)
				next++
				select {
				case ordered <- f:
				case <-ctx.Done():
					return
				}
				<-slots
			}
		}
	}()
	return ordered, func() {
		cancel()
		for range ordered { // let the collector finish
		}
		wg.Wait()
	}
}
