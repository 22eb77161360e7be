package message

// lang holds one language's texts. Placeholders: {app}, {purpose}, {code}, {n} (minutes).
// Each code sentence has exactly one {code}; nothing else in a text is a number but {n}, so the
// code is the only long run of digits in a message.
type lang struct {
	Code    string // the code sentence
	CodeFor string // the code sentence when a purpose is set
	Sep     string // between sentences on one line: " ", or "" after a full-width "。"

	// Validity, by plural form of {n}. Languages without plurals set only ValidOther;
	// only Polish needs ValidFew.
	Plural     func(n int) form
	ValidOne   string
	ValidFew   string
	ValidOther string

	Subject string // email subject, never the code: subjects show up in notifications and logs
	Ignore  string // last line of an email

	// Calls: Say, then the code, then SayAgain, then the code again.
	Say      string
	SayFor   string // Say when a purpose is set
	SayAgain string
}

// langs is every supported language, by base language.
var langs = map[string]lang{
	"en": {
		Code:       "Your {app} verification code is {code}.",
		CodeFor:    "Your {app} verification code for {purpose} is {code}.",
		Sep:        " ",
		Plural:     oneOther,
		ValidOne:   "It is valid for {n} minute.",
		ValidOther: "It is valid for {n} minutes.",
		Subject:    "Your {app} verification code",
		Ignore:     "If you did not ask for this code, ignore this email.",
		Say:        "Your {app} verification code is",
		SayFor:     "Your {app} verification code for {purpose} is",
		SayAgain:   "Again, your code is",
	},
	"es": {
		Code:       "Tu código de verificación de {app} es {code}.",
		CodeFor:    "Tu código de verificación de {app} para {purpose} es {code}.",
		Sep:        " ",
		Plural:     oneOther,
		ValidOne:   "Es válido durante {n} minuto.",
		ValidOther: "Es válido durante {n} minutos.",
		Subject:    "Tu código de verificación de {app}",
		Ignore:     "Si no solicitaste este código, ignora este correo.",
		Say:        "Tu código de verificación de {app} es",
		SayFor:     "Tu código de verificación de {app} para {purpose} es",
		SayAgain:   "Repito, tu código es",
	},
	// Wording that reads naturally in both Brazil and Portugal.
	"pt": {
		Code:       "O seu código de verificação {app} é {code}.",
		CodeFor:    "O seu código de verificação {app} para {purpose} é {code}.",
		Sep:        " ",
		Plural:     oneOther,
		ValidOne:   "É válido por {n} minuto.",
		ValidOther: "É válido por {n} minutos.",
		Subject:    "O seu código de verificação {app}",
		Ignore:     "Se não solicitou este código, ignore este e-mail.",
		Say:        "O seu código de verificação {app} é",
		SayFor:     "O seu código de verificação {app} para {purpose} é",
		SayAgain:   "Repetindo, o seu código é",
	},
	"fr": {
		Code:       "Votre code de vérification {app} est {code}.",
		CodeFor:    "Votre code de vérification {app} pour {purpose} est {code}.",
		Sep:        " ",
		Plural:     oneOther,
		ValidOne:   "Il est valable {n} minute.",
		ValidOther: "Il est valable {n} minutes.",
		Subject:    "Votre code de vérification {app}",
		Ignore:     "Si vous n'avez pas demandé ce code, ignorez cet e-mail.",
		Say:        "Votre code de vérification {app} est",
		SayFor:     "Votre code de vérification {app} pour {purpose} est",
		SayAgain:   "Je répète, votre code est",
	},
	// The purpose is free text in any case, so it goes in parentheses rather than after a
	// preposition that would demand a declension (also in Polish).
	"de": {
		Code:       "Ihr Bestätigungscode für {app} lautet {code}.",
		CodeFor:    "Ihr Bestätigungscode für {app} ({purpose}) lautet {code}.",
		Sep:        " ",
		Plural:     oneOther,
		ValidOne:   "Er ist {n} Minute gültig.",
		ValidOther: "Er ist {n} Minuten gültig.",
		Subject:    "Ihr Bestätigungscode für {app}",
		Ignore:     "Falls Sie diesen Code nicht angefordert haben, ignorieren Sie diese E-Mail.",
		Say:        "Ihr Bestätigungscode für {app} lautet",
		SayFor:     "Ihr Bestätigungscode für {app} ({purpose}) lautet",
		SayAgain:   "Noch einmal, Ihr Code lautet",
	},
	"it": {
		Code:       "Il tuo codice di verifica {app} è {code}.",
		CodeFor:    "Il tuo codice di verifica {app} per {purpose} è {code}.",
		Sep:        " ",
		Plural:     oneOther,
		ValidOne:   "È valido per {n} minuto.",
		ValidOther: "È valido per {n} minuti.",
		Subject:    "Il tuo codice di verifica {app}",
		Ignore:     "Se non hai richiesto questo codice, ignora questa email.",
		Say:        "Il tuo codice di verifica {app} è",
		SayFor:     "Il tuo codice di verifica {app} per {purpose} è",
		SayAgain:   "Ripeto, il tuo codice è",
	},
	// "przez" takes the accusative: 1 minutę, 2 minuty, 5 minut.
	"pl": {
		Code:       "Twój kod weryfikacyjny {app} to {code}.",
		CodeFor:    "Twój kod weryfikacyjny {app} ({purpose}) to {code}.",
		Sep:        " ",
		Plural:     polish,
		ValidOne:   "Jest ważny przez {n} minutę.",
		ValidFew:   "Jest ważny przez {n} minuty.",
		ValidOther: "Jest ważny przez {n} minut.",
		Subject:    "Twój kod weryfikacyjny {app}",
		Ignore:     "Jeśli nie oczekujesz tego kodu, zignoruj tę wiadomość.",
		Say:        "Twój kod weryfikacyjny {app} to",
		SayFor:     "Twój kod weryfikacyjny {app} ({purpose}) to",
		SayAgain:   "Powtarzam, Twój kod to",
	},
	"ja": {
		Code:       "{app}の認証コードは{code}です。",
		CodeFor:    "{app}の認証コード（{purpose}）は{code}です。",
		Sep:        "",
		Plural:     noPlural,
		ValidOther: "{n}分間有効です。",
		Subject:    "{app}の認証コード",
		Ignore:     "このコードに心当たりがない場合は、このメールを無視してください。",
		Say:        "{app}の認証コードをお知らせします。",
		SayFor:     "{app}の認証コード（{purpose}）をお知らせします。",
		SayAgain:   "もう一度繰り返します。",
	},
	// Simplified Chinese.
	"zh": {
		Code:       "您的{app}验证码是{code}。",
		CodeFor:    "您的{app}验证码（{purpose}）是{code}。",
		Sep:        "",
		Plural:     noPlural,
		ValidOther: "有效期为{n}分钟。",
		Subject:    "您的{app}验证码",
		Ignore:     "如果这不是您本人的操作，请忽略此邮件。",
		Say:        "您的{app}验证码是",
		SayFor:     "您的{app}验证码（{purpose}）是",
		SayAgain:   "再说一遍，您的验证码是",
	},
}

// form is a plural category of a count (CLDR's one, few, other; the rest are not needed for
// counts of minutes).
type form int

const (
	one form = iota
	few
	other
)

// oneOther is the rule of en, es, pt, fr, de and it for whole numbers n >= 1.
func oneOther(n int) form {
	if n == 1 {
		return one
	}
	return other
}

// polish: 1 minutę; 2-4, 22-24, 32-34, ... minuty; 5-21, 25-31, 112-114, ... minut.
func polish(n int) form {
	switch {
	case n == 1:
		return one
	case n%10 >= 2 && n%10 <= 4 && (n%100 < 12 || n%100 > 14):
		return few
	default:
		return other
	}
}

// noPlural is the rule of ja and zh.
func noPlural(int) form { return other }
