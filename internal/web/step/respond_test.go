package step

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"
)

// The form-post page's CSP allows exactly its onload handler.
func TestFormPostHash(t *testing.T) {
	sum := sha256.Sum256([]byte("document.forms[0].submit()"))
	if got := base64.StdEncoding.EncodeToString(sum[:]); got != onloadHash {
		t.Fatalf("onloadHash = %s, want %s", onloadHash, got)
	}
}
