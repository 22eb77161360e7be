package store

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The cost of a request must not grow with the number of users (issue 9): no statement the
// store runs may scan a table that grows with them. The test runs the whole conformance suite
// on SQLite, collects every statement the store prepares, and asks SQLite for each one's plan.
// A statement that legitimately reads a whole table (an operator's listing, a sweep, a copy)
// is named in scanAllowed with the reason.

// growing are the tables whose size grows with users, requests or time.
var growing = []string{"users", "codes", "authenticators", "authenticator_steps", "devices", "registration_tokens", "spent_registration_jwts",
	"qr_links", "approval_requests", "callbacks", "messages", "counters", "audit_log", "phone_verifications",
	"push_subscriptions", "activities", "usage_monthly", "delivery_refusals", "signin_lockouts", "limit_slots",
	"passwordless_requests", "verifications", "recovery_codes"}

// scanAllowed lists the statements (by a fragment of their text) that may scan, and why.
var scanAllowed = map[string]string{
	"DELETE FROM ":                            "a sweep or a deletion of everything an application or user owns",
	"count(*) FROM ":                          "migrate-data's verification counts",
	"COUNT(*) FROM ":                          "tests' and operators' counts",
	"SELECT * FROM ":                          "migrate-data's copy",
	"GROUP BY":                                "the console's charts and the outbox summary, over a bounded window",
	"UPDATE messages SET status = 'failed'":   "the hourly sweep of interrupted hand-overs",
	"COALESCE(max(expires_at), 0)":            "twofold master-key status, which an operator runs",
	"UPDATE audit_log SET hash":               "a test tampering with the audit trail",
	"FROM audit_log ORDER BY id DESC LIMIT 1": "the chain's tip: the last row by primary key",
	// Operators' listings (twofold audit, twofold outbox, the console) walk a table in id order
	// and stop at their page; a rare filter reads further, at an operator's request.
	"FROM audit_log ORDER BY id LIMIT":                           "twofold audit verify/export, page by page",
	"FROM audit_log WHERE action = ":                             "an operator's filter",
	"FROM audit_log WHERE at >= ":                                "an operator's filter",
	"FROM messages ORDER BY id DESC LIMIT":                       "twofold outbox, the console",
	"FROM messages WHERE ":                                       "an operator's filter of the outbox",
	"FROM approval_requests ORDER BY id DESC LIMIT":              "the console",
	"FROM approval_requests WHERE app_id = $1 AND created_at >=": "the console",
	"FROM approval_requests WHERE app_id = $1 AND status = $2":   "the console",
	"FROM approval_requests WHERE app_id = $1 ORDER BY":          "the console",
	"FROM approval_requests WHERE status = $1 ORDER BY":          "the console",
	"ORDER BY processed_at DESC":                                 "the console's answer-time chart, over a window",
	"FROM phone_verifications WHERE app_id = $1 AND (($2":        "one number's verifications: a handful, bounded by the send limit",
	// A multi-row insert into a parent table plans the lookups that would settle foreign-key
	// violations of its children, and skips them at run time unless violations are pending
	// (OP_FkIfZero), which an insert into users alone never leaves.
	"INSERT INTO users (public_id, app_id, email, country_code, phone, confirmed, custom_user_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, ''": "the importer's batch insert (never scans at run time)",
}

// mustSearchBy names the index a statement (by a fragment of its text) must search its table
// by, where a wider index would also avoid a scan but read rows the statement skips.
var mustSearchBy = map[string]string{
	// Live codes only (migration 00036): a user sent many codes does not pay for the dead ones.
	"UPDATE codes SET superseded = 1":          "codes_live",
	"UPDATE codes SET attempts = attempts + 1": "codes_live",
	"UPDATE codes SET attempts = attempts - 1": "codes_live",
}

func TestQueryPlansDoNotScanGrowingTables(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	onPrepare = func(q string) {
		mu.Lock()
		seen[q] = true
		mu.Unlock()
	}
	t.Cleanup(func() { onPrepare = nil })
	t.Run("suite", func(t *testing.T) {
		runConformance(t, func(t *testing.T) *Store {
			return openSQLiteAt(t, filepath.Join(t.TempDir(), DatabaseFile))
		})
	})
	onPrepare = nil

	s := openSQLiteAt(t, filepath.Join(t.TempDir(), DatabaseFile))
	queries := make([]string, 0, len(seen))
	for q := range seen {
		queries = append(queries, q)
	}
	slices.Sort(queries)
	if len(queries) < 50 {
		t.Fatalf("only %d statements seen: is onPrepare still called?", len(queries))
	}
	checked := 0
	searchedBy := map[string]bool{}
	for _, q := range queries {
		trimmed := strings.TrimSpace(q)
		upper := strings.ToUpper(trimmed)
		if !strings.HasPrefix(upper, "SELECT") && !strings.HasPrefix(upper, "UPDATE") &&
			!strings.HasPrefix(upper, "DELETE") && !strings.HasPrefix(upper, "INSERT") {
			continue // BEGIN, SAVEPOINT, PRAGMA, DDL
		}
		args := make([]any, maxParam(trimmed)) // NULLs: the plan does not depend on them
		rows, err := s.r.db.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+trimmed, args...)
		if err != nil {
			t.Logf("EXPLAIN %s: %v", oneLine(trimmed), err)
			continue // a statement of a test's own table
		}
		var scans, details []string
		touchesGrowing := false
		for rows.Next() {
			var id, parent, notused int
			var detail string
			must(t, rows.Scan(&id, &parent, &notused, &detail))
			details = append(details, detail)
			for _, table := range growing {
				if detail == "SCAN "+table || strings.HasPrefix(detail, "SCAN "+table+" ") {
					scans = append(scans, detail)
				}
				if strings.HasPrefix(detail, "SEARCH "+table+" ") {
					touchesGrowing = true
				}
			}
			// A sort before a LIMIT reads every matching row, however few are returned: the
			// newest 50 of a user with a long history cost that whole history.
			if touchesGrowing && strings.Contains(detail, "USE TEMP B-TREE FOR ORDER BY") && strings.Contains(upper, " LIMIT ") {
				scans = append(scans, detail)
			}
		}
		must(t, rows.Err())
		rows.Close()
		checked++
		for frag, index := range mustSearchBy {
			if !strings.Contains(oneLine(trimmed), frag) {
				continue
			}
			searchedBy[frag] = true
			if !slices.ContainsFunc(details, func(d string) bool { return strings.Contains(d, " USING INDEX "+index+" ") }) {
				t.Errorf("statement does not search by %s (%s):\n%s", index, strings.Join(details, "; "), oneLine(trimmed))
			}
		}
		if len(scans) == 0 || allowedScan(trimmed) {
			continue
		}
		t.Errorf("statement scans a table that grows with users (%s):\n%s", strings.Join(scans, "; "), oneLine(trimmed))
	}
	for frag := range mustSearchBy {
		if !searchedBy[frag] {
			t.Errorf("no statement seen with %q: is mustSearchBy out of date?", frag)
		}
	}
	t.Logf("%d statements' plans checked", checked)
}

func allowedScan(q string) bool {
	q = oneLine(q)
	for frag := range scanAllowed {
		if strings.Contains(q, frag) {
			return true
		}
	}
	return false
}

var param = regexp.MustCompile(`\$(\d+)`)

func maxParam(q string) int {
	n := 0
	for _, m := range param.FindAllStringSubmatch(q, -1) {
		if v, _ := strconv.Atoi(m[1]); v > n {
			n = v
		}
	}
	return n
}

func oneLine(q string) string { return fmt.Sprint(strings.Join(strings.Fields(q), " ")) }
