package web

import (
	"bytes"
	"image/png"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

func TestServesFilesWithHeaders(t *testing.T) {
	h := Authenticator()
	for _, tc := range []struct {
		path, ctype string
		status      int
	}{
		{"/authenticator/", "text/html; charset=utf-8", 200},
		{"/authenticator/index.html", "text/html; charset=utf-8", 200},
		{"/authenticator/events.js", "text/javascript; charset=utf-8", 200},
		{"/authenticator/manifest.webmanifest", "application/manifest+json", 200},
		{"/authenticator/icon-maskable.svg", "image/svg+xml", 200},
		{"/authenticator/apple-touch-icon.png", "image/png", 200},
		{"/authenticator/missing.js", "text/plain; charset=utf-8", 404},
		{"/authenticator/sub/", "text/plain; charset=utf-8", 404},
		{"/elsewhere", "text/plain; charset=utf-8", 404},
	} {
		rec := get(t, h, tc.path)
		if rec.Code != tc.status || rec.Header().Get("Content-Type") != tc.ctype {
			t.Errorf("%s: %d %q, want %d %q", tc.path, rec.Code, rec.Header().Get("Content-Type"), tc.status, tc.ctype)
		}
		for _, kv := range securityHeaders {
			if got := rec.Header().Get(kv[0]); got != kv[1] {
				t.Errorf("%s: %s = %q, want %q", tc.path, kv[0], got, kv[1])
			}
		}
		if tc.status == 200 && rec.Header().Get("Cache-Control") != "no-cache" {
			t.Errorf("%s: Cache-Control %q", tc.path, rec.Header().Get("Cache-Control"))
		}
	}
}

func TestServiceWorkerCachesTheWholeApp(t *testing.T) {
	assets := loadAssets()
	sw := string(assets["sw.js"].body)
	if strings.Contains(sw, versionMark) || !regexp.MustCompile(`const VERSION = '[0-9a-f]{16}'`).MatchString(sw) {
		t.Fatalf("sw.js is not stamped")
	}
	start := strings.Index(sw, "const SHELL = [")
	end := strings.Index(sw[start:], "];")
	var shell []string
	for _, m := range regexp.MustCompile(`'([^']+)'`).FindAllStringSubmatch(sw[start:start+end], -1) {
		shell = append(shell, m[1])
	}
	var files []string
	for name := range assets {
		if name != "sw.js" {
			files = append(files, name)
		}
	}
	slices.Sort(shell)
	slices.Sort(files)
	if !slices.Equal(shell, files) {
		t.Errorf("sw.js caches\n  %v\nbut the app has\n  %v", shell, files)
	}
}

// The CSP forbids inline code and Trusted Types forbid HTML strings: check the sources keep to it,
// so a violation shows here and not only in a browser.
func TestNoInlineCodeOrHTMLStrings(t *testing.T) {
	html, _ := files.ReadFile("authenticator/index.html")
	for _, tag := range regexp.MustCompile(`<script[^>]*>\s*</script>|<script[^>]*>`).FindAll(html, -1) {
		if !bytes.Contains(tag, []byte(" src=")) || !bytes.HasSuffix(tag, []byte("</script>")) {
			t.Errorf("index.html has an inline script: %s", tag)
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`\sstyle\s*=`),
		regexp.MustCompile(`\son[a-z]+\s*=`),
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`javascript:`),
	} {
		if m := bad.Find(html); m != nil {
			t.Errorf("index.html has inline code: %s", m)
		}
	}
	err := fs.WalkDir(files, "authenticator", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".js") {
			return err
		}
		src, _ := files.ReadFile(p)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function", "console.log"} {
			if bytes.Contains(src, []byte(bad)) {
				t.Errorf("%s uses %s", p, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestIcons(t *testing.T) {
	for name, want := range map[string]struct {
		size        int
		transparent bool // corners outside the rounded square
	}{
		"icon-192.png":          {192, true},
		"icon-512.png":          {512, true},
		"icon-maskable-512.png": {512, false},
		"apple-touch-icon.png":  {180, false},
	} {
		img, err := png.Decode(bytes.NewReader(loadAssets()[name].body))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if b := img.Bounds(); b.Dx() != want.size || b.Dy() != want.size {
			t.Errorf("%s is %v, want %d square", name, b, want.size)
		}
		_, _, _, cornerAlpha := img.At(0, 0).RGBA()
		if (cornerAlpha == 0) != want.transparent {
			t.Errorf("%s: corner alpha %d", name, cornerAlpha)
		}
		_, _, _, midAlpha := img.At(want.size/2, want.size/8).RGBA()
		if midAlpha != 0xffff {
			t.Errorf("%s: not opaque inside (alpha %d)", name, midAlpha)
		}
	}
}
