package authyapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// statusOf maps Authy error codes to the HTTP status Authy answered them with (spec section 7).
// Codes not listed are 400: a client's mistake, never a 5xx that would make go-authy retry a
// non-idempotent call.
var statusOf = map[twofold.Code]int{
	twofold.CodeInvalidAPIKey:              http.StatusUnauthorized,
	twofold.CodeRateLimited:                http.StatusTooManyRequests,
	twofold.CodeUserDoesNotExist:           http.StatusNotFound,
	twofold.CodeTokenReused:                http.StatusUnauthorized,
	twofold.CodeTokenInvalid:               http.StatusUnauthorized,
	twofold.CodeUserNotFound:               http.StatusNotFound,
	twofold.CodePhoneVerificationIncorrect: http.StatusUnauthorized,
	twofold.CodePhoneVerificationNotFound:  http.StatusNotFound,
	twofold.CodeRequestNotFound:            http.StatusNotFound,
	twofold.CodeRegistrationNotFound:       http.StatusNotFound,
	twofold.CodeDeviceNotFound:             http.StatusNotFound,
	twofold.CodeInvalidAccessKey:           http.StatusUnauthorized,
	twofold.CodeInvalidSignature:           http.StatusUnauthorized,
	twofold.CodeNotPending:                 http.StatusConflict,
	twofold.CodeAuthenticatorNotFound:      http.StatusNotFound,
	twofold.CodePhoneNumberNotFound:        http.StatusNotFound,
	twofold.CodePasskeyCeremonyNotFound:    http.StatusNotFound,
	twofold.CodePasskeyInvalid:             http.StatusUnauthorized,
	twofold.CodePasskeyNotFound:            http.StatusNotFound,
	twofold.CodePasskeyCloned:              http.StatusUnauthorized,
	twofold.CodeNoPasskeys:                 http.StatusNotFound,
	// 60154 (migration tools disabled) is 400: Authy's export pages list 200, 400, 404 and 500.
}

// writeJSON writes v compactly (authy-python matches `"token":"is valid"` as raw bytes).
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := encodeJSON(v)
	if err != nil {
		status, body = http.StatusInternalServerError, internalErrorBody
	}
	writeBody(w, status, body)
}

// internalErrorBody answers a body that cannot be encoded.
var internalErrorBody = []byte(`{"message":"An error occurred","success":false,"errors":{"message":"An error occurred"},"error_code":"60000"}`)

func encodeJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// writeBody writes an encoded JSON body; body is only read.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}

// writeError writes the Authy error envelope for a domain error:
//
//	{"message":M,"success":false,"errors":{"message":M,...fields},"error_code":"600NN",...fields}
//
// error_code is a string (authy-java parses it with getString) and errors' values are strings
// (go-authy decodes map[string]string).
func writeError(w http.ResponseWriter, e *twofold.Error) {
	status, ok := statusOf[e.Code]
	if !ok {
		status = http.StatusBadRequest
	}
	writeErrorStatus(w, status, e)
}

// envelopes holds the encoded envelopes of errors without fields, by code, message and token.
// The same few errors (a wrong token, a limit) answer every failed verification, and encoding
// their maps again each time was a twelfth of such a request's CPU. At most maxEnvelopes are
// kept, since a message may carry a value.
var envelopes struct {
	m sync.Map // envelopeKey -> []byte
	n atomic.Int32
}

type envelopeKey struct {
	code           twofold.Code
	message, token string
}

const maxEnvelopes = 256

func writeErrorStatus(w http.ResponseWriter, status int, e *twofold.Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
	if len(e.Fields) > 0 {
		writeJSON(w, status, envelope(e))
		return
	}
	key := envelopeKey{e.Code, e.Message, e.Token}
	if body, ok := envelopes.m.Load(key); ok {
		writeBody(w, status, body.([]byte))
		return
	}
	body, err := encodeJSON(envelope(e))
	if err != nil {
		writeBody(w, http.StatusInternalServerError, internalErrorBody)
		return
	}
	if envelopes.n.Load() < maxEnvelopes {
		if _, loaded := envelopes.m.LoadOrStore(key, body); !loaded {
			envelopes.n.Add(1)
		}
	}
	writeBody(w, status, body)
}

// envelope is the Authy error envelope of e (writeError).
func envelope(e *twofold.Error) map[string]any {
	body := map[string]any{}
	errs := map[string]string{"message": e.Message}
	for k, v := range e.Fields {
		body[k] = v
		errs[k] = v
	}
	if e.Token != "" {
		body["token"] = e.Token
	}
	body["message"] = e.Message
	body["success"] = false
	body["errors"] = errs
	body["error_code"] = strconv.Itoa(int(e.Code))
	return body
}

// asDomain extracts the *twofold.Error from err, if it is one.
func asDomain(err error) (*twofold.Error, bool) {
	var e *twofold.Error
	ok := errors.As(err, &e)
	return e, ok
}

var (
	errInternal       = twofold.Errorf(twofold.CodeInternal, "An error occurred")
	errNotFound       = twofold.Errorf(twofold.CodeInternal, "Resource not found")
	errMethod         = twofold.Errorf(twofold.CodeInvalidRequest, "Method not allowed")
	errInvalidKey     = twofold.Errorf(twofold.CodeInvalidAPIKey, "Invalid API key")
	errBodyTooLarge   = twofold.Errorf(twofold.CodeInvalidRequest, "Request body too large")
	errHeaderTooLarge = twofold.Errorf(twofold.CodeInvalidRequest, "Request header fields too large")
	errPathText       = twofold.ErrInvalidParam("path", "must be UTF-8 text without NUL bytes")
)
