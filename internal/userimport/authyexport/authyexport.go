// Package authyexport reads users from the Authy API's migration exports, or from a Twofold
// server that answers them (spec 2.8 and the Authy export docs): per user, GET
// users/{id}/phone_number, then GET users/{id}/secret/export, with the customer's API key in
// X-Authy-API-Key. It is the source of twofold import from-authy: it yields the users as
// userimport.Records, in the order of the list of ids, with bounded concurrency that adapts to
// the source's rate limit.
//
// What the source answers is hostile input: bodies are bounded, texts made printable, and
// redirects are not followed, so the key is sent to the one address given only; the key is
// never in an error or a report line, even when the source echoes it back.
//
// Its messages are written for the people running twofold import, and name its flags.
package authyexport

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
	"time"

	"github.com/twofold-auth/twofold/internal/userimport"
	"github.com/twofold-auth/twofold/internal/userimport/records"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

// Source reads users from the Authy API's migration exports, or from a Twofold server that
// answers them. Fetch may be called by several goroutines at once.
//
// The base URL is chosen by the operator running this command on their own machine, not by a
// remote party, so unlike the server's callbacks and push endpoints it goes through no egress
// guard: pointing it at a loopback or private address is the operator's right (and how tests
// and Twofold-to-Twofold moves on one network work). What the source answers is hostile input
// all the same: bodies are bounded, texts made printable, and redirects are not followed, so
// the key is sent to that one address only.
type Source struct {
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

// Config is what a Source is made of.
type Config struct {
	URL         string        // the source's address: http(s)://host[:port][/prefix]
	Key         string        // the application's API key, sent as X-Authy-API-Key
	Concurrency int           // requests in flight at most, and connections kept open
	Timeout     time.Duration // the longest one request may take
	// Tolerant: a source that keeps failing (5xx, network errors, answers that cannot be read)
	// fails the user it was asked about, and the run goes on (--continue-on-error); otherwise
	// it stops the run.
	Tolerant bool
}

// New returns a Source for c, or an error saying (in the flags' words) what is wrong with
// the URL or that the key is missing. Close it when done.
func New(c Config) (*Source, error) {
	base, key, concurrency, timeout, tolerant := c.URL, c.Key, c.Concurrency, c.Timeout, c.Tolerant
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--authy-url %q: want http(s)://host[:port][/prefix]", wiretext.ClipN(base, 80))
	}
	if key == "" {
		return nil, errors.New("the Authy API key is missing: give --authy-key or set TWOFOLD_AUTHY_API_KEY")
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = concurrency // keep every worker's connection open
	return &Source{
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

// URL is the source's address, as given, without a trailing slash.
func (s *Source) URL() string { return s.base }

// Close closes the connections the source keeps open.
func (s *Source) Close() { s.client.CloseIdleConnections() }

// OnLimit has f called whenever the source's rate limit changes how many requests may be in
// flight (limit of max) or pauses them all until pause (a 429), and as the bound rises back
// to max. Set it before fetching: f is called by the fetching goroutines, one at a time.
func (s *Source) OnLimit(f func(limit, max int, pause time.Time)) { s.gate.onChange = f }

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

// Item is one user of the list of ids.
type Item struct {
	Line  int    // of the list
	ID    int64  // the authy_id to fetch
	Email string // the list's, if it gives one
}

// Fetched is one user as the source gave it, in the order of the list.
type Fetched struct {
	Record userimport.Record
	Fail   string // the user cannot be imported, and why (a report line)
	Err    error  // the run stops here
}

// Fetch reads one user: its phone number and, if it has one, its authenticator's seed, into a
// Record with the Item's ID, Email and Line. Fail is why this user cannot be imported; Err
// stops the run (or is the context's).
func (s *Source) Fetch(ctx context.Context, it Item) Fetched {
	rec := userimport.Record{ID: it.ID, Email: it.Email, Line: it.Line}
	a, fail, err := s.get(ctx, fmt.Sprintf("/protected/json/users/%d/phone_number", it.ID))
	switch {
	case fail != "" || err != nil:
		return Fetched{rec, fail, err}
	case a.status == http.StatusNotFound:
		return Fetched{rec, "not found at the source" + a.said(), nil}
	case a.status != http.StatusOK:
		fail, err := s.refused("phone_number", a)
		return Fetched{rec, fail, err}
	}
	if rec.CountryCode, rec.Phone, fail = phoneAnswer(a.body); fail != "" {
		fail, err := s.unreadable("phone_number", fail)
		return Fetched{rec, fail, err}
	}

	a, fail, err = s.get(ctx, fmt.Sprintf("/protected/json/users/%d/secret/export", it.ID))
	switch {
	case fail != "" || err != nil:
		return Fetched{rec, fail, err}
	case a.status == http.StatusNotFound: // no exportable seed: the user had the Authy app, or none
		return Fetched{rec, "", nil}
	case a.status != http.StatusOK:
		fail, err := s.refused("secret/export", a)
		return Fetched{rec, fail, err}
	}
	if rec.Secret, rec.Digits, rec.Period, fail = seedAnswer(a.body); fail != "" {
		fail, err := s.unreadable("secret/export", fail)
		return Fetched{rec, fail, err}
	}
	return Fetched{rec, "", nil}
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
func (s *Source) refused(what string, a answer) (string, error) {
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
func (s *Source) unreadable(what, why string) (string, error) {
	msg := what + ": " + why
	if s.tolerant {
		return msg, nil
	}
	return "", &stopError{"the source's answer cannot be read: " + msg + " (is --authy-url the Authy API?)"}
}

// get sends one GET, waiting on the gate, retrying 429 (after Retry-After, else backing off)
// and, a few times, network errors and 5xx. fail is set when the source keeps failing and the
// run is tolerant; err when it is not, or when the context ends.
func (s *Source) get(ctx context.Context, path string) (a answer, fail string, err error) {
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
			why = s.Scrub(err.Error())
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
func (s *Source) once(ctx context.Context, path string) (answer, time.Duration, error) {
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
			code, _ := records.JSONText(env.Code, true, true)
			a.code = wiretext.ClipN(code, 10)
			a.msg = s.Scrub(wiretext.ClipN(env.Message, 200))
		}
	}
	return a, retryAfter(res.Header.Get("Retry-After"), time.Now()), nil
}

// Scrub keeps the API key out of a text the source or the network stack made, should a
// hostile source echo it back. The fail texts and errors of Fetch are scrubbed already; an
// error that wraps one is worth scrubbing again before it is printed.
func (s *Source) Scrub(text string) string {
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
