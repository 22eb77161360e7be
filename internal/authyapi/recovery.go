package authyapi

import (
	"net/http"

	"github.com/twofold-auth/twofold/internal/recovery"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Recovery codes: Twofold's extension of the Authy API (issue 21). The customer's backend asks
// for a user's set (shown once) and reads how many remain; verify/{token}/{id} spends them.

// recoveryCodes is a set described, never its codes.
type recoveryCodes struct {
	Total     int    `json:"total"`
	Remaining int    `json:"remaining"`
	CreatedAt *int64 `json:"created_at"` // Unix seconds; null when the user has no set
}

func describeRecovery(rc twofold.RecoveryCodes) recoveryCodes {
	out := recoveryCodes{Total: rc.Total, Remaining: rc.Remaining}
	if !rc.CreatedAt.IsZero() {
		at := rc.CreatedAt.Unix()
		out.CreatedAt = &at
	}
	return out
}

// generateRecoveryCodes: POST users/{id}/recovery_codes, optional count (5 to 20, default 10).
// The old set, spent or not, stops working; the new codes are in this answer and nowhere else.
func (a *API) generateRecoveryCodes(w http.ResponseWriter, r *http.Request, c *call) error {
	id, ok := pathID(r, "id")
	if !ok {
		return twofold.ErrUserNotFound()
	}
	count, present, err := c.params.Int("count")
	if err != nil || present && (count < recovery.MinCount || count > recovery.MaxCount) {
		return twofold.ErrInvalidParam("count", "must be a number from 5 to 20")
	}
	codes, rc, err := a.recovery.Generate(r.Context(), c.app, id, int(count))
	if err != nil {
		return err
	}
	// The codes must not linger in a cache between the server and the customer's backend.
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, struct {
		Message       string        `json:"message"`
		Codes         []string      `json:"codes"`
		RecoveryCodes recoveryCodes `json:"recovery_codes"`
		Success       bool          `json:"success"`
	}{"Recovery codes generated.", codes, describeRecovery(rc), true})
	return nil
}

// recoveryCodesStatus: GET users/{id}/recovery_codes, the counts and when the set was made.
func (a *API) recoveryCodesStatus(w http.ResponseWriter, r *http.Request, c *call) error {
	id, ok := pathID(r, "id")
	if !ok {
		return twofold.ErrUserNotFound()
	}
	rc, err := a.recovery.Status(r.Context(), c.app, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Message       string        `json:"message"`
		RecoveryCodes recoveryCodes `json:"recovery_codes"`
		Success       bool          `json:"success"`
	}{"Recovery codes status.", describeRecovery(rc), true})
	return nil
}

// remainingRecoveryCodes is users/{id}/status's recovery_codes_remaining.
func (a *API) remainingRecoveryCodes(r *http.Request, app twofold.App, id int64) (int, error) {
	if a.recovery == nil {
		return 0, nil
	}
	rc, err := a.recovery.Remaining(r.Context(), app, id)
	return rc.Remaining, err
}
