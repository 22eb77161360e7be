// Package smtpmail delivers email one-time codes over SMTP, one connection per message.
package smtpmail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	gosmtp "github.com/wneessen/go-mail/smtp"

	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// TLS modes.
const (
	TLSStartTLS = "starttls" // plain connect, then mandatory STARTTLS (submission, port 587)
	TLSImplicit = "tls"      // TLS from the first byte (submissions, port 465)
	TLSNone     = "none"     // no encryption: only for a relay on the same host or network
)

// defaultTimeout bounds a delivery whose context has no deadline.
const defaultTimeout = 30 * time.Second

// Config configures a Mailer.
type Config struct {
	Host      string
	Port      int    // default 587 for starttls, 465 for tls, 25 for none
	Username  string // optional; with Password, enables SMTP AUTH over an encrypted connection
	Password  string
	From      string      // "Acme Security <no-reply@acme.test>" or a bare address
	TLS       string      // "starttls" (default), "tls" or "none"
	TLSConfig *tls.Config // optional, e.g. RootCAs for a private CA
	HELO      string      // optional; the local host name by default
}

// Mailer sends email through one SMTP server. It is safe for concurrent use.
type Mailer struct {
	host      string
	port      int
	mode      string
	tlsConfig *tls.Config
	from      *mail.Address
	domain    string // right side of From, for Message-IDs
	username  string
	password  string
	helo      string
}

// New validates cfg and returns a Mailer. It does not connect.
func New(cfg Config) (*Mailer, error) {
	ml := &Mailer{
		host:     strings.TrimSpace(cfg.Host),
		mode:     strings.ToLower(strings.TrimSpace(cfg.TLS)),
		username: cfg.Username,
		password: cfg.Password,
		helo:     strings.TrimSpace(cfg.HELO),
	}
	if ml.host == "" {
		return nil, errors.New("smtp: TWOFOLD_SMTP_HOST is required")
	}
	if strings.ContainsAny(ml.host, " \t\r\n/") {
		return nil, fmt.Errorf("smtp: TWOFOLD_SMTP_HOST %q is not a host name", ml.host)
	}
	if _, _, err := net.SplitHostPort(ml.host); err == nil {
		return nil, fmt.Errorf("smtp: TWOFOLD_SMTP_HOST %q includes a port; set TWOFOLD_SMTP_PORT instead", ml.host)
	}
	// Accept a bracketed IPv6 literal, since that is how people write one next to a port.
	ml.host = strings.TrimSuffix(strings.TrimPrefix(ml.host, "["), "]")

	defaultPort := 0
	switch ml.mode {
	case "", TLSStartTLS:
		ml.mode, defaultPort = TLSStartTLS, 587
	case TLSImplicit:
		defaultPort = 465
	case TLSNone:
		defaultPort = 25
	default:
		return nil, fmt.Errorf("smtp: TWOFOLD_SMTP_TLS %q is not one of starttls, tls, none", cfg.TLS)
	}
	switch {
	case cfg.Port == 0:
		ml.port = defaultPort
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, fmt.Errorf("smtp: TWOFOLD_SMTP_PORT %d is out of range", cfg.Port)
	default:
		ml.port = cfg.Port
	}

	if strings.TrimSpace(cfg.From) == "" {
		return nil, errors.New("smtp: TWOFOLD_SMTP_FROM is required")
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("smtp: TWOFOLD_SMTP_FROM %q is not an email address: %w", cfg.From, err)
	}
	at := strings.LastIndexByte(from.Address, '@')
	if at < 1 || at == len(from.Address)-1 {
		return nil, fmt.Errorf("smtp: TWOFOLD_SMTP_FROM %q needs a domain", cfg.From)
	}
	ml.from, ml.domain = from, from.Address[at+1:]

	switch {
	case ml.username != "" && ml.password == "":
		return nil, errors.New("smtp: TWOFOLD_SMTP_USERNAME is set but TWOFOLD_SMTP_PASSWORD is empty")
	case ml.username == "" && ml.password != "":
		return nil, errors.New("smtp: TWOFOLD_SMTP_PASSWORD is set but TWOFOLD_SMTP_USERNAME is empty")
	case ml.username != "" && ml.mode == TLSNone:
		// Credentials would cross the network in clear (or base64, which is the same).
		return nil, errors.New("smtp: TWOFOLD_SMTP_USERNAME/TWOFOLD_SMTP_PASSWORD need TWOFOLD_SMTP_TLS=starttls or tls, not none")
	}

	if ml.helo != "" && strings.ContainsAny(ml.helo, " \t\r\n") {
		return nil, fmt.Errorf("smtp: HELO name %q must be a single word", ml.helo)
	}

	if cfg.TLSConfig != nil {
		ml.tlsConfig = cfg.TLSConfig.Clone()
	} else {
		ml.tlsConfig = &tls.Config{}
	}
	if ml.tlsConfig.ServerName == "" {
		ml.tlsConfig.ServerName = ml.host
	}
	if ml.tlsConfig.MinVersion == 0 {
		ml.tlsConfig.MinVersion = tls.VersionTLS12
	}
	return ml, nil
}

// Name implements deliver.Provider.
func (ml *Mailer) Name() string { return "smtp" }

// Deliver sends m as one email and returns its Message-ID (with angle brackets) as the receipt.
// SMTP 5xx replies are permanent; 4xx replies, network errors and timeouts are not.
func (ml *Mailer) Deliver(ctx context.Context, m deliver.Outgoing) (deliver.Receipt, error) {
	if m.Channel != twofold.Email {
		return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("smtp: message %s: channel %q is not email", m.SID, m.Channel))
	}
	msg, id, err := ml.message(m)
	if err != nil {
		return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("smtp: message %s: %w", m.SID, err))
	}

	timeout := defaultTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if err := ctx.Err(); err != nil || timeout <= 0 {
		return deliver.Receipt{}, fmt.Errorf("smtp: message %s: %w", m.SID, context.Cause(ctx))
	}

	// go-mail uses ctx only while dialing and then relies on its own I/O timeout, so the dialer
	// below also closes the connection when ctx ends: a stalled server cannot outlive ctx.
	var conn net.Conn
	stop := func() bool { return false }
	defer func() {
		stop()
		if conn != nil {
			conn.Close() // go-mail leaves it open when the greeting, STARTTLS or AUTH fails
		}
	}()
	dial := func(dialCtx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(dialCtx, network, net.JoinHostPort(ml.host, strconv.Itoa(ml.port)))
		if err != nil {
			return nil, err
		}
		conn = c
		stop = context.AfterFunc(ctx, func() { c.Close() })
		if ml.mode != TLSImplicit {
			return c, nil
		}
		tc := tls.Client(c, ml.tlsConfig)
		if err := tc.HandshakeContext(dialCtx); err != nil {
			return nil, err
		}
		return tc, nil
	}

	opts := []gomail.Option{
		gomail.WithPort(ml.port),
		gomail.WithTimeout(timeout),
		gomail.WithDialContextFunc(dial),
		gomail.WithTLSConfig(ml.tlsConfig),
	}
	switch ml.mode {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		// The dialer already speaks TLS. Opportunistic (rather than WithSSL, which a custom dialer
		// bypasses) makes go-mail look at the connection, see it encrypted, and allow PLAIN/LOGIN.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if ml.helo != "" {
		opts = append(opts, gomail.WithHELO(ml.helo))
	}
	if ml.username != "" {
		opts = append(opts,
			gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(ml.username),
			gomail.WithPassword(ml.password))
	}
	client, err := gomail.NewClient(ml.host, opts...)
	if err != nil {
		return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("smtp: message %s: %w", m.SID, err))
	}

	err = client.DialAndSendWithContext(ctx, msg)
	// Once the server has accepted the data, a failure of the RSET or QUIT that follow must not
	// cause a second copy of the email.
	if err == nil || msg.IsDelivered() {
		return deliver.Receipt{ID: id}, nil
	}
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", context.Cause(ctx), err)
	}
	err = ml.redact(fmt.Errorf("smtp: message %s: %w", m.SID, err))
	if permanent(err) {
		return deliver.Receipt{}, deliver.Permanent(err)
	}
	return deliver.Receipt{}, err
}

// message builds the email for m and returns it with its Message-ID.
func (ml *Mailer) message(m deliver.Outgoing) (*gomail.Msg, string, error) {
	msg := gomail.NewMsg()
	msg.FromMailAddress(ml.from)
	if err := msg.To(m.To); err != nil {
		return nil, "", fmt.Errorf("recipient: %w", err)
	}
	msg.Subject(m.Subject)
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, "", err
	}
	msg.SetMessageIDWithValue(hex.EncodeToString(b[:]) + "@" + ml.domain)
	msg.SetDate()
	msg.SetUserAgent("twofold")
	// RFC 3834: tells vacation responders not to answer a machine.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Twofold-SID", m.SID)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, msg.GetMessageID(), nil
}

// permanent reports whether retrying err cannot help: the server answered 5xx, or it offers no
// authentication mechanism that Twofold may use on this connection (a configuration problem).
func permanent(err error) bool {
	if code := replyCode(err); code != 0 {
		return code >= 500 && code < 600
	}
	for _, target := range []error{
		gomail.ErrNoSupportedAuthDiscovered,
		gomail.ErrPlainAuthNotSupported,
		gomail.ErrLoginAuthNotSupported,
		gosmtp.ErrUnencrypted,
	} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// replyCode returns the SMTP reply code inside err, or 0 when the server gave none.
func replyCode(err error) int {
	var sendErr *gomail.SendError
	if errors.As(err, &sendErr) && sendErr.ErrorCode() != 0 {
		return sendErr.ErrorCode()
	}
	var tpErr *textproto.Error
	if errors.As(err, &tpErr) {
		return tpErr.Code
	}
	return 0
}

// redact hides the password, in clear or as sent by PLAIN and LOGIN, should a server echo it.
func (ml *Mailer) redact(err error) error {
	if ml.password == "" {
		return err
	}
	text := err.Error()
	secrets := []string{
		ml.password,
		base64.StdEncoding.EncodeToString([]byte(ml.password)),
		base64.StdEncoding.EncodeToString([]byte("\x00" + ml.username + "\x00" + ml.password)),
	}
	redacted := text
	for _, s := range secrets {
		redacted = strings.ReplaceAll(redacted, s, "[redacted]")
	}
	if redacted == text {
		return err
	}
	return &redactedError{msg: redacted, err: err}
}

// redactedError keeps err for errors.Is/As but prints msg.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
