package smtpmail

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"mime"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/deliver/smtpmail/smtptest"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func testConfig(port int, mode string) Config {
	return Config{
		Host:      "127.0.0.1",
		Port:      port,
		From:      "Acme Security <no-reply@acme.test>",
		TLS:       mode,
		TLSConfig: &tls.Config{RootCAs: smtptest.RootCAs()},
		HELO:      "twofold.test",
	}
}

func email(html string) deliver.Outgoing {
	return deliver.Outgoing{
		SID:     "EM0123456789abcdef0123456789abcdef",
		Channel: twofold.Email,
		To:      "alice@example.com",
		Subject: "Your Acme verification code",
		Text:    "Your Acme code is 482913. Ne le partagez pas — merci.",
		HTML:    html,
		Locale:  "en",
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestDeliver(t *testing.T) {
	const html = `<p>Your Acme code is <b>482913</b>.</p>`
	tests := []struct {
		name     string
		mode     string // client and server TLS mode
		auth     bool
		html     string
		wantTLS  bool
		wantUser string
	}{
		{name: "starttls with auth and html", mode: "starttls", auth: true, html: html, wantTLS: true, wantUser: "mailer"},
		{name: "starttls without auth, text only", mode: "starttls", wantTLS: true},
		{name: "implicit tls with auth", mode: "tls", auth: true, html: html, wantTLS: true, wantUser: "mailer"},
		{name: "plain local relay", mode: "none", html: html},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := smtptest.Options{TLS: tt.mode}
			cfg := testConfig(0, tt.mode)
			if tt.auth {
				opts.User, opts.Pass = "mailer", "s3cret pass"
				cfg.Username, cfg.Password = "mailer", "s3cret pass"
			}
			srv := smtptest.Start(t, opts)
			cfg.Port = srv.Port()
			ml, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			out := email(tt.html)
			rcpt, err := ml.Deliver(ctxTimeout(t, 10*time.Second), out)
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if rcpt.Status != "" {
				t.Errorf("receipt status = %q, want empty", rcpt.Status)
			}
			if !strings.HasPrefix(rcpt.ID, "<") || !strings.HasSuffix(rcpt.ID, "@acme.test>") {
				t.Errorf("receipt ID = %q, want <random@acme.test>", rcpt.ID)
			}

			msgs := srv.Messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages, want 1", len(msgs))
			}
			got := msgs[0]
			if got.From != "no-reply@acme.test" {
				t.Errorf("envelope sender = %q", got.From)
			}
			if len(got.To) != 1 || got.To[0] != "alice@example.com" {
				t.Errorf("envelope recipients = %q", got.To)
			}
			if got.TLS != tt.wantTLS {
				t.Errorf("server saw TLS = %v, want %v", got.TLS, tt.wantTLS)
			}
			if got.AuthUser != tt.wantUser {
				t.Errorf("server saw AUTH user %q, want %q", got.AuthUser, tt.wantUser)
			}
			checkMessage(t, got.Data, out, rcpt.ID)
		})
	}
}

// checkMessage parses raw as an email and compares it with out.
func checkMessage(t *testing.T, raw []byte, out deliver.Outgoing, msgID string) {
	t.Helper()
	h, text, html := smtptest.Parts(t, raw)
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil || subject != out.Subject {
		t.Errorf("Subject = %q (%v), want %q", subject, err, out.Subject)
	}
	from, err := mail.ParseAddress(h.Get("From"))
	if err != nil || from.Name != "Acme Security" || from.Address != "no-reply@acme.test" {
		t.Errorf("From = %q (%v)", h.Get("From"), err)
	}
	to, err := mail.ParseAddress(h.Get("To"))
	if err != nil || to.Address != out.To {
		t.Errorf("To = %q (%v)", h.Get("To"), err)
	}
	if got := h.Get("Message-Id"); got != msgID {
		t.Errorf("Message-ID = %q, want receipt ID %q", got, msgID)
	}
	if got := h.Get("X-Twofold-Sid"); got != out.SID {
		t.Errorf("X-Twofold-SID = %q, want %q", got, out.SID)
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}

	mediaType, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		t.Fatalf("Content-Type %q: %v", h.Get("Content-Type"), err)
	}
	wantType := "multipart/alternative"
	if out.HTML == "" {
		wantType = "text/plain"
	}
	if mediaType != wantType {
		t.Fatalf("Content-Type = %q, want %s", mediaType, wantType)
	}
	if text != out.Text {
		t.Errorf("text/plain content = %q, want %q", text, out.Text)
	}
	if html != out.HTML {
		t.Errorf("text/html content = %q, want %q", html, out.HTML)
	}
}

func TestDeliverFailures(t *testing.T) {
	tests := []struct {
		name          string
		server        smtptest.Options
		mode          string
		user, pass    string
		untrusted     bool // client does not trust the test CA
		wantPermanent bool
		wantNoMail    bool // the client must not get as far as MAIL FROM
	}{
		{
			name:   "starttls required but not offered",
			server: smtptest.Options{TLS: "none"}, mode: "starttls",
			wantNoMail: true,
		},
		{
			name:   "starttls required, auth offered in clear, not offered TLS",
			server: smtptest.Options{TLS: "none", User: "mailer", Pass: "pw", AllowInsecureAuth: true}, mode: "starttls",
			user: "mailer", pass: "pw",
			wantNoMail: true,
		},
		{
			name:   "untrusted certificate",
			server: smtptest.Options{TLS: "starttls"}, mode: "starttls", untrusted: true,
			wantNoMail: true,
		},
		{
			name:   "wrong password",
			server: smtptest.Options{TLS: "starttls", User: "mailer", Pass: "right"}, mode: "starttls",
			user: "mailer", pass: "wrong-password",
			wantPermanent: true, wantNoMail: true,
		},
		{
			name:   "mailbox unavailable",
			server: smtptest.Options{TLS: "starttls", RcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unavailable"}},
			mode:   "starttls", wantPermanent: true,
		},
		{
			name:   "greylisted",
			server: smtptest.Options{TLS: "starttls", RcptErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "try again later"}},
			mode:   "starttls",
		},
		{
			name:   "rejected content",
			server: smtptest.Options{TLS: "tls", DataErr: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "content rejected"}},
			mode:   "tls", wantPermanent: true,
		},
		{
			name:   "temporary failure after data",
			server: smtptest.Options{TLS: "tls", DataErr: &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 3, 1}, Message: "insufficient storage"}},
			mode:   "tls",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.server)
			cfg := testConfig(srv.Port(), tt.mode)
			cfg.Username, cfg.Password = tt.user, tt.pass
			if tt.untrusted {
				cfg.TLSConfig = nil
			}
			ml, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ml.Deliver(ctxTimeout(t, 10*time.Second), email("<p>482913</p>"))
			if err == nil {
				t.Fatal("Deliver succeeded, want an error")
			}
			if got := deliver.IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v (err: %v)", got, tt.wantPermanent, err)
			}
			if !strings.HasPrefix(err.Error(), "smtp: ") {
				t.Errorf("error %q lacks the smtp: prefix", err)
			}
			if tt.pass != "" && strings.Contains(err.Error(), tt.pass) {
				t.Errorf("error reveals the password: %v", err)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("server accepted %d messages", n)
			}
			if n := srv.MailCommands(); tt.wantNoMail && n != 0 {
				t.Errorf("client sent MAIL FROM %d times, want none", n)
			}
		})
	}
}

func TestDeliverSilentServerDeadline(t *testing.T) {
	for _, mode := range []string{"starttls", "tls", "none"} {
		t.Run(mode, func(t *testing.T) {
			silent := smtptest.Silent(t)
			ml, err := New(testConfig(silent.Port(), mode))
			if err != nil {
				t.Fatal(err)
			}
			const budget = 300 * time.Millisecond
			start := time.Now()
			_, err = ml.Deliver(ctxTimeout(t, budget), email(""))
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("Deliver succeeded against a silent server")
			}
			if deliver.IsPermanent(err) {
				t.Errorf("silent server gave a permanent error: %v", err)
			}
			// Generous slack for a loaded CI machine, far below go-mail's own timeouts.
			if elapsed > budget+2*time.Second {
				t.Errorf("Deliver took %v with a %v deadline", elapsed, budget)
			}
		})
	}
}

func TestDeliverCancel(t *testing.T) {
	silent := smtptest.Silent(t)
	ml, err := New(testConfig(silent.Port(), "starttls"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background()) // no deadline at all
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := ml.Deliver(ctx, email(""))
		done <- err
	}()
	select {
	case <-silent.Accepted():
	case <-time.After(10 * time.Second):
		t.Fatal("Deliver never connected")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if deliver.IsPermanent(err) {
			t.Errorf("cancelled delivery is permanent: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Deliver ignored cancellation")
	}
}

func TestDeliverRefusesBeforeConnecting(t *testing.T) {
	silent := smtptest.Silent(t)
	ml, err := New(testConfig(silent.Port(), "starttls"))
	if err != nil {
		t.Fatal(err)
	}
	sms := email("")
	sms.Channel, sms.To = twofold.SMS, "+14155550123"
	badAddr := email("")
	badAddr.To = "not an address"
	for name, out := range map[string]deliver.Outgoing{"sms": sms, "bad recipient": badAddr} {
		t.Run(name, func(t *testing.T) {
			_, err := ml.Deliver(ctxTimeout(t, 5*time.Second), out)
			if !deliver.IsPermanent(err) {
				t.Errorf("err = %v, want a permanent error", err)
			}
		})
	}
	select {
	case <-silent.Accepted():
		t.Error("Deliver connected for a message it cannot send")
	default:
	}
}

func TestNew(t *testing.T) {
	valid := Config{Host: "smtp.acme.test", From: "Acme <no-reply@acme.test>"}
	tests := []struct {
		name     string
		edit     func(*Config)
		wantErr  string // substring; "" means valid
		wantPort int
		wantMode string
	}{
		{name: "defaults", edit: func(c *Config) {}, wantPort: 587, wantMode: "starttls"},
		{name: "implicit tls default port", edit: func(c *Config) { c.TLS = "tls" }, wantPort: 465, wantMode: "tls"},
		{name: "plain default port", edit: func(c *Config) { c.TLS = "none" }, wantPort: 25, wantMode: "none"},
		{name: "mode is case-insensitive", edit: func(c *Config) { c.TLS = "STARTTLS"; c.Port = 2525 }, wantPort: 2525, wantMode: "starttls"},
		{name: "bare from", edit: func(c *Config) { c.From = "no-reply@acme.test" }, wantPort: 587, wantMode: "starttls"},
		{name: "auth", edit: func(c *Config) { c.Username, c.Password = "u", "hunter2" }, wantPort: 587, wantMode: "starttls"},
		{name: "missing host", edit: func(c *Config) { c.Host = " " }, wantErr: "TWOFOLD_SMTP_HOST"},
		{name: "host with port", edit: func(c *Config) { c.Host = "smtp.acme.test:587" }, wantErr: "TWOFOLD_SMTP_PORT"},
		{name: "host is a URL", edit: func(c *Config) { c.Host = "smtp://smtp.acme.test" }, wantErr: "TWOFOLD_SMTP_HOST"},
		{name: "port out of range", edit: func(c *Config) { c.Port = 70000 }, wantErr: "TWOFOLD_SMTP_PORT"},
		{name: "negative port", edit: func(c *Config) { c.Port = -1 }, wantErr: "TWOFOLD_SMTP_PORT"},
		{name: "missing from", edit: func(c *Config) { c.From = "" }, wantErr: "TWOFOLD_SMTP_FROM"},
		{name: "bad from", edit: func(c *Config) { c.From = "Acme Security" }, wantErr: "TWOFOLD_SMTP_FROM"},
		{name: "unknown tls mode", edit: func(c *Config) { c.TLS = "ssl" }, wantErr: "TWOFOLD_SMTP_TLS"},
		{name: "username without password", edit: func(c *Config) { c.Username = "u" }, wantErr: "TWOFOLD_SMTP_PASSWORD"},
		{name: "password without username", edit: func(c *Config) { c.Password = "hunter2" }, wantErr: "TWOFOLD_SMTP_USERNAME"},
		{name: "auth over plain", edit: func(c *Config) { c.TLS = "none"; c.Username, c.Password = "u", "hunter2" }, wantErr: "TWOFOLD_SMTP_TLS"},
		{name: "bad helo", edit: func(c *Config) { c.HELO = "two words" }, wantErr: "HELO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.edit(&cfg)
			ml, err := New(cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
				}
				if cfg.Password != "" && strings.Contains(err.Error(), cfg.Password) {
					t.Errorf("error reveals the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ml.port != tt.wantPort || ml.mode != tt.wantMode {
				t.Errorf("port, mode = %d, %q, want %d, %q", ml.port, ml.mode, tt.wantPort, tt.wantMode)
			}
			if ml.Name() != "smtp" {
				t.Errorf("Name = %q", ml.Name())
			}
		})
	}
}

func TestRedact(t *testing.T) {
	ml := &Mailer{username: "mailer", password: "hunter2"}
	plain := base64.StdEncoding.EncodeToString([]byte("\x00mailer\x00hunter2"))
	inner := errors.New("501 cannot decode " + plain + " or aHVudGVyMg== or hunter2")
	err := ml.redact(inner)
	for _, secret := range []string{"hunter2", plain, "aHVudGVyMg=="} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("redacted error %q still contains %q", err, secret)
		}
	}
	if !errors.Is(err, inner) {
		t.Error("redaction lost the wrapped error")
	}
}
