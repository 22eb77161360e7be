package verifyapi

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verifyfactors"
)

// Factors (/v2/Services/{service}/Entities/{identity}/Factors): totp and push factors of an
// entity, made and checked by internal/verifyfactors.

type factorJSON struct {
	SID          string            `json:"sid"`
	AccountSID   string            `json:"account_sid"`
	ServiceSID   string            `json:"service_sid"`
	EntitySID    string            `json:"entity_sid"`
	Identity     string            `json:"identity"`
	Binding      any               `json:"binding,omitempty"` // only when made
	Options      any               `json:"options"`
	DateCreated  string            `json:"date_created"`
	DateUpdated  string            `json:"date_updated"`
	FriendlyName string            `json:"friendly_name"`
	Status       string            `json:"status"`
	FactorType   string            `json:"factor_type"`
	Config       map[string]any    `json:"config"`
	Metadata     map[string]string `json:"metadata"`
	URL          string            `json:"url"`
}

func factorConfig(f twofold.VerifyFactor) map[string]any {
	c := f.Config
	if f.Type == twofold.VerifyFactorTOTP {
		return map[string]any{"alg": c.Alg, "code_length": c.CodeLength, "skew": c.Skew, "time_step": c.TimeStep}
	}
	return map[string]any{"sdk_version": nullable(c.SdkVersion), "app_id": nullable(c.AppID),
		"notification_platform": nullable(c.NotificationPlatform), "notification_token": nullable(c.NotificationToken)}
}

func (a *API) factorJSON(r *http.Request, c *call, svc twofold.VerifyService, u twofold.User, f twofold.VerifyFactor) factorJSON {
	md := f.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return factorJSON{
		SID: sid(FactorPrefix, f.PublicID), AccountSID: c.caller.AccountSID, ServiceSID: sid(ServicePrefix, svc.PublicID),
		EntitySID: entitySID(u), Identity: u.CustomUserID, DateCreated: f.CreatedAt.UTC().Format(timeFormat),
		DateUpdated: f.UpdatedAt.UTC().Format(timeFormat), FriendlyName: f.Name, Status: f.Status, FactorType: f.Type,
		Config: factorConfig(f), Metadata: md, URL: a.entityURL(r, svc, u) + "/Factors/" + sid(FactorPrefix, f.PublicID),
	}
}

// readMetadata reads a parameter that is a JSON object of strings (Metadata, HiddenDetails).
func readMetadata(p Params, name string) (map[string]string, error) {
	if !p.Has(name) {
		return map[string]string{}, nil
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(p.String(name)), &raw); err != nil || raw == nil {
		return nil, InvalidParam(name, "must be a JSON object")
	}
	m := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			m[k] = v
		case float64, bool:
			b, _ := json.Marshal(v)
			m[k] = string(b)
		default:
			return nil, InvalidParam(name, "must map names to strings")
		}
	}
	return m, nil
}

// createFactor: POST /v2/Services/{service}/Entities/{identity}/Factors. The entity is made
// when it does not exist (as Twilio does).
func (a *API) createFactor(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, err := a.service(r, c)
	if err != nil {
		return err
	}
	p := c.params
	name, err := p.Required("FriendlyName")
	if err != nil {
		return err
	}
	typ, err := p.Required("FactorType")
	if err != nil {
		return err
	}
	metadata, err := readMetadata(p, "Metadata")
	if err != nil {
		return err
	}
	u, _, err := a.factors.CreateEntity(r.Context(), c.app(), r.PathValue("identity"))
	if err != nil {
		return err
	}
	switch strings.ToLower(typ) {
	case twofold.VerifyFactorTOTP:
		return a.createTOTPFactor(w, r, c, svc, u, name, metadata)
	case twofold.VerifyFactorPush:
		return a.createPushFactor(w, r, c, svc, u, name, metadata)
	case "passkeys":
		return InvalidParam("FactorType", "passkeys are not served by Twofold's Verify API (Twofold's own passkeys are)")
	}
	return InvalidParam("FactorType", "must be totp or push")
}

func (a *API) createTOTPFactor(w http.ResponseWriter, r *http.Request, c *call, svc twofold.VerifyService, u twofold.User, name string, metadata map[string]string) error {
	p := c.params
	if err := p.Refuse("is for push factors", "Binding.PublicKey", "Binding.Alg", "Config.AppId", "Config.NotificationPlatform",
		"Config.NotificationToken"); err != nil {
		return err
	}
	var cfg twofold.FactorConfig
	for name, dst := range map[string]*int{"Config.TimeStep": &cfg.TimeStep, "Config.Skew": &cfg.Skew, "Config.CodeLength": &cfg.CodeLength} {
		if err := p.Int(name, dst); err != nil {
			return err
		}
	}
	if cfg.Skew == 0 && p.Has("Config.Skew") {
		cfg.Skew = -1 // asked for 0, rather than the service's skew
	}
	p.Text("Config.Alg", &cfg.Alg)
	made, err := a.factors.CreateTOTPFactor(r.Context(), c.app(), svc, u, verifyfactors.TOTPFactor{
		Name: name, Secret: p.String("Binding.Secret"), Config: cfg, Metadata: metadata,
	})
	if err != nil {
		return err
	}
	out := a.factorJSON(r, c, svc, u, made.Factor)
	out.Binding = map[string]string{"secret": otp.EncodeSecret(made.Secret), "uri": made.URI}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

// factor loads the service, entity and factor the path names.
func (a *API) factor(r *http.Request, c *call) (twofold.VerifyService, twofold.User, twofold.VerifyFactor, error) {
	svc, u, err := a.entity(r, c)
	if err != nil {
		return svc, u, twofold.VerifyFactor{}, err
	}
	id, ok := publicID(FactorPrefix, r.PathValue("sid"))
	if !ok {
		return svc, u, twofold.VerifyFactor{}, twofold.ErrNotFound
	}
	f, err := a.factors.Factor(r.Context(), svc, u, id)
	return svc, u, f, err
}

// fetchFactor: GET .../Factors/{sid}.
func (a *API) fetchFactor(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, f, err := a.factor(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.factorJSON(r, c, svc, u, f))
	return nil
}

// updateFactor: POST .../Factors/{sid}: AuthPayload verifies an unverified factor (a totp code;
// a wrong one leaves it unverified: 200); FriendlyName renames; Config.NotificationToken
// changes a push factor's token.
func (a *API) updateFactor(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, f, err := a.factor(r, c)
	if err != nil {
		return err
	}
	p := c.params
	if err := p.Refuse("cannot be changed in Twofold: make a new factor", "Config.TimeStep", "Config.Skew", "Config.CodeLength",
		"Config.Alg", "Config.NotificationPlatform"); err != nil {
		return err
	}
	var cfg twofold.FactorConfig
	p.Text("Config.NotificationToken", &cfg.NotificationToken)
	p.Text("Config.SdkVersion", &cfg.SdkVersion)
	if p.Has("FriendlyName") || cfg.NotificationToken != "" || cfg.SdkVersion != "" {
		if f, err = a.factors.UpdateFactor(r.Context(), f, p.String("FriendlyName"), cfg); err != nil {
			return err
		}
	}
	if payload := p.String("AuthPayload"); payload != "" {
		if f, err = a.factors.VerifyFactor(r.Context(), svc, u, f, payload); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, a.factorJSON(r, c, svc, u, f))
	return nil
}

// deleteFactor: DELETE .../Factors/{sid}.
func (a *API) deleteFactor(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, f, err := a.factor(r, c)
	if err != nil {
		return err
	}
	if err := a.factors.DeleteFactor(r.Context(), svc, u, f); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listFactors: GET .../Factors.
func (a *API) listFactors(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, err := a.entity(r, c)
	if err != nil {
		return err
	}
	pg, err := readPage(c.params)
	if err != nil {
		return err
	}
	list, err := a.factors.Factors(r.Context(), svc, u, pg.After, pg.Offset(), pg.Size+1)
	if err != nil {
		return err
	}
	more := len(list) > pg.Size
	list = list[:min(len(list), pg.Size)]
	out := make([]factorJSON, 0, len(list))
	var last int64
	for _, f := range list {
		out = append(out, a.factorJSON(r, c, svc, u, f))
		last = f.ID
	}
	writeJSON(w, http.StatusOK, struct {
		Factors []factorJSON `json:"factors"`
		Meta    Meta         `json:"meta"`
	}{out, a.meta(r, "factors", pg, last, more)})
	return nil
}

func (a *API) createPushFactor(w http.ResponseWriter, r *http.Request, c *call, svc twofold.VerifyService, u twofold.User, name string, metadata map[string]string) error {
	p := c.params
	if err := p.Refuse("is for totp factors", "Binding.Secret", "Config.TimeStep", "Config.Skew", "Config.CodeLength",
		"Config.Alg"); err != nil {
		return err
	}
	key, err := p.Required("Binding.PublicKey")
	if err != nil {
		return err
	}
	alg, err := p.Required("Binding.Alg")
	if err != nil {
		return err
	}
	var cfg twofold.FactorConfig
	p.Text("Config.AppId", &cfg.AppID)
	p.Text("Config.NotificationPlatform", &cfg.NotificationPlatform)
	p.Text("Config.NotificationToken", &cfg.NotificationToken)
	p.Text("Config.SdkVersion", &cfg.SdkVersion)
	f, err := a.factors.CreatePushFactor(r.Context(), c.app(), svc, u, verifyfactors.PushFactor{
		Name: name, PublicKey: key, Alg: alg, Config: cfg, Metadata: metadata,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.factorJSON(r, c, svc, u, f))
	return nil
}
