package store

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The SQLite store caches applications (apps.go). The attacker's case is a key that was rotated
// or an application that was deleted while the server had it cached: the old key must stop
// working at once, whether the change came through the server or another process (the CLI).

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

func TestAppCacheSeesEveryChangeAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), DatabaseFile)
	server, cli := openSQLiteAt(t, path), openSQLiteAt(t, path)
	for _, tc := range []struct {
		name   string
		writer *Store
	}{{"through the server", server}, {"through another process", cli}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			a := mkApp(t, tc.writer, "cached "+tc.name)
			oldMAC := a.KeyMAC
			lookupApp(t, server, "created", oldMAC, getApp(t, tc.writer, a.ID), nil)

			a.KeyMAC, a.KeySealed, a.Name = []byte("mac:rotated "+tc.name), []byte("sealed:rotated"), "renamed "+tc.name
			a.Limits = map[twofold.LimitKind]twofold.Limit{twofold.LimitFailures: {N: 3, Window: time.Minute}}
			must(t, tc.writer.UpdateApp(ctx, a))
			lookupApp(t, server, "old key after rotation", oldMAC, twofold.App{}, twofold.ErrNotFound)
			lookupApp(t, server, "new key after rotation", a.KeyMAC, getApp(t, tc.writer, a.ID), nil)

			must(t, errOf(tc.writer.CallbackFailed(ctx, twofold.Callback{ID: 1 << 40, AppID: a.ID}, 500, "boom", t0, t0, 1)))
			if got, err := server.AppByKeyMAC(ctx, a.KeyMAC); err != nil || got.CallbackDisabledAt.IsZero() {
				t.Fatalf("after a failure that disables callbacks: %v, %v; want them disabled", got.CallbackDisabledAt, err)
			}
			must(t, tc.writer.DeleteApp(ctx, a.ID))
			lookupApp(t, server, "deleted", a.KeyMAC, twofold.App{}, twofold.ErrNotFound)
			if _, err := server.GetApp(ctx, a.ID); err != twofold.ErrNotFound {
				t.Fatalf("GetApp of a deleted app = %v, want ErrNotFound", err)
			}
		})
	}
}
