package store

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The SQLite store caches applications (apps.go). The attacker's case is a key that was rotated
// or an application that was deleted while the server had it cached: through the server, the
// old key must stop working at once; through another process (the CLI), within appsRecheck
// (at once when the server commits anything meanwhile).

// fakeClock is a settable clock for the cache.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// lookupApp requires AppByKeyMAC(mac) and GetApp(want.ID) to answer want (or wantErr), twice
// (the second time from the cache).
func lookupApp(t *testing.T, s *Store, what string, mac []byte, want twofold.App, wantErr error) {
	t.Helper()
	for range 2 {
		got, err := s.AppByKeyMAC(t.Context(), mac)
		if wantErr != nil {
			if err != wantErr {
				t.Fatalf("%s: AppByKeyMAC = %q, %v; want %v", what, got.Name, err, wantErr)
			}
			continue
		}
		must(t, err)
		if d := diff(want, got); d != "" {
			t.Fatalf("%s: AppByKeyMAC:%s", what, d)
		}
		byID, err := s.GetApp(t.Context(), want.ID)
		must(t, err)
		if d := diff(want, byID); d != "" {
			t.Fatalf("%s: GetApp:%s", what, d)
		}
	}
}

func TestAppCacheSeesItsOwnChangesAtOnce(t *testing.T) {
	s := openSQLiteAt(t, filepath.Join(t.TempDir(), DatabaseFile))
	ctx := t.Context()
	clock := &fakeClock{t: t0}
	s.apps.now = clock.Now // frozen: only commits refresh the generation
	a := mkApp(t, s, "cached")
	oldMAC := a.KeyMAC
	lookupApp(t, s, "created", oldMAC, getApp(t, s, a.ID), nil)

	a.KeyMAC, a.KeySealed, a.Name = []byte("mac:rotated"), []byte("sealed:rotated"), "renamed"
	a.Limits = map[twofold.LimitKind]twofold.Limit{twofold.LimitFailures: {N: 3, Window: time.Minute}}
	must(t, s.UpdateApp(ctx, a))
	lookupApp(t, s, "old key after rotation", oldMAC, twofold.App{}, twofold.ErrNotFound)
	lookupApp(t, s, "new key after rotation", a.KeyMAC, getApp(t, s, a.ID), nil)

	must(t, errOf(s.CallbackFailed(ctx, twofold.Callback{ID: 1 << 40, AppID: a.ID}, 500, "boom", t0, t0, 1)))
	if got, err := s.AppByKeyMAC(ctx, a.KeyMAC); err != nil || got.CallbackDisabledAt.IsZero() {
		t.Fatalf("after a failure that disables callbacks: %v, %v; want them disabled", got.CallbackDisabledAt, err)
	}
	must(t, s.DeleteApp(ctx, a.ID))
	lookupApp(t, s, "deleted", a.KeyMAC, twofold.App{}, twofold.ErrNotFound)
	if _, err := s.GetApp(ctx, a.ID); err != twofold.ErrNotFound {
		t.Fatalf("GetApp of a deleted app = %v, want ErrNotFound", err)
	}
}

func TestAppCacheSeesOtherProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), DatabaseFile)
	server, cli := openSQLiteAt(t, path), openSQLiteAt(t, path)
	ctx := t.Context()
	clock := &fakeClock{t: t0}
	server.apps.now = clock.Now
	a := mkApp(t, cli, "cached")
	oldMAC := a.KeyMAC
	lookupApp(t, server, "created by the CLI", oldMAC, getApp(t, cli, a.ID), nil)

	// The CLI rotates the key: an idle server sees it once appsRecheck has passed.
	a.KeyMAC, a.KeySealed = []byte("mac:rotated"), []byte("sealed:rotated")
	must(t, cli.UpdateApp(ctx, a))
	clock.Add(appsRecheck)
	lookupApp(t, server, "old key, idle server", oldMAC, twofold.App{}, twofold.ErrNotFound)
	lookupApp(t, server, "new key, idle server", a.KeyMAC, getApp(t, cli, a.ID), nil)

	// The CLI deletes it: a server that commits anything sees it at once, clock or not.
	must(t, cli.DeleteApp(ctx, a.ID))
	must(t, errOf(server.Incr(ctx, "anything", t0, t0.Add(time.Hour), 1)))
	lookupApp(t, server, "deleted, busy server", a.KeyMAC, twofold.App{}, twofold.ErrNotFound)
}
