// Package gateway delivers messages through a generic HTTP SMS gateway (Jasmin, Kannel, an
// Android gateway app, a carrier's API): one request per message, its body rendered from a
// template the operator writes.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Body formats.
const (
	FormatJSON = "json"
	FormatForm = "form"
)

// Default templates. The json function and urlquery escape each value, so no message text can
// add fields or break out of the body.
const (
	DefaultJSONTemplate = `{"to":{{json .To}},"text":{{json .Text}},"id":{{json .SID}}}`
	DefaultFormTemplate = `to={{urlquery .To}}&text={{urlquery .Text}}&id={{urlquery .SID}}`
)

const (
	maxAnswer      = 64 << 10         // bytes of a gateway's answer that are read
	maxErrorAnswer = 200              // bytes of a refusal quoted in the error
	defaultTimeout = 30 * time.Second // for the default client, when ctx has no deadline
)

// Config configures a Gateway.
type Config struct {
	URL        string            // http or https
	Method     string            // POST (default), PUT, PATCH, or GET (form only: the body becomes the query string)
	Format     string            // "json" (default) or "form"
	Template   string            // text/template for the whole body; fields .To .Text .SID .Channel .Locale
	AuthHeader string            // optional "Name: value", e.g. "Authorization: Bearer xyz"
	IDField    string            // optional dotted path of the gateway's message id in a JSON answer, e.g. "data.message_id" or "messages.0.id"
	Channels   []twofold.Channel // channels it carries; default SMS only
	HTTPClient *http.Client      // optional; the default has a timeout and follows no redirects
}

// Gateway sends messages to one HTTP endpoint. It is safe for concurrent use.
type Gateway struct {
	url         *url.URL
	safeURL     string // without credentials or query, for errors
	method      string
	contentType string
	tmpl        *template.Template
	authName    string
	authValue   string
	idPath      []string
	channels    []twofold.Channel
	client      *http.Client
}

// templateData is what a template sees.
type templateData struct {
	To      string
	Text    string
	SID     string
	Channel string
	Locale  string
}

var sampleData = templateData{
	To: "+14155550123", Text: `Your code is 123456 "quoted" \ <b>`, SID: "SM0123456789abcdef", Channel: "sms", Locale: "en",
}

// New validates cfg and returns a Gateway. The template is parsed and tried on sample data once.
func New(cfg Config) (*Gateway, error) {
	g := &Gateway{}

	raw := strings.TrimSpace(cfg.URL)
	if raw == "" {
		return nil, errors.New("gateway: TWOFOLD_GATEWAY_URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("gateway: TWOFOLD_GATEWAY_URL is not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("gateway: TWOFOLD_GATEWAY_URL %q must be an http:// or https:// URL with a host", redactURL(u))
	}
	g.url, g.safeURL = u, redactURL(u)

	g.method = strings.ToUpper(strings.TrimSpace(cfg.Method))
	switch g.method {
	case "":
		g.method = http.MethodPost
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodGet:
	default:
		return nil, fmt.Errorf("gateway: TWOFOLD_GATEWAY_METHOD %q is not one of POST, PUT, PATCH, GET", cfg.Method)
	}

	format := strings.ToLower(strings.TrimSpace(cfg.Format))
	text := cfg.Template
	switch format {
	case "", FormatJSON:
		format, g.contentType = FormatJSON, "application/json"
		if strings.TrimSpace(text) == "" {
			text = DefaultJSONTemplate
		}
	case FormatForm:
		g.contentType = "application/x-www-form-urlencoded"
		if strings.TrimSpace(text) == "" {
			text = DefaultFormTemplate
		}
	default:
		return nil, fmt.Errorf("gateway: TWOFOLD_GATEWAY_FORMAT %q is not one of json, form", cfg.Format)
	}
	if g.method == http.MethodGet && format != FormatForm {
		return nil, errors.New("gateway: TWOFOLD_GATEWAY_METHOD=GET needs TWOFOLD_GATEWAY_FORMAT=form (the body becomes the query string)")
	}

	g.tmpl, err = template.New("body").Funcs(template.FuncMap{"json": jsonString}).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("gateway: TWOFOLD_GATEWAY_TEMPLATE: %w", err)
	}
	// Trying the template now turns a misspelt field into a startup error, not a failed code.
	sample, err := g.render(sampleData)
	if err != nil {
		return nil, fmt.Errorf("gateway: TWOFOLD_GATEWAY_TEMPLATE: %w", err)
	}
	switch format {
	case FormatJSON:
		if !json.Valid(sample) {
			// Not quoting the output: a template may hold an API key.
			return nil, errors.New("gateway: TWOFOLD_GATEWAY_TEMPLATE does not produce valid JSON (use {{json .Text}} for values)")
		}
	case FormatForm:
		if _, err := url.ParseQuery(string(sample)); err != nil {
			return nil, fmt.Errorf("gateway: TWOFOLD_GATEWAY_TEMPLATE does not produce a valid form (use {{urlquery .Text}} for values): %w", err)
		}
	}

	if h := strings.TrimSpace(cfg.AuthHeader); h != "" {
		name, value, ok := strings.Cut(h, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		// The value is a secret: these errors never quote it.
		switch {
		case !ok || name == "" || value == "":
			return nil, errors.New(`gateway: TWOFOLD_GATEWAY_AUTH_HEADER must look like "Name: value"`)
		case !isToken(name):
			return nil, fmt.Errorf("gateway: TWOFOLD_GATEWAY_AUTH_HEADER name %q is not a valid header name", name)
		case strings.ContainsAny(value, "\r\n\x00"):
			return nil, errors.New("gateway: TWOFOLD_GATEWAY_AUTH_HEADER value contains a line break")
		}
		g.authName, g.authValue = name, value
	}

	if f := strings.TrimSpace(cfg.IDField); f != "" {
		g.idPath = strings.Split(f, ".")
		if slices.Contains(g.idPath, "") {
			return nil, fmt.Errorf("gateway: TWOFOLD_GATEWAY_ID_FIELD %q has an empty part", f)
		}
	}

	g.channels = []twofold.Channel{twofold.SMS}
	if len(cfg.Channels) > 0 {
		for _, c := range cfg.Channels {
			switch c {
			case twofold.SMS, twofold.Call, twofold.Email:
			default:
				return nil, fmt.Errorf("gateway: unknown channel %q", c)
			}
		}
		g.channels = slices.Clone(cfg.Channels)
	}

	g.client = cfg.HTTPClient
	if g.client == nil {
		g.client = &http.Client{
			Timeout: defaultTimeout,
			// A redirect would carry the message, and a custom auth header, wherever it points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return g, nil
}

// Name implements deliver.Provider.
func (g *Gateway) Name() string { return "gateway" }

// Deliver renders m into a request and sends it. A 2xx answer is success; 408, 429 and 5xx
// answers, network errors and timeouts are worth retrying; other answers are permanent.
func (g *Gateway) Deliver(ctx context.Context, m deliver.Outgoing) (deliver.Receipt, error) {
	if !slices.Contains(g.channels, m.Channel) {
		return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("gateway: message %s: channel %q is not carried by this gateway", m.SID, m.Channel))
	}
	body, err := g.render(templateData{To: m.To, Text: m.Text, SID: m.SID, Channel: string(m.Channel), Locale: m.Locale})
	if err != nil {
		return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("gateway: message %s: template: %w", m.SID, err))
	}

	u := *g.url
	var reqBody io.Reader
	if g.method == http.MethodGet {
		u.RawQuery = joinQuery(u.RawQuery, string(body))
	} else {
		reqBody = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, g.method, u.String(), reqBody)
	if err != nil {
		return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("gateway: message %s: %w", m.SID, err))
	}
	if reqBody != nil {
		req.Header.Set("Content-Type", g.contentType)
	}
	req.Header.Set("User-Agent", "twofold")
	if g.authName != "" {
		req.Header.Set(g.authName, g.authValue)
	}

	resp, err := g.client.Do(req)
	if err != nil {
		// url.Error quotes the whole URL, which may hold a key in its query: keep only the cause.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return deliver.Receipt{}, fmt.Errorf("gateway: message %s: %s %s: %w", m.SID, g.method, g.safeURL, err)
	}
	defer resp.Body.Close()
	// A read error after a 2xx status changes nothing: the gateway took the message.
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return deliver.Receipt{ID: g.answerID(answer)}, nil
	}
	err = fmt.Errorf("gateway: message %s: %s %s answered %s: %s",
		m.SID, g.method, g.safeURL, resp.Status, g.excerpt(answer))
	if deliver.RetryableStatus(resp.StatusCode) {
		return deliver.Receipt{}, err
	}
	return deliver.Receipt{}, deliver.Permanent(err)
}

func (g *Gateway) render(d templateData) ([]byte, error) {
	var b bytes.Buffer
	if err := g.tmpl.Execute(&b, d); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// answerID finds the IDField in a JSON answer; "" when unset, absent or not a string or number.
func (g *Gateway) answerID(answer []byte) string {
	if len(g.idPath) == 0 {
		return ""
	}
	dec := json.NewDecoder(bytes.NewReader(answer))
	dec.UseNumber() // keeps long numeric ids exact
	var v any
	if err := dec.Decode(&v); err != nil {
		return ""
	}
	for _, key := range g.idPath {
		switch node := v.(type) {
		case map[string]any:
			v = node[key]
		case []any:
			i, err := strconv.Atoi(key)
			if err != nil || i < 0 || i >= len(node) {
				return ""
			}
			v = node[i]
		default:
			return ""
		}
	}
	switch id := v.(type) {
	case string:
		return id
	case json.Number:
		return id.String()
	}
	return ""
}

// excerpt quotes the start of a refusal for an error, without the auth header's value.
func (g *Gateway) excerpt(answer []byte) string {
	s := string(answer)
	if g.authValue != "" {
		// Also the credential alone, as in "Bearer xyz", should the gateway echo only "xyz".
		fields := strings.Fields(g.authValue)
		for _, secret := range []string{g.authValue, fields[len(fields)-1]} {
			s = strings.ReplaceAll(s, secret, "[redacted]")
		}
	}
	if len(s) > maxErrorAnswer {
		s = s[:maxErrorAnswer] + "…"
	}
	return strconv.Quote(strings.ToValidUTF8(s, "\uFFFD"))
}

// jsonString is the template's json function: v as a JSON value, quotes included.
func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func joinQuery(a, b string) string {
	if a == "" {
		return b
	}
	if b == "" {
		return a
	}
	return a + "&" + b
}

// redactURL drops credentials and the query, where gateways often take their API key.
func redactURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// isToken reports whether s is an RFC 9110 token, as header names must be.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
