package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/twofold-auth/twofold/internal/userimport"
)

// importer is what the import commands need of userimport.Service.
type importer interface {
	Import(ctx context.Context, appID int64, records []userimport.Record, dryRun bool) ([]userimport.Result, error)
}

// checkpoint records how far an import has come, so a run stopped by a crash or Ctrl-C
// resumes where it stopped. It is only a shortcut: a run without it imports no one twice
// either, since Import answers Present for the ids the application has.
type checkpoint struct {
	Version     int       `json:"version"`
	Command     string    `json:"command"` // from-file or from-authy
	AppID       int64     `json:"app_id"`
	Input       string    `json:"input"`        // the file's name, for people
	InputSHA256 string    `json:"input_sha256"` // the input it is about; another input starts over
	NextLine    int       `json:"next_line"`    // every record on a line before this one is done
	UpdatedAt   time.Time `json:"updated_at"`
}

const checkpointVersion = 1

// matches reports whether a checkpoint read from disk is about this run.
func (c checkpoint) matches(run checkpoint) bool {
	return c.Version == checkpointVersion && run.Version == checkpointVersion && c.Command == run.Command && c.AppID == run.AppID && c.InputSHA256 == run.InputSHA256
}

// readCheckpoint reads the checkpoint at path; found is false when there is none.
func readCheckpoint(path string) (c checkpoint, found bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return checkpoint{}, false, nil
	}
	if err != nil {
		return checkpoint{}, false, fmt.Errorf("checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return checkpoint{}, false, fmt.Errorf("checkpoint %s is not one (%v): remove it to start over", path, err)
	}
	return c, true, nil
}

// writeCheckpoint replaces the checkpoint at path atomically: a crash leaves the old one or the
// new one, never a torn file. The file is written, synced, renamed over the old one, and the
// directory synced, so the rename survives a power cut.
func writeCheckpoint(path string, c checkpoint) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing left to remove
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: not every file system syncs directories
		d.Close()
	}
	return nil
}

// batcher gathers records into batches, imports each in one call, tallies the results, and
// moves the checkpoint past every batch written.
type batcher struct {
	imp     importer
	appID   int64
	dryRun  bool
	size    int
	records []userimport.Record
	next    int // the line after the last record taken
	rep     *importReport
	prog    progress
	broken  bool // an Import failed: its records stay unwritten, and no other is tried

	cpPath string // "" when no checkpoint is kept (a dry run)
	cp     checkpoint
}

// add takes one record, importing the batch when it is full.
func (b *batcher) add(ctx context.Context, r userimport.Record) error {
	b.records = append(b.records, r)
	b.next = r.Line + 1
	if len(b.records) >= b.size {
		return b.flush(ctx)
	}
	return nil
}

// fail takes one record that failed before import (its fetch or its form).
func (b *batcher) fail(f failure) {
	b.rep.fail(f)
	b.prog.add(1)
	if f.Line > 0 {
		b.next = f.Line + 1
	}
}

// flush imports the records taken and writes the checkpoint. The batch in flight is never
// cancelled: Ctrl-C stops the run after it, so every batch is written whole or not at all.
func (b *batcher) flush(ctx context.Context) error {
	if len(b.records) > 0 {
		first, last := b.records[0].Line, b.records[len(b.records)-1].Line
		results, err := b.imp.Import(context.WithoutCancel(ctx), b.appID, b.records, b.dryRun)
		if err != nil {
			b.broken = true
			return fmt.Errorf("importing the records of lines %d to %d: %w", first, last, err)
		}
		if len(results) != len(b.records) {
			b.broken = true
			return fmt.Errorf("importing the records of lines %d to %d: %d results for %d records", first, last, len(results), len(b.records))
		}
		for _, res := range results {
			b.rep.tally(res)
		}
		b.prog.add(len(b.records))
		b.records = b.records[:0]
	}
	if b.cpPath == "" || b.next <= b.cp.NextLine {
		return nil
	}
	b.cp.NextLine = b.next
	b.cp.UpdatedAt = time.Now().UTC()
	return writeCheckpoint(b.cpPath, b.cp)
}
