package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// serveLockFile is the file in a SQLite data directory that a running server holds locked.
const serveLockFile = "serve.lock"

// lockDataDir takes the serve lock of the SQLite data directory dir (creating the directory:
// serve may): an exclusive flock on serve.lock, held until release is called or the process
// ends, however it ends, since the OS drops the lock with the process (kill -9 included). A
// second server on the same directory is refused: two would each keep their own application
// cache, rate limits and event streams over one database, and each answer for the other's
// devices wrongly. Several servers share a PostgreSQL database instead.
func lockDataDir(dir string) (release func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, serveLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("serve lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := make([]byte, 32)
		n, _ := f.ReadAt(holder, 0)
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("serve lock %s: %w", path, err)
		}
		abs, _ := filepath.Abs(dir)
		by := "another twofold serve"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(holder[:n]))); err == nil && pid > 0 {
			by += " (process " + strconv.Itoa(pid) + ")"
		}
		return nil, fmt.Errorf("%s is already running on the data directory %s: only one server may use a SQLite "+
			"data directory at a time. Stop it first, or give this one another --data-dir; several servers share a "+
			"PostgreSQL database instead (--database)", by, abs)
	}
	// Say who holds it, for the message above; the lock, not this text, is what counts.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil // closing the file drops the lock
}
