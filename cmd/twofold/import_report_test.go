package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/userimport"
)

func TestReport(t *testing.T) {
	var sink bytes.Buffer
	r := &importReport{AppID: 2, Source: "users.csv", Failures: []failure{}, started: time.Now(), failSink: &sink, FailuresFile: "failed.jsonl"}
	for i := range 1005 {
		r.tally(userimport.Result{ID: int64(5000 - i), Line: 5000 - i, Outcome: userimport.Failed, Reason: "phone number is invalid"})
	}
	r.tally(userimport.Result{ID: 1, Line: 2, Outcome: userimport.Imported, Seed: true})
	r.tally(userimport.Result{ID: 2, Line: 3, Outcome: userimport.Imported, NoPhone: true})
	r.tally(userimport.Result{ID: 3, Line: 4, Outcome: userimport.Present})
	r.tally(userimport.Result{ID: 4, Line: 5, Outcome: "refused"})
	r.done()
	if r.Imported != 2 || r.WithSeed != 1 || r.WithoutPhone != 1 || r.Present != 1 || r.Failed != 1006 ||
		len(r.Failures) != maxListed || r.FailuresOmitted != 6 {
		t.Fatalf("%+v", r)
	}
	if r.Failures[0].Line > r.Failures[1].Line {
		t.Errorf("failures are not in line order: %+v", r.Failures[:2])
	}
	if n := strings.Count(sink.String(), "\n"); n != 1006 {
		t.Errorf("--failures has %d lines, want every failure", n)
	}
	var f failure
	if err := json.Unmarshal([]byte(strings.SplitN(sink.String(), "\n", 2)[0]), &f); err != nil || f.ID != 5000 || f.Line != 5000 {
		t.Errorf("--failures line: %v %+v", err, f)
	}
	var text bytes.Buffer
	r.print(&text)
	for _, want := range []string{
		"Import into application 2 from users.csv:",
		"imported         2 (1 without a phone number, 1 with an authenticator seed)",
		"already present  1",
		"failed           1006",
		"line 4001, authy_id 4001: phone number is invalid",
		"… and 6 more (every one is in failed.jsonl)",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("the report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := printJSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	json.Unmarshal(js.Bytes(), &back)
	for _, key := range []string{"imported", "already_present", "without_phone", "with_seed", "failed", "users_per_second", "failures", "skipped", "interrupted"} {
		if _, ok := back[key]; !ok {
			t.Errorf("the JSON report has no %q: %s", key, js.String())
		}
	}

	// Import's reasons lose the "invalid record: " a report line does not need.
	plain := &importReport{}
	plain.tally(userimport.Result{ID: 9, Line: 10, Outcome: userimport.Failed, Reason: userimport.ErrInvalid.Error() + ": the seed is not base32"})
	if plain.Failures[0].Reason != "the seed is not base32" {
		t.Errorf("reason %q", plain.Failures[0].Reason)
	}

	dry := &importReport{AppID: 2, Source: "standard input", DryRun: true, Imported: 3}
	text.Reset()
	dry.print(&text)
	if !strings.Contains(text.String(), "Dry run: nothing was written") || !strings.Contains(text.String(), "would import     3") {
		t.Errorf("dry run report:\n%s", text.String())
	}
}

// Without a terminal, progress is a plain line every so often, with rate and time left.
func TestLineProgress(t *testing.T) {
	var out bytes.Buffer
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := &lineProgress{w: &out, total: 1000, unit: "users", what: "importing", every: 10 * time.Second, now: func() time.Time { return now }, start: now, last: now}
	p.add(100) // too soon for a line
	now = now.Add(10 * time.Second)
	p.note("rate limited: 4 of 8 requests at once")
	p.add(100)
	now = now.Add(5 * time.Second)
	p.add(100) // too soon again
	p.note("")
	now = now.Add(5 * time.Second)
	p.add(100)
	want := "importing: 200/1000 users (20%), 20 users/s, about 40s left; rate limited: 4 of 8 requests at once\n" +
		"importing: 400/1000 users (40%), 20 users/s, about 30s left\n"
	if out.String() != want {
		t.Errorf("progress:\n%s\nwant\n%s", out.String(), want)
	}
}

// On a terminal the bar draws; elsewhere (here, a buffer) the plain lines.
func TestNewProgress(t *testing.T) {
	if _, ok := newProgress(Env{Stderr: &bytes.Buffer{}}, 10, "importing").(*lineProgress); !ok {
		t.Error("a progress bar on a buffer")
	}
}
