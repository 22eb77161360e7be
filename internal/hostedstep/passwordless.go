package hostedstep

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Passwordless sign-in as the step's first factor (issue 19). A client that allows it
// (StepClient.Passwordless) may send a user without naming them: the session begins without a
// user (BeginPasswordless), its page asks for a username and runs a passwordless sign-in
// through the domain service (AskPasswordless), and the approval binds the session to the user
// who approved it and passes it, once (SigninStatus). The passwordless service answers every
// name alike (phantoms for unknown, device-less, blocked and over-asked users) and counts its
// limits per name and per client address before it looks the name up; the step adds its own
// limits per session and per client, which depend on no name.

// Passwordless runs passwordless sign-ins (passwordless.Service).
type Passwordless interface {
	Begin(ctx context.Context, app twofold.App, st passwordless.Start) (passwordless.Signin, error)
	Status(ctx context.Context, app twofold.App, uuid string) (passwordless.Signin, error)
}

// SetPasswordless lets the step run passwordless sign-ins for the clients that allow them.
// Call it before the service is used.
func (s *Steps) SetPasswordless(p Passwordless) { s.pw = p }

// maxUsername bounds a username typed, in bytes (the passwordless service's own bound).
const maxUsername = 255

// BeginPasswordless starts a step without a user for a client that allows passwordless sign-in,
// after the client's wire adapter checked who is asking; request is stored as Begin stores it.
// A client that does not allow it is ErrNotOffered.
func (s *Steps) BeginPasswordless(ctx context.Context, c twofold.StepClient, request []byte) (Begun, error) {
	if !c.Passwordless || s.pw == nil {
		return Begun{}, ErrNotOffered
	}
	now := s.now()
	if err := s.hit(ctx, "step_sessions:client:"+strconv.FormatInt(c.ID, 10), s.cfg.ClientSessions, "sign-ins through this client"); err != nil {
		return Begun{}, err
	}
	b := Begun{Handle: randomToken("", 32), Browser: randomToken("", 32)}
	b.Session = twofold.StepSession{HandleMAC: s.macs.Lookup(macHandle + b.Handle), ClientID: c.ID, AppID: c.AppID, Passwordless: true,
		BrowserMAC: s.macs.Lookup(macBrowser + b.Browser), Request: request, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.CreateStepSession(ctx, &b.Session); err != nil {
		return Begun{}, err
	}
	return b, nil
}

// Signin is a session's passwordless sign-in as its page shows it: the number to pick on the
// phone, and its status (pending, approved, denied or expired; a phantom is pending until it
// expires, like a request sent that nobody answers).
type Signin struct {
	Number string
	Status twofold.ApprovalStatus
}

// AskPasswordless runs a passwordless sign-in for the name typed on the page of a session
// without a user (by the client's user match: an email or the customer's id), from the client
// address clientIP, and makes the session wait on it; a sign-in the session waited on before is
// replaced. Every name gets the same answer: a pending sign-in with a number. An empty or
// overlong name is CodeInvalidParameter and counts nothing; limits are 60003: the session's
// (Config.PushesPerSession), the client's sends, and the passwordless service's per name and
// per address, all counted whatever the name.
func (s *Steps) AskPasswordless(ctx context.Context, v View, name, clientIP, browser string) (Signin, error) {
	if err := v.pending(); err != nil {
		return Signin{}, err
	}
	if !v.NeedsUser() || !v.Client.Passwordless || s.pw == nil {
		return Signin{}, ErrNotOffered
	}
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxUsername {
		return Signin{}, twofold.ErrInvalidParam("username", fmt.Sprintf("must be 1 to %d characters", maxUsername))
	}
	st := passwordless.Start{UserIP: clientIP, Details: map[string]string{"Signing in through": v.Client.Name}}
	switch v.Client.UserMatch {
	case twofold.MatchEmail:
		st.Email = name
	case twofold.MatchCustomID:
		st.CustomUserID = name
	default:
		return Signin{}, ErrNotOffered
	}
	if browser != "" {
		st.Details["Browser"] = browser
	}
	// A sign-in lives as long as the service's default, but never past the step it is for.
	ttl := int64(v.Session.ExpiresAt.Sub(s.now()) / time.Second)
	if ttl < 1 {
		return Signin{}, ErrNoSession
	}
	if ttl < int64(passwordless.DefaultConfig().DefaultTTL/time.Second) {
		st.SecondsToExpire = &ttl
	}
	session := strconv.FormatInt(v.Session.ID, 10)
	if err := s.hit(ctx, "step_pushes:session:"+session, twofold.Limit{N: s.cfg.PushesPerSession, Window: s.cfg.SessionTTL},
		"sign-in requests for this sign-in"); err != nil {
		return Signin{}, err
	}
	if err := s.clientSend(ctx, v); err != nil {
		return Signin{}, err
	}
	sg, err := s.pw.Begin(ctx, v.App, st)
	if err != nil {
		return Signin{}, err
	}
	if err := s.store.SetStepSignin(ctx, v.Session.ID, sg.UUID); err != nil {
		if errors.Is(err, twofold.ErrNotFound) {
			return Signin{}, ErrFinished
		}
		return Signin{}, err
	}
	return Signin{Number: sg.Number, Status: sg.Status}, nil
}

// SigninStatus reads the passwordless sign-in a session waits on. Approved, it binds the
// session to the user who approved it and passes it (factor passwordless), once: a session
// bound already keeps its user. A session without a sign-in is ErrNotOffered.
func (s *Steps) SigninStatus(ctx context.Context, v View) (Signin, error) {
	if !v.Session.Passwordless || v.Session.SigninUUID == "" || s.pw == nil {
		return Signin{}, ErrNotOffered
	}
	sg, err := s.pw.Status(ctx, v.App, v.Session.SigninUUID)
	if twofold.ErrorCode(err) == twofold.CodeRequestNotFound {
		return Signin{Status: twofold.Expired}, nil // swept: long over
	}
	if err != nil {
		return Signin{}, err
	}
	out := Signin{Number: sg.Number, Status: sg.Status}
	if sg.Status == twofold.Approved && v.NeedsUser() && v.Session.Status == twofold.StepPending {
		err := s.store.BindStepSession(ctx, v.Session.ID, v.Session.SigninUUID, sg.AuthyID, s.now())
		// Conflict: another request bound it first, or the user was deleted since approving.
		if err != nil && !errors.Is(err, twofold.ErrConflict) {
			return Signin{}, err
		}
	}
	return out, nil
}
