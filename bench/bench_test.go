package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/testbin"
)

// TestMain is also the floor server: the floor scenario re-executes the running binary, which
// in a test is the test binary, with floorEnv set.
func TestMain(m *testing.M) {
	if f := os.Getenv(floorEnv); f != "" {
		if err := serveFloor(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

func TestPermutationVisitsEveryIndexOnce(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 97, 1000, 1024, 100_000} {
		p := newPermutation(n)
		seen := make([]bool, n)
		for i := range n {
			j := p.at(i)
			if j < 0 || j >= n || seen[j] {
				t.Fatalf("n=%d: at(%d) = %d, out of range or seen before", n, i, j)
			}
			seen[j] = true
		}
		if n > 10 && p.at(1)-p.at(0) == 1 {
			t.Errorf("n=%d: neighbours in order, not scattered", n)
		}
		if p.at(n) != p.at(0) {
			t.Errorf("n=%d: does not wrap around", n)
		}
	}
}

func TestTOTPPoolTakesEachUserOncePerStep(t *testing.T) {
	s := seeded{first: 100, n: 10, totpN: 5, totpKey: []byte("k")}
	p := newTOTPPool(s, 7, 30)
	at := time.Unix(1_800_000_000, 0)
	var ids []int64
	for range 5 {
		id, code, ok := p.take(at)
		if !ok {
			t.Fatalf("drained after %d users of 5", len(ids))
		}
		want := otp.TOTP{Secret: s.totpSecret(id), Digits: 7, Period: 30}.Code(at)
		if code != want || len(code) != 7 {
			t.Errorf("user %d: code %q, want %q", id, code, want)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []int64{100, 101, 102, 103, 104}) {
		t.Errorf("took %v, want each user with an authenticator once", ids)
	}
	if _, _, ok := p.take(at.Add(10 * time.Second)); ok {
		t.Error("a user was taken twice in one step")
	}
	if _, _, ok := p.take(at.Add(30 * time.Second)); !ok {
		t.Error("not drained, but no user taken in the next step")
	}
	if string(s.totpSecret(100)) == string(s.totpSecret(101)) {
		t.Error("two users share a secret")
	}
}

func TestAggregate(t *testing.T) {
	ms := time.Millisecond
	rs := []result{
		{Name: "x", RPS: 100, P50: 3 * ms, P99: 9 * ms, Max: 20 * ms, Errors: 1, FirstErr: "e"},
		{Name: "x", RPS: 300, P50: 1 * ms, P99: 5 * ms, Max: 50 * ms},
		{Name: "x", RPS: 200, P50: 2 * ms, P99: 7 * ms, Max: 10 * ms, Errors: 2},
	}
	r := aggregate(rs)
	if r.RPS != 200 || r.P50 != 2*ms || r.P99 != 7*ms {
		t.Errorf("medians: rps %v p50 %v p99 %v, want 200 2ms 7ms", r.RPS, r.P50, r.P99)
	}
	if r.RPSMin != 100 || r.RPSMax != 300 || r.Max != 50*ms || r.Errors != 3 || r.FirstErr != "e" || r.Runs != 3 {
		t.Errorf("spread %v–%v, max %v, errors %d %q, runs %d", r.RPSMin, r.RPSMax, r.Max, r.Errors, r.FirstErr, r.Runs)
	}
	if r := aggregate(rs[:2]); r.RPS != 200 || r.P50 != 2*ms {
		t.Errorf("median of two: rps %v p50 %v, want their means", r.RPS, r.P50)
	}
}

func TestPositiveList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		ok   bool
	}{
		{"1000,1000000", []int{1000, 1000000}, true},
		{" 1_000 , 2 ", []int{1000, 2}, true},
		{"0", nil, false},
		{"1,,2", nil, false},
		{"1e6", nil, false},
	} {
		got, err := positiveList(tc.in)
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("positiveList(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// testStore runs a tiny store through the whole harness: seeded, checked through the API,
// every scenario that uses the seeded users measured twice. Its TOTP and SMS pools are far
// smaller than the requests made, so the valid scenarios must drain and refill them.
func testStore(t *testing.T, engine, postgres string) {
	bin := testbin.Twofold(t)
	recv, err := startCallbackReceiver()
	if err != nil {
		t.Fatal(err)
	}
	cfg := config{duration: 400 * time.Millisecond, warmup: 100 * time.Millisecond, conns: 4, runs: 2, devices: 2,
		e2eConns: []int{1}, postgres: postgres,
		scenarios: []string{"floor", "verify-totp", "verify-totp-wrong", "verify-totp-limited", "verify-totp-locked",
			"verify-sms", "verify-sms-wrong", "user-status", "users-new"}}
	st, err := runStore(cfg, bin, t.TempDir(), recv, engine, 20, true)
	if err != nil {
		t.Fatal(err)
	}
	if st.UsersAtEnd != 20 {
		t.Errorf("%d users in the store at the end, want the 20 seeded (users/new's deleted)", st.UsersAtEnd)
	}
	rows := map[string]row{}
	for _, r := range st.Rows {
		rows[r.Name] = r
		if r.Errors > 0 || r.Requests == 0 || r.Runs != 2 {
			t.Errorf("%s: %d requests, %d errors (%s), %d runs", r.Name, r.Requests, r.Errors, r.FirstErr, r.Runs)
		}
	}
	// With two runs, the second run's verify-totp-limited follows the first's verify-totp-locked:
	// it fails unless the lockout was undone.
	for _, name := range []string{"floor", "verify TOTP (valid)", "verify TOTP (wrong)", "verify TOTP (valid), failure limit on",
		"verify TOTP (locked out)", "verify SMS (valid)", "verify SMS (wrong)", "users/{id}/status", "users/new"} {
		if _, ok := rows[name]; !ok {
			t.Errorf("no result for %s", name)
		}
	}
	for _, name := range []string{"verify TOTP (valid)", "verify TOTP (valid), failure limit on", "verify SMS (valid)"} {
		r := rows[name]
		if r.Phases < 2 || r.Requests <= 10 {
			t.Errorf("%s: %d requests in %d phases from a pool of 10 users: not refilled", name, r.Requests, r.Phases)
		}
		if r.Elapsed < cfg.duration {
			t.Errorf("%s: measured %s, want the whole %s", name, r.Elapsed, cfg.duration)
		}
	}
}

func TestStoreSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server")
	}
	testStore(t, "sqlite", "")
}

func TestStorePostgres(t *testing.T) {
	dsn := os.Getenv("TWOFOLD_TEST_POSTGRES")
	if dsn == "" || testing.Short() {
		t.Skip("set TWOFOLD_TEST_POSTGRES to run the bench's store on PostgreSQL")
	}
	testStore(t, "postgres", dsn)
}

// TestCheckSeededFails proves the check can fail: users seeded with authenticators the server
// judges differently (one digit more than the application's) must stop the bench.
func TestCheckSeededFails(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server")
	}
	ctx := context.Background()
	bin := testbin.Twofold(t)
	recv, err := startCallbackReceiver()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := newServer(bin, filepath.Join(dir, "data"), "", recv.url)
	if err != nil {
		t.Fatal(err)
	}
	db, err := openStoreDB(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	defer db.close()
	seed, err := db.seedUsers(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.db.ExecContext(ctx, `UPDATE authenticators SET digits = digits + 1`); err != nil {
		t.Fatal(err)
	}
	if err := srv.start(nil); err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	b := &bench{srv: srv, db: db, api: &apiClient{base: srv.url, key: srv.key}, seed: seed,
		totp: newTOTPPool(seed, db.totpDigits, db.totpPeriod), sms: newSMSPool(seed)}
	err = b.checkSeeded(ctx)
	if err == nil || !strings.Contains(err.Error(), "seeding is wrong") {
		t.Fatalf("checkSeeded = %v, want a seeding error", err)
	}
}
