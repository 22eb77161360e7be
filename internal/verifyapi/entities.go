package verifyapi

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Entities (/v2/Services/{service}/Entities/{identity}): an entity is the application's user
// whose custom user id is the Identity (internal/verifyfactors), so the Authy API's users
// registered with a custom id are entities too, and an entity is an Authy API user.

type entityJSON struct {
	SID         string            `json:"sid"`
	Identity    string            `json:"identity"`
	AccountSID  string            `json:"account_sid"`
	ServiceSID  string            `json:"service_sid"`
	DateCreated string            `json:"date_created"`
	DateUpdated string            `json:"date_updated"`
	URL         string            `json:"url"`
	Links       map[string]string `json:"links"`
}

// entitySID shows a user as an entity: YE and the user's id in 32 hex digits.
func entitySID(u twofold.User) string { return EntityPrefix + fmt.Sprintf("%032x", u.ID) }

// entityURL is where the entity is on the wire.
func (a *API) entityURL(r *http.Request, svc twofold.VerifyService, u twofold.User) string {
	return a.baseURL(r) + Prefix + "/Services/" + sid(ServicePrefix, svc.PublicID) + "/Entities/" + url.PathEscape(u.CustomUserID)
}

func (a *API) entityJSON(r *http.Request, c *call, svc twofold.VerifyService, u twofold.User) entityJSON {
	base := a.entityURL(r, svc, u)
	return entityJSON{
		SID: entitySID(u), Identity: u.CustomUserID, AccountSID: c.caller.AccountSID, ServiceSID: sid(ServicePrefix, svc.PublicID),
		DateCreated: u.CreatedAt.UTC().Format(timeFormat), DateUpdated: u.UpdatedAt.UTC().Format(timeFormat), URL: base,
		Links: map[string]string{"factors": base + "/Factors", "challenges": base + "/Challenges", "new_factors": base + "/Factors"},
	}
}

// entity loads the service and the entity the path names: 20404 when either is not the caller's.
func (a *API) entity(r *http.Request, c *call) (twofold.VerifyService, twofold.User, error) {
	svc, err := a.service(r, c)
	if err != nil {
		return svc, twofold.User{}, err
	}
	u, err := a.factors.Entity(r.Context(), c.app(), r.PathValue("identity"))
	return svc, u, err
}

// createEntity: POST /v2/Services/{service}/Entities with Identity. An existing entity is
// answered as it is (201 either way: the user may have been made by the Authy API).
func (a *API) createEntity(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, err := a.service(r, c)
	if err != nil {
		return err
	}
	identity, err := c.params.Required("Identity")
	if err != nil {
		return err
	}
	u, _, err := a.factors.CreateEntity(r.Context(), c.app(), identity)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.entityJSON(r, c, svc, u))
	return nil
}

// fetchEntity: GET /v2/Services/{service}/Entities/{identity}.
func (a *API) fetchEntity(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, err := a.entity(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.entityJSON(r, c, svc, u))
	return nil
}

// deleteEntity: DELETE /v2/Services/{service}/Entities/{identity}: its factors and challenges
// in the service go; the user stays.
func (a *API) deleteEntity(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, err := a.entity(r, c)
	if err != nil {
		return err
	}
	if err := a.factors.DeleteEntity(r.Context(), svc, u); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listEntities: GET /v2/Services/{service}/Entities: the application's entities (they are in
// every service of it).
func (a *API) listEntities(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, err := a.service(r, c)
	if err != nil {
		return err
	}
	pg, err := readPage(c.params)
	if err != nil {
		return err
	}
	list, err := a.factors.Entities(r.Context(), c.app(), pg.After, pg.Offset(), pg.Size+1)
	if err != nil {
		return err
	}
	more := len(list) > pg.Size
	list = list[:min(len(list), pg.Size)]
	out := make([]entityJSON, 0, len(list))
	var last int64
	for _, u := range list {
		out = append(out, a.entityJSON(r, c, svc, u))
		last = u.ID
	}
	writeJSON(w, http.StatusOK, struct {
		Entities []entityJSON `json:"entities"`
		Meta     Meta         `json:"meta"`
	}{out, a.meta(r, "entities", pg, last, more)})
	return nil
}
