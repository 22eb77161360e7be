// Package smtptest runs real SMTP servers on the loopback interface for tests, in the manner of
// net/http/httptest: a Server (emersion/go-smtp) that speaks STARTTLS, implicit TLS or plain
// SMTP with a self-signed certificate, optionally requires AUTH PLAIN, and records what it
// receives; and a silent listener that accepts connections and never answers.
//
// Everything a Server or silent listener holds is released by the test's Cleanup. Methods that
// take a testing.TB may fail the test, so call them from the test's goroutine.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// TLS modes of a Server, spelled as smtpmail.Config spells them.
const (
	StartTLS = "starttls" // plain connect; STARTTLS offered
	Implicit = "tls"      // TLS from the first byte
	None     = "none"     // plain SMTP only
)

// WaitTimeout is how long Wait waits before it fails the test. It is generous on purpose: it
// only stops a broken test from hanging, it is not a timing target.
const WaitTimeout = 20 * time.Second

// Options shape a Server. The zero value is a STARTTLS server without authentication that
// accepts every message.
type Options struct {
	TLS string // StartTLS ("" too), Implicit or None
	// User and Pass, when User is set, make the server offer AUTH PLAIN (only over TLS unless
	// AllowInsecureAuth) and refuse MAIL FROM until a client has authenticated with them.
	User, Pass        string
	AllowInsecureAuth bool
	// RcptErr, when set, is the answer to every RCPT TO; DataErr to the end of every DATA
	// (the message is then not recorded). Use *smtp.SMTPError to choose the reply code.
	RcptErr, DataErr error
}

// Message is one message the server accepted.
type Message struct {
	From     string   // envelope sender (MAIL FROM)
	To       []string // envelope recipients (RCPT TO)
	Data     []byte   // the message as sent: headers and body
	TLS      bool     // the session was encrypted (STARTTLS or implicit TLS)
	AuthUser string   // the user the client authenticated as; "" without AUTH
}

// Server is a running SMTP server on 127.0.0.1.
type Server struct {
	opts Options
	port int

	mu       sync.Mutex
	mailCmds int
	msgs     []Message
	arrived  chan struct{} // closed, and replaced, whenever a message arrives
}

// Start starts a Server on a free port of 127.0.0.1. It is closed by tb.Cleanup.
func Start(tb testing.TB, o Options) *Server {
	tb.Helper()
	s := &Server{opts: o, arrived: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{srv: s, tls: isTLS}, nil
	}))
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = o.AllowInsecureAuth
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second

	serverTLS := &tls.Config{Certificates: []tls.Certificate{loadPKI().cert}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	switch o.TLS {
	case StartTLS, "":
		srv.TLSConfig = serverTLS
	case Implicit:
		srv.TLSConfig = serverTLS
		l = tls.NewListener(l, serverTLS)
	case None:
	default:
		l.Close()
		tb.Fatalf("smtptest: unknown TLS mode %q (want %q, %q or %q)", o.TLS, StartTLS, Implicit, None)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(l)
	}()
	tb.Cleanup(func() {
		srv.Close()
		l.Close() // in case Serve had not yet registered it when Close ran
		<-served
	})
	return s
}

// Host is the server's IP address, "127.0.0.1".
func (s *Server) Host() string { return "127.0.0.1" }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.port }

// Addr is the server's "host:port".
func (s *Server) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.port)) }

// CAPEM is the PEM of the self-signed certificate the server presents (for 127.0.0.1 and
// localhost), for clients that read trusted CAs from a file.
func (s *Server) CAPEM() []byte { return CAPEM() }

// RootCAs is a new pool that trusts the server's certificate.
func (s *Server) RootCAs() *x509.CertPool { return RootCAs() }

// Messages returns copies of the messages accepted so far, in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.copyMessages()
}

// MailCommands is how many MAIL FROM commands the server has received, accepted or refused:
// zero proves a client gave up before trying to send.
func (s *Server) MailCommands() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mailCmds
}

// Wait blocks until at least n messages have arrived and returns copies of all of them, in
// arrival order. It fails tb if they have not arrived within WaitTimeout.
func (s *Server) Wait(tb testing.TB, n int) []Message {
	tb.Helper()
	timeout := time.NewTimer(WaitTimeout)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		got, arrived := len(s.msgs), s.arrived
		if got >= n {
			msgs := s.copyMessages()
			s.mu.Unlock()
			return msgs
		}
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-timeout.C:
			tb.Fatalf("smtptest: %d of %d messages arrived within %v", got, n, WaitTimeout)
			return nil
		}
	}
}

// copyMessages copies s.msgs; s.mu must be held.
func (s *Server) copyMessages() []Message {
	out := make([]Message, len(s.msgs))
	for i, m := range s.msgs {
		m.To = append([]string(nil), m.To...)
		m.Data = append([]byte(nil), m.Data...)
		out[i] = m
	}
	return out
}

func (s *Server) add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// session is one SMTP connection's state.
type session struct {
	srv      *Server
	tls      bool
	authUser string
	from     string
	to       []string
}

func (s *session) AuthMechanisms() []string {
	if s.srv.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.srv.opts.User || password != s.srv.opts.Pass {
			return smtp.ErrAuthFailed
		}
		s.authUser = username
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.srv.mu.Lock()
	s.srv.mailCmds++
	s.srv.mu.Unlock()
	if s.srv.opts.User != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.srv.opts.RcptErr != nil {
		return s.srv.opts.RcptErr
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.srv.opts.DataErr != nil {
		return s.srv.opts.DataErr
	}
	s.srv.add(Message{From: s.from, To: append([]string(nil), s.to...), Data: data, TLS: s.tls, AuthUser: s.authUser})
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// SilentServer accepts TCP connections on 127.0.0.1 and never says a word, as a hung mail
// server does.
type SilentServer struct {
	port     int
	accepted chan struct{}
}

// Silent starts a SilentServer. It and the connections it accepted are closed by tb.Cleanup.
func Silent(tb testing.TB) *SilentServer {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	s := &SilentServer{port: l.Addr().(*net.TCPAddr).Port, accepted: make(chan struct{}, 64)}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case s.accepted <- struct{}{}:
			default: // nobody is counting this many
			}
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return s
}

// Host is the listener's IP address, "127.0.0.1".
func (s *SilentServer) Host() string { return "127.0.0.1" }

// Port is the listener's TCP port.
func (s *SilentServer) Port() int { return s.port }

// Addr is the listener's "host:port".
func (s *SilentServer) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.port)) }

// Accepted receives one value per accepted connection (the first 64 not yet received are kept).
func (s *SilentServer) Accepted() <-chan struct{} { return s.accepted }

// pki is a self-signed certificate for 127.0.0.1 and localhost, shared by every Server of the
// test binary.
type pki struct {
	cert tls.Certificate
	pem  []byte
}

var loadPKI = sync.OnceValue(func() pki {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic("smtptest: " + err.Error())
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "twofold test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic("smtptest: " + err.Error())
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic("smtptest: " + err.Error())
	}
	return pki{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
})

// CAPEM is the PEM of the self-signed certificate every Server presents.
func CAPEM() []byte { return append([]byte(nil), loadPKI().pem...) }

// RootCAs is a new pool that trusts the certificate every Server presents.
func RootCAs() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(loadPKI().cert.Leaf)
	return pool
}
