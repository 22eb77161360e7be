package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

type sseEvent struct {
	id, event string
	data      map[string]any
}

// stream opens the device's event stream, from lastID when it is not "".
func (d *device) stream(t *testing.T, s *server, lastID string) (<-chan sseEvent, func()) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+"/device/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+d.token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	events := make(chan sseEvent, 16)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.event != "" {
					events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				ev.id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				ev.event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data)
			}
		}
	}()
	return events, func() { res.Body.Close() }
}

func nextEvent(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("event stream closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event")
		return sseEvent{}
	}
}

func TestDeviceEventStream(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	alice := s.register(s.key, "alice@example.com", "2015550123")
	bob := s.register(s.key, "bob@example.com", "2015550124")
	phone, bobPhone := s.newDevice(s.key, alice), s.newDevice(s.key, bob)

	early := s.createRequest(s.key, alice, url.Values{"message": {"Before connecting"}})
	events, closeStream := phone.stream(t, s, "")
	bobEvents, closeBob := bobPhone.stream(t, s, "")
	defer closeBob()
	// A pending request made before connecting is sent at once.
	if ev := nextEvent(t, events); ev.event != "approval_request" || ev.data["uuid"] != early {
		t.Fatalf("first event: %+v", ev)
	}
	// A new request arrives live, with its details and no hidden details.
	live := s.createRequest(s.key, alice, url.Values{"message": {"Login from Paris"}, "details[City]": {"Paris"}, "hidden_details[ip]": {"1.2.3.4"}})
	ev := nextEvent(t, events)
	if ev.event != "approval_request" || ev.data["uuid"] != live || ev.data["message"] != "Login from Paris" ||
		ev.data["details"].(map[string]any)["City"] != "Paris" || ev.data["hidden_details"] != nil {
		t.Fatalf("live event: %+v", ev)
	}
	// Answering it (here, from the same device's API) is reported on the stream too.
	phone.answer(s, live, "approved", "", "")
	if ev := nextEvent(t, events); ev.event != "approval_request_update" || ev.data["uuid"] != live || ev.data["status"] != "approved" {
		t.Fatalf("update event: %+v", ev)
	}
	lastID := ev.id
	closeStream()

	// Requests made while disconnected are delivered on reconnection after Last-Event-ID.
	missed := s.createRequest(s.key, alice, url.Values{"message": {"While away"}})
	s.requestStatus(early)                   // (still pending)
	phone.answer(s, early, "denied", "", "") // answered while the device was away
	events, closeStream = phone.stream(t, s, lastID)
	defer closeStream()
	// First where the requests it had stand now, then only what it missed.
	if ev := nextEvent(t, events); ev.event != "approval_request_update" || ev.data["uuid"] != early || ev.data["status"] != "denied" {
		t.Fatalf("resumed stream, first event: %+v", ev)
	}
	if ev := nextEvent(t, events); ev.event != "approval_request_update" || ev.data["uuid"] != live {
		t.Fatalf("resumed stream, second event: %+v", ev)
	}
	if ev := nextEvent(t, events); ev.event != "approval_request" || ev.data["uuid"] != missed {
		t.Fatalf("after reconnecting: %+v (want %s)", ev, missed)
	}
	// Bob's stream saw none of Alice's requests.
	select {
	case ev := <-bobEvents:
		t.Fatalf("another user's device got %+v", ev)
	default:
	}
	m := s.do("GET", "/metrics", "", nil).raw
	if !strings.Contains(m, "twofold_device_streams 2") {
		t.Fatalf("stream gauge:\n%s", grep(m, "device_streams"))
	}
	// Removing the device ends its stream.
	if r := s.do("DELETE", fmt.Sprintf("/protected/json/sdk/devices/%d", phone.id), s.key, nil); r.status != 200 {
		t.Fatalf("delete device: %s", r.raw)
	}
	select {
	case ev, ok := <-events:
		if ok {
			t.Fatalf("removed device still got %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the removed device's stream stayed open")
	}
	// The server stops gracefully with streams open (the harness fails on a shutdown error).
}
