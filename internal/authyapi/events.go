package authyapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/internal/live"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// keepAlive is how often an idle event stream sends a comment, so proxies keep it open and dead
// connections are noticed.
const keepAlive = 15 * time.Second

const (
	// streamWriteTimeout bounds one write to a stream: a client that reads nothing for that
	// long is dropped (it reconnects) rather than holding one of the broker's workers.
	streamWriteTimeout = 10 * time.Second
	// streamReadTimeout bounds the store reads of one wake-up.
	streamReadTimeout = 10 * time.Second
)

// deviceEvents: GET /device/v1/events, a Server-Sent Events stream of the device user's approval
// requests. Each pending request is sent once as an "approval_request" event whose id is the
// request's sequence number; a reconnecting client sends Last-Event-ID (browsers do it
// themselves) and gets what it missed. Later changes of a request it was sent come as
// "approval_request_update" events, and a resumed stream first says where each request the
// client already had stands. Wake-ups come from this server's broker; the stream always
// reads the store, so nothing depends on a wake-up arriving.
//
// Thousands of devices stay connected at once, so a stream must cost little while it waits.
// The handler therefore takes the connection over from net/http (which would otherwise keep,
// per connection, a goroutine with the stack the request grew, another blocked reading, and
// about 10 KB of buffers) and returns: what remains is the connection, one small goroutine that
// notices the client leaving, and a live.Watch, whose wake-ups and keep-alives run on the
// broker's few workers. Where the connection cannot be taken over (HTTP/2, a test's recorder),
// the handler stays and the same stream writes through it.
func (a *API) deviceEvents(w http.ResponseWriter, r *http.Request, c *deviceCall) error {
	last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	if v, ok := c.params.String("last_event_id"); ok && last == 0 {
		last, _ = strconv.ParseInt(v, 10, 64)
	}
	app, err := a.apps.Get(r.Context(), c.device.AppID)
	if err != nil {
		return err
	}
	s := &eventStream{a: a, appName: app.Name, last: last, resumed: last > 0,
		// Only the ids: Registered and ForDevice need no more, and the stream holds it for hours.
		device: twofold.Device{ID: c.device.ID, AppID: c.device.AppID, UserID: c.device.UserID}}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	rc := http.NewResponseController(w)
	if r.Method == http.MethodGet {
		conn, _, err := rc.Hijack()
		switch {
		case err == nil:
			s.serveConn(conn, h, r.ProtoAtLeast(1, 1))
			return nil
		case !errors.Is(err, http.ErrNotSupported):
			return fmt.Errorf("event stream: %w", err)
		}
	}

	// The handler's own goroutine carries the stream until it ends.
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	w.WriteHeader(http.StatusOK) // sent with the first run's events
	s.out = &handlerOut{w: w, rc: rc}
	s.done = make(chan struct{})
	s.start()
	select {
	case <-r.Context().Done():
	case <-s.done:
	}
	s.end(false) // no write to w once the handler returns
	return nil
}

// serveConn starts the stream on a connection taken over from net/http and leaves it to its
// Watch. The response head, which net/http would have written, goes out with the first events.
func (s *eventStream) serveConn(conn net.Conn, h http.Header, chunked bool) {
	conn.SetDeadline(time.Time{}) // the server's read and write timeouts are not a stream's
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	h.Set("Connection", "close") // the connection ends with the stream
	if chunked {
		h.Set("Transfer-Encoding", "chunked")
	}
	var head bytes.Buffer
	if chunked {
		head.WriteString("HTTP/1.1 200 OK\r\n")
	} else {
		head.WriteString("HTTP/1.0 200 OK\r\n") // as net/http answers HTTP/1.0
	}
	h.Write(&head)
	head.WriteString("\r\n")
	s.out = &connOut{conn: conn, chunked: chunked, head: head.Bytes()}
	s.start()
	go s.watchClose(conn)
}

// watchClose ends the stream when the client closes the connection: the one goroutine a
// taken-over stream keeps, blocked in a read with a small stack. A client sends nothing on an
// event stream, so a byte it sends ends the stream too, rather than be read for nothing.
func (s *eventStream) watchClose(conn net.Conn) {
	var b [1]byte
	_, err := conn.Read(b[:])
	s.end(err == nil)
}

// eventStream is one device's open stream.
type eventStream struct {
	a       *API
	device  twofold.Device // its ids only
	appName string
	done    chan struct{} // closed at the end, when a handler waits for it

	mu    sync.Mutex // held while writing
	out   streamOut
	watch *live.Watch
	ended bool

	// Touched only by run, which its Watch never calls twice at once.
	started bool   // the first run is over
	last    int64  // the highest id sent, or the client's Last-Event-ID
	read    int64  // the highest id read: a request up to it was sent (see sent) or is settled
	resumed bool   // the client already has requests up to last
	sent    []sent // requests sent on this stream, among the latest ForDevice returns
}

type sent struct {
	id     int64
	uuid   string
	status twofold.ApprovalStatus
	group  groupState // as sent, for a request of an approval group
}

// unsettled are the requests sent while pending, which may have changed since: with those newer
// than the last the client has seen, what the store must be read for.
func (s *eventStream) unsettled() []int64 {
	var ids []int64
	for _, x := range s.sent {
		if x.status == twofold.Pending {
			ids = append(ids, x.id)
		}
	}
	return ids
}

// start registers the stream, so StopStreams ends it, and watches its user: run is called at
// once, on every change and every keepAlive.
func (s *eventStream) start() {
	ok, evicted := s.a.streams.add(s)
	for _, old := range evicted {
		s.a.metrics.Limited.WithLabelValues("device_streams").Inc()
		go old.end(true) // its last write may wait on a dead connection
	}
	if !ok {
		s.end(true) // the server is shutting down
		return
	}
	w := s.a.live.Watch(s.device.AppID, s.device.UserID, keepAlive, s.run)
	s.mu.Lock()
	s.watch = w
	ended := s.ended // run may have ended it already
	s.mu.Unlock()
	if ended {
		w.Stop()
	}
}

// run reads the store and sends what changed, after a keep-alive comment when one is due.
func (s *eventStream) run(beat bool) {
	defer func() {
		if v := recover(); v != nil {
			s.a.log.Error("panic in event stream", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			s.end(false)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), streamReadTimeout)
	defer cancel()
	// A device removed while connected gets nothing more.
	if ok, err := s.a.devices.Registered(ctx, s.device); err != nil || !ok {
		s.end(true)
		return
	}
	var list []twofold.ApprovalRequest
	var err error
	if !s.started {
		list, err = s.a.onetouch.ForDevice(ctx, s.device, "", 50)
	} else {
		// Later runs read only what is new and the requests sent that may still change (a
		// settled request never does): usually a row or two, however many the user left pending.
		list, err = s.a.onetouch.ForDeviceSince(ctx, s.device, max(s.last, s.read), s.unsettled())
	}
	if err != nil {
		s.end(true) // the client reconnects
		return
	}
	var b []byte
	if !s.started {
		// As the stream's first bytes, after the store was read: whoever sees them can count
		// on the stream having its wake-ups and keep-alives.
		b, s.started = append(b, "retry: 2000\n\n"...), true
	}
	if beat {
		b = append(b, ": keep-alive\n\n"...)
	}
	slices.Reverse(list) // oldest first, so ids only grow
	if len(list) > 0 {
		s.read = max(s.read, list[len(list)-1].ID)
	}
	groups := groupViews{ot: s.a.onetouch}
	now := make([]sent, 0, len(s.sent)+1)
	for _, req := range list {
		i := slices.IndexFunc(s.sent, func(x sent) bool { return x.uuid == req.UUID })
		was := i >= 0
		var event string
		switch {
		case !was && req.Status == twofold.Pending && req.ID > s.last:
			event = "approval_request"
		case was && s.sent[i].status != req.Status, !was && s.resumed && req.ID <= s.last:
			// A change, or, on resuming, where a request the client had stands now.
			event = "approval_request_update"
		case was && req.Status == twofold.Pending && req.GroupID != 0:
			// The request has not changed, but its group may have: another approver answered
			// ("approved by Bob" on Ana's phone, live).
			g, err := groups.of(ctx, req)
			if err != nil {
				s.end(true)
				return
			}
			if g.state() == s.sent[i].group {
				now = append(now, s.sent[i])
				continue
			}
			event = "approval_request_update"
		case was:
			now = append(now, s.sent[i])
			continue
		default:
			continue
		}
		g, err := groups.of(ctx, req) // read once a run, however many requests name it
		if err != nil {
			s.end(true) // the client reconnects
			return
		}
		data, _ := json.Marshal(viewRequest(req, s.appName, g))
		if event == "approval_request" {
			b = fmt.Appendf(b, "id: %d\nevent: approval_request\ndata: %s\n\n", req.ID, data)
			s.last = req.ID
		} else {
			b = fmt.Appendf(b, "event: approval_request_update\ndata: %s\n\n", data)
		}
		now = append(now, sent{req.ID, req.UUID, req.Status, g.state()})
	}
	// What a run no longer returns cannot come back: it reads every request that may still
	// change (unsettled) or is new; the others are settled for good.
	s.sent, s.resumed = now, false
	if len(s.sent) == 0 {
		s.sent = nil
	}
	if len(b) > 0 && !s.send(b) {
		s.end(false)
	}
}

// send writes events; false when the stream cannot take them.
func (s *eventStream) send(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended && s.out.write(b) == nil
}

// end ends the stream, once: cleanly (the response's last chunk) unless the connection is
// known to be broken. It never waits for a run in progress, only for a write.
func (s *eventStream) end(clean bool) {
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.ended = true
	w := s.watch
	s.out.close(clean)
	s.mu.Unlock()
	if w != nil {
		w.Stop()
	}
	s.a.streams.remove(s)
	if s.done != nil {
		close(s.done)
	}
}

// streamOut is where a stream's bytes go.
type streamOut interface {
	write(b []byte) error // sent at once
	close(clean bool)
}

// connOut is a connection taken over from net/http: the body is chunked as net/http would have
// done for HTTP/1.1, and the connection closed at the end.
type connOut struct {
	conn    net.Conn
	chunked bool
	head    []byte // the response head, until it is sent with the first write
}

func (o *connOut) write(p []byte) error {
	b := o.head
	if o.chunked {
		b = strconv.AppendInt(b, int64(len(p)), 16)
		b = append(b, "\r\n"...)
		b = append(append(b, p...), "\r\n"...)
	} else {
		b = append(b, p...)
	}
	o.head = nil
	return o.send(b, streamWriteTimeout)
}

func (o *connOut) send(b []byte, timeout time.Duration) error {
	o.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := o.conn.Write(b)
	return err
}

func (o *connOut) close(clean bool) {
	if clean {
		b := o.head // a stream ended before its first events is an empty response
		if o.chunked {
			b = append(b, "0\r\n\r\n"...)
		}
		if len(b) > 0 {
			o.send(b, time.Second)
		}
	}
	o.conn.Close()
}

// handlerOut writes through the ResponseWriter of a handler that waits for the stream's end.
type handlerOut struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (o *handlerOut) write(b []byte) error {
	if _, err := o.w.Write(b); err != nil {
		return err
	}
	return o.rc.Flush()
}

func (o *handlerOut) close(bool) {} // the handler returns; net/http ends the response

// streamSet is the open streams of an API, for StopStreams, and their bounds per device and per
// user (Config.MaxDeviceStreams, MaxUserStreams).
//
// Over a bound the oldest stream ends rather than the new one being refused: a phone that
// changes networks leaves its old connections open on the server until TCP gives up on them,
// many minutes later, and refusing would shut the device out meanwhile. Either way one token
// holds no more than the bound.
type streamSet struct {
	mu      sync.Mutex
	open    map[*eventStream]struct{}
	stopped bool

	maxDevice, maxUser int
	byDevice           map[int64][]*eventStream // oldest first
	byUser             map[userKey][]*eventStream
}

// add registers s and returns the streams it displaces, which the caller ends; ok is false once
// the set is stopped.
func (ss *streamSet) add(s *eventStream) (ok bool, evicted []*eventStream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stopped {
		return false, nil
	}
	if ss.open == nil {
		ss.open = map[*eventStream]struct{}{}
		ss.byDevice = map[int64][]*eventStream{}
		ss.byUser = map[userKey][]*eventStream{}
	}
	ss.open[s] = struct{}{}
	d, u := s.device.ID, userKey{s.device.AppID, s.device.UserID}
	ss.byDevice[d] = append(ss.byDevice[d], s)
	ss.byUser[u] = append(ss.byUser[u], s)
	for ss.maxDevice > 0 && len(ss.byDevice[d]) > ss.maxDevice {
		evicted = append(evicted, ss.byDevice[d][0])
		ss.removeLocked(ss.byDevice[d][0])
	}
	for ss.maxUser > 0 && len(ss.byUser[u]) > ss.maxUser {
		evicted = append(evicted, ss.byUser[u][0])
		ss.removeLocked(ss.byUser[u][0])
	}
	return true, evicted
}

func (ss *streamSet) remove(s *eventStream) {
	ss.mu.Lock()
	ss.removeLocked(s)
	ss.mu.Unlock()
}

// removeLocked forgets s, if it is still in the set.
func (ss *streamSet) removeLocked(s *eventStream) {
	if _, ok := ss.open[s]; !ok {
		return
	}
	delete(ss.open, s)
	d, u := s.device.ID, userKey{s.device.AppID, s.device.UserID}
	if l := slices.DeleteFunc(ss.byDevice[d], func(x *eventStream) bool { return x == s }); len(l) > 0 {
		ss.byDevice[d] = l
	} else {
		delete(ss.byDevice, d)
	}
	if l := slices.DeleteFunc(ss.byUser[u], func(x *eventStream) bool { return x == s }); len(l) > 0 {
		ss.byUser[u] = l
	} else {
		delete(ss.byUser, u)
	}
}

// stop ends every stream, cleanly, and every one started after. Each end waits at most for a
// write in progress and a short last one, so they run side by side.
func (ss *streamSet) stop() {
	ss.mu.Lock()
	ss.stopped = true
	list := make([]*eventStream, 0, len(ss.open))
	for s := range ss.open {
		list = append(list, s)
	}
	ss.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range list {
		wg.Go(func() { s.end(true) })
	}
	wg.Wait()
}
