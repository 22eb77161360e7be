// Package web serves Twofold's browser pages, embedded in the binary: the web authenticator
// under /authenticator/.
//
// The authenticator is plain HTML, CSS and ES modules with no build step. This package adds
// what a static file server lacks: strict security headers on every response, content types
// that Go's mime table does not know (.webmanifest), revalidation instead of stale caching
// (ETag + Cache-Control: no-cache), PNG icons drawn at start-up, and a service worker whose
// version is a hash of the files it caches, so any change to the app installs a new one.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

//go:embed authenticator
var files embed.FS

// Prefix is where the authenticator is mounted.
const Prefix = "/authenticator/"

// ContentSecurityPolicy is sent with every authenticator response. Scripts and styles come
// only from the app's own files (no inline code; the DOM is built without HTML strings, which
// Trusted Types enforce), the API is same-origin, and images may also be customers' HTTPS logos.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' https: data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; " +
	"worker-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; " +
	"frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types twofold"

// securityHeaders go on every response of the authenticator, including its 404s.
var securityHeaders = [][2]string{
	{"Content-Security-Policy", ContentSecurityPolicy},
	{"X-Content-Type-Options", "nosniff"},
	{"Referrer-Policy", "no-referrer"},
	{"X-Frame-Options", "DENY"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
	{"Permissions-Policy", "camera=(self), microphone=(), geolocation=(), payment=(), usb=()"},
}

// contentTypes names the types of the app's files; Go's table lacks some (.webmanifest) and
// varies with the system's mime files for others.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".webmanifest": "application/manifest+json",
	".json":        "application/json",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".txt":         "text/plain; charset=utf-8",
}

// versionMark in sw.js is replaced by a hash of every other file, so that the browser sees a
// changed service worker, and fetches the new shell, whenever any file changes.
const versionMark = "__TWOFOLD_VERSION__"

type asset struct {
	body  []byte
	ctype string
	etag  string
}

// loadAssets reads the embedded files, adds the generated icons and stamps the service worker.
var loadAssets = sync.OnceValue(func() map[string]*asset {
	assets := map[string]*asset{}
	err := fs.WalkDir(files, "authenticator", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		assets[strings.TrimPrefix(p, "authenticator/")] = &asset{body: body}
		return nil
	})
	if err != nil {
		panic("web: reading the embedded authenticator: " + err.Error()) // part of the binary
	}
	for name, body := range icons() {
		assets[name] = &asset{body: body}
	}
	if sw, ok := assets["sw.js"]; ok {
		h := sha256.New()
		names := make([]string, 0, len(assets))
		for name := range assets {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			io.WriteString(h, name+"\x00")
			h.Write(assets[name].body)
			h.Write([]byte{0})
		}
		sw.body = bytes.ReplaceAll(sw.body, []byte(versionMark), []byte(hex.EncodeToString(h.Sum(nil))[:16]))
	}
	for name, a := range assets {
		a.ctype = contentType(name)
		sum := sha256.Sum256(a.body)
		a.etag = `"` + hex.EncodeToString(sum[:12]) + `"`
	}
	return assets
})

func contentType(name string) string {
	ext := path.Ext(name)
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// Authenticator serves the web authenticator's files under /authenticator/. Only the app's own
// files are served: no directory listings, no redirects.
func Authenticator() http.Handler {
	assets := loadAssets()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for _, kv := range securityHeaders {
			h.Set(kv[0], kv[1])
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		if name == "" {
			name = "index.html"
		}
		a := assets[name]
		if !ok || a == nil {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "404 page not found\n")
			return
		}
		h.Set("Content-Type", a.ctype)
		// Every file is revalidated (a 304 when unchanged): the app is unversioned files, and
		// the service worker keeps the offline copy.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(a.body))
	})
}
