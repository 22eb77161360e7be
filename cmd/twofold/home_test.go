package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/browsertest"
)

// A browser at the server's address finds the console and the web authenticator; the page
// passes axe-core and fits a laptop and a phone; its links lead where they say.
func TestHomePageInABrowser(t *testing.T) {
	s := startServer(t, "")
	ctx, cancel := context.WithTimeout(newBrowser(t), 2*time.Minute)
	defer cancel()
	p := &page{t: t, ctx: ctx, began: time.Now()}
	for _, v := range browsertest.Viewports {
		p.section("home page at " + v.Name)
		p.do(v.Emulate(), chromedp.Navigate(s.url+"/"))
		p.visible("h1")
		browsertest.Check(t, ctx, "the home page at "+v.Name)
		if v == browsertest.Desktop {
			p.screenshot("home")
		}
	}
	links := p.eval(`JSON.stringify([...document.querySelectorAll('main a')].map(a => a.textContent + ' ' + a.getAttribute('href')))`)
	if links != `["Console /console/","Web authenticator /authenticator/"]` {
		t.Fatalf("the home page's links: %s", links)
	}
	p.click(`a[href="/console/"]`)
	p.visible(`input[type="password"]`) // the console's sign-in
	if loc := p.eval(`location.pathname`); loc != "/console/signin" {
		t.Errorf("the console link led to %s", loc)
	}
	p.do(chromedp.Navigate(s.url + "/"))
	p.click(`a[href="/authenticator/"]`)
	p.visible(`#main`)
	if loc := p.eval(`location.pathname`); loc != "/authenticator/" {
		t.Errorf("the authenticator link led to %s", loc)
	}
}

// A client that does not ask for HTML (curl, a script) gets where things are as JSON; the
// page itself allows no script and cannot be framed.
func TestHomePageAnswers(t *testing.T) {
	s := startServer(t, "")
	get := func(accept string) (*http.Response, string) {
		req, err := http.NewRequest("GET", s.url+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		res, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	for _, accept := range []string{"", "*/*", "application/json"} {
		res, body := get(accept)
		var links map[string]string
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal([]byte(body), &links) != nil || links["console"] != "/console/" || links["authenticator"] != "/authenticator/" {
			t.Errorf("GET / with Accept %q: %d %s %s", accept, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
	res, body := get("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	csp := res.Header.Get("Content-Security-Policy")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") || !strings.Contains(body, `href="/console/"`) ||
		!strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") || res.Header.Get("X-Frame-Options") != "DENY" ||
		res.Header.Get("Vary") != "Accept" {
		t.Errorf("GET / from a browser: %d %v\n%s", res.StatusCode, res.Header, body)
	}
	// Anything else at the top is still the API's 404.
	res, err := s.client.Get(s.url + "/nothing-here")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if b, _ := io.ReadAll(res.Body); res.StatusCode != 404 || !strings.Contains(string(b), `"error_code"`) {
		t.Errorf("GET /nothing-here: %d %s", res.StatusCode, b)
	}
}
