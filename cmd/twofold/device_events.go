package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// streamEvent is one Server-Sent Event.
type streamEvent struct {
	ID    string // the last event id at dispatch (ids persist across events, as in EventSource)
	Event string
	Data  string
}

// readStream parses a text/event-stream, calling fn for each event and setRetry for each
// retry field, until the stream ends (io.EOF is returned as nil) or fn fails.
func readStream(r io.Reader, lastID string, setRetry func(time.Duration), fn func(streamEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var event string
	var data []string
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if data != nil {
				ev := streamEvent{ID: lastID, Event: event, Data: strings.Join(data, "\n")}
				if ev.Event == "" {
					ev.Event = "message"
				}
				if err := fn(ev); err != nil {
					return err
				}
			}
			event, data = "", nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // comment: keep-alive
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			event = value
		case "data":
			data = append(data, value)
		case "id":
			if !strings.ContainsRune(value, 0) {
				lastID = value
			}
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms >= 0 && setRetry != nil {
				setRetry(time.Duration(ms) * time.Millisecond)
			}
		}
	}
	return sc.Err()
}

// streamer keeps one device's event stream open: it reconnects after a dropped connection with
// Last-Event-ID, waiting longer after each failure, and gives up after maxFailures failures in
// a row. A connection that brought an event, or stayed up for healthy, resets the count.
type streamer struct {
	minDelay, maxDelay time.Duration
	maxFailures        int
	healthy            time.Duration
	idle               time.Duration // no byte for this long (keep-alives come every 15 s): reconnect
	log                func(format string, args ...any)
}

func newStreamer(log func(string, ...any)) *streamer {
	return &streamer{minDelay: time.Second, maxDelay: time.Minute, maxFailures: 8, healthy: time.Minute, idle: 45 * time.Second, log: log}
}

// errStreamRefused marks answers that reconnecting cannot fix (the token was refused).
var errStreamRefused = errors.New("event stream refused")

// run streams until ctx ends (returning nil) or it gives up. onConnect is called on every
// successful connection.
func (s *streamer) run(ctx context.Context, api deviceAPI, name string, onConnect func(), fn func(streamEvent) error) error {
	lastID := ""
	retry := s.minDelay
	delay := s.minDelay
	failures := 0
	for {
		progress, err := s.once(ctx, api, &lastID, &retry, onConnect, fn)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errStreamRefused) {
			return fmt.Errorf("%s: %w", name, err)
		}
		if progress {
			failures, delay = 0, min(max(retry, s.minDelay), s.maxDelay)
		}
		failures++
		if failures > s.maxFailures {
			return fmt.Errorf("%s: giving up on the event stream after %d failed attempts: %v", name, failures-1, err)
		}
		if err == nil {
			err = errors.New("the server closed the connection")
		}
		s.log("%s: event stream interrupted (%v); reconnecting in %s\n", name, err, delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		delay = min(max(delay*2, retry), s.maxDelay)
	}
}

// once makes one connection and reads it to its end. progress reports whether it brought an
// event or lasted long enough to count as healthy.
func (s *streamer) once(ctx context.Context, api deviceAPI, lastID *string, retry *time.Duration, onConnect func(), fn func(streamEvent) error) (progress bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := api.request(ctx, http.MethodGet, "/device/v1/events", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-store")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	start := time.Now()
	res, err := api.client.Do(req)
	if err != nil {
		return false, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		err := responseError(res, raw)
		if res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden || res.StatusCode == http.StatusNotFound {
			return false, fmt.Errorf("%w: %v", errStreamRefused, err)
		}
		return false, err
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, fmt.Errorf("%s answered %q, not an event stream", api.server, ct)
	}
	if onConnect != nil {
		onConnect()
	}
	watchdog := time.AfterFunc(s.idle, cancel)
	defer watchdog.Stop()
	events := 0
	err = readStream(&idleReader{r: res.Body, t: watchdog, d: s.idle}, *lastID, func(d time.Duration) { *retry = d },
		func(ev streamEvent) error {
			*lastID = ev.ID
			events++
			return fn(ev)
		})
	return events > 0 || time.Since(start) >= s.healthy, err
}

// idleReader pushes its timer back on every read.
type idleReader struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.t.Reset(r.d)
	}
	return n, err
}

// lineReader hands out stdin's lines on demand; its channel closes at EOF. It reads from its
// first use until EOF or close.
type lineReader struct {
	r     io.Reader
	once  sync.Once
	lines chan string
	stop  chan struct{}
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: r, lines: make(chan string), stop: make(chan struct{})}
}

func (l *lineReader) C() <-chan string {
	l.once.Do(func() {
		go func() {
			defer close(l.lines)
			sc := bufio.NewScanner(l.r)
			for sc.Scan() {
				select {
				case l.lines <- sc.Text():
				case <-l.stop:
					return
				}
			}
		}()
	})
	return l.lines
}

// close lets the reading goroutine end once its current read returns.
func (l *lineReader) close() { close(l.stop) }
