package twofold

import "time"

// The filters and figures below are what the operators' console lists and charts.

// ApprovalFilter narrows a listing of approval requests. Zero fields match everything.
type ApprovalFilter struct {
	AppID  int64
	UserID int64
	Status ApprovalStatus
	Since  time.Time // only requests created at or after
	Limit  int       // the newest Limit requests; 0 means 100
}

// OutboxFilter narrows a listing of the outbox for the console. Zero fields match everything.
type OutboxFilter struct {
	AppID   int64
	UserID  int64
	Channel Channel
	Status  string    // a Message* status
	Since   time.Time // only messages created at or after
	Limit   int       // the newest Limit messages; 0 means 100
}

// CallbackFilter narrows a listing of callbacks. Zero fields match everything.
type CallbackFilter struct {
	AppID  int64
	Status string    // pending, delivered, dropped
	Since  time.Time // only callbacks created at or after
	Limit  int       // the newest Limit callbacks; 0 means 100
}

// HourCount is how many things of a kind (Key: a message status, a verification outcome, an
// approval status) happened in the hour starting at Hour (UTC).
type HourCount struct {
	Hour  time.Time
	Key   string
	Count int64
}

// AnswerTime is how long a user took to answer an approval request.
type AnswerTime struct {
	Status ApprovalStatus // approved or denied
	Took   time.Duration
}

// UserFactors is what a user can prove who they are with, besides codes sent to them: an
// authenticator app's seed and registered devices.
type UserFactors struct {
	Authenticator bool
	Devices       int
}
