package store

import (
	"path/filepath"
	"testing"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The SQLite store caches applications (apps.go). The attacker's case is a key that was rotated
// or an application that was deleted by the CLI, another process, while the server had it
// cached: the old key must stop working at once.
func TestAppCacheSeesOtherProcessesAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), DatabaseFile)
	server, cli := openSQLiteAt(t, path), openSQLiteAt(t, path)
	ctx := t.Context()
	a := mkApp(t, cli, "cached")
	oldMAC := a.KeyMAC

	lookups := func(what string, mac []byte, want twofold.App, wantErr error) {
		t.Helper()
		for range 2 { // the second lookup is the cached one
			got, err := server.AppByKeyMAC(ctx, mac)
			if wantErr != nil {
				if err != wantErr {
					t.Fatalf("%s: AppByKeyMAC = %v, %v; want %v", what, got.Name, err, wantErr)
				}
				continue
			}
			must(t, err)
			if d := diff(want, got); d != "" {
				t.Fatalf("%s: AppByKeyMAC:%s", what, d)
			}
			byID, err := server.GetApp(ctx, want.ID)
			must(t, err)
			if d := diff(want, byID); d != "" {
				t.Fatalf("%s: GetApp:%s", what, d)
			}
		}
	}
	lookups("created", oldMAC, getApp(t, cli, a.ID), nil)

	// Another process rotates the key and changes a setting.
	a.KeyMAC, a.KeySealed, a.Name = []byte("mac:rotated"), []byte("sealed:rotated"), "renamed"
	a.Limits = map[twofold.LimitKind]twofold.Limit{twofold.LimitFailures: {N: 3, Window: 60e9}}
	must(t, cli.UpdateApp(ctx, a))
	lookups("old key after rotation", oldMAC, twofold.App{}, twofold.ErrNotFound)
	lookups("new key after rotation", a.KeyMAC, getApp(t, cli, a.ID), nil)

	// The server's own writes (callback health) are seen too.
	must(t, errOf(server.CallbackFailed(ctx, twofold.Callback{ID: 1 << 40, AppID: a.ID}, 500, "boom", t0, t0, 1)))
	if got, err := server.AppByKeyMAC(ctx, a.KeyMAC); err != nil || got.CallbackDisabledAt.IsZero() {
		t.Fatalf("after a failure that disables callbacks: %+v, %v; want them disabled", got.CallbackDisabledAt, err)
	}

	// Another process deletes the application.
	must(t, cli.DeleteApp(ctx, a.ID))
	lookups("deleted", a.KeyMAC, twofold.App{}, twofold.ErrNotFound)
	if _, err := server.GetApp(ctx, a.ID); err != twofold.ErrNotFound {
		t.Fatalf("GetApp of a deleted app = %v, want ErrNotFound", err)
	}
}
