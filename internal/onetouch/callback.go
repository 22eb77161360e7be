package onetouch

import (
	"encoding/json"
	"strconv"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// CallbackPayload builds the body of the callback for a finished request, in the shape Authy
// sent (spec 4.3) so that the client libraries' verifiers and the tutorials' handlers accept it:
// lower-case snake_case keys, device_uuid as a string, empty hashes as {}.
func CallbackPayload(app twofold.App, u twofold.User, r twofold.ApprovalRequest, d twofold.Device) ([]byte, error) {
	var logos any // null when there are none, as Authy sent
	if len(r.Logos) > 0 {
		logos = r.Logos
	}
	var expires int64
	if !r.ExpiresAt.IsZero() {
		expires = r.ExpiresAt.Unix()
	}
	device := map[string]any{}
	deviceUUID := ""
	if d.ID != 0 {
		deviceUUID = strconv.FormatInt(d.ID, 10)
		device = map[string]any{
			"id": d.ID, "os_type": d.OSType, "registration_date": d.CreatedAt.Unix(), "last_sync_date": d.LastSeenAt.Unix(),
		}
	}
	payload := map[string]any{
		"authy_id":        u.ID,
		"device_uuid":     deviceUUID,
		"callback_action": "approval_request_status",
		"uuid":            r.UUID,
		"status":          string(r.Status),
		"signature":       r.Signature,
		"device":          device,
		"approval_request": map[string]any{
			"transaction": map[string]any{
				"details":             r.Details,
				"hidden_details":      r.HiddenDetails,
				"device_details":      map[string]any{},
				"device_geolocation":  "",
				"device_signing_time": r.ProcessedAt.Unix(),
				"encrypted":           false,
				"flagged":             false,
				"message":             r.Message,
				"reason":              r.Reason,
				"requester_details":   nil,
				"status":              string(r.Status),
				"uuid":                r.UUID,
				"created_at_time":     r.CreatedAt.Unix(),
				"customer_uuid":       app.ID,
			},
			"expiration_timestamp": expires,
			"logos":                logos,
			"app_id":               ObjectID(1, app.ID),
		},
	}
	return json.Marshal(payload)
}
