package users

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// People know a user by their email or by the customer's own id for them, not by an Authy id:
// lists of approval requests, messages and audit entries name users this way.

// Ref is a user of an application, by public (Authy) id.
type Ref struct {
	AppID, ID int64
}

// Label is how a person recognises the user: the email, else the customer's id (a user
// registered by QR code has no email), else the phone number, else "user ID".
func Label(u twofold.User) string {
	switch {
	case u.Email != "":
		return u.Email
	case u.CustomUserID != "":
		return u.CustomUserID
	case u.Phone != "":
		return "+" + strconv.Itoa(u.CountryCode) + " " + u.Phone
	}
	return "user " + strconv.FormatInt(u.ID, 10)
}

// Find returns the users refs name, one query per application. A ref of no user (deleted
// since) is missing from the map; zero ids are ignored.
func (s *Service) Find(ctx context.Context, refs []Ref) (map[Ref]twofold.User, error) {
	byApp := map[int64][]int64{}
	for _, r := range refs {
		if r.ID != 0 && r.AppID != 0 && !slices.Contains(byApp[r.AppID], r.ID) {
			byApp[r.AppID] = append(byApp[r.AppID], r.ID)
		}
	}
	out := map[Ref]twofold.User{}
	for appID, ids := range byApp {
		list, err := s.store.UsersByID(ctx, appID, ids)
		if err != nil {
			return nil, fmt.Errorf("users of app %d: %w", appID, err)
		}
		for _, u := range list {
			out[Ref{AppID: appID, ID: u.ID}] = u
		}
	}
	return out, nil
}

// Factors says what each of the application's users ids has enrolled: an authenticator app's
// seed, and how many devices.
func (s *Service) Factors(ctx context.Context, appID int64, ids []int64) (map[int64]twofold.UserFactors, error) {
	f, err := s.store.UserFactors(ctx, appID, ids)
	if err != nil {
		return nil, fmt.Errorf("factors of users of app %d: %w", appID, err)
	}
	return f, nil
}
