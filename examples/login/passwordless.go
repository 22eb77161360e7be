package main

// "Sign in with your phone": passwordless sign-in with Twofold (issue 19). The user types only
// their email; Twofold asks the authenticator app on their phone, with number matching, and
// approving signs them in.
//
// Anyone can type anyone's email here, so the page must not tell whether it is of an account,
// or of one with the app: the sample never looks the email up itself (Twofold does, and answers
// alike whoever it is), every start gets the same redirect and the same page but for the number,
// and every way it can fail (denied, two wrong numbers, expired, no such user, no app, blocked)
// ends on the password form with the same words.

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/client"
)

const (
	phonePath = "/login/phone"
	// phoneFailed is what every sign-in with the phone that did not sign anyone in ends with.
	phoneFailed = "We couldn't sign you in with your phone. Use your password."
	// phoneLimited is Twofold's 429, for an email or an address asked for too often: the same
	// words whoever the email is of.
	phoneLimited = "Too many attempts, try again later."
	// pollPhoneEach bounds how often one sign-in's state is read from Twofold while its page
	// polls; a OneTouch callback for it makes the next poll read at once.
	pollPhoneEach = 2 * time.Second
)

// phoneStart begins a sign-in with the phone for the email typed in the log-in form (POST
// /login/phone, the form's "Sign in with your phone" button; any password typed is ignored).
func (s *server) phoneStart(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	if sess.Stage != anonymous {
		redirect(w, r, "/")
		return
	}
	email := strings.ToLower(strings.TrimSpace(r.PostFormValue("email")))
	v := view{Email: email}
	if !emailLike(email) {
		v.Problem = "Enter your email address, like ada@example.com, to sign in with your phone."
		s.render(w, http.StatusBadRequest, "login", sess, v)
		return
	}
	// Twofold: start a passwordless sign-in for the email as typed. Twofold looks the user up;
	// the sample must not (its "no such user" would tell), so its own users are not read here.
	pr, err := s.tf.StartPasswordless(r.Context(), client.PasswordlessStart{
		Email:  email,
		UserIP: clientIP(r),
		Details: map[string]string{
			"IP":      clientIP(r),
			"Browser": browserSummary(r.UserAgent()),
		},
		SecondsToExpire: int(s.cfg.PhoneWait / time.Second),
	})
	switch {
	case client.IsCode(err, client.CodeRateLimited):
		s.log.Info("twofold: passwordless sign-in refused: too many", "err", err)
		v.Problem = phoneLimited
		s.render(w, http.StatusTooManyRequests, "login", sess, v)
		return
	case err != nil:
		s.log.Warn("twofold: start passwordless sign-in", "err", err)
		v.Problem = "Sign-in with your phone is not available right now. Use your password."
		s.render(w, http.StatusBadGateway, "login", sess, v)
		return
	}
	s.log.Info("passwordless sign-in started", "uuid", pr.UUID)
	s.dropPhone(sess)
	s.phones.add(pr.UUID, phoneSignin{SessionID: sess.ID, Email: email, Number: pr.Number, ExpiresAt: pr.ExpiresAt,
		Status: "pending", Created: s.now()})
	sess.PhoneUUID, sess.LoginEmail = pr.UUID, email
	s.sessions.save(sess)
	redirect(w, r, phonePath)
}

// phonePage is the wait: "Check your phone and tap 42". Its script polls phoneStatus and posts
// phoneFinish when the sign-in is over.
func (s *server) phonePage(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.load(r)
	p, found := s.phones.get(sess.PhoneUUID, sess.ID)
	if !ok || sess.Stage != anonymous || !found {
		redirect(w, r, "/")
		return
	}
	s.render(w, http.StatusOK, "phone", sess, view{Number: p.Number})
}

// phoneStatus is what the wait page polls: pending, or done (answered or expired: the page then
// posts phoneFinish, which says what became of it); gone when the browser waits for nothing.
func (s *server) phoneStatus(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.load(r)
	if _, found := s.phones.get(sess.PhoneUUID, sess.ID); !ok || sess.Stage != anonymous || !found {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"status": "gone"})
		return
	}
	status := "done"
	if p, _ := s.phoneState(r.Context(), sess, false); p.Status == "pending" {
		status = "pending"
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": status})
}

// phoneState returns the session's sign-in as Twofold last said, reading it again when due
// (or at once with now). Past its expiry, a sign-in that Twofold cannot be asked about is over.
func (s *server) phoneState(ctx context.Context, sess session, now bool) (phoneSignin, error) {
	p, _ := s.phones.get(sess.PhoneUUID, sess.ID)
	if p.Status != "pending" || !now && !s.phones.due(sess.PhoneUUID, s.now(), pollPhoneEach) {
		return p, nil
	}
	// Twofold: read the passwordless sign-in: approved (with the user's Authy id), denied,
	// expired or still pending.
	got, err := s.tf.PasswordlessRequest(ctx, sess.PhoneUUID)
	switch {
	case err != nil && s.now().After(p.ExpiresAt.Add(pollPhoneEach)):
		s.log.Warn("twofold: read passwordless sign-in, past its expiry", "uuid", sess.PhoneUUID, "err", err)
		return s.phones.settle(sess.PhoneUUID, "expired", 0), nil
	case err != nil:
		s.log.Warn("twofold: read passwordless sign-in", "uuid", sess.PhoneUUID, "err", err)
		return p, err
	case got.Status == "approved" || got.Status == "denied" || got.Status == "expired":
		return s.phones.settle(sess.PhoneUUID, got.Status, got.AuthyID), nil
	}
	return p, nil
}

// phoneFinish ends the wait (POST /login/phone/finish; the page posts it when the poll says
// done, or the user presses "I approved it: continue"). Approved: the user whose Authy id
// Twofold names is signed in. Anything else: the password form, with the email, and words that
// do not say what happened.
func (s *server) phoneFinish(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	if _, found := s.phones.get(sess.PhoneUUID, sess.ID); sess.Stage != anonymous || !found {
		redirect(w, r, "/")
		return
	}
	p, err := s.phoneState(r.Context(), sess, true)
	if p.Status == "pending" {
		if err != nil {
			sess.Problem = "We could not check your sign-in just now. Try again, or use your password."
		} else {
			sess.Flash = "Not approved yet."
		}
		s.sessions.save(sess)
		redirect(w, r, phonePath)
		return
	}
	// Once: of requests finishing one sign-in at once, one takes it; the others find nothing.
	if _, taken := s.phones.take(sess.PhoneUUID, sess.ID); !taken {
		redirect(w, r, "/")
		return
	}
	if p.Status == "approved" {
		if u, found := s.users.byAuthyID(p.AuthyID); found {
			s.log.Info("signed in with the phone (passwordless)", "user", u.ID)
			// A new session id, as after any log-in: the one from before is worth nothing.
			s.sessions.rotate(w, sess.ID, session{Stage: loggedIn, UserID: u.ID,
				Method: "approval on your phone, without a password (passwordless sign-in)"})
			redirect(w, r, "/protected")
			return
		}
		s.log.Warn("passwordless sign-in approved by a user the sample does not have", "authy_id", p.AuthyID)
	}
	s.log.Info("passwordless sign-in did not sign anyone in", "uuid", sess.PhoneUUID, "status", p.Status)
	sess.PhoneUUID, sess.Problem = "", phoneFailed
	s.sessions.save(sess)
	redirect(w, r, "/login")
}

// phoneCancel is "Use my password instead" (POST /login/phone/cancel): the password form, with
// the email typed.
func (s *server) phoneCancel(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.postForm(w, r)
	if !ok {
		return
	}
	s.dropPhone(sess)
	sess.PhoneUUID = ""
	s.sessions.save(sess)
	redirect(w, r, "/login")
}

// dropPhone forgets the session's sign-in, if it has one, and closes its request so that the
// phone drops it. Only a request sent can be closed (a request Twofold did not send, for an email
// of nobody, answers 60049): the closing runs after the answer, so the browser cannot time it.
func (s *server) dropPhone(sess session) {
	if _, taken := s.phones.take(sess.PhoneUUID, sess.ID); !taken {
		return
	}
	uuid := sess.PhoneUUID
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Twofold: close the approval request (Twofold's addition): the phone drops it.
		_, err := s.tf.CloseApprovalRequest(ctx, uuid)
		if err != nil && !client.IsCode(err, client.CodeNoRequest) && !client.IsCode(err, client.CodeNotPending) {
			s.log.Warn("twofold: close passwordless sign-in", "uuid", uuid, "err", err)
		}
		if s.onPhoneDropped != nil {
			s.onPhoneDropped(uuid)
		}
	}()
}

// phoneSignin is a sign-in with the phone that a browser waits for.
type phoneSignin struct {
	SessionID string // the session that started it: only it can see or finish it
	Email     string
	Number    string
	ExpiresAt time.Time
	Status    string // pending, approved, denied or expired: Twofold's word, as last read
	AuthyID   int64  // who approved
	Created   time.Time
	checked   time.Time // when Twofold was last asked
}

// phoneStore holds the sign-ins with the phone by uuid. The uuid never reaches the browser: the
// session holds it, and each sign-in is bound to that session's id.
type phoneStore struct {
	mu sync.Mutex
	m  map[string]phoneSignin
}

func newPhoneStore() *phoneStore { return &phoneStore{m: map[string]phoneSignin{}} }

func (st *phoneStore) add(uuid string, p phoneSignin) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, old := range st.m {
		if p.Created.Sub(old.Created) > 24*time.Hour {
			delete(st.m, id)
		}
	}
	p.checked = p.Created
	st.m[uuid] = p
}

// get returns the sign-in uuid if the session sessionID started it.
func (st *phoneStore) get(uuid, sessionID string) (phoneSignin, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p, ok := st.m[uuid]
	if !ok || uuid == "" || sessionID == "" || p.SessionID != sessionID {
		return phoneSignin{}, false
	}
	return p, true
}

// take removes the sign-in uuid of the session sessionID and returns it: whoever takes it
// finishes it, once.
func (st *phoneStore) take(uuid, sessionID string) (phoneSignin, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p, ok := st.m[uuid]
	if !ok || uuid == "" || sessionID == "" || p.SessionID != sessionID {
		return phoneSignin{}, false
	}
	delete(st.m, uuid)
	return p, true
}

// settle records Twofold's answer to a pending sign-in; an answered one keeps its answer.
func (st *phoneStore) settle(uuid, status string, authyID int64) phoneSignin {
	st.mu.Lock()
	defer st.mu.Unlock()
	p, ok := st.m[uuid]
	if !ok {
		return phoneSignin{Status: status, AuthyID: authyID}
	}
	if p.Status == "pending" {
		p.Status, p.AuthyID = status, authyID
		st.m[uuid] = p
	}
	return p
}

// due reports whether Twofold should be asked about a pending sign-in now.
func (st *phoneStore) due(uuid string, now time.Time, interval time.Duration) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	p, ok := st.m[uuid]
	if !ok || p.Status != "pending" || now.Sub(p.checked) < interval {
		return false
	}
	p.checked = now
	st.m[uuid] = p
	return true
}

// nudge makes the next poll of the sign-in uuid ask Twofold: a OneTouch callback says it was
// answered. The callback itself is not taken for the answer; Twofold's status is.
func (st *phoneStore) nudge(uuid string) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	p, ok := st.m[uuid]
	if ok {
		p.checked = time.Time{}
		st.m[uuid] = p
	}
	return ok
}
