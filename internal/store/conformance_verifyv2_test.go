package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The Verify API part of runConformance (conformance_test.go): credentials, services and
// verifications, whose checks and sends must stay within their limits when raced.

func mkTwilioCredential(tb testing.TB, s *Store, appID int64, kind, name string) twofold.TwilioCredential {
	tb.Helper()
	prefix := "SK"
	if kind == twofold.TwilioAccount {
		prefix = "AC"
	}
	c := twofold.TwilioCredential{AppID: appID, SID: fmt.Sprintf("%s%032x", prefix, name), Kind: kind, Name: name,
		SecretMAC: []byte("mac:" + name), SecretSealed: []byte("sealed:" + name), CreatedAt: t0}
	must(tb, s.CreateTwilioCredential(tb.Context(), &c))
	return c
}

func mkVerifyService(tb testing.TB, s *Store, appID int64, name string) twofold.VerifyService {
	tb.Helper()
	v := twofold.VerifyService{PublicID: fmt.Sprintf("%032x", fmt.Sprint(appID, name)), AppID: appID, Name: name, CodeLength: 6,
		Settings: twofold.VerifyServiceSettings{CustomCodeEnabled: true, TOTPIssuer: "Shop", TOTPTimeStep: 30}, CreatedAt: t0, UpdatedAt: t0}
	must(tb, s.CreateVerifyService(tb.Context(), &v))
	return v
}

// newVerification is a verification of svc to to, made now, that expires at expires.
func newVerification(svc twofold.VerifyService, to string, now, expires time.Time) twofold.Verification {
	return twofold.Verification{PublicID: fmt.Sprintf("%032x", fmt.Sprint(svc.ID, to, now.UnixNano())), AppID: svc.AppID,
		ServiceID: svc.ID, To: to, Channel: twofold.SMS, CodeMAC: []byte("mac:" + to), CodeSealed: []byte("sealed:" + to),
		CreatedAt: now, UpdatedAt: now, ExpiresAt: expires}
}

func mkVerification(tb testing.TB, s *Store, svc twofold.VerifyService, to string, expires time.Time) twofold.Verification {
	tb.Helper()
	v := newVerification(svc, to, expires.Add(-ttl), expires)
	got, resent, err := s.StartVerification(tb.Context(), v, sendAt(expires.Add(-ttl)), expires.Add(-ttl), anyLive)
	if err != nil || resent || got.Status != twofold.VerificationPending || got.ID == 0 {
		tb.Fatalf("StartVerification(%s) = %+v, resent %v, %v; want a new one, pending", to, got, resent, err)
	}
	return got
}

func sendAt(at time.Time) twofold.VerificationSend {
	return twofold.VerificationSend{PublicID: fmt.Sprintf("%032x", at.UnixNano()), Channel: twofold.SMS, At: at}
}

func anyLive(twofold.Verification) error { return nil }

func testVerifyV2(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("TwilioCredentials", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		key := mkTwilioCredential(t, s, a.ID, twofold.TwilioKey, "k1")
		acct := mkTwilioCredential(t, s, a.ID, twofold.TwilioAccount, "acct")
		other := mkTwilioCredential(t, s, b.ID, twofold.TwilioAccount, "other")
		second := twofold.TwilioCredential{AppID: a.ID, SID: "AC" + fmt.Sprintf("%032d", 2), Kind: twofold.TwilioAccount,
			SecretMAC: []byte("m"), SecretSealed: []byte("s"), CreatedAt: t0}
		wantErr(t, "a second account", s.CreateTwilioCredential(ctx, &second), twofold.ErrConflict)
		dup := key
		dup.ID, dup.AppID = 0, b.ID
		wantErr(t, "a SID taken", s.CreateTwilioCredential(ctx, &dup), twofold.ErrConflict)

		same(t, "by SID", key, noErr(s.TwilioCredentialBySID(ctx, key.SID))(t))
		same(t, "account", acct, noErr(s.TwilioAccount(ctx, a.ID))(t))
		same(t, "list (the account first)", []twofold.TwilioCredential{acct, key}, noErr(s.ListTwilioCredentials(ctx, a.ID))(t))
		wantErr(t, "unknown SID", errOf(s.TwilioCredentialBySID(ctx, "SK"+fmt.Sprintf("%032d", 9))), twofold.ErrNotFound)

		must(t, s.ReplaceTwilioSecret(ctx, a.ID, acct.SID, []byte("new mac"), []byte("new sealed")))
		if got := noErr(s.TwilioAccount(ctx, a.ID))(t); string(got.SecretMAC) != "new mac" || string(got.SecretSealed) != "new sealed" {
			t.Errorf("after ReplaceTwilioSecret: %+v", got)
		}
		wantErr(t, "replace another application's", s.ReplaceTwilioSecret(ctx, a.ID, other.SID, []byte("x"), []byte("x")), twofold.ErrNotFound)
		wantErr(t, "delete another application's", s.DeleteTwilioCredential(ctx, a.ID, other.SID), twofold.ErrNotFound)
		must(t, s.DeleteTwilioCredential(ctx, a.ID, key.SID))
		wantErr(t, "deleted key", errOf(s.TwilioCredentialBySID(ctx, key.SID)), twofold.ErrNotFound)

		must(t, s.DeleteApp(ctx, a.ID))
		wantErr(t, "an account of a deleted application", errOf(s.TwilioCredentialBySID(ctx, acct.SID)), twofold.ErrNotFound)
		same(t, "the other application's", other, noErr(s.TwilioCredentialBySID(ctx, other.SID))(t))
	})

	t.Run("Services", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		var made []twofold.VerifyService
		for i := range 5 {
			made = append(made, mkVerifyService(t, s, a.ID, fmt.Sprint("svc", i)))
		}
		theirs := mkVerifyService(t, s, b.ID, "theirs")
		same(t, "get", made[2], noErr(s.GetVerifyService(ctx, a.ID, made[2].PublicID))(t))
		wantErr(t, "another application's", errOf(s.GetVerifyService(ctx, a.ID, theirs.PublicID)), twofold.ErrNotFound)
		dup := made[0]
		wantErr(t, "a public id taken", s.CreateVerifyService(ctx, &dup), twofold.ErrConflict)

		same(t, "first page", made[:2], noErr(s.ListVerifyServices(ctx, a.ID, 0, 0, 2))(t))
		same(t, "after the second", made[2:4], noErr(s.ListVerifyServices(ctx, a.ID, made[1].ID, 0, 2))(t))
		same(t, "by offset", made[4:], noErr(s.ListVerifyServices(ctx, a.ID, 0, 4, 2))(t))

		up := made[1]
		up.Name, up.CodeLength, up.UpdatedAt = "renamed", 8, t0.Add(time.Hour)
		up.Settings.LookupEnabled, up.Settings.TOTPSkew = true, 2
		must(t, s.UpdateVerifyService(ctx, up))
		same(t, "updated", up, noErr(s.GetVerifyService(ctx, a.ID, up.PublicID))(t))
		stolen := theirs
		stolen.AppID = a.ID
		wantErr(t, "update another application's", s.UpdateVerifyService(ctx, stolen), twofold.ErrNotFound)

		v := mkVerification(t, s, made[0], "+15550000001", t0.Add(ttl))
		wantErr(t, "delete another application's", s.DeleteVerifyService(ctx, a.ID, theirs.PublicID), twofold.ErrNotFound)
		must(t, s.DeleteVerifyService(ctx, a.ID, made[0].PublicID))
		wantErr(t, "deleted service", errOf(s.GetVerifyService(ctx, a.ID, made[0].PublicID)), twofold.ErrNotFound)
		wantErr(t, "its verification", errOf(s.GetVerification(ctx, made[0].ID, v.PublicID)), twofold.ErrNotFound)
		must(t, s.DeleteApp(ctx, a.ID))
		if list := noErr(s.ListVerifyServices(ctx, a.ID, 0, 0, 10))(t); len(list) != 0 {
			t.Errorf("services of a deleted application: %d", len(list))
		}
	})

	t.Run("StartSendsTheLiveOneAgain", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		svc := mkVerifyService(t, s, mkApp(t, s, "a").ID, "svc")
		first := mkVerification(t, s, svc, "+15550000001", t0.Add(ttl))
		again := newVerification(svc, "+15550000001", t0.Add(time.Minute), t0.Add(time.Minute+ttl))
		call := sendAt(t0.Add(time.Minute))
		call.Channel = twofold.Call
		got, resent, err := s.StartVerification(ctx, again, call, t0.Add(time.Minute), anyLive)
		if err != nil || !resent || got.PublicID != first.PublicID || len(got.Sends) != 2 || got.Channel != twofold.Call ||
			string(got.CodeSealed) != string(first.CodeSealed) || !got.ExpiresAt.Equal(first.ExpiresAt) {
			t.Fatalf("a second start = %+v, resent %v, %v; want the first, sent twice, by call", got, resent, err)
		}
		same(t, "stored", got, noErr(s.GetVerification(ctx, svc.ID, first.PublicID))(t))
		same(t, "live", got, noErr(s.LiveVerification(ctx, svc.ID, "+15550000001", t0.Add(time.Minute)))(t))
		wantErr(t, "live once expired", errOf(s.LiveVerification(ctx, svc.ID, "+15550000001", t0.Add(ttl))), twofold.ErrNotFound)

		refused := errors.New("refused")
		if _, _, err := s.StartVerification(ctx, again, sendAt(t0.Add(2*time.Minute)), t0.Add(2*time.Minute),
			func(twofold.Verification) error { return refused }); !errors.Is(err, refused) {
			t.Fatalf("a start its decision refuses: %v", err)
		}
		if v := noErr(s.GetVerification(ctx, svc.ID, first.PublicID))(t); len(v.Sends) != 2 {
			t.Errorf("a refused start was recorded: %d sends", len(v.Sends))
		}
		// Once the first has expired, or ended, a start makes a new one.
		later := newVerification(svc, "+15550000001", t0.Add(ttl), t0.Add(2*ttl))
		if got, resent, err := s.StartVerification(ctx, later, sendAt(t0.Add(ttl)), t0.Add(ttl), anyLive); err != nil || resent ||
			got.PublicID != later.PublicID || len(got.Sends) != 1 {
			t.Fatalf("a start after expiry = %+v, resent %v, %v; want a new one", got, resent, err)
		}
		must(t, errOf(s.EndVerification(ctx, svc.ID, later.PublicID, twofold.VerificationCanceled, t0.Add(ttl))))
		last := newVerification(svc, "+15550000001", t0.Add(ttl+time.Second), t0.Add(2*ttl))
		if _, resent, err := s.StartVerification(ctx, last, sendAt(t0.Add(ttl)), t0.Add(ttl), anyLive); err != nil || resent {
			t.Fatalf("a start after cancellation: resent %v, %v; want a new one", resent, err)
		}
	})

	t.Run("Check", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		svc := mkVerifyService(t, s, mkApp(t, s, "a").ID, "svc")
		other := mkVerifyService(t, s, svc.AppID, "other")
		v := mkVerification(t, s, svc, "+15550000001", t0.Add(ttl))
		wrong := func(twofold.Verification) bool { return false }
		right := func(x twofold.Verification) bool { return x.ID == v.ID }
		got, outcome, err := s.CheckVerification(ctx, svc.ID, "+15550000001", "", t0, 3, wrong)
		if err != nil || outcome != twofold.CheckedWrong || got.Checks != 1 {
			t.Fatalf("a wrong code = %v, checks %d, %v", outcome, got.Checks, err)
		}
		wantErr(t, "by recipient in another service", errOf3(s.CheckVerification(ctx, other.ID, "+15550000001", "", t0, 3, right)), twofold.ErrNotFound)
		wantErr(t, "by id in another service", errOf3(s.CheckVerification(ctx, other.ID, "", v.PublicID, t0, 3, right)), twofold.ErrNotFound)
		wantErr(t, "expired", errOf3(s.CheckVerification(ctx, svc.ID, "", v.PublicID, t0.Add(ttl), 3, right)), twofold.ErrNotFound)
		got, outcome, err = s.CheckVerification(ctx, svc.ID, "", v.PublicID, t0, 3, right)
		if err != nil || outcome != twofold.CheckedApproved || got.Status != twofold.VerificationApproved || got.Checks != 2 || len(got.CodeSealed) != 0 {
			t.Fatalf("the right code = %v %+v, %v", outcome, got, err)
		}
		if st := noErr(s.GetVerification(ctx, svc.ID, v.PublicID))(t); st.Status != twofold.VerificationApproved || len(st.CodeSealed) != 0 {
			t.Errorf("stored after approval: %+v", st)
		}
		wantErr(t, "approved", errOf3(s.CheckVerification(ctx, svc.ID, "+15550000001", "", t0, 3, right)), twofold.ErrNotFound)
		wantErr(t, "cancel approved", errOf(s.EndVerification(ctx, svc.ID, v.PublicID, twofold.VerificationCanceled, t0)), twofold.ErrNotFound)

		// Out of checks: the next check counts nothing and compares nothing.
		w := mkVerification(t, s, svc, "+15550000002", t0.Add(ttl))
		for range 3 {
			must(t, errOf3(s.CheckVerification(ctx, svc.ID, "", w.PublicID, t0, 3, wrong)))
		}
		got, outcome, err = s.CheckVerification(ctx, svc.ID, "", w.PublicID, t0, 3, func(twofold.Verification) bool {
			t.Error("a code compared after the last check")
			return true
		})
		if err != nil || outcome != twofold.CheckedExhausted || got.Checks != 3 || got.Status != twofold.VerificationPending {
			t.Fatalf("a check past the limit = %v %+v, %v", outcome, got, err)
		}
		ended := noErr(s.EndVerification(ctx, svc.ID, w.PublicID, twofold.VerificationCanceled, t0))(t)
		if ended.Status != twofold.VerificationCanceled || len(ended.CodeSealed) != 0 {
			t.Errorf("canceled: %+v", ended)
		}
	})

	t.Run("ParallelChecksStayWithinTheLimit", func(t *testing.T) {
		s := open(t)
		svc := mkVerifyService(t, s, mkApp(t, s, "a").ID, "svc")
		v := mkVerification(t, s, svc, "+15550000001", t0.Add(ttl))
		var mu sync.Mutex
		got := map[twofold.VerificationChecked]int{}
		race(workers, func(int) {
			_, outcome, err := s.CheckVerification(t.Context(), svc.ID, "+15550000001", "", t0, 5, func(twofold.Verification) bool { return false })
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			got[outcome]++
			mu.Unlock()
		})
		if got[twofold.CheckedWrong] != 5 || got[twofold.CheckedExhausted] != workers-5 {
			t.Errorf("parallel wrong codes: %v; want 5 judged, the rest refused", got)
		}
		if st := noErr(s.GetVerification(t.Context(), svc.ID, v.PublicID))(t); st.Checks != 5 {
			t.Errorf("checks = %d, want 5", st.Checks)
		}
	})

	t.Run("ParallelRightCodesApproveOnce", func(t *testing.T) {
		s := open(t)
		svc := mkVerifyService(t, s, mkApp(t, s, "a").ID, "svc")
		mkVerification(t, s, svc, "+15550000001", t0.Add(ttl))
		exactlyOne(t, workers, "CheckVerification", func(int) (bool, error) {
			_, outcome, err := s.CheckVerification(t.Context(), svc.ID, "+15550000001", "", t0, 5, func(twofold.Verification) bool { return true })
			if errors.Is(err, twofold.ErrNotFound) {
				return false, nil // approved by another: it is gone
			}
			return outcome == twofold.CheckedApproved, err
		})
	})

	t.Run("ParallelStartsShareOneVerification", func(t *testing.T) {
		s := open(t)
		svc := mkVerifyService(t, s, mkApp(t, s, "a").ID, "svc")
		var mu sync.Mutex
		ids := map[string]bool{}
		sent, refused := 0, 0
		tooMany := errors.New("too many")
		race(workers, func(i int) {
			v := newVerification(svc, "+15550000001", t0, t0.Add(ttl))
			v.PublicID = fmt.Sprintf("%032x", i)
			got, _, err := s.StartVerification(t.Context(), v, sendAt(t0), t0, func(live twofold.Verification) error {
				if len(live.Sends) >= 5 {
					return tooMany
				}
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, tooMany):
				refused++
			case err != nil:
				t.Error(err)
			default:
				sent++
				ids[got.PublicID] = true
			}
		})
		if sent != 5 || refused != workers-5 || len(ids) != 1 {
			t.Errorf("parallel starts: %d sent (to %d verifications), %d refused; want 5 to one, the rest refused", sent, len(ids), refused)
		}
	})

	t.Run("SweepRemovesExpired", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		svc := mkVerifyService(t, s, mkApp(t, s, "a").ID, "svc")
		old := mkVerification(t, s, svc, "+15550000001", t0)
		live := mkVerification(t, s, svc, "+15550000002", t0.Add(time.Minute))
		must(t, errOf(s.Sweep(ctx, t0)))
		wantErr(t, "swept", errOf(s.GetVerification(ctx, svc.ID, old.PublicID)), twofold.ErrNotFound)
		must(t, errOf(s.GetVerification(ctx, svc.ID, live.PublicID)))
	})
}

func errOf3[A, B any](_ A, _ B, err error) error { return err }
