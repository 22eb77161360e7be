package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Approvals by several people: Twofold's extension of the OneTouch API (docs/api.md). One call
// asks several users of the application to approve one thing, with a quorum; each gets an
// approval request on their own devices, and the group is decided once: approved when the
// quorum's approvals are in, denied as soon as the quorum can no longer be reached, or expired.

// Approver is a user asked to approve, and the name the other approvers see ("approved by Ana").
type Approver struct {
	AuthyID int64
	Name    string // optional
}

// ApprovalGroupRequest asks several users for their approval.
type ApprovalGroupRequest struct {
	Message         string            // what is asked, e.g. "Pay 10,000 EUR to ACME"
	Details         map[string]string // shown to the approvers
	HiddenDetails   map[string]string // kept with the group, not shown
	SecondsToExpire int               // 0: the server's default (a day)
	Approvers       []Approver        // distinct users, each with a registered device
	Quorum          int               // approvals needed; 0: all of them
	// Requester is who asks, shown to the approvers (AuthyID may be 0 for someone who is not a
	// user); with ExcludeRequester, the requester cannot approve even when listed among
	// Approvers (separation of duties).
	Requester        Approver
	ExcludeRequester bool
}

// ApprovalGroup is a group and its state.
type ApprovalGroup struct {
	UUID            string            `json:"uuid"`
	Status          string            `json:"status"` // pending, approved, denied or expired
	Reason          string            `json:"reason"` // "closed" when the application closed it
	Quorum          int               `json:"quorum"`
	Size            int               `json:"size"` // approvers asked
	Approvals       int               `json:"approvals"`
	Denials         int               `json:"denials"`
	Message         string            `json:"message"`
	Details         map[string]string `json:"details"`
	HiddenDetails   map[string]string `json:"hidden_details"`
	SecondsToExpire int64             `json:"seconds_to_expire"`
	Requester       *GroupRequester   `json:"requester"` // nil when not named
	Approvers       []GroupApprover   `json:"approvers"`
	CreatedAt       time.Time         `json:"created_at"`
	ExpiresAt       time.Time         `json:"expires_at"` // zero: never
	DecidedAt       time.Time         `json:"decided_at"` // zero while pending
	// CallbackAction is "approval_group_status" in a group's callback (decode its verified body
	// into an ApprovalGroup); "" in the API's answers.
	CallbackAction string `json:"callback_action"`
}

// GroupRequester is who asked for a group's approval.
type GroupRequester struct {
	AuthyID int64  `json:"authy_id"`
	Name    string `json:"name"`
}

// GroupApprover is one approver's answer.
type GroupApprover struct {
	AuthyID int64  `json:"authy_id"`
	Name    string `json:"name"`
	// Status is approved or denied when they answered; pending while the group is; expired when
	// the group was decided without them (Reason "group decided"), expired or closed.
	Status              string    `json:"status"`
	Reason              string    `json:"reason"`
	AnsweredAt          time.Time `json:"answered_at"` // zero unless they answered
	DeviceUUID          string    `json:"device_uuid"` // the device that answered
	ApprovalRequestUUID string    `json:"approval_request_uuid"`
}

// CreateApprovalGroup sends an approval request to each approver's devices. The outcome arrives
// at the application's callback URL once (callback_action "approval_group_status"), or by
// polling ApprovalGroup.
func (c *Client) CreateApprovalGroup(ctx context.Context, r ApprovalGroupRequest) (ApprovalGroup, error) {
	v := url.Values{"message": {r.Message}}
	for k, val := range r.Details {
		v.Set("details["+k+"]", val)
	}
	for k, val := range r.HiddenDetails {
		v.Set("hidden_details["+k+"]", val)
	}
	if r.SecondsToExpire > 0 {
		v.Set("seconds_to_expire", strconv.Itoa(r.SecondsToExpire))
	}
	for i, a := range r.Approvers {
		n := "approvers[" + strconv.Itoa(i) + "]"
		v.Set(n+"[authy_id]", itoa(a.AuthyID))
		if a.Name != "" {
			v.Set(n+"[name]", a.Name)
		}
	}
	if r.Quorum > 0 {
		v.Set("quorum", strconv.Itoa(r.Quorum))
	}
	if r.Requester.AuthyID != 0 {
		v.Set("requester_id", itoa(r.Requester.AuthyID))
	}
	if r.Requester.Name != "" {
		v.Set("requester_name", r.Requester.Name)
	}
	if r.ExcludeRequester {
		v.Set("exclude_requester", "true")
	}
	var out struct {
		ApprovalGroup ApprovalGroup `json:"approval_group"`
	}
	err := c.call(ctx, http.MethodPost, "/onetouch/json/approval_groups", v, &out)
	return out.ApprovalGroup, err
}

// ApprovalGroup returns a group and its state.
func (c *Client) ApprovalGroup(ctx context.Context, uuid string) (ApprovalGroup, error) {
	return c.group(ctx, http.MethodGet, uuid, "", nil)
}

// CloseApprovalGroup calls a pending group off: it becomes expired with Reason "closed", and
// its approvers' devices drop their requests. Closing it again returns the same; a group already
// approved or denied cannot be closed (CodeNotPending).
func (c *Client) CloseApprovalGroup(ctx context.Context, uuid string) (ApprovalGroup, error) {
	return c.group(ctx, http.MethodPost, uuid, "/close", url.Values{})
}

func (c *Client) group(ctx context.Context, method, uuid, suffix string, v url.Values) (ApprovalGroup, error) {
	if uuid == "" || strings.ContainsAny(uuid, "/?#%") {
		return ApprovalGroup{}, &Error{HTTPStatus: http.StatusNotFound, Code: CodeNoRequest, Message: "Approval group not found"}
	}
	var out struct {
		ApprovalGroup ApprovalGroup `json:"approval_group"`
	}
	err := c.call(ctx, method, "/onetouch/json/approval_groups/"+uuid+suffix, v, &out)
	return out.ApprovalGroup, err
}
