// Package phone parses and formats the phone numbers that arrive in Authy requests: a calling
// code ("1", "+57", 1) and a national number written with dashes, dots, spaces or nothing.
// It keeps github.com/nyaruka/phonenumbers behind one small surface.
package phone

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/nyaruka/phonenumbers"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Number is a validated phone number.
type Number struct {
	CountryCode int    // calling code, e.g. 1, 57
	National    string // national significant number, digits only
	Region      string // ISO 3166 region, e.g. "US"
	Type        Type
	// OffPlan: accepted by AnyDigits though the numbering plan does not know it. Region is then
	// the calling code's main region and Type is Other.
	OffPlan bool
}

// Type is the kind of line the numbering plan says a number is.
type Type string

const (
	Mobile        Type = "mobile"
	Landline      Type = "landline"
	FixedOrMobile Type = "fixed_line_or_mobile"
	VoIP          Type = "voip"
	TollFree      Type = "toll_free"
	PremiumRate   Type = "premium_rate" // the caller pays the callee: what SMS pumping and call fraud aim at
	SharedCost    Type = "shared_cost"
	Other         Type = "other"
)

var (
	ErrCountryCode = errors.New("country code is invalid")
	ErrNumber      = errors.New("phone number is invalid")
)

const maxInput = 64 // longer inputs are never phone numbers; bounds the parser's work

// ParseCountryCode accepts a calling code as "1", "+1", "001" or " 57 ".
func ParseCountryCode(s string) (int, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "+")
	if s == "" || len(s) > 5 {
		return 0, ErrCountryCode
	}
	cc, err := strconv.Atoi(s)
	if err != nil || cc <= 0 || cc > 999 || phonenumbers.GetRegionCodeForCountryCode(cc) == phonenumbers.UNKNOWN_REGION {
		return 0, ErrCountryCode
	}
	return cc, nil
}

// Rules are the checks a phone number must pass to be accepted.
type Rules int

const (
	// Plan: the number must be valid in its country's numbering plan. Production applications
	// take only these.
	Plan Rules = iota
	// AnyDigits: any 7 to 15 digits under a known calling code, whatever the numbering plan
	// says, as Authy's sandbox took them, so that test suites written against it (with numbers
	// such as 111-111-1111 or 432-123-1111) pass unchanged. Sandbox applications deliver
	// nothing, so a number that reaches no one costs nothing.
	AnyDigits
)

// RulesFor returns the rules of app's numbers: AnyDigits for a sandbox application, Plan for
// every other.
func RulesFor(app twofold.App) Rules {
	if app.Sandbox {
		return AnyDigits
	}
	return Plan
}

// Parse validates number (national digits with optional separators, or a full +E.164 number)
// under calling code countryCode, by the numbering plan.
func Parse(countryCode, number string) (Number, error) { return Plan.Parse(countryCode, number) }

// OfUser re-reads a stored number (calling code and national digits) with its region and type,
// by the numbering plan.
func OfUser(countryCode int, national string) (Number, error) {
	return Plan.OfUser(countryCode, national)
}

// OfUser re-reads a number stored under these rules. Every code sent re-reads its user's
// number, and the numbering plan's reading is a twelfth of a send's work, so readings are kept
// (a stored number reads the same every time: the plan is compiled in).
func (r Rules) OfUser(countryCode int, national string) (Number, error) {
	key := ofUserKey{r, countryCode, national}
	if n, ok := readings.get(key); ok {
		return n, nil
	}
	n, err := r.Parse(strconv.Itoa(countryCode), national)
	if err == nil {
		readings.put(key, n)
	}
	return n, err
}

type ofUserKey struct {
	rules    Rules
	cc       int
	national string
}

// readingCache keeps the readings of stored numbers, up to max of them: when full it starts
// again, which costs one re-reading of each number in use and bounds what it holds.
type readingCache struct {
	mu  sync.RWMutex
	m   map[ofUserKey]Number
	max int
}

var readings = &readingCache{max: 1 << 16}

func (c *readingCache) get(k ofUserKey) (Number, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n, ok := c.m[k]
	return n, ok
}

func (c *readingCache) put(k ofUserKey, n Number) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[ofUserKey]Number, 1024)
	}
	c.m[k] = n
}

// Parse validates number (national digits with optional separators, or a full +E.164 number
// that agrees with countryCode) under calling code countryCode by the rules r. A number the
// numbering plan knows is read as the plan says under either rules.
func (r Rules) Parse(countryCode, number string) (Number, error) {
	cc, err := ParseCountryCode(countryCode)
	if err != nil {
		return Number{}, err
	}
	number = strings.TrimSpace(number)
	if number == "" || len(number) > maxInput {
		return Number{}, ErrNumber
	}
	for _, r := range number {
		if !strings.ContainsRune("0123456789 -.()+/", r) {
			return Number{}, ErrNumber
		}
	}
	n, err := byPlan(cc, number)
	if err == nil || r != AnyDigits {
		return n, err
	}
	return anyDigits(cc, number)
}

// ParseE164 reads a number written in E.164, "+" and its digits with nothing between them (the
// form the Verify API takes), by the rules r; written as its E164 would write it. Calling codes are prefix-free, so the first one
// to match the leading digits is the number's.
func (r Rules) ParseE164(s string) (Number, error) {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' {
		return Number{}, ErrNumber
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return Number{}, ErrNumber
		}
	}
	for n := 1; n <= 3 && n < len(s)-1; n++ {
		if cc, err := ParseCountryCode(s[1 : 1+n]); err == nil {
			num, err := r.Parse(strconv.Itoa(cc), s)
			if err == nil && num.E164() != s { // a trunk prefix ("+31 0…"): not E.164
				return Number{}, ErrNumber
			}
			return num, err
		}
	}
	return Number{}, ErrNumber
}

// anyDigits reads number (checked for its characters) as 7 to 15 digits under cc; a full
// number (+...) must begin with cc.
func anyDigits(cc int, number string) (Number, error) {
	full := strings.HasPrefix(number, "+")
	if strings.Contains(strings.TrimPrefix(number, "+"), "+") {
		return Number{}, ErrNumber
	}
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, number)
	if prefix := strconv.Itoa(cc); full {
		if !strings.HasPrefix(digits, prefix) {
			return Number{}, ErrNumber
		}
		digits = digits[len(prefix):]
	}
	if len(digits) < 7 || len(digits) > 15 {
		return Number{}, ErrNumber
	}
	return Number{CountryCode: cc, National: digits, Region: phonenumbers.GetRegionCodeForCountryCode(cc), Type: Other, OffPlan: true}, nil
}

// byPlan reads number (checked for its characters) under cc by the numbering plan.
func byPlan(cc int, number string) (Number, error) {
	in := number
	if !strings.HasPrefix(in, "+") {
		in = "+" + strconv.Itoa(cc) + " " + in
	}
	pn, err := phonenumbers.Parse(in, "")
	if err != nil {
		return Number{}, fmt.Errorf("%w: %v", ErrNumber, err)
	}
	if int(pn.GetCountryCode()) != cc || !phonenumbers.IsValidNumber(pn) {
		return Number{}, ErrNumber
	}
	return Number{
		CountryCode: cc,
		National:    phonenumbers.GetNationalSignificantNumber(pn),
		Region:      phonenumbers.GetRegionCodeForNumber(pn),
		Type:        typeOf(phonenumbers.GetNumberType(pn)),
	}, nil
}

func typeOf(t phonenumbers.PhoneNumberType) Type {
	switch t {
	case phonenumbers.MOBILE:
		return Mobile
	case phonenumbers.FIXED_LINE:
		return Landline
	case phonenumbers.FIXED_LINE_OR_MOBILE:
		return FixedOrMobile
	case phonenumbers.VOIP:
		return VoIP
	case phonenumbers.TOLL_FREE:
		return TollFree
	case phonenumbers.PREMIUM_RATE:
		return PremiumRate
	case phonenumbers.SHARED_COST:
		return SharedCost
	default:
		return Other
	}
}

// E164 renders "+573001234512".
func (n Number) E164() string { return "+" + strconv.Itoa(n.CountryCode) + n.National }

// MaskedLocal renders the national number with all but the last four digits hidden, in the
// form Authy's user status used: "XXX-XXX-1118".
func (n Number) MaskedLocal() string { return maskGroups(n.National, 4) }

// Masked renders "+57-XXX-XXX-XX12", as Authy's SMS and call responses did: only the last two
// digits are shown.
func (n Number) Masked() string {
	return "+" + strconv.Itoa(n.CountryCode) + "-" + maskGroups(n.National, 2)
}

// maskGroups replaces all but the last keep digits with X and groups the result in threes from
// the left with the remainder in the last group ("XXX-XXX-1118", "XXX-XXX-XX12").
func maskGroups(digits string, keep int) string {
	b := []byte(digits)
	for i := 0; i < len(b)-keep; i++ {
		b[i] = 'X'
	}
	var groups []string
	for len(b) > 4 {
		groups = append(groups, string(b[:3]))
		b = b[3:]
	}
	groups = append(groups, string(b))
	return strings.Join(groups, "-")
}

// Format renders the number in the numbering plan's international ("+1 201-555-0123") or
// national ("(201) 555-0123") style.
func (n Number) Format(international bool) string {
	pn, err := phonenumbers.Parse(n.E164(), "")
	if err != nil {
		return n.E164()
	}
	if international {
		return phonenumbers.Format(pn, phonenumbers.INTERNATIONAL)
	}
	return phonenumbers.Format(pn, phonenumbers.NATIONAL)
}

// ValidRegion reports whether region is an ISO 3166 region with a calling code ("US", "PT").
func ValidRegion(region string) bool { return phonenumbers.GetCountryCodeForRegion(region) != 0 }
