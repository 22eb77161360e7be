package deliver

import (
	"context"
	"errors"
	"net/http"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Outgoing is a message ready for a provider: recipient, rendered content and Twofold's id.
type Outgoing struct {
	SID     string          // Twofold's message id ("SM…", "CA…", "EM…"), for logs and idempotency
	Channel twofold.Channel // SMS, Call or Email
	To      string          // E.164 ("+14155550123") for SMS and calls; an address for email
	Text    string          // SMS text; plain-text email body; the whole call script as text
	Subject string          // email only
	HTML    string          // email only: the HTML alternative
	Spoken  []string        // calls only: what to say, line by line, with a pause between lines
	Locale  string          // base language of the content: "en", "es", "pt", "fr", "de", "it", "pl", "ja", "zh"
}

// Receipt is what a provider answers for an accepted message.
type Receipt struct {
	ID     string // the provider's id for the message (Twilio SID, gateway id, Message-ID)
	Status string // the provider's status at hand-over, e.g. "queued"; "" means "sent"
}

// Provider hands messages to one outside service. Deliver must honour ctx's deadline. An error
// that trying again cannot fix (the service refused the message or the credentials) is wrapped
// with Permanent so the caller does not retry it.
type Provider interface {
	Name() string
	Deliver(ctx context.Context, m Outgoing) (Receipt, error)
}

// PermanentError marks a delivery failure that retrying will not fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so IsPermanent reports true. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked Permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryableStatus reports whether an HTTP status from a provider is worth another try: rate
// limits, timeouts and server errors are; other 4xx answers refuse the request itself.
func RetryableStatus(code int) bool {
	return code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500
}
