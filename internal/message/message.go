// Package message writes the texts of one-time code messages (SMS, voice call, email) in
// several languages. The code is the only long run of digits in a message, so a reader, a
// speech engine or a test can pick it out.
package message

import (
	"bytes"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Data is what a message says.
type Data struct {
	App     string // application name, e.g. "Acme"
	Code    string // the one-time code, ASCII digits
	Minutes int    // how long the code stays valid
	Purpose string // optional: what the code is for (Authy's action_message), shown when set
}

// Content is a rendered message.
type Content struct {
	Locale  string   // the base language actually used ("en" when the asked one is unknown)
	Text    string   // SMS text; the plain-text email body; for calls, Spoken joined with " "
	Subject string   // email only
	HTML    string   // email only: a small, self-contained HTML body (inline styles, no external resources, no scripts)
	Spoken  []string // calls only: lines to be read aloud
}

// maxMinutes bounds the validity that is stated: a longer one would put a second run of four
// or more digits in the message. Outside 1..maxMinutes the validity sentence is left out.
const maxMinutes = 999

// Render writes the message carrying d's code on channel ch in the language of locale.
// An unknown channel is written as an SMS.
func Render(ch twofold.Channel, locale string, d Data) Content {
	base := Normalize(locale)
	l := langs[base]
	app, purpose, code := clean(d.App), clean(d.Purpose), clean(d.Code)
	fill := strings.NewReplacer("{app}", app, "{purpose}", purpose)

	c := Content{Locale: base}
	if ch == twofold.Call {
		say := l.Say
		if purpose != "" {
			say = l.SayFor
		}
		digits := spell(code)
		c.Spoken = []string{fill.Replace(say), digits, fill.Replace(l.SayAgain), digits}
		c.Text = strings.Join(c.Spoken, " ")
		return c
	}

	// The code sentence is split around {code} before filling, so an App or Purpose that
	// contains "{code}" stays literal text.
	sentence := l.Code
	if purpose != "" {
		sentence = l.CodeFor
	}
	before, after, _ := strings.Cut(sentence, "{code}")
	before, after = fill.Replace(before), fill.Replace(after)
	valid := l.valid(d.Minutes)

	if ch != twofold.Email {
		c.Text = before + code + after
		if valid != "" {
			c.Text += l.Sep + valid
		}
		return c
	}

	c.Subject = fill.Replace(l.Subject)
	lines := []string{before + code + after}
	if valid != "" {
		lines = append(lines, valid)
	}
	c.Text = strings.Join(lines, "\n") + "\n\n" + l.Ignore
	var b bytes.Buffer
	// Execute cannot fail: the template is fixed and tested, and it writes to memory.
	_ = emailHTML.Execute(&b, emailData{
		Lang: base, Subject: c.Subject,
		Before: before, Code: code, After: after,
		Valid: valid, Ignore: l.Ignore,
	})
	c.HTML = b.String()
	return c
}

// valid is the validity sentence for n minutes, or "" when n is out of range.
func (l lang) valid(n int) string {
	if n < 1 || n > maxMinutes {
		return ""
	}
	t := l.ValidOther
	switch l.Plural(n) {
	case one:
		t = l.ValidOne
	case few:
		t = l.ValidFew
	}
	return strings.ReplaceAll(t, "{n}", strconv.Itoa(n))
}

// Normalize maps a language tag ("es-MX", "ES", "es_419", "pt-BR", "zh-Hans-CN", even
// "fr;q=0.8") to its supported base language, or "en".
func Normalize(locale string) string {
	s := strings.TrimSpace(locale)
	i := 0
	for i < len(s) && ('a' <= s[i] && s[i] <= 'z' || 'A' <= s[i] && s[i] <= 'Z') {
		i++
	}
	base := strings.ToLower(s[:i])
	if _, ok := langs[base]; ok {
		return base
	}
	return "en"
}

// Locales returns the supported base languages, sorted.
func Locales() []string {
	out := make([]string, 0, len(langs))
	for k := range langs {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// spell writes the code as "1, 2, 3" so speech engines read it digit by digit.
func spell(code string) string {
	var parts []string
	for _, r := range code {
		if r != ' ' {
			parts = append(parts, string(r))
		}
	}
	return strings.Join(parts, ", ")
}

// clean makes caller text safe to put in a one-line message or a header: line breaks become
// spaces, other control characters and bidi controls (which could make a code display
// reversed) are dropped, runs of spaces collapse and the ends are trimmed. Invalid UTF-8
// becomes U+FFFD.
func clean(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.In(r, unicode.Zl, unicode.Zp) || unicode.IsControl(r) && unicode.IsSpace(r) {
			r = ' '
		}
		switch {
		case r == ' ':
			space = true
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

type emailData struct {
	Lang, Subject       string
	Before, Code, After string
	Valid, Ignore       string
}

// emailHTML is the HTML email body. It uses inline styles only, as mail clients drop <style>
// and remote resources, and no number of four or more digits (colours are short hex).
var emailHTML = template.Must(template.New("email").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Subject}}</title></head>
<body style="margin:0;padding:24px;background:#eee;font-family:Helvetica,Arial,sans-serif;color:#222">
<div style="max-width:480px;margin:0 auto;padding:24px;background:#fff;border-radius:8px">
<p style="margin:0 0 16px;font-size:16px;line-height:1.5">{{.Before}}<strong style="font-family:Menlo,Consolas,monospace;font-size:24px;letter-spacing:2px">{{.Code}}</strong>{{.After}}</p>
{{- with .Valid}}
<p style="margin:0 0 16px;font-size:14px;line-height:1.5">{{.}}</p>
{{- end}}
<p style="margin:0;font-size:12px;line-height:1.5;color:#666">{{.Ignore}}</p>
</div>
</body>
</html>
`))
