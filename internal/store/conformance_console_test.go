package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// testConsole covers the console's queries: user search, filtered listings, figures per hour,
// and deleting an application with everything it owns.
func testConsole(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("SearchUsers", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		ada := mkUser(t, s, a.ID, 1, "2015550123")
		bob := mkUser(t, s, a.ID, 351, "912345678")
		qr := twofold.User{AppID: a.ID, Email: "Carol.Percent%@Example.com", CustomUserID: "Shop-User_7", CreatedAt: t0}
		if _, err := s.CreateCustomUser(ctx, &qr); err != nil {
			t.Fatal(err)
		}
		other := mkUser(t, s, b.ID, 1, "2015550123") // same number, another application
		ids := func(us []twofold.User) (out []int64) {
			for _, u := range us {
				out = append(out, u.ID)
			}
			return out
		}
		for _, tc := range []struct {
			query string
			want  []int64
		}{
			{"", []int64{qr.ID, bob.ID, ada.ID}}, // newest first
			{"   ", []int64{qr.ID, bob.ID, ada.ID}},
			{"2015550123", []int64{ada.ID}},
			{"+1 (201) 555-0123", []int64{ada.ID}}, // with the country code, as people write it
			{"555-01", []int64{ada.ID}},
			{"351912", []int64{bob.ID}},
			{fmt.Sprint(bob.ID), []int64{bob.ID}}, // an id (no phone holds that number... see below)
			{"2015550123@EXAMPLE", []int64{ada.ID}},
			{"percent%", []int64{qr.ID}}, // % is literal
			{"%x", nil},
			{"user_7", []int64{qr.ID}},
			{"user_", []int64{qr.ID}},
			{"userX7", nil}, // _ is literal
			{"nobody@example.com", nil},
		} {
			got, err := s.SearchUsers(ctx, a.ID, tc.query, 0)
			must(t, err)
			if tc.query == fmt.Sprint(bob.ID) {
				// An id also matches phone numbers that contain it; the id itself must be there.
				found := false
				for _, u := range got {
					found = found || u.ID == bob.ID
				}
				if !found {
					t.Errorf("SearchUsers(%q) = %v, want it to include user %d", tc.query, ids(got), bob.ID)
				}
				continue
			}
			if d := diff(tc.want, ids(got)); d != "" {
				t.Errorf("SearchUsers(%q):%s", tc.query, d)
			}
		}
		got, err := s.SearchUsers(ctx, b.ID, "", 0)
		must(t, err)
		if d := diff([]int64{other.ID}, ids(got)); d != "" {
			t.Errorf("SearchUsers of app b:%s", d)
		}
		got, err = s.SearchUsers(ctx, a.ID, "", 2)
		must(t, err)
		if len(got) != 2 {
			t.Errorf("limit 2 gave %d users", len(got))
		}
	})

	t.Run("Listings", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u := mkUser(t, s, a.ID, 1, "2015550123")
		v := mkUser(t, s, a.ID, 1, "2015550124")
		w := mkUser(t, s, b.ID, 1, "2015550125")
		req := func(u twofold.User, status twofold.ApprovalStatus, created time.Time) twofold.ApprovalRequest {
			r := twofold.ApprovalRequest{UUID: fmt.Sprintf("r-%d-%d", u.ID, created.Unix()), AppID: u.AppID, UserID: u.ID,
				Message: "m", Status: twofold.Pending, CreatedAt: created}
			must(t, s.CreateApprovalRequest(ctx, &r, 0))
			if status != twofold.Pending {
				r.Status, r.ProcessedAt = status, created.Add(time.Duration(r.ID)*time.Second)
				if ok, err := s.FinishApprovalRequest(ctx, r, nil); !ok || err != nil {
					t.Fatalf("finish %s: %v %v", r.UUID, ok, err)
				}
			}
			return r
		}
		r1 := req(u, twofold.Approved, t0)
		r2 := req(v, twofold.Denied, t0.Add(time.Hour))
		r3 := req(u, twofold.Pending, t0.Add(2*time.Hour))
		rw := req(w, twofold.Approved, t0.Add(time.Hour))
		uuids := func(rs []twofold.ApprovalRequest) (out []string) {
			for _, r := range rs {
				out = append(out, r.UUID)
			}
			return out
		}
		for _, tc := range []struct {
			f    twofold.ApprovalFilter
			want []string
		}{
			{twofold.ApprovalFilter{}, []string{rw.UUID, r3.UUID, r2.UUID, r1.UUID}}, // newest first by insertion
			{twofold.ApprovalFilter{AppID: a.ID}, []string{r3.UUID, r2.UUID, r1.UUID}},
			{twofold.ApprovalFilter{AppID: a.ID, UserID: u.ID}, []string{r3.UUID, r1.UUID}},
			{twofold.ApprovalFilter{AppID: a.ID, Status: twofold.Denied}, []string{r2.UUID}},
			{twofold.ApprovalFilter{Status: twofold.Approved}, []string{rw.UUID, r1.UUID}},
			{twofold.ApprovalFilter{AppID: a.ID, Since: t0.Add(time.Hour)}, []string{r3.UUID, r2.UUID}},
			{twofold.ApprovalFilter{AppID: a.ID, Limit: 1}, []string{r3.UUID}},
		} {
			got, err := s.ListApprovals(ctx, tc.f)
			must(t, err)
			if d := diff(tc.want, uuids(got)); d != "" {
				t.Errorf("ListApprovals(%+v):%s", tc.f, d)
			}
		}

		msg := func(u twofold.User, sid string, ch twofold.Channel, status string, at time.Time) {
			m := mkMessage(u.AppID, u.ID, sid, u.Phone, at)
			m.Channel, m.Status, m.Provider, m.Error = ch, status, "outbox", ""
			if status == twofold.MessageFailed {
				m.Error = "provider said no"
			}
			must(t, s.InsertMessage(ctx, m))
		}
		msg(u, "M1", twofold.SMS, twofold.MessageSent, t0)
		msg(v, "M2", twofold.Call, twofold.MessageFailed, t0.Add(90*time.Minute))
		msg(u, "M3", twofold.SMS, twofold.MessageRecorded, t0.Add(2*time.Hour))
		msg(w, "M4", twofold.Email, twofold.MessageSent, t0.Add(time.Hour))
		sids := func(ms []twofold.Message) (out []string) {
			for _, m := range ms {
				out = append(out, m.SID)
				if m.Body != "" || len(m.BodySealed) != 0 {
					t.Errorf("ListOutbox returned the body of %s", m.SID)
				}
			}
			return out
		}
		for _, tc := range []struct {
			f    twofold.OutboxFilter
			want []string
		}{
			{twofold.OutboxFilter{}, []string{"M4", "M3", "M2", "M1"}},
			{twofold.OutboxFilter{AppID: a.ID}, []string{"M3", "M2", "M1"}},
			{twofold.OutboxFilter{AppID: a.ID, UserID: u.ID}, []string{"M3", "M1"}},
			{twofold.OutboxFilter{Channel: twofold.SMS}, []string{"M3", "M1"}},
			{twofold.OutboxFilter{Status: twofold.MessageFailed}, []string{"M2"}},
			{twofold.OutboxFilter{Since: t0.Add(time.Hour), Limit: 2}, []string{"M4", "M3"}},
		} {
			got, err := s.ListOutbox(ctx, tc.f)
			must(t, err)
			if d := diff(tc.want, sids(got)); d != "" {
				t.Errorf("ListOutbox(%+v):%s", tc.f, d)
			}
		}
		failed, err := s.ListOutbox(ctx, twofold.OutboxFilter{Status: twofold.MessageFailed})
		must(t, err)
		if m := failed[0]; m.Error != "provider said no" || m.Channel != twofold.Call || m.To != v.Phone || !m.CreatedAt.Equal(t0.Add(90*time.Minute)) {
			t.Errorf("ListOutbox row: %+v", m)
		}

		// Messages per hour, by status; hours are UTC hour starts.
		hours, err := s.MessagesPerHour(ctx, a.ID, t0.Add(-time.Hour))
		must(t, err)
		h0 := t0.Truncate(time.Hour)
		want := []twofold.HourCount{
			{Hour: h0, Key: twofold.MessageSent, Count: 1},
			{Hour: h0.Add(time.Hour), Key: twofold.MessageFailed, Count: 1},
			{Hour: h0.Add(2 * time.Hour), Key: twofold.MessageRecorded, Count: 1},
		}
		if d := diff(want, hours); d != "" {
			t.Errorf("MessagesPerHour:%s", d)
		}
		hours, err = s.MessagesPerHour(ctx, 0, t0.Add(time.Hour))
		must(t, err)
		if len(hours) != 3 { // M2, M3 and b's M4, each in an hour and status of its own
			t.Errorf("MessagesPerHour of all apps since t0+1h: %+v", hours)
		}

		// Answer times of answered requests only.
		times, err := s.AnswerTimes(ctx, a.ID, t0.Add(-time.Hour), 0)
		must(t, err)
		wantTimes := []twofold.AnswerTime{
			{Status: twofold.Denied, Took: time.Duration(r2.ID) * time.Second},
			{Status: twofold.Approved, Took: time.Duration(r1.ID) * time.Second},
		}
		if d := diff(wantTimes, times); d != "" {
			t.Errorf("AnswerTimes:%s", d)
		}

		// Callbacks, by application and status.
		cb := func(r twofold.ApprovalRequest) twofold.Callback {
			c := twofold.Callback{AppID: r.AppID, RequestUUID: r.UUID + "-cb", Payload: []byte("{}")}
			fresh := twofold.ApprovalRequest{UUID: r.UUID + "-cb", AppID: r.AppID, UserID: r.UserID, Message: "m",
				Status: twofold.Pending, CreatedAt: r.CreatedAt}
			must(t, s.CreateApprovalRequest(ctx, &fresh, 0))
			fresh.Status, fresh.ProcessedAt = twofold.Approved, r.CreatedAt.Add(time.Second)
			if ok, err := s.FinishApprovalRequest(ctx, fresh, &c); !ok || err != nil {
				t.Fatalf("finish with callback: %v %v", ok, err)
			}
			return c
		}
		c1, c2, cw := cb(r1), cb(r2), cb(rw)
		_, err = s.CallbackFailed(ctx, c1, 500, "HTTP 500", t0.Add(time.Hour), t0, 3)
		must(t, err)
		must(t, s.CallbackDelivered(ctx, c2, 200, t0.Add(time.Hour)))
		cids := func(cs []twofold.Callback) (out []int64) {
			for _, c := range cs {
				out = append(out, c.ID)
			}
			return out
		}
		for _, tc := range []struct {
			f    twofold.CallbackFilter
			want []int64
		}{
			{twofold.CallbackFilter{}, []int64{cw.ID, c2.ID, c1.ID}},
			{twofold.CallbackFilter{AppID: a.ID}, []int64{c2.ID, c1.ID}},
			{twofold.CallbackFilter{AppID: a.ID, Status: "pending"}, []int64{c1.ID}},
			{twofold.CallbackFilter{Status: "delivered"}, []int64{c2.ID}},
			{twofold.CallbackFilter{Limit: 1}, []int64{cw.ID}},
		} {
			got, err := s.ListCallbacks(ctx, tc.f)
			must(t, err)
			if d := diff(tc.want, cids(got)); d != "" {
				t.Errorf("ListCallbacks(%+v):%s", tc.f, d)
			}
		}
		got, err := s.ListCallbacks(ctx, twofold.CallbackFilter{AppID: a.ID, Status: "pending"})
		must(t, err)
		if c := got[0]; c.Attempts != 1 || c.LastStatus != 500 || c.LastError != "HTTP 500" || !c.NextAttemptAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("failed callback: %+v", c)
		}
	})

	t.Run("VerificationsPerHour", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		chain := func(prev []byte, e twofold.AuditEvent) []byte { return []byte(fmt.Sprint(e.ID)) }
		for i, e := range []twofold.AuditEvent{
			{At: t0.Add(-2 * time.Hour), Action: twofold.AuditVerificationOK, AppID: 1},
			{At: t0, Action: twofold.AuditVerificationOK, AppID: 1},
			{At: t0.Add(time.Minute), Action: twofold.AuditVerificationOK, AppID: 1},
			{At: t0.Add(2 * time.Minute), Action: twofold.AuditVerificationFailed, AppID: 1},
			{At: t0.Add(time.Hour), Action: twofold.AuditVerificationFailed, AppID: 1},
			{At: t0.Add(time.Hour), Action: twofold.AuditVerificationOK, AppID: 2},
			{At: t0.Add(time.Hour), Action: twofold.AuditAppCreated, AppID: 1},
		} {
			e.Actor = "test"
			if err := s.AppendAudit(ctx, &e, chain); err != nil {
				t.Fatalf("append %d: %v", i, err)
			}
		}
		h0 := t0.Truncate(time.Hour)
		got, err := s.VerificationsPerHour(ctx, 1, t0.Add(-time.Hour))
		must(t, err)
		want := []twofold.HourCount{
			{Hour: h0, Key: twofold.AuditVerificationFailed, Count: 1},
			{Hour: h0, Key: twofold.AuditVerificationOK, Count: 2},
			{Hour: h0.Add(time.Hour), Key: twofold.AuditVerificationFailed, Count: 1},
		}
		if d := diff(want, got); d != "" {
			t.Errorf("VerificationsPerHour(app 1):%s", d)
		}
		got, err = s.VerificationsPerHour(ctx, 0, t0.Add(time.Hour))
		must(t, err)
		if len(got) != 2 {
			t.Errorf("VerificationsPerHour(all, since t0+1h): %+v", got)
		}
	})

	t.Run("DeleteApp", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		fill := func(app twofold.App, phone string) twofold.User {
			u := mkUser(t, s, app.ID, 1, phone)
			mkCode(t, s, u, "", t0, ttl)
			mkAuthenticator(t, s, u)
			must(t, s.InsertMessage(ctx, mkMessage(app.ID, u.ID, "SM"+phone, phone, t0)))
			must(t, s.AddRefusal(ctx, app.ID, t0, twofold.SMS, twofold.RefusedCountry))
			must(t, s.AddUsage(ctx, app.ID, t0, twofold.UsageSMS, 1))
			must(t, s.InsertRegistrationToken(ctx, twofold.RegistrationToken{MAC: []byte("rt" + phone), AppID: app.ID, UserID: u.ID, ExpiresAt: t0.Add(time.Hour)}))
			d := twofold.Device{Name: "phone", OSType: "cli", PublicKey: []byte("pk"), TokenMAC: []byte("tok" + phone), SecretSealed: []byte("s"), Digits: 7, Period: 10}
			must(t, s.RegisterDevice(ctx, []byte("rt"+phone), t0, &d))
			jd := twofold.Device{Name: "jwt", OSType: "cli", PublicKey: []byte("pk"), TokenMAC: []byte("jwt" + phone), SecretSealed: []byte("s"), Digits: 7, Period: 10}
			must(t, s.RegisterDeviceOnceMACs(ctx, [][]byte{[]byte("jwt" + phone)}, app.ID, u.ID, t0.Add(time.Hour), t0, &jd))
			must(t, s.DeleteDevice(ctx, app.ID, jd.ID)) // its spent JWT stays
			must(t, s.UpsertPushSubscription(ctx, &PushSubscription{AppID: app.ID, DeviceID: d.ID, Kind: "ntfy",
				Endpoint: "https://ntfy.example/" + phone, CreatedAt: t0}, 10))
			r := twofold.ApprovalRequest{UUID: "req" + phone, AppID: app.ID, UserID: u.ID, Message: "m", Status: twofold.Pending, CreatedAt: t0}
			must(t, s.CreateApprovalRequest(ctx, &r, 0))
			r.Status, r.ProcessedAt = twofold.Approved, t0.Add(time.Second)
			if _, err := s.FinishApprovalRequest(ctx, r, &twofold.Callback{AppID: app.ID, RequestUUID: r.UUID, Payload: []byte("{}")}); err != nil {
				t.Fatal(err)
			}
			must(t, s.InsertPhoneVerification(ctx, &twofold.PhoneVerification{UUID: "pv" + phone, AppID: app.ID, Phone: "+1" + phone,
				Via: twofold.SMS, MAC: []byte("m"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
			return u
		}
		ua := fill(a, "2015550123")
		ub := fill(b, "2015550124")

		must(t, s.DeleteApp(ctx, a.ID))
		wantErr(t, "GetApp after DeleteApp", errOf(s.GetApp(ctx, a.ID)), twofold.ErrNotFound)
		wantErr(t, "GetUser after DeleteApp", errOf(s.GetUser(ctx, a.ID, ua.ID)), twofold.ErrNotFound)
		wantErr(t, "DeleteApp again", s.DeleteApp(ctx, a.ID), twofold.ErrNotFound)
		var n int
		for _, table := range []string{"users", "codes", "authenticators", "authenticator_steps", "messages", "delivery_refusals", "usage_monthly",
			"registration_tokens", "spent_registration_jwts", "devices", "push_subscriptions", "approval_requests", "callbacks",
			"phone_verifications"} {
			must(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n))
			if n != 1 {
				t.Errorf("%s has %d rows after deleting one of two applications, want b's 1", table, n)
			}
		}
		// The other application is whole.
		getUser(t, s, b.ID, ub.ID)
		if devs, err := s.ListDevices(ctx, b.ID, ub.ID); err != nil || len(devs) != 1 {
			t.Errorf("b's devices: %v %v", devs, err)
		}
	})
}
