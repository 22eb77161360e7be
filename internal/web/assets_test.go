package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"
)

// An asset is served with its type and ETag, and a browser that has it gets 304.
func TestAssets(t *testing.T) {
	a := Assets(fstest.MapFS{"static/a.css": {Data: []byte("body{}")}, "static/b.js": {Data: []byte("1")}}, "static")
	if len(a) != 2 || a["a.css"].Type != "text/css; charset=utf-8" || a["b.js"].ETag == "" || a["a.css"].ETag == a["b.js"].ETag {
		t.Fatalf("assets: %+v", a)
	}
	w := httptest.NewRecorder()
	a["a.css"].Serve(w, httptest.NewRequest("GET", "/a.css", nil))
	if w.Code != 200 || w.Body.String() != "body{}" || w.Header().Get("ETag") != a["a.css"].ETag {
		t.Fatalf("serve: %d %q %v", w.Code, w.Body, w.Header())
	}
	r := httptest.NewRequest("GET", "/a.css", nil)
	r.Header.Set("If-None-Match", a["a.css"].ETag)
	w = httptest.NewRecorder()
	a["a.css"].Serve(w, r)
	if w.Code != http.StatusNotModified {
		t.Fatalf("revalidation: %d", w.Code)
	}
}
