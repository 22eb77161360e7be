package verifyapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verifyfactors"
)

// Challenges (/v2/Services/{service}/Entities/{identity}/Challenges): a challenge of a totp
// factor is answered with a code; one of a push factor is an approval request the device
// answers (internal/verifyfactors).

type challengeJSON struct {
	SID             string                   `json:"sid"`
	AccountSID      string                   `json:"account_sid"`
	ServiceSID      string                   `json:"service_sid"`
	EntitySID       string                   `json:"entity_sid"`
	Identity        string                   `json:"identity"`
	FactorSID       string                   `json:"factor_sid"`
	DateCreated     string                   `json:"date_created"`
	DateUpdated     string                   `json:"date_updated"`
	DateResponded   *string                  `json:"date_responded"`
	ExpirationDate  string                   `json:"expiration_date"`
	Status          string                   `json:"status"`
	RespondedReason string                   `json:"responded_reason"`
	Details         twofold.ChallengeDetails `json:"details"`
	HiddenDetails   map[string]string        `json:"hidden_details"`
	Metadata        map[string]string        `json:"metadata"`
	FactorType      string                   `json:"factor_type"`
	URL             string                   `json:"url"`
	Links           map[string]string        `json:"links"`
}

func (a *API) challengeJSON(r *http.Request, c *call, svc twofold.VerifyService, u twofold.User, f twofold.VerifyFactor, ch twofold.VerifyChallenge) challengeJSON {
	var responded *string
	if !ch.RespondedAt.IsZero() {
		responded = nullable(ch.RespondedAt.UTC().Format(timeFormat))
	}
	hidden := ch.HiddenDetails
	if hidden == nil {
		hidden = map[string]string{}
	}
	url := a.entityURL(r, svc, u) + "/Challenges/" + sid(ChallengePrefix, ch.PublicID)
	return challengeJSON{
		SID: sid(ChallengePrefix, ch.PublicID), AccountSID: c.caller.AccountSID, ServiceSID: sid(ServicePrefix, svc.PublicID),
		EntitySID: entitySID(u), Identity: u.CustomUserID, FactorSID: sid(FactorPrefix, f.PublicID),
		DateCreated: ch.CreatedAt.UTC().Format(timeFormat), DateUpdated: ch.UpdatedAt.UTC().Format(timeFormat),
		DateResponded: responded, ExpirationDate: ch.ExpiresAt.UTC().Format(timeFormat), Status: ch.StatusAt(a.now()),
		RespondedReason: ch.RespondedReason, Details: ch.Details, HiddenDetails: hidden, Metadata: map[string]string{},
		FactorType: f.Type, URL: url, Links: map[string]string{"notifications": url + "/Notifications"},
	}
}

// readDetails reads Details.Message and Details.Fields (each field a JSON object with label and
// value, as the libraries send them).
func readDetails(p Params) (twofold.ChallengeDetails, error) {
	d := twofold.ChallengeDetails{Message: p.String("Details.Message"), Fields: []twofold.ChallengeField{}}
	for _, raw := range p.List("Details.Fields") {
		var fl struct {
			Label *string `json:"label"`
			Value any     `json:"value"`
		}
		if err := json.Unmarshal([]byte(raw), &fl); err != nil || fl.Label == nil {
			return d, InvalidParam("Details.Fields", `each must be a JSON object {"label": …, "value": …}`)
		}
		value, ok := fl.Value.(string)
		if !ok {
			b, _ := json.Marshal(fl.Value)
			value = string(b)
		}
		d.Fields = append(d.Fields, twofold.ChallengeField{Label: *fl.Label, Value: value})
	}
	return d, nil
}

// createChallenge: POST .../Challenges with FactorSid; a totp factor's code in AuthPayload is
// checked at once.
func (a *API) createChallenge(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, err := a.entity(r, c)
	if err != nil {
		return err
	}
	p := c.params
	factorSID, err := p.Required("FactorSid")
	if err != nil {
		return err
	}
	fid, ok := publicID(FactorPrefix, factorSID)
	if !ok {
		return InvalidParam("FactorSid", "is not a factor SID (YF and 32 hex digits)")
	}
	f, err := a.factors.Factor(r.Context(), svc, u, fid)
	if err != nil {
		return err
	}
	nc := verifyfactors.NewChallenge{AuthPayload: p.String("AuthPayload")}
	if nc.Details, err = readDetails(p); err != nil {
		return err
	}
	if nc.HiddenDetails, err = readMetadata(p, "HiddenDetails"); err != nil {
		return err
	}
	if v := p.String("ExpirationDate"); v != "" {
		if nc.ExpiresAt, err = time.Parse(time.RFC3339, strings.TrimSpace(v)); err != nil {
			return InvalidParam("ExpirationDate", "must be an ISO 8601 date and time")
		}
	}
	ch, err := a.factors.CreateChallenge(r.Context(), c.app(), svc, u, f, nc)
	if err != nil {
		return err
	}
	a.signatureFields(w, f)
	writeJSON(w, http.StatusCreated, a.challengeJSON(r, c, svc, u, f, ch))
	return nil
}

// challenge loads the service, entity, challenge and its factor the path names.
func (a *API) challenge(r *http.Request, c *call) (twofold.VerifyService, twofold.User, twofold.VerifyFactor, twofold.VerifyChallenge, error) {
	svc, u, err := a.entity(r, c)
	if err != nil {
		return svc, u, twofold.VerifyFactor{}, twofold.VerifyChallenge{}, err
	}
	id, ok := publicID(ChallengePrefix, r.PathValue("sid"))
	if !ok {
		return svc, u, twofold.VerifyFactor{}, twofold.VerifyChallenge{}, twofold.ErrNotFound
	}
	f, ch, err := a.factors.ChallengeAndFactor(r.Context(), c.app(), svc, u, id)
	return svc, u, f, ch, err
}

// fetchChallenge: GET .../Challenges/{sid}. A pending challenge of a push factor comes with
// Twilio-Verify-Signature-Fields, the fields the device's answer signs.
func (a *API) fetchChallenge(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, f, ch, err := a.challenge(r, c)
	if err != nil {
		return err
	}
	a.signatureFields(w, f)
	writeJSON(w, http.StatusOK, a.challengeJSON(r, c, svc, u, f, ch))
	return nil
}

// updateChallenge: POST .../Challenges/{sid} with AuthPayload: a totp code, or the device's
// signed answer for a push factor.
func (a *API) updateChallenge(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, f, ch, err := a.challenge(r, c)
	if err != nil {
		return err
	}
	payload, err := c.params.Required("AuthPayload")
	if err != nil {
		return err
	}
	shown := a.challengeJSON(r, c, svc, u, f, ch)
	signed := map[string]string{"sid": shown.SID, "factor_sid": shown.FactorSID, "entity_sid": shown.EntitySID,
		"date_created": shown.DateCreated, "expiration_date": shown.ExpirationDate}
	if ch, err = a.factors.Answer(r.Context(), svc, u, f, ch, payload, signed); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.challengeJSON(r, c, svc, u, f, ch))
	return nil
}

// challengeStatuses are the statuses a list filters by.
var challengeStatuses = map[string]bool{twofold.ChallengePending: true, twofold.ChallengeExpired: true,
	twofold.ChallengeApproved: true, twofold.ChallengeDenied: true}

// listChallenges: GET .../Challenges with FactorSid, Status and Order (asc, desc).
func (a *API) listChallenges(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, err := a.entity(r, c)
	if err != nil {
		return err
	}
	p := c.params
	pg, err := readPage(p)
	if err != nil {
		return err
	}
	var filter twofold.ChallengeFilter
	if v := p.String("FactorSid"); v != "" {
		fid, ok := publicID(FactorPrefix, v)
		if !ok {
			return InvalidParam("FactorSid", "is not a factor SID (YF and 32 hex digits)")
		}
		f, err := a.factors.Factor(r.Context(), svc, u, fid)
		if err != nil {
			return err
		}
		filter.FactorID = f.ID
	}
	if v := strings.ToLower(p.String("Status")); v != "" {
		if !challengeStatuses[v] {
			return InvalidParam("Status", "must be pending, expired, approved or denied")
		}
		filter.Status = v
	}
	switch strings.ToLower(p.String("Order")) {
	case "", "asc":
	case "desc":
		filter.Desc = true
	default:
		return InvalidParam("Order", "must be asc or desc")
	}
	list, err := a.factors.Challenges(r.Context(), c.app(), svc, u, filter, pg.After, pg.Offset(), pg.Size+1)
	if err != nil {
		return err
	}
	more := len(list) > pg.Size
	list = list[:min(len(list), pg.Size)]
	out := make([]challengeJSON, 0, len(list))
	var last int64
	factors := map[int64]twofold.VerifyFactor{}
	for _, ch := range list {
		f, ok := factors[ch.FactorID]
		if !ok {
			if f, err = a.factors.FactorByID(r.Context(), svc, u, ch.FactorID); err != nil {
				return err
			}
			factors[ch.FactorID] = f
		}
		out = append(out, a.challengeJSON(r, c, svc, u, f, ch))
		last = ch.ID
	}
	writeJSON(w, http.StatusOK, struct {
		Challenges []challengeJSON `json:"challenges"`
		Meta       Meta            `json:"meta"`
	}{out, a.meta(r, "challenges", pg, last, more)})
	return nil
}

// signatureFields tells a push factor's device which fields of a challenge its answer signs.
func (a *API) signatureFields(w http.ResponseWriter, f twofold.VerifyFactor) {
	if f.Type == twofold.VerifyFactorPush {
		w.Header().Set("Twilio-Verify-Signature-Fields", strings.Join(verifyfactors.SignatureFields, ","))
	}
}

type notificationJSON struct {
	SID          string `json:"sid"`
	AccountSID   string `json:"account_sid"`
	ServiceSID   string `json:"service_sid"`
	EntitySID    string `json:"entity_sid"`
	Identity     string `json:"identity"`
	ChallengeSID string `json:"challenge_sid"`
	Priority     string `json:"priority"`
	TTL          int    `json:"ttl"`
	DateCreated  string `json:"date_created"`
}

// notifyChallenge: POST .../Challenges/{sid}/Notifications with Ttl (0 to 300, default 300):
// the push of a pending challenge again. Twofold's own authenticators are notified again (their
// event streams and Web Push); other push factors' apps are not reached (Twofold has no APNs or
// FCM credentials of theirs) and poll, as with notification_platform none.
func (a *API) notifyChallenge(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, u, f, ch, err := a.challenge(r, c)
	if err != nil {
		return err
	}
	ttl := 300
	if err := c.params.Int("Ttl", &ttl); err != nil {
		return err
	}
	if ttl < 0 || ttl > 300 {
		return InvalidParam("Ttl", "must be 0 to 300")
	}
	if f.Type != twofold.VerifyFactorPush {
		return Errorf(CodeVerifyInvalid, http.StatusBadRequest, "Only challenges of push factors are notified")
	}
	if err := a.factors.Notify(r.Context(), c.app(), f, ch); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, notificationJSON{
		SID: sid(NotificationPrefix, twofold.NewPublicID()), AccountSID: c.caller.AccountSID, ServiceSID: sid(ServicePrefix, svc.PublicID),
		EntitySID: entitySID(u), Identity: u.CustomUserID, ChallengeSID: sid(ChallengePrefix, ch.PublicID), Priority: "high", TTL: ttl,
		DateCreated: a.now().UTC().Format(timeFormat),
	})
	return nil
}
