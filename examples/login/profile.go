package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"rsc.io/qr"

	"github.com/twofold-auth/twofold/client"
)

const (
	callbackPath = "/authy/callback"
	addAppPath   = "/add-app" // the offer to add the authenticator app, after a log-in by code
)

func (s *server) profilePage(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.needUser(w, r)
	if !ok {
		return
	}
	if len(sess.RecoveryCodes) > 0 { // not acknowledged yet: they are shown until they are
		redirect(w, r, recoveryCodesPath)
		return
	}
	v := view{Email: u.Email, TwoFactor: u.AuthyID != 0, MaskedPhone: maskPhone(u.CountryCode, u.Phone)}
	if u.AuthyID != 0 {
		// Twofold: the user's devices.
		st, err := s.tf.UserStatus(r.Context(), u.AuthyID)
		if err != nil {
			s.log.Warn("twofold: user status", "user", u.ID, "err", err)
			v.StatusUnavailable = true
		} else {
			v.Devices, v.HasPushDevice = st.Devices, st.CanApprove()
		}
	}
	if u.AuthyID != 0 && !v.StatusUnavailable && !v.HasPushDevice {
		// Offer the authenticator app: a QR code holding a registration link for this user.
		v.RegLink, v.StatusUnavailable = s.offerRegistration(r, &sess, u)
		v.RegMinutes = regMinutes(sess, s.now())
	}
	if app, err := s.twofoldApp(r.Context()); err == nil {
		v.AppName = app.Name
	}
	v.PasskeysOn = u.AuthyID != 0 && s.passkeysOn(r.Context())
	v.Passkeys, v.PasskeysUnavailable = s.userPasskeys(r.Context(), u)
	s.render(w, http.StatusOK, "profile", sess, v)
}

// offerRegistration returns the registration link the QR code shows, kept in the session while
// it is fresh; failed reports that Twofold could not make one.
func (s *server) offerRegistration(r *http.Request, sess *session, u user) (link string, failed bool) {
	now := s.now()
	if sess.RegLink == "" || sess.RegExpires.Sub(now) < time.Minute {
		// Twofold: a single-use link that adds a device for this user (sdk/registrations):
		// https://TWOFOLD/authenticator/#register=TOKEN, which opens Twofold's web authenticator.
		reg, err := s.tf.CreateRegistrationLink(r.Context(), u.AuthyID)
		if err != nil {
			s.log.Warn("twofold: registration link", "user", u.ID, "err", err)
			return "", true
		}
		if !strings.HasPrefix(reg.URL, "https://") && !strings.HasPrefix(reg.URL, "http://") {
			s.log.Warn("twofold: the registration link is not a web address", "user", u.ID)
			return "", true
		}
		sess.RegLink, sess.RegExpires = reg.URL, reg.ExpiresAt
		if reg.ExpiresAt.IsZero() {
			sess.RegExpires = now.Add(10 * time.Minute)
		}
		s.sessions.save(*sess)
	}
	return sess.RegLink, false
}

// regMinutes is how long the session's registration link has left, to the nearest minute.
func regMinutes(sess session, now time.Time) int {
	return max(1, int((sess.RegExpires.Sub(now)+30*time.Second)/time.Minute))
}

// addAppPage asks a user who has just logged in with a code, and has no authenticator, to add
// the app, once: the profile page's QR code, with "Not now". Whether they have one is Twofold's
// to say (users/{id}/status), so a user who added it elsewhere meanwhile goes straight on.
func (s *server) addAppPage(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := s.needUser(w, r)
	if !ok {
		return
	}
	if u.AuthyID == 0 {
		redirect(w, r, "/protected")
		return
	}
	v := view{Email: u.Email, TwoFactor: true, AddApp: true}
	// Twofold: does the user have an authenticator by now?
	st, err := s.tf.UserStatus(r.Context(), u.AuthyID)
	switch {
	case err != nil:
		s.log.Warn("twofold: user status", "user", u.ID, "err", err)
		v.StatusUnavailable = true
	case hasAuthenticator(st):
		redirect(w, r, "/protected")
		return
	default:
		v.RegLink, v.StatusUnavailable = s.offerRegistration(r, &sess, u)
		v.RegMinutes = regMinutes(sess, s.now())
	}
	if app, err := s.twofoldApp(r.Context()); err == nil {
		v.AppName = app.Name
	}
	s.render(w, http.StatusOK, "add-app", sess, v)
}

// addAppLater is the offer's "Not now": the user is not asked again.
func (s *server) addAppLater(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	if sess.Stage != loggedIn {
		redirect(w, r, "/")
		return
	}
	s.users.markAskedToAddApp(sess.UserID, s.now())
	sess.Flash = "You can add the authenticator app any time from your profile."
	s.sessions.save(sess)
	redirect(w, r, "/protected")
}

// profileQR is the registration link of the profile page as a QR code PNG.
func (s *server) profileQR(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.load(r)
	if !ok || sess.Stage != loggedIn || sess.RegLink == "" || s.now().After(sess.RegExpires) {
		http.NotFound(w, r)
		return
	}
	code, err := qr.Encode(sess.RegLink, qr.M)
	if err != nil {
		s.log.Error("qr encode", "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	code.Scale = 6
	w.Header().Set("Content-Type", "image/png")
	w.Write(code.PNG())
}

// registrationStatus is what the profile page polls while it shows the QR code.
func (s *server) registrationStatus(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.load(r)
	u, found := s.users.get(sess.UserID)
	if !ok || sess.Stage != loggedIn || !found || u.AuthyID == 0 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"status": "gone"})
		return
	}
	// Twofold: has a device (one that approves log-ins) registered for the user by now?
	st, err := s.tf.UserStatus(r.Context(), u.AuthyID)
	switch {
	case err != nil:
		s.log.Warn("twofold: user status", "user", u.ID, "err", err)
		writeJSON(w, http.StatusOK, map[string]string{"status": "pending"})
	case st.CanApprove():
		s.users.markAskedToAddApp(u.ID, s.now()) // the offer is answered, wherever it was made
		sess.RegLink, sess.RegExpires = "", time.Time{}
		s.sessions.save(sess)
		writeJSON(w, http.StatusOK, map[string]string{"status": "completed"})
	case s.now().After(sess.RegExpires):
		writeJSON(w, http.StatusOK, map[string]string{"status": "expired"})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "pending"})
	}
}

func (s *server) enable2FA(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	u, found := s.users.get(sess.UserID)
	if sess.Stage != loggedIn || !found {
		redirect(w, r, "/login")
		return
	}
	if u.AuthyID == 0 {
		// Twofold: register the user again.
		id, err := s.tf.RegisterUser(r.Context(), client.NewUser{Email: u.Email, Phone: u.Phone, CountryCode: u.CountryCode})
		// The sample cannot change the phone number an account signed up with: a refused
		// number is said as on the sign-up page, without "use another one", and a number that
		// is another account's reads the same.
		const ownPhoneRefused = "Your phone number cannot be used for two-factor authentication."
		if err != nil {
			s.log.Warn("twofold: register user", "user", u.ID, "err", err)
			if status, problem := registerProblem(err); status == http.StatusBadRequest {
				sess.Problem = ownPhoneRefused
			} else {
				sess.Problem = problem
			}
		} else if err := s.users.setAuthyID(u.ID, id); err != nil {
			s.log.Info("two-factor refused: the phone number is another account's", "user", u.ID)
			sess.Problem = ownPhoneRefused
		} else {
			s.giveRecoveryCodes(r.Context(), &sess, id)
		}
	}
	sess.RegLink = ""
	s.sessions.save(sess)
	if len(sess.RecoveryCodes) > 0 {
		redirect(w, r, recoveryCodesPath)
		return
	}
	redirect(w, r, "/profile")
}

func (s *server) disable2FA(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	u, found := s.users.get(sess.UserID)
	if sess.Stage != loggedIn || !found {
		redirect(w, r, "/login")
		return
	}
	if u.AuthyID != 0 {
		// Twofold: remove the user, their devices and codes.
		err := s.tf.RemoveUser(r.Context(), u.AuthyID)
		if err != nil && !client.IsCode(err, client.CodeUserNotFound) {
			s.log.Warn("twofold: remove user", "user", u.ID, "err", err)
			sess.Problem = "Two-factor authentication could not be turned off just now. Try again in a moment."
		} else {
			s.users.setAuthyID(u.ID, 0)
		}
	}
	sess.RegLink = ""
	s.sessions.save(sess)
	redirect(w, r, "/profile")
}

// callback receives Twofold's OneTouch callbacks: it checks their signature with the API key
// and records the answer for the wait page.
func (s *server) callback(w http.ResponseWriter, r *http.Request) {
	// Twofold: the signature (X-Authy-Signature over nonce, method, URL and body).
	if err := client.VerifyCallback(r, s.cfg.APIKey, s.cfg.PublicURL+callbackPath, client.WithMaxAge(10*time.Minute, s.now)); err != nil {
		s.log.Warn("refused a OneTouch callback", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "invalid signature", http.StatusUnauthorized)
		return
	}
	var cb struct {
		AuthyID        json.Number `json:"authy_id"`
		UUID           string      `json:"uuid"`
		Status         string      `json:"status"`
		CallbackAction string      `json:"callback_action"`
	}
	if r.Method == http.MethodGet {
		q := r.URL.Query()
		cb.AuthyID, cb.UUID, cb.Status, cb.CallbackAction = json.Number(q.Get("authy_id")), q.Get("uuid"), q.Get("status"), q.Get("callback_action")
	} else if err := json.NewDecoder(r.Body).Decode(&cb); err != nil {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	a, known := s.approvals.get(cb.UUID)
	switch {
	case cb.AuthyID == "1234": // Authy's console sent this test callback; Twofold's may too
		s.log.Info("OneTouch test callback")
	case s.phones.nudge(cb.UUID):
		// A sign-in with the phone was answered: its page's next poll reads it from Twofold.
		s.log.Info("OneTouch callback for a sign-in with the phone", "uuid", cb.UUID)
	case !known || cb.CallbackAction != "approval_request_status" || strings.TrimSpace(cb.AuthyID.String()) != itoa(a.AuthyID):
		s.log.Info("OneTouch callback for no request of ours", "uuid", cb.UUID)
	case cb.Status == "approved" || cb.Status == "denied" || cb.Status == "expired":
		s.approvals.settle(cb.UUID, cb.Status, "callback")
		s.log.Info("OneTouch answer", "uuid", cb.UUID, "status", cb.Status)
		if s.onCallback != nil {
			s.onCallback(cb.UUID, cb.Status)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("OK"))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
