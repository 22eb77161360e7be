package step

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/twofold-auth/twofold/internal/hostedstep"
)

// The page speaks the languages of the code messages (package message), so the SMS, call or
// email it sends is in the language of the page that sent it. Each language's strings are one
// JSON table in texts/; English is the reference every other table must match key for key
// (TestTexts).

// texts are the tables, by base language.
var texts = sync.OnceValue(func() map[string]map[string]string {
	out := map[string]map[string]string{}
	names, err := fs.Glob(files, "texts/*.json")
	if err != nil {
		panic(err)
	}
	for _, name := range names {
		raw, err := files.ReadFile(name)
		if err != nil {
			panic(err)
		}
		table := map[string]string{}
		if err := json.Unmarshal(raw, &table); err != nil {
			panic(fmt.Sprintf("step: %s: %v", name, err))
		}
		out[strings.TrimSuffix(strings.TrimPrefix(name, "texts/"), ".json")] = table
	}
	return out
})

// tr returns the string key in lang, falling back to English; a key English lacks is a bug
// that TestTexts catches, shown as the key itself rather than breaking the page.
func tr(lang, key string) string {
	if s, ok := texts()[lang][key]; ok {
		return s
	}
	if s, ok := texts()["en"][key]; ok {
		return s
	}
	return key
}

// pickLocale chooses the page's language: the relying party's ui_locales first (space
// separated, in order of preference, as OpenID Connect passes them), then the browser's
// Accept-Language by quality, then English. Only languages with a table count.
func pickLocale(uiLocales, acceptLanguage string) string {
	for _, tag := range strings.Fields(uiLocales) {
		if l, ok := supported(tag); ok {
			return l
		}
	}
	for _, tag := range acceptLanguages(acceptLanguage) {
		if l, ok := supported(tag); ok {
			return l
		}
	}
	return "en"
}

// supported maps a language tag ("pt-BR", "zh_Hans", "FR") to its base language when that has
// a table.
func supported(tag string) (string, bool) {
	i := 0
	for i < len(tag) && ('a' <= tag[i] && tag[i] <= 'z' || 'A' <= tag[i] && tag[i] <= 'Z') {
		i++
	}
	base := strings.ToLower(tag[:i])
	if _, ok := texts()[base]; !ok {
		return "", false
	}
	return base, true
}

// acceptLanguages returns the tags of an Accept-Language header by preference (quality, then
// order); tags with q=0 and "*" are left out. The header is bounded: a browser sends a few.
func acceptLanguages(h string) []string {
	if len(h) > 512 {
		h = h[:512]
	}
	type tagQ struct {
		tag string
		q   float64
		i   int
	}
	var tags []tagQ
	for i, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		tag = strings.TrimSpace(tag)
		if tag == "" || tag == "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
		}
		if q > 0 {
			tags = append(tags, tagQ{tag, q, i})
		}
	}
	sort.SliceStable(tags, func(a, b int) bool { return tags[a].q > tags[b].q })
	out := make([]string, len(tags))
	for i, t := range tags {
		out[i] = t.tag
	}
	return out
}

// uiLocales reads the ui_locales a wire adapter stored with the session's request, if any.
func uiLocales(v hostedstep.View) string {
	var req struct {
		UILocales string `json:"ui_locales"`
	}
	_ = json.Unmarshal(v.Session.Request, &req)
	if len(req.UILocales) > 200 {
		return ""
	}
	return req.UILocales
}

// locale is the language of the page for r and the session v (nil before a session is open).
func locale(r *http.Request, v *hostedstep.View) string {
	ui := ""
	if v != nil {
		ui = uiLocales(*v)
	}
	return pickLocale(ui, r.Header.Get("Accept-Language"))
}

// languages are the tables' languages, sorted (for tests and docs).
func languages() []string {
	var out []string
	for l := range texts() {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}
