package authyapi

import (
	"net/http"
	"time"
)

// appDetails: GET app/details (spec 6.1). Every application takes OneTouch approval requests
// (for users with a device, and in a sandbox for any user), so onetouch_enabled is true.
func (a *API) appDetails(w http.ResponseWriter, r *http.Request, c *call) error {
	type app struct {
		AppID             int64  `json:"app_id"`
		Name              string `json:"name"`
		Plan              string `json:"plan"`
		SMSEnabled        bool   `json:"sms_enabled"`
		PhoneCallsEnabled bool   `json:"phone_calls_enabled"`
		OnetouchEnabled   bool   `json:"onetouch_enabled"`
		WhiteLabel        bool   `json:"white_label"`
		Sandbox           bool   `json:"sandbox"`
	}
	writeJSON(w, http.StatusOK, struct {
		App     app    `json:"app"`
		Message string `json:"message"`
		Success bool   `json:"success"`
	}{app{
		AppID: c.app.ID, Name: c.app.Name, Plan: c.app.Plan(), SMSEnabled: c.app.SMSEnabled,
		PhoneCallsEnabled: c.app.CallEnabled, OnetouchEnabled: true, WhiteLabel: true, Sandbox: c.app.Sandbox,
	}, "Application information.", true})
	return nil
}

// monthStats has exactly the seven keys authy-client accepts (an extra key fails it).
type monthStats struct {
	APICallsCount int64  `json:"api_calls_count"`
	AuthsCount    int64  `json:"auths_count"`
	CallsCount    int64  `json:"calls_count"`
	Month         string `json:"month"`
	SMSCount      int64  `json:"sms_count"`
	UsersCount    int64  `json:"users_count"`
	Year          int    `json:"year"`
}

// appStats: GET app/stats (spec 6.2). Emails are not reported: Authy had no column for them.
func (a *API) appStats(w http.ResponseWriter, r *http.Request, c *call) error {
	// Counted calls are batched in memory; write them so this answer includes them.
	if err := a.usage.Flush(r.Context()); err != nil {
		return err
	}
	st, err := a.apps.Stats(r.Context(), c.app)
	if err != nil {
		return err
	}
	stats := make([]monthStats, 0, len(st.Months))
	for _, m := range st.Months {
		stats = append(stats, monthStats{
			APICallsCount: m.APICalls, AuthsCount: m.Auths, CallsCount: m.Calls, Month: time.Month(m.Month).String(),
			SMSCount: m.SMS, UsersCount: m.Users, Year: m.Year,
		})
	}
	writeJSON(w, http.StatusOK, struct {
		Message    string       `json:"message"`
		Count      int          `json:"count"`
		TotalUsers int64        `json:"total_users"`
		AppID      int64        `json:"app_id"`
		Stats      []monthStats `json:"stats"`
		Success    bool         `json:"success"`
	}{"Monthly statistics.", len(stats), st.TotalUsers, c.app.ID, stats, true})
	return nil
}
