package main

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// Event streams' connections are taken over from net/http, so neither http.Server.Shutdown
// nor Close ends them: StopStreams must, and cleanly (the chunked body's last chunk), as when
// net/http ended them.
func TestShutdownEndsEventStreams(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	bodies := make([]io.ReadCloser, 3)
	for i := range bodies {
		user := s.register(s.key, "u"+itoa64(int64(i))+"@example.com", "201555012"+itoa64(int64(i)))
		d := s.newDevice(s.key, user)
		req, _ := http.NewRequest("GET", s.url+"/device/v1/events", nil)
		req.Header.Set("Authorization", "Bearer "+d.token)
		res, err := s.client.Do(req)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("stream %d: %v %v", i, res, err)
		}
		defer res.Body.Close()
		bodies[i] = res.Body
	}
	s.stop()
	for i, body := range bodies {
		done := make(chan error, 1)
		go func() { _, err := io.ReadAll(body); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("stream %d ended with %v, want a clean end", i, err)
			}
		case <-time.After(10 * time.Second): // a hang guard: the stream is over already
			t.Fatalf("stream %d still open after the server stopped", i)
		}
	}
}
