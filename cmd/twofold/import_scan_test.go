package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/userimport"
	"github.com/twofold-auth/twofold/internal/userimport/records"
)

// checkEmails stands in for userimport.Check where a test is about the scan, not the values:
// it refuses an email without @, as Check does.
func checkEmails(r userimport.Record) error {
	if r.Email != "" && !strings.Contains(r.Email, "@") {
		return fmt.Errorf("%w: email is invalid", userimport.ErrInvalid)
	}
	return nil
}

func TestScanInput(t *testing.T) {
	const file = "authy_id,email,country_code,phone\n" +
		"1,a@example.com,1,2015550123\n" + // line 2: its phone is line 6's
		"2,b@example.com,1,2015550124\n" + // line 3: its id is line 8's
		"3,c@example.com,1,02015550123\n" + // line 4: the same digits but a leading zero: another number
		"x,d@example.com,1,2015550125\n" + // line 5
		"4,d@example.com,1,201 555 0123\n" + // line 6
		"5,e-at-example.com,,\n" + // line 7: Check refuses it
		"2,f@example.com,44,2015550124\n" + // line 8: same national digits, another country
		"6,,,\n" + // line 9
		"7,g@example.com,1,2015550129\n" + // line 10: both its id and its phone are line 11's
		"7,h@example.com,1,2015550129\n" // line 11
	var failures []failure
	s, err := scanInput(context.Background(), strings.NewReader(file), func(r io.Reader) *records.Reader { return records.NewUserReader(r, records.CSV) },
		checkEmails, 4, func(f failure) { failures = append(failures, f) })
	if err != nil {
		t.Fatal(err)
	}
	want := []failure{
		{Line: 5, Reason: `authy_id: want a whole number, got "x"`},
		{Line: 7, ID: 5, Reason: "email is invalid"},
		{Line: 3, ID: 2, Reason: "authy_id 2 is also on line 8"},
		{Line: 8, ID: 2, Reason: "authy_id 2 is also on line 3"},
		{Line: 10, ID: 7, Reason: "authy_id 7 is also on line 11"},
		{Line: 11, ID: 7, Reason: "authy_id 7 is also on line 10"},
		{Line: 2, ID: 1, Reason: "the phone number is also on line 6"},
		{Line: 6, ID: 4, Reason: "the phone number is also on line 2"},
	}
	if !reflect.DeepEqual(failures, want) {
		t.Errorf("failures:\n%+v\nwant\n%+v", failures, want)
	}
	sum := sha256.Sum256([]byte(file))
	if s.records != 10 || s.valid != 2 || s.ahead != 2 || !reflect.DeepEqual(s.failed, []int{2, 3, 5, 6, 7, 8, 10, 11}) || s.sha256 != hex.EncodeToString(sum[:]) {
		t.Errorf("scan: %+v", s)
	}
	next := 0
	for _, c := range []struct {
		line int
		skip bool
	}{{1, false}, {2, true}, {4, false}, {5, true}, {9, false}, {11, true}, {12, false}} {
		if got := s.skip(c.line, &next); got != c.skip {
			t.Errorf("skip(%d) = %v", c.line, got)
		}
	}
}

// The scan stops when the context ends (Ctrl-C while a big file is checked).
func TestScanInputStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := scanInput(ctx, strings.NewReader("1\n2\n"), records.NewIDReader, checkEmails, 1, func(failure) {})
	if err != context.Canceled {
		t.Fatalf("%v", err)
	}
}

// The duplicate finder's memory for a million users stays small: the scan holds no records,
// only sorted (id, line) and (phone, id, line) triples.
func TestScanMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a million lines")
	}
	const n = 1_000_000
	path := filepath.Join(t.TempDir(), "users.csv")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, "%d,user%d@example.com,1,201%07d\n", i, i, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := watchHeap(t)
	start := time.Now()
	s, err := scanInput(context.Background(), in, func(r io.Reader) *records.Reader { return records.NewUserReader(r, records.CSV) }, checkEmails, 1, func(f failure) {
		t.Errorf("failure: %+v", f)
	})
	took := time.Since(start)
	grown := peak() - before.HeapAlloc
	if err != nil || s.valid != n {
		t.Fatalf("%v %+v", err, s.records)
	}
	t.Logf("scanned %d users in %s; heap grew by at most %d MB", n, took.Round(time.Millisecond), grown>>20)
	if grown > 120<<20 {
		t.Errorf("the scan of %d users took %d MB of heap", n, grown>>20)
	}
}

func TestCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.csv.checkpoint")
	if _, found, err := readCheckpoint(path); found || err != nil {
		t.Fatalf("no checkpoint yet: %v %v", found, err)
	}
	c := checkpoint{Version: checkpointVersion, Command: "from-file", AppID: 2, Input: "users.csv", InputSHA256: "ab", NextLine: 1001}
	for _, next := range []int{1001, 2001} {
		c.NextLine = next
		if err := writeCheckpoint(path, c); err != nil {
			t.Fatal(err)
		}
	}
	got, found, err := readCheckpoint(path)
	if err != nil || !found || got.NextLine != 2001 || !got.matches(c) {
		t.Fatalf("%+v %v %v", got, found, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left beside the checkpoint: %v", entries)
	}
	for _, other := range []checkpoint{
		{Version: checkpointVersion, Command: "from-authy", AppID: 2, InputSHA256: "ab"},
		{Version: checkpointVersion, Command: "from-file", AppID: 3, InputSHA256: "ab"},
		{Version: checkpointVersion, Command: "from-file", AppID: 2, InputSHA256: "cd"},
		{Version: 2, Command: "from-file", AppID: 2, InputSHA256: "ab"},
	} {
		if got.matches(other) || other.matches(c) {
			t.Errorf("%+v matches %+v", other, c)
		}
	}
	raw, _ := os.ReadFile(path)
	var fields map[string]any
	if err := json.Unmarshal(raw, &fields); err != nil || fields["next_line"] != float64(2001) {
		t.Errorf("checkpoint file: %s", raw)
	}
	os.WriteFile(path, []byte("{torn"), 0o600)
	if _, _, err := readCheckpoint(path); err == nil || !strings.Contains(err.Error(), "remove it to start over") {
		t.Errorf("a torn checkpoint: %v", err)
	}
	if err := writeCheckpoint(filepath.Join(dir, "missing", "x.checkpoint"), c); err == nil {
		t.Error("a checkpoint was written into a directory that does not exist")
	}
}

// watchHeap samples the heap until the returned function is called, which returns the most it
// saw.
func watchHeap(t *testing.T) func() uint64 {
	t.Helper()
	var mu sync.Mutex
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			mu.Lock()
			peak = max(peak, m.HeapAlloc)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}
