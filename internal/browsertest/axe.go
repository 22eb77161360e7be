package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// axePath is axe-core's script, installed by `make test` (npm ci in internal/browsertest/axe).
func axePath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "axe", "node_modules", "axe-core", "axe.min.js")
}

// AxeViolation is one rule axe-core found broken on a page, with the nodes that break it.
type AxeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// Axe runs axe-core (WCAG 2.x A and AA rules, plus best practices) on the page open in ctx and
// fails t for every serious or critical violation, naming the page. It is skipped with the
// browser tests when axe-core is not installed, unless TWOFOLD_REQUIRE_BROWSER=1.
func Axe(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	src, err := os.ReadFile(axePath())
	if err != nil {
		if os.Getenv("TWOFOLD_REQUIRE_BROWSER") == "1" {
			t.Fatalf("TWOFOLD_REQUIRE_BROWSER=1 but axe-core is not installed (npm ci --prefix internal/browsertest/axe): %v", err)
		}
		t.Logf("axe-core not installed, %s not checked (npm ci --prefix internal/browsertest/axe)", page)
		return
	}
	vs, err := axeRun(ctx, string(src))
	if err != nil {
		t.Fatalf("axe on %s: %v", page, err)
	}
	for _, v := range vs {
		if v.Impact != "serious" && v.Impact != "critical" {
			continue
		}
		var nodes []string
		for _, n := range v.Nodes {
			nodes = append(nodes, fmt.Sprintf("%v: %s", n.Target, strings.ReplaceAll(n.Summary, "\n", " ")))
		}
		t.Errorf("axe on %s: %s (%s) %s\n\t%s", page, v.ID, v.Impact, v.Help, strings.Join(nodes, "\n\t"))
	}
}

// axeRun injects axe-core's source into the page (once) and returns its violations.
func axeRun(ctx context.Context, src string) ([]AxeViolation, error) {
	run := `(async () => {
		if (!window.axe) { ` + src + `
		}
		const r = await axe.run(document, {resultTypes: ['violations']});
		return JSON.stringify(r.violations);
	})()`
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](run, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, err
	}
	var vs []AxeViolation
	return vs, json.Unmarshal([]byte(out), &vs)
}

// Fits fails t when the page open in ctx is wider than its viewport (a horizontal scroll bar) or
// when any element sticks out past the right edge of the viewport: what a table too wide for the
// screen or a long unbroken string does. Elements inside a scrolling container are allowed (a
// table that scrolls within its own box fits the page).
func Fits(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	out, err := overflows(ctx)
	if err != nil {
		t.Fatalf("checking %s fits: %v", page, err)
	}
	for _, b := range out {
		t.Errorf("%s does not fit its viewport: %s", page, b)
	}
}

// overflows lists what sticks out of the viewport of the page open in ctx.
func overflows(ctx context.Context) ([]string, error) {
	const check = `(() => {
		const w = document.documentElement.clientWidth, bad = [];
		if (document.documentElement.scrollWidth > w) bad.push('document is ' + document.documentElement.scrollWidth + 'px wide in a ' + w + 'px viewport');
		const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) { const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; } return false; };
		for (const el of document.body.querySelectorAll('*')) {
			const r = el.getBoundingClientRect();
			if (r.width === 0 || r.right <= w + 1 || scrolls(el)) continue;
			const name = el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : '');
			bad.push(name + ' ends at ' + Math.round(r.right) + 'px');
			if (bad.length > 10) break;
		}
		return bad;
	})()`
	return chromedp.Run(ctx, chromedp.Evaluate[[]string](check))
}

// Viewport is a window size the web pages must fit.
type Viewport struct {
	Name          string
	Width, Height int64
	Mobile        bool
}

// Desktop and Phone are the two widths every page is checked at: a 1280 px laptop screen and a
// 390 px phone held upright.
var (
	Desktop   = Viewport{Name: "desktop", Width: 1280, Height: 800}
	Phone     = Viewport{Name: "phone", Width: 390, Height: 844, Mobile: true}
	Viewports = []Viewport{Desktop, Phone}
)

// Emulate sizes the tab to v (a phone also gets touch, a 2x screen and mobile layout).
func (v Viewport) Emulate() chromedp.Action[chromedp.Void] {
	if v.Mobile {
		return chromedp.EmulateViewport(v.Width, v.Height, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait)
	}
	return chromedp.EmulateViewport(v.Width, v.Height)
}

// Check runs Axe and Fits on the page open in ctx: the checks every page of the web surfaces
// passes at every viewport.
func Check(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	Axe(t, ctx, page)
	Fits(t, ctx, page)
}
