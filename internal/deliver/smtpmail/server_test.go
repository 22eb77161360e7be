package smtpmail

// A real SMTP server (emersion/go-smtp) on loopback for the tests, and a listener that never
// speaks.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testPKI is a self-signed certificate for 127.0.0.1 and a pool that trusts it.
type testPKI struct {
	cert tls.Certificate
	pool *x509.CertPool
}

var loadPKI = sync.OnceValue(func() testPKI {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
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
		panic(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return testPKI{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool: pool}
})

// serverOpts shapes a test SMTP server.
type serverOpts struct {
	tls      string // "starttls": offers STARTTLS; "tls": implicit TLS; "none": plain only
	user     string // when set, AUTH PLAIN is offered (over TLS) and required
	pass     string
	rcptErr  error // answer to RCPT TO
	dataErr  error // answer to the end of DATA
	insecure bool  // allow AUTH without TLS
}

// received is one message as the server saw it.
type received struct {
	from     string
	to       []string
	data     []byte
	tls      bool
	authUser string
}

type testServer struct {
	opts serverOpts
	port int

	mu       sync.Mutex
	mailCmds int
	msgs     []received
}

func startServer(t *testing.T, opts serverOpts) *testServer {
	t.Helper()
	ts := &testServer{opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{srv: ts, tls: isTLS}, nil
	}))
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.AllowInsecureAuth = opts.insecure
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{loadPKI().cert}}
	switch opts.tls {
	case "starttls":
		srv.TLSConfig = serverTLS
	case "tls":
		srv.TLSConfig = serverTLS
		l = tls.NewListener(l, serverTLS)
	}
	ts.port = l.Addr().(*net.TCPAddr).Port
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return ts
}

func (ts *testServer) messages() []received {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]received(nil), ts.msgs...)
}

func (ts *testServer) mailCommands() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.mailCmds
}

type session struct {
	srv      *testServer
	tls      bool
	authUser string
	from     string
	to       []string
}

func (s *session) AuthMechanisms() []string {
	if s.srv.opts.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.srv.opts.user || password != s.srv.opts.pass {
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
	if s.srv.opts.user != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.srv.opts.rcptErr != nil {
		return s.srv.opts.rcptErr
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.srv.opts.dataErr != nil {
		return s.srv.opts.dataErr
	}
	s.srv.mu.Lock()
	s.srv.msgs = append(s.srv.msgs, received{from: s.from, to: s.to, data: data, tls: s.tls, authUser: s.authUser})
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }

// silentListener accepts TCP connections and never says a word. Each accept is reported on the
// returned channel.
func silentListener(t *testing.T) (int, <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan struct{}, 16)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			accepted <- struct{}{}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port, accepted
}
