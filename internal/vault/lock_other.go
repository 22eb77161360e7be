//go:build !unix

package vault

// Lock is a no-op where advisory file locks are not available; writes stay atomic.
func Lock(path string) (unlock func(), err error) { return func() {}, nil }
