package onetouch

import (
	"encoding/json"
	"strconv"
	"time"

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

// GroupCallbackPayload builds the body of the callback for a decided approval group, Twofold's
// extension: the group as GET approval_groups/{uuid} shows it (each approver's answer, time and
// reason), with callback_action "approval_group_status" to tell it from a request's callback.
func GroupCallbackPayload(app twofold.App, g twofold.ApprovalGroup, members []twofold.ApprovalRequest) ([]byte, error) {
	return json.Marshal(GroupJSON(app, g, members, "approval_group_status"))
}

// GroupJSON is a group as the API and its callback show it: snake_case keys, ISO 8601 times
// (null for none), {} for empty hashes, as for requests; action, when not "", is the callback's
// callback_action.
func GroupJSON(app twofold.App, g twofold.ApprovalGroup, members []twofold.ApprovalRequest, action string) map[string]any {
	approvers := make([]map[string]any, 0, len(members))
	var details, hidden map[string]string
	var logos any // null when there are none, as for requests
	for _, m := range members {
		details, hidden = m.Details, m.HiddenDetails
		if len(m.Logos) > 0 {
			logos = m.Logos
		}
		deviceUUID := ""
		if m.DeviceID != 0 {
			deviceUUID = strconv.FormatInt(m.DeviceID, 10)
		}
		approvers = append(approvers, map[string]any{
			"authy_id": m.UserID, "name": m.ApproverName, "status": string(m.Status), "reason": m.Reason,
			"answered_at": isoTime(answeredAt(m)), "device_uuid": deviceUUID, "signature": m.Signature,
			"approval_request_uuid": m.UUID,
		})
	}
	var requester any
	if g.RequesterID != 0 || g.RequesterName != "" {
		requester = map[string]any{"authy_id": g.RequesterID, "name": g.RequesterName}
	}
	var ttl int64
	if !g.ExpiresAt.IsZero() {
		ttl = int64(g.ExpiresAt.Sub(g.CreatedAt) / time.Second)
	}
	out := map[string]any{
		"uuid": g.UUID, "status": string(g.Status), "reason": g.Reason, "quorum": g.Quorum, "size": g.Size,
		"approvals": g.Approvals, "denials": g.Denials, "message": g.Message, "details": nonNil(details),
		"hidden_details": nonNil(hidden), "logos": logos, "requester": requester, "approvers": approvers,
		"seconds_to_expire": ttl, "created_at": isoTime(g.CreatedAt), "updated_at": isoTime(g.UpdatedAt),
		"expires_at": isoTime(g.ExpiresAt), "decided_at": isoTime(g.DecidedAt), "app_id": ObjectID(1, app.ID),
	}
	if action != "" {
		out["callback_action"] = action
	}
	return out
}

// isoTime renders a time as the API's answers do: ISO 8601 in UTC to the second, null for none.
func isoTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// answeredAt is when an approver answered: zero for a request that expired or was closed.
func answeredAt(r twofold.ApprovalRequest) time.Time {
	if r.Status == twofold.Approved || r.Status == twofold.Denied {
		return r.ProcessedAt
	}
	return time.Time{}
}
