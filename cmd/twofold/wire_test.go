package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// What a client gets for requests that break HTTP itself, sent as raw bytes. Where the server
// sets the limit or routes the path, the answer is the Authy envelope; what net/http refuses
// before any handler runs is its plain text, and docs/security.md lists those cases.
func TestWireReplies(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	addr := strings.TrimPrefix(s.url, "http://")
	tests := []struct {
		name   string
		raw    string
		status int
		shaped bool // the Authy envelope
	}{
		{"headers over the server's limit", "GET /protected/json/app/details HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", 431, true},
		{"a query string over the limit", "GET /protected/json/app/details?" + strings.Repeat("a", 100<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", 431, true},
		{"an unknown path", "GET /nothing/here HTTP/1.1\r\nHost: x\r\n\r\n", 404, true},
		{"an unclean path", "GET /protected/json/../json/app/details HTTP/1.1\r\nHost: x\r\n\r\n", 404, true},
		{"a method the route has not", "PUT /protected/json/users/new HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405, true},
		{"CONNECT", "CONNECT evil.test:443 HTTP/1.1\r\nHost: evil.test:443\r\n\r\n", 404, true},
		{"an absolute URI", "GET http://evil.test/protected/json/app/details HTTP/1.1\r\nHost: x\r\n\r\n", 401, true},

		// net/http's own answers, before any handler.
		{"headers past net/http's bound", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n", 431, false},
		{"a NUL byte in the request line", "GET /a\x00b HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
		{"a method that is not a token", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400, false},
		{"an overflowing Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400, false},
		{"two Content-Lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400, false},
		{"a control byte in a header", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n", 400, false},
		{"no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400, false},
		{"an unknown transfer encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo\r\n\r\n", 501, false},
		{"an unknown HTTP version", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505, false},
		{"an unknown expectation", "POST / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 0\r\n\r\n", 417, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			go io.WriteString(c, tt.raw) // the server may answer before it has read everything
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %.200q", res.StatusCode, tt.status, body)
			}
			var env struct {
				Success   *bool  `json:"success"`
				ErrorCode string `json:"error_code"`
			}
			shaped := strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") &&
				json.Unmarshal(body, &env) == nil && env.Success != nil && !*env.Success && env.ErrorCode != ""
			if shaped != tt.shaped {
				t.Fatalf("the Authy envelope: %v, want %v: %.200q", shaped, tt.shaped, body)
			}
		})
	}
}
