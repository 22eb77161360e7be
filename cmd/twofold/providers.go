package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/deliver/gateway"
	"github.com/twofold-auth/twofold/internal/deliver/smtpmail"
	"github.com/twofold-auth/twofold/internal/deliver/twilio"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// twilioStatusPath is where Twilio reports delivery status, under the public URL.
const twilioStatusPath = "/v1/providers/twilio/status"

const providersHelp = `
Delivery providers are configured with environment variables (secrets never go on a command line):

  Twilio (SMS and voice):  TWOFOLD_TWILIO_ACCOUNT_SID, TWOFOLD_TWILIO_AUTH_TOKEN,
                           TWOFOLD_TWILIO_FROM and/or TWOFOLD_TWILIO_MESSAGING_SERVICE_SID,
                           TWOFOLD_TWILIO_BASE_URL (default https://api.twilio.com)
  HTTP SMS gateway:        TWOFOLD_GATEWAY_URL, TWOFOLD_GATEWAY_METHOD, TWOFOLD_GATEWAY_FORMAT (json|form),
                           TWOFOLD_GATEWAY_TEMPLATE, TWOFOLD_GATEWAY_AUTH_HEADER, TWOFOLD_GATEWAY_ID_FIELD
  Email over SMTP:         TWOFOLD_SMTP_HOST, TWOFOLD_SMTP_PORT, TWOFOLD_SMTP_USERNAME, TWOFOLD_SMTP_PASSWORD,
                           TWOFOLD_SMTP_FROM, TWOFOLD_SMTP_TLS (starttls|tls|none),
                           TWOFOLD_SMTP_CA_FILE (PEM certificates to trust instead of the system's)

A channel uses the provider named by --sms-provider, --call-provider or --email-provider; by
default the first configured of twilio, gateway (SMS), smtp (email), else the outbox, which
delivers nothing and keeps every message for ` + "`twofold outbox`" + `. An application can choose its own
with ` + "`twofold app update ID --sms-provider NAME`" + `.`

// providerFlags adds the flags that pick providers and bound delivery.
func providerFlags(f *pflag.FlagSet) {
	f.String("sms-provider", "", "provider for SMS: twilio, gateway or outbox; default: the first configured")
	f.String("call-provider", "", "provider for voice calls: twilio or outbox; default: twilio if configured")
	f.String("email-provider", "", "provider for email: smtp or outbox; default: smtp if configured")
	def := deliver.DefaultRouterConfig()
	f.Int("delivery-attempts", def.Attempts, "tries to hand a message to its provider")
	f.Duration("delivery-timeout", def.Timeout, "time allowed for one try")
	f.Duration("delivery-deadline", def.Deadline, "time allowed for all tries; then the API answers 60015/60014")
}

// newRouter builds the configured providers and the router over them.
func newRouter(ctx context.Context, f *pflag.FlagSet, env Env, in *instance, obs deliver.Observer, log *slog.Logger) (*deliver.Router, *twilio.Client, error) {
	var providers []deliver.Provider
	tw, err := twilioFromEnv(env, f)
	if err != nil {
		return nil, nil, err
	}
	if tw != nil {
		providers = append(providers, tw)
	}
	if gw, err := gatewayFromEnv(env); err != nil {
		return nil, nil, err
	} else if gw != nil {
		providers = append(providers, gw)
	}
	if mailer, err := smtpFromEnv(env); err != nil {
		return nil, nil, err
	} else if mailer != nil {
		providers = append(providers, mailer)
	}
	configured := map[string]bool{}
	for _, p := range providers {
		configured[p.Name()] = true
	}
	cfg := deliver.RouterConfig{Defaults: map[twofold.Channel]string{}}
	for _, c := range []struct {
		ch    twofold.Channel
		flag  string
		order []string
	}{
		{twofold.SMS, "sms-provider", []string{"twilio", "gateway"}},
		{twofold.Call, "call-provider", []string{"twilio"}},
		{twofold.Email, "email-provider", []string{"smtp"}},
	} {
		name := strings.ToLower(mustString(f, c.flag))
		for _, candidate := range c.order {
			if name == "" && configured[candidate] {
				name = candidate
			}
		}
		if name == "" {
			name = deliver.OutboxOnly
		}
		cfg.Defaults[c.ch] = name
	}
	cfg.Attempts, _ = f.GetInt("delivery-attempts")
	cfg.Timeout, _ = f.GetDuration("delivery-timeout")
	cfg.Deadline, _ = f.GetDuration("delivery-deadline")
	r, err := deliver.NewRouter(in.outbox, providers, cfg, obs, log)
	if err != nil {
		return nil, nil, fmt.Errorf("delivery: %w", err)
	}
	log.Info("delivery", "sms", cfg.Defaults[twofold.SMS], "call", cfg.Defaults[twofold.Call], "email", cfg.Defaults[twofold.Email])
	// An application may name a provider this server lacks: say so now, not at its first send.
	list, err := in.apps.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range list {
		for ch, name := range a.Providers {
			if err := r.Check(ch, name); err != nil {
				log.Warn("application's provider is not available: its codes will fail with 60015/60014", "app_id", a.ID, "channel", ch, "err", err)
			}
		}
	}
	return r, tw, nil
}

func twilioFromEnv(env Env, f *pflag.FlagSet) (*twilio.Client, error) {
	sid := env.Getenv("TWOFOLD_TWILIO_ACCOUNT_SID")
	if sid == "" {
		return nil, nil
	}
	cfg := twilio.Config{
		AccountSID: sid, AuthToken: env.Getenv("TWOFOLD_TWILIO_AUTH_TOKEN"), From: env.Getenv("TWOFOLD_TWILIO_FROM"),
		MessagingServiceSID: env.Getenv("TWOFOLD_TWILIO_MESSAGING_SERVICE_SID"), BaseURL: env.Getenv("TWOFOLD_TWILIO_BASE_URL"),
		HTTPClient: &http.Client{},
	}
	// Delivery receipts need an address Twilio can reach: only with a public URL.
	if public := strings.TrimRight(mustString(f, "public-url"), "/"); public != "" {
		cfg.StatusCallbackURL = public + twilioStatusPath
	}
	return twilio.New(cfg)
}

func gatewayFromEnv(env Env) (*gateway.Gateway, error) {
	u := env.Getenv("TWOFOLD_GATEWAY_URL")
	if u == "" {
		return nil, nil
	}
	return gateway.New(gateway.Config{
		URL: u, Method: env.Getenv("TWOFOLD_GATEWAY_METHOD"), Format: env.Getenv("TWOFOLD_GATEWAY_FORMAT"),
		Template: env.Getenv("TWOFOLD_GATEWAY_TEMPLATE"), AuthHeader: env.Getenv("TWOFOLD_GATEWAY_AUTH_HEADER"),
		IDField: env.Getenv("TWOFOLD_GATEWAY_ID_FIELD"),
	})
}

func smtpFromEnv(env Env) (*smtpmail.Mailer, error) {
	host := env.Getenv("TWOFOLD_SMTP_HOST")
	if host == "" {
		return nil, nil
	}
	cfg := smtpmail.Config{
		Host: host, Username: env.Getenv("TWOFOLD_SMTP_USERNAME"), Password: env.Getenv("TWOFOLD_SMTP_PASSWORD"),
		From: env.Getenv("TWOFOLD_SMTP_FROM"), TLS: env.Getenv("TWOFOLD_SMTP_TLS"),
	}
	if file := env.Getenv("TWOFOLD_SMTP_CA_FILE"); file != "" {
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("TWOFOLD_SMTP_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("TWOFOLD_SMTP_CA_FILE: %s holds no PEM certificate", file)
		}
		cfg.TLSConfig = &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
	}
	if p := env.Getenv("TWOFOLD_SMTP_PORT"); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port <= 0 || port > 65535 {
			return nil, fmt.Errorf("TWOFOLD_SMTP_PORT: %q is not a port number", p)
		}
		cfg.Port = port
	}
	return smtpmail.New(cfg)
}
