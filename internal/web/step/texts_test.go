package step

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/message"
	"github.com/twofold-auth/twofold/internal/twofold"
)

var placeholder = regexp.MustCompile(`\{[a-z]+\}`)

// Every language of the code messages has a table, each table has exactly English's keys with
// the same placeholders, and English has every key the page uses.
func TestTexts(t *testing.T) {
	if got, want := languages(), message.Locales(); !slices.Equal(got, want) {
		t.Fatalf("tables for %v; the messages speak %v", got, want)
	}
	en := texts()["en"]
	for _, lang := range languages() {
		table := texts()[lang]
		for key, s := range en {
			other, ok := table[key]
			switch {
			case !ok:
				t.Errorf("%s lacks %q", lang, key)
			case strings.TrimSpace(other) == "":
				t.Errorf("%s: %q is empty", lang, key)
			case !slices.Equal(sortedPlaceholders(s), sortedPlaceholders(other)):
				t.Errorf("%s: %q has placeholders %v, English %v", lang, key, sortedPlaceholders(other), sortedPlaceholders(s))
			}
		}
		for key := range table {
			if _, ok := en[key]; !ok {
				t.Errorf("%s has %q, which English lacks", lang, key)
			}
		}
	}
	raw, err := files.ReadFile("templates/page.html")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\.T "([a-z_]+)"`).FindAllStringSubmatch(string(raw), -1) {
		used[m[1]] = true
	}
	for _, key := range headings {
		used[key] = true
	}
	for f := range channels {
		for _, suffix := range []string{"_h", "_text", "_send", "_sent_h", "_sent"} {
			used[string(f)+suffix] = true
		}
	}
	for _, f := range twofold.Factors {
		used["opt_"+string(f)] = true
	}
	for _, key := range []string{"err_wrong", "err_reused", "err_too_many", "err_send_limit", "err_push_limit", "err_send_failed",
		"err_not_offered", "push_not_yet", "push_expired", "err_email", "err_username", "err_signin_limit", "secured_by", "pl_by", "err_passkey", "opt_passkey"} {
		used[key] = true
	}
	for key := range used {
		if _, ok := en[key]; !ok {
			t.Errorf("the page uses %q, which English lacks", key)
		}
	}
}

func sortedPlaceholders(s string) []string {
	p := placeholder.FindAllString(s, -1)
	slices.Sort(p)
	return slices.Compact(p)
}

func TestPickLocale(t *testing.T) {
	for _, c := range []struct {
		ui, accept, want string
	}{
		{"", "", "en"},
		{"", "fr-CA,fr;q=0.9,en;q=0.8", "fr"},
		{"", "pt-BR", "pt"},
		{"", "zh-Hans-CN,zh;q=0.9", "zh"},
		{"", "sv-SE,sv;q=0.9", "en"},                  // unknown: English
		{"", "sv-SE,ja;q=0.5", "ja"},                  // the first known one
		{"", "en;q=0.3, de;q=0.8", "de"},              // by quality, not order
		{"", "de;q=0, es", "es"},                      // q=0 is "not this"
		{"", "*, it;q=0.5", "it"},                     // "*" says nothing
		{"pl es", "de", "pl"},                         // the relying party's ui_locales first
		{"sv pl", "de", "pl"},                         // its first known one
		{"sv", "de", "de"},                            // none known: the browser's
		{"", strings.Repeat("xx,", 400) + "fr", "en"}, // a long header is cut, not parsed whole
		{"", "EN-gb", "en"},
		{"", "fr_FR", "fr"},
	} {
		if got := pickLocale(c.ui, c.accept); got != c.want {
			t.Errorf("pickLocale(%q, %.40q) = %q, want %q", c.ui, c.accept, got, c.want)
		}
	}
}

func TestBrowserLabel(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36":                                   "Chrome on Linux",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1": "Safari on iPhone",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0":           "Edge on Windows",
		"Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0":                                                                    "Firefox on Android",
		"curl/8.5.0": "",
		"<script>":   "",
	} {
		if got := browserLabel(ua); got != want {
			t.Errorf("browserLabel(%.50q) = %q, want %q", ua, got, want)
		}
	}
}

func TestMasks(t *testing.T) {
	if got := maskPhone(twofold.User{CountryCode: 351, Phone: "912345678"}); got != "+351 •••••••78" {
		t.Errorf("maskPhone = %q", got)
	}
	if got := maskPhone(twofold.User{}); got != "" {
		t.Errorf("maskPhone of no phone = %q", got)
	}
	for in, want := range map[string]string{"ana@example.com": "a•••@example.com", "ñu@x.es": "ñ•••@x.es", "bad": "", "@x.com": ""} {
		if got := maskEmail(in); got != want {
			t.Errorf("maskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

// A policy source is never made of what could end it.
func TestFormActions(t *testing.T) {
	c := twofold.StepClient{RedirectURIs: []string{"https://rp.example.com/cb", "https://rp.example.com/other", "http://127.0.0.1:8000/cb",
		"https://evil.example.com;script-src *", "https://a b.example.com/"}, Auth0Domain: "tenant.eu.auth0.com"}
	want := "'self' https://rp.example.com http://127.0.0.1:8000 https://tenant.eu.auth0.com"
	if got := formActions(c); got != want {
		t.Errorf("formActions = %q, want %q", got, want)
	}
}
