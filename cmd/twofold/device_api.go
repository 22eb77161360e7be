package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/vault"
)

// deviceAPI talks to a server's device API (/device/v1) as one device, or anonymously to
// register one.
type deviceAPI struct {
	client *http.Client
	server string // base URL without a trailing slash
	token  string // access token; "" before registration
}

// apiError is a refusal in the Authy envelope: the user reads Message.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s (error %s)", termSafe(e.Message), termSafe(e.Code))
	}
	return termSafe(e.Message)
}

// isAPIError reports whether err is the server's refusal with one of codes.
func isAPIError(err error, codes ...twofold.Code) bool {
	var e *apiError
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code == fmt.Sprint(int(c)) {
			return true
		}
	}
	return false
}

// newHTTPClient is a client with its own connection pool (closed by the command when done).
func newHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 30 * time.Second // also for event streams, which answer at once
	return &http.Client{Transport: t}
}

// checkServer validates a server base URL and trims it.
func checkServer(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q is not a server URL (such as https://2fa.example.com)", raw)
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

func (c deviceAPI) request(ctx context.Context, method, path string, body any) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

// call sends a JSON request and decodes a 2xx JSON answer into out (nil to discard it).
func (c deviceAPI) call(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := c.request(ctx, method, path, body)
	if err != nil {
		return err
	}
	res, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", c.server, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("reading the answer of %s: %w", c.server, err)
	}
	if res.StatusCode/100 != 2 {
		return responseError(res, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: the server's answer is not the JSON expected: %v", method, c.server+path, err)
	}
	return nil
}

// responseError reads an error answer: the Authy envelope when it is one, else the status.
func responseError(res *http.Response, raw []byte) error {
	var env struct {
		Message   string `json:"message"`
		ErrorCode any    `json:"error_code"`
	}
	if json.Unmarshal(raw, &env) == nil && env.Message != "" {
		code := ""
		if env.ErrorCode != nil {
			code = fmt.Sprint(env.ErrorCode)
		}
		return &apiError{Status: res.StatusCode, Code: code, Message: env.Message}
	}
	return &apiError{Status: res.StatusCode, Message: fmt.Sprintf("%s %s answered %s", res.Request.Method, res.Request.URL.Redacted(), res.Status)}
}

// registration is the answer to POST /device/v1/registrations.
type deviceRegistration struct {
	AccessToken string `json:"access_token"`
	Device      struct {
		ID      int64  `json:"id"`
		AuthyID int64  `json:"authy_id"`
		AppID   int64  `json:"app_id"`
		AppName string `json:"app_name"`
		Name    string `json:"name"`
		OSType  string `json:"os_type"`
	} `json:"device"`
	TOTP struct {
		Secret string `json:"secret"`
		Digits int    `json:"digits"`
		Period int    `json:"period"`
		URI    string `json:"uri"`
	} `json:"totp"`
}

// approvalRequest is what a device sees of a OneTouch request.
type approvalRequest struct {
	UUID            string            `json:"uuid"`
	Status          string            `json:"status"`
	Message         string            `json:"message"`
	Details         map[string]string `json:"details"`
	AppName         string            `json:"app_name"`
	NumberRequired  bool              `json:"number_required"`
	Reason          string            `json:"reason,omitempty"`
	CreatedAt       *string           `json:"created_at"`
	ExpiresAt       *string           `json:"expires_at"`
	SecondsToExpire int64             `json:"seconds_to_expire"`
	Group           *requestGroup     `json:"group,omitempty"` // for a request of an approval group
}

// forDevice is the API of a device in the vault.
func forDevice(client *http.Client, d vault.Device) deviceAPI {
	return deviceAPI{client: client, server: d.Server, token: d.AccessToken}
}

// getRequest fetches one request as the device sees it.
func (c deviceAPI) getRequest(ctx context.Context, uuid string) (approvalRequest, error) {
	var out struct {
		ApprovalRequest approvalRequest `json:"approval_request"`
	}
	err := c.call(ctx, http.MethodGet, "/device/v1/approval_requests/"+url.PathEscape(uuid), nil, &out)
	return out.ApprovalRequest, err
}

// answer signs the decision with the device's key, sends it and returns the request as it now
// stands.
func (c deviceAPI) answer(ctx context.Context, d vault.Device, uuid, status, number, reason string) (approvalRequest, error) {
	key, err := x509.ParsePKCS8PrivateKey(d.PrivateKey)
	if err != nil {
		return approvalRequest{}, fmt.Errorf("the device key in the vault is unreadable: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return approvalRequest{}, errors.New("the device key in the vault is not an ECDSA key")
	}
	ts := time.Now().Unix()
	digest := sha256.Sum256(onetouch.AnswerMessage(uuid, twofold.ApprovalStatus(status), ts, number, reason))
	sig, err := ecdsa.SignASN1(rand.Reader, ec, digest[:])
	if err != nil {
		return approvalRequest{}, err
	}
	var out struct {
		ApprovalRequest approvalRequest `json:"approval_request"`
	}
	err = c.call(ctx, http.MethodPost, "/device/v1/approval_requests/"+url.PathEscape(uuid), map[string]any{
		"status": status, "timestamp": ts, "signature": base64.StdEncoding.EncodeToString(sig),
		"number": number, "reason": reason,
	}, &out)
	return out.ApprovalRequest, err
}
