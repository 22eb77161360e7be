package twofold

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Limit is "at most N per Window". N <= 0 disables it.
type Limit struct {
	N      int
	Window time.Duration
}

// Off reports whether the limit allows everything.
func (l Limit) Off() bool { return l.N <= 0 || l.Window <= 0 }

// String renders the limit as ParseLimit reads it: "10/15m", "200/1s", "off".
func (l Limit) String() string {
	if l.Off() {
		return "off"
	}
	w := l.Window
	d := w.String()
	switch {
	case w%time.Hour == 0:
		d = strconv.FormatInt(int64(w/time.Hour), 10) + "h"
	case w%time.Minute == 0:
		d = strconv.FormatInt(int64(w/time.Minute), 10) + "m"
	case w%time.Second == 0:
		d = strconv.FormatInt(int64(w/time.Second), 10) + "s"
	}
	return strconv.Itoa(l.N) + "/" + d
}

// ParseLimit reads "N/DURATION" ("10/15m", "200/1s", "5/m"); "0" or "off" is a disabled limit.
func ParseLimit(s string) (Limit, error) {
	s = strings.TrimSpace(s)
	if s == "0" || strings.EqualFold(s, "off") {
		return Limit{}, nil
	}
	n, d, ok := strings.Cut(s, "/")
	count, err := strconv.Atoi(n)
	if !ok || err != nil || count <= 0 || count > 1_000_000_000 {
		return Limit{}, fmt.Errorf("limit %q: want N/DURATION such as 10/15m, or off", s)
	}
	if d != "" && (d[0] < '0' || d[0] > '9') {
		d = "1" + d // "10/m" means per minute
	}
	window, err := time.ParseDuration(d)
	if err != nil || window < time.Second || window > 31*24*time.Hour {
		return Limit{}, fmt.Errorf("limit %q: the duration must be 1s to 744h", s)
	}
	return Limit{N: count, Window: window}, nil
}

// LimitKind names a limit an application may set for itself.
type LimitKind string

const (
	LimitFailures     LimitKind = "failures"      // failed verifications per user (and per number for phone verification)
	LimitSends        LimitKind = "sends"         // codes sent per user
	LimitNumberSends  LimitKind = "number_sends"  // codes sent per phone number
	LimitCountrySends LimitKind = "country_sends" // codes sent per country calling code
	LimitAppSends     LimitKind = "app_sends"     // codes sent by the application
)

// LimitKinds lists every LimitKind.
var LimitKinds = []LimitKind{LimitFailures, LimitSends, LimitNumberSends, LimitCountrySends, LimitAppSends}

// LimitEvent is one event counted against a limit by the store: the limit's name, the slot it
// took and its time. Giving it back (the store's RefundHit) removes exactly this event.
type LimitEvent struct {
	Name string
	Slot int
	At   time.Time
}

// LimitHit is the outcome of counting an event against a limit.
type LimitHit struct {
	Event   LimitEvent // the event counted; zero when refused
	Refused bool       // the limit was full: nothing was counted
	// When refused: the oldest event counted in the window (when it leaves, there is room), and
	// whether this is the first refusal of the limit within a window's length (to be recorded).
	Oldest       time.Time
	FirstRefusal bool
}
