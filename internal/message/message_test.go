package message

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/twofold"
)

var channels = []twofold.Channel{twofold.SMS, twofold.Call, twofold.Email}

func TestRenderExact(t *testing.T) {
	acme := Data{App: "Acme", Code: "1234567", Minutes: 10}
	withPurpose := func(d Data, p string) Data { d.Purpose = p; return d }
	withMinutes := func(d Data, n int) Data { d.Minutes = n; return d }
	spoken := "1, 2, 3, 4, 5, 6, 7"
	tests := []struct {
		name   string
		ch     twofold.Channel
		locale string
		d      Data
		want   Content
	}{
		{"en sms", twofold.SMS, "en", acme, Content{Locale: "en",
			Text: "Your Acme verification code is 1234567. It is valid for 10 minutes."}},
		{"en sms one minute", twofold.SMS, "en-US", withMinutes(acme, 1), Content{Locale: "en",
			Text: "Your Acme verification code is 1234567. It is valid for 1 minute."}},
		{"en sms no validity", twofold.SMS, "en", withMinutes(acme, 0), Content{Locale: "en",
			Text: "Your Acme verification code is 1234567."}},
		{"en sms validity too long to state", twofold.SMS, "en", withMinutes(acme, 1440), Content{Locale: "en",
			Text: "Your Acme verification code is 1234567."}},
		{"en sms purpose", twofold.SMS, "en", withPurpose(acme, "login"), Content{Locale: "en",
			Text: "Your Acme verification code for login is 1234567. It is valid for 10 minutes."}},
		{"unknown locale is en", twofold.SMS, "xx-YY", acme, Content{Locale: "en",
			Text: "Your Acme verification code is 1234567. It is valid for 10 minutes."}},
		{"unknown channel is sms", "fax", "en", acme, Content{Locale: "en",
			Text: "Your Acme verification code is 1234567. It is valid for 10 minutes."}},
		{"en call", twofold.Call, "en", acme, Content{Locale: "en",
			Spoken: []string{"Your Acme verification code is", spoken, "Again, your code is", spoken},
			Text:   "Your Acme verification code is " + spoken + " Again, your code is " + spoken}},
		{"en call purpose", twofold.Call, "en", withPurpose(acme, "login"), Content{Locale: "en",
			Spoken: []string{"Your Acme verification code for login is", spoken, "Again, your code is", spoken},
			Text:   "Your Acme verification code for login is " + spoken + " Again, your code is " + spoken}},
		{"en email", twofold.Email, "en", acme, Content{Locale: "en",
			Subject: "Your Acme verification code",
			Text:    "Your Acme verification code is 1234567.\nIt is valid for 10 minutes.\n\nIf you did not ask for this code, ignore this email."}},
		{"en email purpose", twofold.Email, "en", withPurpose(acme, "a password reset"), Content{Locale: "en",
			Subject: "Your Acme verification code",
			Text:    "Your Acme verification code for a password reset is 1234567.\nIt is valid for 10 minutes.\n\nIf you did not ask for this code, ignore this email."}},
		{"de sms", twofold.SMS, "de-AT", acme, Content{Locale: "de",
			Text: "Ihr Bestätigungscode für Acme lautet 1234567. Er ist 10 Minuten gültig."}},
		{"de sms purpose one minute", twofold.SMS, "de", withMinutes(withPurpose(acme, "Anmeldung"), 1), Content{Locale: "de",
			Text: "Ihr Bestätigungscode für Acme (Anmeldung) lautet 1234567. Er ist 1 Minute gültig."}},
		{"de email", twofold.Email, "de", acme, Content{Locale: "de",
			Subject: "Ihr Bestätigungscode für Acme",
			Text:    "Ihr Bestätigungscode für Acme lautet 1234567.\nEr ist 10 Minuten gültig.\n\nFalls Sie diesen Code nicht angefordert haben, ignorieren Sie diese E-Mail."}},
		{"fr sms", twofold.SMS, "fr_CA", acme, Content{Locale: "fr",
			Text: "Votre code de vérification Acme est 1234567. Il est valable 10 minutes."}},
		{"es call", twofold.Call, "es-419", acme, Content{Locale: "es",
			Spoken: []string{"Tu código de verificación de Acme es", spoken, "Repito, tu código es", spoken},
			Text:   "Tu código de verificación de Acme es " + spoken + " Repito, tu código es " + spoken}},
		{"pt sms one minute", twofold.SMS, "pt-BR", withMinutes(acme, 1), Content{Locale: "pt",
			Text: "O seu código de verificação Acme é 1234567. É válido por 1 minuto."}},
		{"pl sms", twofold.SMS, "pl", acme, Content{Locale: "pl",
			Text: "Twój kod weryfikacyjny Acme to 1234567. Jest ważny przez 10 minut."}},
		{"ja sms", twofold.SMS, "ja-JP", acme, Content{Locale: "ja",
			Text: "Acmeの認証コードは1234567です。10分間有効です。"}},
		{"ja sms purpose", twofold.SMS, "ja", withPurpose(acme, "ログイン"), Content{Locale: "ja",
			Text: "Acmeの認証コード（ログイン）は1234567です。10分間有効です。"}},
		{"ja call", twofold.Call, "ja", acme, Content{Locale: "ja",
			Spoken: []string{"Acmeの認証コードをお知らせします。", spoken, "もう一度繰り返します。", spoken},
			Text:   "Acmeの認証コードをお知らせします。 " + spoken + " もう一度繰り返します。 " + spoken}},
		{"zh sms", twofold.SMS, "zh-Hans-CN", acme, Content{Locale: "zh",
			Text: "您的Acme验证码是1234567。有效期为10分钟。"}},
		{"zh email", twofold.Email, "zh", acme, Content{Locale: "zh",
			Subject: "您的Acme验证码",
			Text:    "您的Acme验证码是1234567。\n有效期为10分钟。\n\n如果这不是您本人的操作，请忽略此邮件。"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Render(tt.ch, tt.locale, tt.d)
			got.HTML = "" // checked by TestHTML
			if got.Locale != tt.want.Locale || got.Text != tt.want.Text || got.Subject != tt.want.Subject ||
				!slices.Equal(got.Spoken, tt.want.Spoken) {
				t.Errorf("Render(%q, %q, %+v)\n got %#v\nwant %#v", tt.ch, tt.locale, tt.d, got, tt.want)
			}
		})
	}
}

func TestHTML(t *testing.T) {
	c := Render(twofold.Email, "en", Data{App: "Acme", Code: "1234567", Minutes: 10, Purpose: "login"})
	for _, want := range []string{
		`<!DOCTYPE html>`,
		`<html lang="en">`,
		`<title>Your Acme verification code</title>`,
		`Your Acme verification code for login is <strong style="font-family:Menlo,Consolas,monospace;font-size:24px;letter-spacing:2px">1234567</strong>.</p>`,
		`>It is valid for 10 minutes.</p>`,
		`>If you did not ask for this code, ignore this email.</p>`,
	} {
		if !strings.Contains(c.HTML, want) {
			t.Errorf("HTML lacks %q:\n%s", want, c.HTML)
		}
	}
	if c := Render(twofold.Email, "en", Data{App: "Acme", Code: "1234567"}); strings.Contains(c.HTML, "valid for") {
		t.Errorf("HTML states a validity for 0 minutes:\n%s", c.HTML)
	}
}

// TestHTMLSelfContained: mail clients block remote content and scripts, and the body must
// render without them.
func TestHTMLSelfContained(t *testing.T) {
	for _, loc := range Locales() {
		html := strings.ToLower(Render(twofold.Email, loc, Data{App: "Acme", Code: "1234567", Minutes: 10, Purpose: "login"}).HTML)
		for _, bad := range []string{"<script", "<link", "<img", "<style", "<iframe", "src=", "href=", "url(", "@import", "http:", "https:", "javascript:"} {
			if strings.Contains(html, bad) {
				t.Errorf("%s: HTML contains %q:\n%s", loc, bad, html)
			}
		}
		if handler := regexp.MustCompile(`\son[a-z]+=`).FindString(html); handler != "" {
			t.Errorf("%s: HTML has an event handler %q", loc, handler)
		}
		if !strings.Contains(html, `<html lang="`+loc+`">`) || !strings.Contains(html, `<meta charset="utf-8">`) {
			t.Errorf("%s: HTML lacks lang or charset:\n%s", loc, html)
		}
	}
}

func TestEscaping(t *testing.T) {
	d := Data{App: `<script>alert(1)</script>`, Code: "1234567", Minutes: 10, Purpose: `"><img src=x>`}
	for _, loc := range Locales() {
		c := Render(twofold.Email, loc, d)
		for _, bad := range []string{"<script", "<img"} {
			if strings.Contains(c.HTML, bad) {
				t.Errorf("%s: HTML contains unescaped %q:\n%s", loc, bad, c.HTML)
			}
		}
		for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&#34;&gt;&lt;img src=x&gt;"} {
			if !strings.Contains(c.HTML, want) {
				t.Errorf("%s: HTML lacks %q:\n%s", loc, want, c.HTML)
			}
		}
		// Plain text stays plain: escaping it would show entities to the reader.
		if !strings.Contains(c.Text, d.App) || !strings.Contains(c.Text, d.Purpose) || !strings.Contains(c.Subject, d.App) {
			t.Errorf("%s: plain text was altered: %q / %q", loc, c.Subject, c.Text)
		}
		if sms := Render(twofold.SMS, loc, d); !strings.Contains(sms.Text, d.App) || !strings.Contains(sms.Text, d.Purpose) {
			t.Errorf("%s: SMS text was altered: %q", loc, sms.Text)
		}
	}
}

func TestControlCharacters(t *testing.T) {
	d := Data{
		App:     "Ac\r\nme\x00\x1b[31m",
		Code:    "1234567",
		Minutes: 10,
		// Newlines would add a header or an SMS line; the RLO would show the code reversed.
		Purpose: "log\tin\r\nBcc: evil@example.com\u2028\u202e\x7f\u0085x",
	}
	for _, loc := range Locales() {
		for _, ch := range channels {
			c := Render(ch, loc, d)
			oneLine := append([]string{c.Subject}, c.Spoken...)
			if ch != twofold.Email {
				oneLine = append(oneLine, c.Text)
			}
			for _, s := range oneLine {
				if i := strings.IndexFunc(s, isControlOrBidi); i >= 0 {
					t.Errorf("%s %s: control character %q in %q", loc, ch, s[i:], s)
				}
			}
			if ch == twofold.Email && strings.ContainsFunc(c.Text, func(r rune) bool { return r != '\n' && isControlOrBidi(r) }) {
				t.Errorf("%s email: control character in %q", loc, c.Text)
			}
			if !strings.Contains(c.Text, "Ac me[31m") || !strings.Contains(c.Text, "log in Bcc: evil@example.com x") {
				t.Errorf("%s %s: cleaned App or Purpose missing from %q", loc, ch, c.Text)
			}
		}
	}
}

func isControlOrBidi(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || unicode.In(r, unicode.Zl, unicode.Zp)
}

func TestClean(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Acme", "Acme"},
		{"  Acme   Corp  ", "Acme Corp"},
		{"a\nb", "a b"},
		{"a\r\n\tb", "a b"},
		{"a\x00b\x7fc", "abc"},
		{"\u202eabc\u202c", "abc"},
		{"a\u2028b", "a b"},
		{"a\u00a0b", "a\u00a0b"}, // a no-break space is text
		{"a\xffb", "a\ufffdb"},
		{"\n\n", ""},
	}
	for _, tt := range tests {
		if got := clean(tt.in); got != tt.want {
			t.Errorf("clean(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestDigitRuns checks, in every language and channel, the rules the rest of the system relies
// on to find the code in a message.
func TestDigitRuns(t *testing.T) {
	long := regexp.MustCompile(`[0-9]{4,}`)
	for _, loc := range Locales() {
		for _, code := range []string{"000000", "1234567", "98765432", "1000000001"} {
			for _, minutes := range []int{0, 1, 2, 5, 10, 22, 999} {
				for _, purpose := range []string{"", "login"} {
					d := Data{App: "Acme Corp", Code: code, Minutes: minutes, Purpose: purpose}
					for _, ch := range channels {
						c := Render(ch, loc, d)
						if c.Locale != loc {
							t.Errorf("%s %s: Locale %q", loc, ch, c.Locale)
						}
						switch ch {
						case twofold.Call:
							checkCall(t, loc, d, c)
						case twofold.Email:
							for _, s := range []string{c.Text, c.HTML} {
								if got := long.FindAllString(s, -1); !slices.Equal(got, []string{code}) {
									t.Errorf("%s email %+v: runs of 4+ digits %q, want only the code:\n%s", loc, d, got, s)
								}
							}
							if long.MatchString(c.Subject) || c.Subject == "" || !strings.Contains(c.Subject, "Acme Corp") {
								t.Errorf("%s email: subject %q", loc, c.Subject)
							}
							if c.Spoken != nil {
								t.Errorf("%s email: Spoken set", loc)
							}
						default:
							if got := long.FindAllString(c.Text, -1); !slices.Equal(got, []string{code}) {
								t.Errorf("%s sms %+v: runs of 4+ digits %q, want only the code: %q", loc, d, got, c.Text)
							}
							if c.Subject != "" || c.HTML != "" || c.Spoken != nil {
								t.Errorf("%s sms: email or call fields set: %#v", loc, c)
							}
						}
						if purpose != "" && !strings.Contains(c.Text, purpose) {
							t.Errorf("%s %s: purpose missing from %q", loc, ch, c.Text)
						}
						if valid := langs[loc].valid(minutes); ch != twofold.Call && (valid == "" || !strings.Contains(c.Text, valid)) != (minutes == 0) {
							t.Errorf("%s %s: validity %q for %d minutes, text %q", loc, ch, valid, minutes, c.Text)
						}
					}
				}
			}
		}
	}
}

func checkCall(t *testing.T, loc string, d Data, c Content) {
	t.Helper()
	var digits []string
	for _, r := range d.Code {
		digits = append(digits, string(r))
	}
	spoken := strings.Join(digits, ", ")
	if len(c.Spoken) != 4 || c.Spoken[1] != spoken || c.Spoken[3] != spoken {
		t.Errorf("%s call: Spoken %q", loc, c.Spoken)
		return
	}
	if n := strings.Count(c.Text, spoken); n != 2 {
		t.Errorf("%s call: code spoken %d times in %q", loc, n, c.Text)
	}
	if strings.Contains(c.Text, d.Code) || strings.ContainsAny(c.Spoken[0]+c.Spoken[2], "0123456789") {
		t.Errorf("%s call: digits outside the code lines: %q", loc, c.Spoken)
	}
	if c.Text != strings.Join(c.Spoken, " ") {
		t.Errorf("%s call: Text %q is not Spoken joined", loc, c.Text)
	}
	if c.Spoken[0] == "" || c.Spoken[2] == "" || c.Subject != "" || c.HTML != "" {
		t.Errorf("%s call: %#v", loc, c)
	}
}

func TestPlurals(t *testing.T) {
	tests := []struct {
		locale  string
		minutes int
		want    string
	}{
		{"en", 1, "It is valid for 1 minute."},
		{"en", 2, "It is valid for 2 minutes."},
		{"en", 21, "It is valid for 21 minutes."},
		{"fr", 1, "Il est valable 1 minute."},
		{"fr", 2, "Il est valable 2 minutes."},
		{"es", 1, "Es válido durante 1 minuto."},
		{"es", 15, "Es válido durante 15 minutos."},
		{"pt", 2, "É válido por 2 minutos."},
		{"it", 1, "È valido per 1 minuto."},
		{"it", 5, "È valido per 5 minuti."},
		{"de", 1, "Er ist 1 Minute gültig."},
		{"de", 3, "Er ist 3 Minuten gültig."},
		{"pl", 1, "Jest ważny przez 1 minutę."},
		{"pl", 2, "Jest ważny przez 2 minuty."},
		{"pl", 4, "Jest ważny przez 4 minuty."},
		{"pl", 5, "Jest ważny przez 5 minut."},
		{"pl", 11, "Jest ważny przez 11 minut."},
		{"pl", 12, "Jest ważny przez 12 minut."},
		{"pl", 14, "Jest ważny przez 14 minut."},
		{"pl", 21, "Jest ważny przez 21 minut."},
		{"pl", 22, "Jest ważny przez 22 minuty."},
		{"pl", 24, "Jest ważny przez 24 minuty."},
		{"pl", 25, "Jest ważny przez 25 minut."},
		{"pl", 101, "Jest ważny przez 101 minut."},
		{"pl", 102, "Jest ważny przez 102 minuty."},
		{"pl", 112, "Jest ważny przez 112 minut."},
		{"pl", 122, "Jest ważny przez 122 minuty."},
		{"ja", 1, "1分間有効です。"},
		{"ja", 10, "10分間有効です。"},
		{"zh", 1, "有效期为1分钟。"},
		{"zh", 10, "有效期为10分钟。"},
	}
	for _, tt := range tests {
		if got := langs[tt.locale].valid(tt.minutes); got != tt.want {
			t.Errorf("%s valid(%d) = %q, want %q", tt.locale, tt.minutes, got, tt.want)
		}
	}
	// Every language with plurals says 1 and 2 minutes differently.
	for _, loc := range Locales() {
		if loc == "ja" || loc == "zh" {
			continue
		}
		l := langs[loc]
		if strings.Replace(l.valid(1), "1", "", 1) == strings.Replace(l.valid(2), "2", "", 1) {
			t.Errorf("%s: same text for 1 and 2 minutes: %q", loc, l.valid(1))
		}
	}
}

// TestTable checks each language's texts have the placeholders Render relies on.
func TestTable(t *testing.T) {
	for _, loc := range []string{"en", "es", "pt", "fr", "de", "it", "pl", "ja", "zh"} {
		if _, ok := langs[loc]; !ok {
			t.Errorf("language %s is missing", loc)
		}
	}
	for loc, l := range langs {
		type text struct {
			name, text string
			want       []string // each exactly once; other placeholders not at all
		}
		texts := []text{
			{"Code", l.Code, []string{"{app}", "{code}"}},
			{"CodeFor", l.CodeFor, []string{"{app}", "{purpose}", "{code}"}},
			{"ValidOther", l.ValidOther, []string{"{n}"}},
			{"Subject", l.Subject, []string{"{app}"}},
			{"Ignore", l.Ignore, nil},
			{"Say", l.Say, []string{"{app}"}},
			{"SayFor", l.SayFor, []string{"{app}", "{purpose}"}},
			{"SayAgain", l.SayAgain, nil},
		}
		// Only the forms the language's rule picks must be written.
		if l.Plural(1) == one {
			texts = append(texts, text{"ValidOne", l.ValidOne, []string{"{n}"}})
		}
		if l.Plural(2) == few {
			texts = append(texts, text{"ValidFew", l.ValidFew, []string{"{n}"}})
		}
		for _, p := range texts {
			if p.text == "" {
				t.Errorf("%s.%s is empty", loc, p.name)
			}
			for _, ph := range []string{"{app}", "{purpose}", "{code}", "{n}"} {
				want := 0
				if slices.Contains(p.want, ph) {
					want = 1
				}
				if n := strings.Count(p.text, ph); n != want {
					t.Errorf("%s.%s has %s %d times, want %d: %q", loc, p.name, ph, n, want, p.text)
				}
			}
			if strings.ContainsAny(strings.ReplaceAll(p.text, "{n}", ""), "0123456789") {
				t.Errorf("%s.%s contains a digit: %q", loc, p.name, p.text)
			}
		}
		if l.Sep != " " && l.Sep != "" {
			t.Errorf("%s.Sep = %q", loc, l.Sep)
		}
	}
}

func TestAppOrPurposeWithPlaceholders(t *testing.T) {
	c := Render(twofold.SMS, "en", Data{App: "{code}{purpose}", Code: "1234567", Minutes: 10, Purpose: "{app}{n}"})
	want := "Your {code}{purpose} verification code for {app}{n} is 1234567. It is valid for 10 minutes."
	if c.Text != want {
		t.Errorf("Text = %q, want %q", c.Text, want)
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"en", "en"},
		{"es-MX", "es"},
		{"ES", "es"},
		{"es_419", "es"},
		{"pt-BR", "pt"},
		{"pt_PT.UTF-8", "pt"},
		{"zh-Hans-CN", "zh"},
		{" fr-CA ", "fr"},
		{"de;q=0.8", "de"},
		{"It", "it"},
		{"pl-PL", "pl"},
		{"ja", "ja"},
		{"", "en"},
		{"-", "en"},
		{"xx", "en"},
		{"eng", "en"},
		{"english", "en"},
		{"nl-BE", "en"},
		{"\x00es", "en"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLocales(t *testing.T) {
	got := Locales()
	if !slices.IsSorted(got) || len(got) != len(langs) {
		t.Errorf("Locales() = %q", got)
	}
	got[0] = "mutated"
	if Locales()[0] == "mutated" {
		t.Error("Locales shares its slice")
	}
	for _, loc := range Locales() {
		if Normalize(loc) != loc {
			t.Errorf("Normalize(%q) = %q", loc, Normalize(loc))
		}
	}
}

// gsmBasic is the GSM 03.38 default alphabet; gsmExtended characters take two septets.
const (
	gsmBasic    = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtended = "^{}\\[~]|€\f"
)

// gsmLen is the number of GSM septets s takes, or -1 if s needs UCS-2.
func gsmLen(s string) int {
	n := 0
	for _, r := range s {
		switch {
		case strings.ContainsRune(gsmBasic, r):
			n++
		case strings.ContainsRune(gsmExtended, r):
			n += 2
		default:
			return -1
		}
	}
	return n
}

// TestSMSLengthEN: an English code SMS must fit one GSM-7 segment.
func TestSMSLengthEN(t *testing.T) {
	app := strings.Repeat("W", 30)
	for _, minutes := range []int{1, 10, 999} {
		text := Render(twofold.SMS, "en", Data{App: app, Code: "1234567", Minutes: minutes}).Text
		if n := gsmLen(text); n < 0 || n >= 160 {
			t.Errorf("GSM length %d of %q", n, text)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add("en", "Acme", "1234567", "", 10)
	f.Add("pl-PL", "Acme", "0000000", "logowanie", 22)
	f.Add("zh-Hans-CN", "<script>alert(1)</script>", "12", `"><img src=x>`, 1)
	f.Add("", "", "", "", 0)
	f.Add("ja_JP", "Ac\r\nme", "１２３", "\u202e\x00", -5)
	f.Add("\xff", "{code}", "{code}", "{app}", 1<<62)
	ascii := regexp.MustCompile(`^[0-9]+$`)
	f.Fuzz(func(t *testing.T, locale, app, code, purpose string, minutes int) {
		d := Data{App: app, Code: code, Minutes: minutes, Purpose: purpose}
		for _, ch := range channels {
			c := Render(ch, locale, d)
			if !slices.Contains(Locales(), c.Locale) {
				t.Fatalf("Locale %q", c.Locale)
			}
			for _, s := range append([]string{c.Text, c.Subject, c.HTML}, c.Spoken...) {
				if !utf8.ValidString(s) {
					t.Fatalf("%s: invalid UTF-8 in %q", ch, s)
				}
			}
			oneLine := append([]string{c.Subject}, c.Spoken...)
			if ch != twofold.Email {
				oneLine = append(oneLine, c.Text)
			}
			for _, s := range oneLine {
				if strings.ContainsFunc(s, isControlOrBidi) {
					t.Fatalf("%s: control character in %q", ch, s)
				}
			}
			if !ascii.MatchString(code) {
				continue
			}
			switch ch {
			case twofold.Call:
				// App and Purpose may hold digits too, so only the shape is checked here.
				digits := strings.Join(strings.Split(code, ""), ", ")
				if len(c.Spoken) != 4 || c.Spoken[1] != digits || c.Spoken[3] != digits || c.Text != strings.Join(c.Spoken, " ") {
					t.Fatalf("call for code %q: %q / %q", code, c.Spoken, c.Text)
				}
			case twofold.Email:
				if !strings.Contains(c.Text, code) || !strings.Contains(c.HTML, code) {
					t.Fatalf("email lacks code %q:\n%s\n%s", code, c.Text, c.HTML)
				}
			default:
				if !strings.Contains(c.Text, code) {
					t.Fatalf("sms lacks code %q: %q", code, c.Text)
				}
			}
		}
	})
}
