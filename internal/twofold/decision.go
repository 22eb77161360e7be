package twofold

import "time"

// Decision is one write transaction of the store in which something is decided about one user
// (store.Decide): the failure limit is read, a token judged, and the outcome recorded (the code
// used or charged, the TOTP step, the failure counted, the audit entry) together, so that the
// decision waits for one durable commit, shared with its neighbours, and nothing of it survives
// a crash without the rest. Decisions of one user are serialised, on both engines and across
// instances, so what a decision reads stays true until it commits: the failure limit needs no
// count written before the token is judged, and a success leaves no counter behind.
//
// Its methods may be called only inside the function given to Decide; they must not be slow
// (no network, no hashing of passwords): on SQLite they run on the one writer.
type Decision interface {
	// Window reads the events of the limit window w: how many, the oldest, and whether a refusal
	// of that limit was recorded within it.
	Window(w LimitWindow) (n int64, oldest time.Time, refused bool, err error)
	// Hit counts one event against limit l under name (Store.Hit inside the decision).
	Hit(name string, now time.Time, l Limit) (LimitHit, error)
	// RecordRefusal reports whether a refusal of the limit name is the first within window,
	// noting it if so (Store.RecordRefusal inside the decision).
	RecordRefusal(name string, now time.Time, window time.Duration) (bool, error)
	// ConsumeCode judges the user's live one-time codes (Store.ConsumeCode inside the decision).
	ConsumeCode(now time.Time, maxAttempts int, matches func(OneTimeCode) bool) (CodeCheck, error)
	// RefundAttempt takes back a wrong try charged to the user's live codes.
	RefundAttempt(now time.Time) error
	// AdvanceStep records step as the newest accepted of the user's authenticator of version,
	// if it is newer than the last: false when it is not (a replay).
	AdvanceStep(version, step int64) (bool, error)
	// AdvanceDeviceStep is AdvanceStep for a registered device's seed.
	AdvanceDeviceStep(deviceID, step int64) (bool, error)
	// SpendRecoveryCode spends the user's unused recovery code whose MAC is one of macs.
	SpendRecoveryCode(macs [][]byte, now time.Time) (RecoverySpend, error)
	// InsertCode stores a new one-time code of the user; earlier ones for its action stop
	// working (Store.InsertCode inside the decision).
	InsertCode(c *OneTimeCode) error
	// InsertMessage records a message in the outbox (Store.InsertMessage inside the decision).
	InsertMessage(m *Message) error
	// ConfirmUser marks the user confirmed.
	ConfirmUser() error
	// Audit appends an entry to the audit trail in the decision's transaction.
	Audit(e AuditEntry) error
}
