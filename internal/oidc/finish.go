package oidc

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"

	"github.com/twofold-auth/twofold/internal/hostedstep"
)

// Finish hands a passed step back to the client: an authorization code in the query or a form
// post (the code flow), or the id token itself in a form post (Entra's response_type=id_token).
func (p *Provider) Finish(w http.ResponseWriter, r *http.Request, v hostedstep.View) error {
	var req request
	if err := json.Unmarshal(v.Session.Request, &req); err != nil || req.Dialect != dialect {
		return errors.New("oidc: the session was not begun by this provider")
	}
	vals := url.Values{"iss": {p.issuer}}
	if req.State != "" {
		vals.Set("state", req.State)
	}
	switch req.ResponseType {
	case "code":
		code, err := p.steps.IssueCode(r.Context(), v)
		if err != nil {
			return err
		}
		vals.Set("code", code)
	case "id_token":
		res, err := p.steps.Close(r.Context(), v)
		if err != nil {
			return err
		}
		tok, err := p.idToken(r.Context(), res, req)
		if err != nil {
			return err
		}
		vals.Set("id_token", tok)
	default:
		return errors.New("oidc: unknown response type")
	}
	p.respond(w, r, req, vals)
	return nil
}

// Refuse sends the browser back to the client with access_denied.
func (p *Provider) Refuse(w http.ResponseWriter, r *http.Request, v hostedstep.View, reason string) error {
	var req request
	if err := json.Unmarshal(v.Session.Request, &req); err != nil || req.Dialect != dialect {
		return errors.New("oidc: the session was not begun by this provider")
	}
	p.redirectError(w, r, req, "access_denied", reason)
	return nil
}
