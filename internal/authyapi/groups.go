package authyapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Approval groups, Twofold's extension of the OneTouch API (issue 19), in its style: form or
// JSON parameters, the envelope, a uuid to poll.

// createApprovalGroup: POST /onetouch/json/approval_groups with message, details, hidden_details,
// logos, seconds_to_expire as for a request, approvers (authy ids, or {authy_id, name} hashes),
// quorum (default: all), requester_id, requester_name and exclude_requester.
func (a *API) createApprovalGroup(w http.ResponseWriter, r *http.Request, c *call) error {
	ask, err := askParams(c.params)
	if err != nil {
		return err
	}
	p := onetouch.GroupParams{Message: ask.Message, Details: ask.Details, HiddenDetails: ask.HiddenDetails, Logos: ask.Logos,
		SecondsToExpire: ask.SecondsToExpire}
	if p.Approvers, err = approvers(c.params); err != nil {
		return err
	}
	if q, _, err := c.params.Int("quorum"); err != nil || q < 0 || q > onetouch.MaxApprovers {
		return twofold.ErrInvalidParam("quorum", "must be the number of approvals needed (default: all)")
	} else {
		p.Quorum = int(q)
	}
	if p.Requester.UserID, _, err = c.params.Int("requester_id"); err != nil {
		return twofold.ErrInvalidParam("requester_id", "must be a user's authy_id")
	}
	if p.Requester.Name, err = scalarParam(c.params, "requester_name"); err != nil {
		return err
	}
	if p.ExcludeRequester, _, err = c.params.Bool("exclude_requester"); err != nil {
		return twofold.ErrInvalidParam("exclude_requester", "must be true or false")
	}
	d, err := a.onetouch.CreateGroup(r.Context(), c.app, p)
	if err != nil {
		return err
	}
	return writeGroup(w, c, d)
}

// approvers reads approvers[] as authy ids (approvers[]=1&approvers[]=2, or [1, 2]) or hashes
// with authy_id and name (approvers[][authy_id]=1&approvers[][name]=Ana, or JSON objects).
func approvers(p Params) ([]onetouch.Approver, error) {
	list, err := p.List("approvers")
	if err != nil {
		return nil, twofold.ErrInvalidParam("approvers", "must be a list of authy_ids or of {authy_id, name}")
	}
	bad := twofold.ErrInvalidParam("approvers", "each approver must be an authy_id or {authy_id, name}")
	out := make([]onetouch.Approver, 0, len(list))
	for _, el := range list {
		var a onetouch.Approver
		idText, ok := scalarString(el)
		if m, isMap := el.(map[string]any); isMap {
			idText, ok = scalarString(m["authy_id"])
			if name, present := m["name"]; present {
				if a.Name, ok = scalarString(name); !ok {
					return nil, bad
				}
			}
		}
		if !ok {
			return nil, bad
		}
		if a.UserID, err = strconv.ParseInt(strings.TrimSpace(idText), 10, 64); err != nil {
			return nil, bad
		}
		out = append(out, a)
	}
	return out, nil
}

// getApprovalGroup: GET /onetouch/json/approval_groups/{uuid}.
func (a *API) getApprovalGroup(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := a.onetouch.Group(r.Context(), c.app, r.PathValue("uuid"))
	if err != nil {
		return err
	}
	return writeGroup(w, c, d)
}

// closeApprovalGroup: POST /onetouch/json/approval_groups/{uuid}/close: the application calls the
// action off; the group becomes expired with reason "closed" and its approvers' devices drop it.
func (a *API) closeApprovalGroup(w http.ResponseWriter, r *http.Request, c *call) error {
	d, err := a.onetouch.CloseGroup(r.Context(), c.app, r.PathValue("uuid"))
	if err != nil {
		return err
	}
	return writeGroup(w, c, d)
}

func writeGroup(w http.ResponseWriter, c *call, d onetouch.GroupDecision) error {
	writeJSON(w, http.StatusOK, struct {
		ApprovalGroup map[string]any `json:"approval_group"`
		Success       bool           `json:"success"`
	}{onetouch.GroupJSON(c.app, d.Group, d.Members, ""), true})
	return nil
}
