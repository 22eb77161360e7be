package store

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// BenchmarkDecisionAudit is a verification's decision as the server makes it under load: 32
// writers (× GOMAXPROCS), each deciding about one of users users, writing its audit entry, over a
// trail of prefill entries. It shows what the audit trail's table costs the writer.
func BenchmarkDecisionAudit(b *testing.B) {
	variants := map[string][]string{
		"as-is":      nil,
		"no-by-user": {`DROP INDEX audit_log_by_user`},
		// The table before migration 34: AUTOINCREMENT and an index by time.
		"before-34": {`DROP TRIGGER audit_log_no_update`, `DROP TRIGGER audit_log_no_delete`, `DROP TABLE audit_log`,
			`CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
			app_id INTEGER NOT NULL DEFAULT 0, user_id INTEGER NOT NULL DEFAULT 0, details TEXT NOT NULL DEFAULT '{}', prev_hash BLOB, hash BLOB NOT NULL)`,
			`CREATE INDEX audit_log_by_app ON audit_log (app_id, id)`, `CREATE INDEX audit_log_by_user ON audit_log (user_id, id) WHERE user_id <> 0`,
			`CREATE INDEX audit_log_by_time ON audit_log (at)`},
	}
	for _, users := range []int{1000, 100000} {
		for _, v := range []string{"as-is", "no-by-user", "before-34"} {
			b.Run(fmt.Sprint("users=", users, "/", v), func(b *testing.B) {
				s, a, u := benchStore(b)
				ctx := b.Context()
				for _, q := range variants[v] {
					must(b, errOf(s.w.ExecContext(ctx, q)))
				}
				// A trail that already spreads over the users, as in production.
				must(b, s.tx(ctx, func(tx *Tx) error {
					for i := range 20000 {
						e := twofold.AuditEvent{At: t0, Actor: "api:app/1", Action: twofold.AuditVerificationOK, AppID: a.ID,
							UserID: int64(i%users + 1), Details: map[string]string{"method": "totp"}}
						if err := s.appendAudit(ctx, tx, &e, `{"method":"totp"}`, testChain); err != nil {
							return err
						}
					}
					return nil
				}))
				var n atomic.Int64
				b.SetParallelism(32)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						i := n.Add(1)
						err := s.Decide(ctx, a.ID, u.ID, func(d twofold.Decision) error {
							e := twofold.AuditEvent{At: t0.Add(time.Duration(i)), Actor: "api:app/1", Action: twofold.AuditVerificationOK,
								AppID: a.ID, UserID: int64(i%int64(users) + 1), Details: map[string]string{"method": "totp"}}
							return d.Audit(twofold.AuditEntry{Event: e, Chain: testChain})
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
