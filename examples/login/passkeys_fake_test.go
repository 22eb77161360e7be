package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofold-auth/twofold/client"
)

// fakePasskeys verifies passkey ceremonies as Twofold's passkeys domain does, with the same
// library (go-webauthn), so that the sample's pages and script are proven against real WebAuthn
// answers from chromium's virtual authenticator: a wrong signature, origin or rp id, a ceremony
// finished twice and a counter going back are refused here as Twofold refuses them. It answers
// the sample in process through passkeyAPI.
type fakePasskeys struct {
	mu           sync.Mutex
	wa           *webauthn.WebAuthn
	passwordless bool
	users        map[int64]*fakePasskeyUser
	ceremonies   map[string]fakeCeremony
	refusals     []string // why each refused finish was refused
}

type fakeCeremony struct {
	userID   int64 // 0: usernameless
	register bool
	data     webauthn.SessionData
}

type fakePasskeyUser struct {
	id    int64
	creds []webauthn.Credential
	names map[string]string // credential id (base64url) → name
	added map[string]time.Time
}

func (u *fakePasskeyUser) WebAuthnID() []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(u.id))
	return b
}
func (u *fakePasskeyUser) WebAuthnName() string                       { return fmt.Sprintf("user %d", u.id) }
func (u *fakePasskeyUser) WebAuthnDisplayName() string                { return u.WebAuthnName() }
func (u *fakePasskeyUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// newFakePasskeys verifies for the relying party rpID at origin.
func newFakePasskeys(t *testing.T, rpID, origin string, passwordless bool) *fakePasskeys {
	t.Helper()
	wa, err := webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: "Test Shop", RPOrigins: []string{origin}})
	if err != nil {
		t.Fatal(err)
	}
	return &fakePasskeys{wa: wa, passwordless: passwordless, users: map[int64]*fakePasskeyUser{}, ceremonies: map[string]fakeCeremony{}}
}

// attach makes the sample s use f for its passkey calls.
func (f *fakePasskeys) attach(s *server) {
	s.pk = f
}

func (f *fakePasskeys) user(id int64) *fakePasskeyUser {
	u := f.users[id]
	if u == nil {
		u = &fakePasskeyUser{id: id, names: map[string]string{}, added: map[string]time.Time{}}
		f.users[id] = u
	}
	return u
}

// refuse records why a finish was refused and answers as Twofold does, 401.
func (f *fakePasskeys) refuse(why string, err error) error {
	f.refusals = append(f.refusals, fmt.Sprintf("%s: %v", why, err))
	return &client.Error{HTTPStatus: http.StatusUnauthorized, Code: client.CodePasskeyInvalid, Message: "Passkey not accepted"}
}

func (f *fakePasskeys) lastRefusal() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.refusals) == 0 {
		return ""
	}
	return f.refusals[len(f.refusals)-1]
}

func newCeremonyID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "pkc_" + base64.RawURLEncoding.EncodeToString(b)
}

func (f *fakePasskeys) BeginPasskeyRegistration(ctx context.Context, userID int64, name string) (client.PasskeyCeremony, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.user(userID)
	var exclude []protocol.CredentialDescriptor
	for _, c := range u.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, data, err := f.wa.BeginRegistration(u, webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return client.PasskeyCeremony{}, err
	}
	opts, _ := json.Marshal(creation)
	id := newCeremonyID()
	f.ceremonies[id] = fakeCeremony{userID: userID, register: true, data: *data}
	return client.PasskeyCeremony{ID: id, Options: opts}, nil
}

// take removes the ceremony id, which can be finished once.
func (f *fakePasskeys) take(id string) (fakeCeremony, bool) {
	c, ok := f.ceremonies[id]
	delete(f.ceremonies, id)
	return c, ok
}

func (f *fakePasskeys) FinishPasskeyRegistration(ctx context.Context, userID int64, ceremony string, credential json.RawMessage, name string) (client.Passkey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.take(ceremony)
	if !ok || !c.register || c.userID != userID {
		return client.Passkey{}, f.refuse("registration", errors.New("no such ceremony"))
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		return client.Passkey{}, f.refuse("registration", err)
	}
	u := f.user(userID)
	cred, err := f.wa.CreateCredential(u, c.data, parsed)
	if err != nil {
		return client.Passkey{}, f.refuse("registration", err)
	}
	u.creds = append(u.creds, *cred)
	id := base64.RawURLEncoding.EncodeToString(cred.ID)
	u.names[id], u.added[id] = name, time.Now()
	return client.Passkey{ID: id, Name: name, CreatedAt: u.added[id]}, nil
}

func (f *fakePasskeys) BeginPasskeyLogin(ctx context.Context, userID int64) (client.PasskeyCeremony, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var assertion *protocol.CredentialAssertion
	var data *webauthn.SessionData
	var err error
	if userID == 0 {
		if !f.passwordless {
			return client.PasskeyCeremony{}, &client.Error{HTTPStatus: http.StatusForbidden, Code: client.CodeUsernamelessDisabled, Message: "Usernameless sign-in is not allowed"}
		}
		assertion, data, err = f.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	} else {
		u := f.user(userID)
		if len(u.creds) == 0 {
			return client.PasskeyCeremony{}, &client.Error{HTTPStatus: http.StatusNotFound, Code: client.CodeNoPasskeys, Message: "No passkeys"}
		}
		assertion, data, err = f.wa.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationPreferred))
	}
	if err != nil {
		return client.PasskeyCeremony{}, err
	}
	opts, _ := json.Marshal(assertion)
	id := newCeremonyID()
	f.ceremonies[id] = fakeCeremony{userID: userID, data: *data}
	return client.PasskeyCeremony{ID: id, Options: opts}, nil
}

func (f *fakePasskeys) FinishPasskeyLogin(ctx context.Context, ceremony string, credential json.RawMessage) (client.PasskeyLogin, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.take(ceremony)
	if !ok || c.register {
		return client.PasskeyLogin{}, f.refuse("login", errors.New("no such ceremony (finished already, or never begun)"))
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return client.PasskeyLogin{}, f.refuse("login", err)
	}
	var u *fakePasskeyUser
	var cred *webauthn.Credential
	if c.userID == 0 {
		var wu webauthn.User
		wu, cred, err = f.wa.ValidatePasskeyLogin(func(rawID, handle []byte) (webauthn.User, error) {
			if len(handle) != 8 {
				return nil, errors.New("unknown user handle")
			}
			found := f.users[int64(binary.BigEndian.Uint64(handle))]
			if found == nil {
				return nil, errors.New("unknown user")
			}
			return found, nil
		}, c.data, parsed)
		if err == nil {
			u = wu.(*fakePasskeyUser)
		}
	} else {
		u = f.user(c.userID)
		cred, err = f.wa.ValidateLogin(u, c.data, parsed)
	}
	if err != nil {
		return client.PasskeyLogin{}, f.refuse("login", err)
	}
	if cred.Authenticator.CloneWarning {
		return client.PasskeyLogin{}, f.refuse("login", errors.New("the sign counter went back: a cloned authenticator"))
	}
	for i := range u.creds {
		if string(u.creds[i].ID) == string(cred.ID) {
			u.creds[i].Authenticator.SignCount = cred.Authenticator.SignCount
		}
	}
	id := base64.RawURLEncoding.EncodeToString(cred.ID)
	return client.PasskeyLogin{UserID: u.id, Passkey: client.Passkey{ID: id, Name: u.names[id]}, UserVerified: cred.Flags.UserVerified}, nil
}

func (f *fakePasskeys) Passkeys(ctx context.Context, userID int64) ([]client.Passkey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var list []client.Passkey
	u := f.user(userID)
	for _, c := range u.creds {
		id := base64.RawURLEncoding.EncodeToString(c.ID)
		list = append(list, client.Passkey{ID: id, Name: u.names[id], CreatedAt: u.added[id]})
	}
	return list, nil
}

func (f *fakePasskeys) DeletePasskey(ctx context.Context, userID int64, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := f.user(userID)
	for i, c := range u.creds {
		if base64.RawURLEncoding.EncodeToString(c.ID) == id {
			u.creds = append(u.creds[:i], u.creds[i+1:]...)
			return nil
		}
	}
	return &client.Error{HTTPStatus: http.StatusNotFound, Code: client.CodePasskeyNotFound, Message: "Passkey not found"}
}
