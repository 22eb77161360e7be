package smtptest_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/smtp"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/twofold-auth/twofold/internal/deliver/smtpmail/smtptest"
)

const raw = "From: a@acme.test\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello 123\r\n"

// send delivers raw over STARTTLS (when offered), authenticating when user is set.
func send(srv *smtptest.Server, user, pass string) error {
	c, err := smtp.Dial(srv.Addr())
	if err != nil {
		return err
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: srv.Host(), RootCAs: srv.RootCAs()}); err != nil {
			return err
		}
	}
	if user != "" {
		if err := c.Auth(smtp.PlainAuth("", user, pass, srv.Host())); err != nil {
			return err
		}
	}
	if err := c.Mail("a@acme.test"); err != nil {
		return err
	}
	if err := c.Rcpt("b@example.com"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(raw)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func TestServer(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{User: "mailer", Pass: "pw"})
	errc := make(chan error, 1)
	go func() { errc <- send(srv, "mailer", "pw") }()
	msgs := srv.Wait(t, 1)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	m := msgs[0]
	if m.From != "a@acme.test" || len(m.To) != 1 || m.To[0] != "b@example.com" || !m.TLS || m.AuthUser != "mailer" {
		t.Errorf("message = %+v", m)
	}
	h, text, html := smtptest.Parts(t, m.Data)
	if h.Get("Subject") != "hi" || text != "hello 123" || html != "" {
		t.Errorf("Parts = %v, %q, %q", h, text, html)
	}
	// Messages hands out copies.
	srv.Messages()[0].Data[0] = 'X'
	if got := srv.Messages()[0].Data[0]; got != 'F' {
		t.Errorf("Messages shares its buffers: first byte now %q", got)
	}
	if n := srv.MailCommands(); n != 1 {
		t.Errorf("MailCommands = %d, want 1", n)
	}

	if err := send(srv, "mailer", "wrong"); err == nil {
		t.Error("wrong password accepted")
	}
	if err := send(srv, "", ""); err == nil {
		t.Error("MAIL FROM accepted without AUTH")
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestServerRefusals(t *testing.T) {
	refuse := &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	for name, o := range map[string]smtptest.Options{
		"rcpt": {TLS: smtptest.None, RcptErr: refuse},
		"data": {TLS: smtptest.None, DataErr: refuse},
	} {
		t.Run(name, func(t *testing.T) {
			srv := smtptest.Start(t, o)
			err := send(srv, "", "")
			if err == nil || !strings.Contains(err.Error(), "no such user") {
				t.Errorf("send: %v, want the server's refusal", err)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages recorded, want 0", n)
			}
		})
	}
}

func TestImplicitTLSAndCAPEM(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{TLS: smtptest.Implicit})
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(srv.CAPEM()) {
		t.Fatal("CAPEM holds no certificate")
	}
	conn, err := tls.Dial("tcp", srv.Addr(), &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, err := smtp.NewClient(conn, srv.Host())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
}

func TestSilent(t *testing.T) {
	silent := smtptest.Silent(t)
	conn, err := net.Dial("tcp", silent.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	select {
	case <-silent.Accepted():
	case <-time.After(10 * time.Second):
		t.Fatal("no accept reported")
	}
	conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var ne net.Error
	if n, err := conn.Read(make([]byte, 1)); n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Read = %d, %v; want a timeout: the listener must not speak", n, err)
	}
}

func TestParts(t *testing.T) {
	tests := []struct {
		name, raw, text, html string
	}{
		{
			name: "plain, no content type",
			raw:  "Subject: x\r\n\r\nhello\r\n",
			text: "hello",
		},
		{
			name: "quoted-printable html only",
			raw: "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
				"<p>code <b>4829=\r\n13</b> =E2=80=94 ok</p>\r\n",
			html: "<p>code <b>482913</b> — ok</p>",
		},
		{
			name: "alternative inside mixed, base64 and quoted-printable",
			raw: "Content-Type: multipart/mixed; boundary=OUT\r\n\r\n" +
				"--OUT\r\nContent-Type: multipart/alternative; boundary=IN\r\n\r\n" +
				"--IN\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
				"WW91ciBjb2RlIGlz\r\nIDQ4MjkxMy4=\r\n" +
				"--IN\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
				"<b>482913</b>=3D\r\n" +
				"--IN--\r\n" +
				"--OUT\r\nContent-Type: text/plain\r\n\r\nan attachment, not the first text part\r\n" +
				"--OUT--\r\n",
			text: "Your code is 482913.",
			html: "<b>482913</b>=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, text, html := smtptest.Parts(t, []byte(tt.raw))
			if text != tt.text || html != tt.html {
				t.Errorf("Parts = %q, %q; want %q, %q", text, html, tt.text, tt.html)
			}
		})
	}
}
