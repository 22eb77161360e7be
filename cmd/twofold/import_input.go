package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// openInput opens the input file; "-" is standard input, copied to a temporary file first so
// it can be read twice (checked, then imported). done closes (and removes) it.
func openInput(path string, stdin io.Reader) (f *os.File, done func(), err error) {
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
			f.Close()
			return nil, nil, fmt.Errorf("%s is not a regular file (give - and pipe it to standard input)", path)
		}
		return f, func() { f.Close() }, nil
	}
	if stdin == nil {
		return nil, nil, errors.New("no standard input")
	}
	f, err = os.CreateTemp("", "twofold-import-*")
	if err != nil {
		return nil, nil, err
	}
	done = func() { f.Close(); os.Remove(f.Name()) }
	if _, err := io.Copy(f, stdin); err != nil {
		done()
		return nil, nil, fmt.Errorf("reading standard input: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		done()
		return nil, nil, err
	}
	return f, done, nil
}
