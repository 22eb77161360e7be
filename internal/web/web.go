// Package web serves Twofold's browser pages, embedded in the binary: the web authenticator
// under /authenticator/.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed authenticator
var files embed.FS

// Authenticator serves the web authenticator's files under /authenticator/.
func Authenticator() http.Handler {
	sub, err := fs.Sub(files, "authenticator")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	return http.StripPrefix("/authenticator/", http.FileServerFS(sub))
}
