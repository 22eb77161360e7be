package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// PasswordlessStart is a passwordless sign-in to start for someone who typed a username: name
// the user by exactly one of Email, CustomUserID and AuthyID, as typed (Twofold looks the user
// up; do not look them up first, or your own "no such user" tells an attacker who is a user).
type PasswordlessStart struct {
	Email        string
	CustomUserID string
	AuthyID      int64
	// UserIP is the address of the browser that typed the name: Twofold limits requests per
	// address with it. Required.
	UserIP          string
	Message         string            // shown on the device; default "Sign in to <application>?"
	Details         map[string]string // shown on the device
	SecondsToExpire int               // 0: the server's default (120); at most 600
}

// PasswordlessRequest is a passwordless sign-in and its state.
type PasswordlessRequest struct {
	UUID string `json:"uuid"`
	// Number is the two-digit number to show on the sign-in page: the user picks it on their
	// device, which proves they are looking at this page.
	Number    string    `json:"number"`
	Status    string    `json:"status"`   // pending, approved, denied or expired
	AuthyID   int64     `json:"authy_id"` // the user who signed in: set only once approved
	ExpiresAt time.Time `json:"expires_at"`
}

// StartPasswordless starts a passwordless sign-in (POST /onetouch/json/passwordless_requests,
// Twofold's addition to the OneTouch API; docs/api.md). It answers alike whether or not the name
// is of a user who can approve, so show its Number and poll PasswordlessRequest (or wait for the
// callback, which carries its UUID) whatever it answers; a user it could not ask simply never
// approves. Too many requests for one name or from one address answer CodeRateLimited.
func (c *Client) StartPasswordless(ctx context.Context, s PasswordlessStart) (PasswordlessRequest, error) {
	v := url.Values{"user_ip": {s.UserIP}}
	if s.Email != "" {
		v.Set("email", s.Email)
	}
	if s.CustomUserID != "" {
		v.Set("custom_user_id", s.CustomUserID)
	}
	if s.AuthyID != 0 {
		v.Set("authy_id", itoa(s.AuthyID))
	}
	if s.Message != "" {
		v.Set("message", s.Message)
	}
	for k, val := range s.Details {
		v.Set("details["+k+"]", val)
	}
	if s.SecondsToExpire > 0 {
		v.Set("seconds_to_expire", strconv.Itoa(s.SecondsToExpire))
	}
	var out struct {
		PasswordlessRequest PasswordlessRequest `json:"passwordless_request"`
	}
	if err := c.call(ctx, http.MethodPost, "/onetouch/json/passwordless_requests", v, &out); err != nil {
		return PasswordlessRequest{}, err
	}
	out.PasswordlessRequest.Status = "pending"
	return out.PasswordlessRequest, nil
}

// PasswordlessRequest returns a passwordless sign-in and its state. Approved, with AuthyID, means
// the user approved on their device with the number shown: sign them in as that user.
func (c *Client) PasswordlessRequest(ctx context.Context, uuid string) (PasswordlessRequest, error) {
	if uuid == "" || strings.ContainsAny(uuid, "/?#%") {
		return PasswordlessRequest{}, &Error{HTTPStatus: http.StatusNotFound, Code: CodeNoRequest, Message: "Passwordless request not found"}
	}
	var out struct {
		PasswordlessRequest PasswordlessRequest `json:"passwordless_request"`
	}
	err := c.call(ctx, http.MethodGet, "/onetouch/json/passwordless_requests/"+uuid, nil, &out)
	return out.PasswordlessRequest, err
}
