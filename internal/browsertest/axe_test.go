package browsertest

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The checks find what they are for: a badge whose contrast is too low, a table too wide for a
// phone; and pass a page without either.
func TestChecksFindFaults(t *testing.T) {
	pages := map[string]string{
		"/bad": `<!doctype html><html lang="en"><head><title>Bad</title></head><body><main><h1>Bad</h1>
			<span style="color:#fff;background:#2f9e44">approved</span>
			<table><tr><td>` + strings.Repeat("x", 200) + `</td></tr></table></main></body></html>`,
		"/good": `<!doctype html><html lang="en"><head><title>Good</title>
			<meta name="viewport" content="width=device-width, initial-scale=1"></head><body><main><h1>Good</h1>
			<span style="color:#fff;background:#1b6e2f">approved</span>
			<div style="overflow-x:auto"><table><tr><td>` + strings.Repeat("x", 200) + `</td></tr></table></div></main></body></html>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(pages[r.URL.Path]))
	}))
	defer srv.Close()
	ctx := Start(t)
	src, err := os.ReadFile(axePath())
	if err != nil {
		if os.Getenv("TWOFOLD_REQUIRE_BROWSER") == "1" {
			t.Fatal(err)
		}
		t.Skip("axe-core not installed")
	}
	for _, tc := range []struct {
		path               string
		contrast, overflow bool
	}{{"/bad", true, true}, {"/good", false, false}} {
		if err := chromedp.Do(ctx, Phone.Emulate(), chromedp.Navigate(srv.URL+tc.path)); err != nil {
			t.Fatal(err)
		}
		vs, err := axeRun(ctx, string(src))
		if err != nil {
			t.Fatal(err)
		}
		contrast := false
		for _, v := range vs {
			contrast = contrast || (v.ID == "color-contrast" && v.Impact == "serious")
		}
		over, err := overflows(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if contrast != tc.contrast || (len(over) > 0) != tc.overflow {
			t.Errorf("%s: contrast violation %v (want %v), overflows %q (want any: %v)", tc.path, contrast, tc.contrast, over, tc.overflow)
		}
	}
}
