// Command oidc-login is a web application that signs users in with a password and hands the
// whole second factor to Twofold's hosted step through ordinary OpenID Connect libraries
// (github.com/coreos/go-oidc and golang.org/x/oauth2): no two-factor page of its own.
//
// Configuration comes from the environment or flags (flags win):
//
//	TWOFOLD_URL            --twofold-url     Twofold's public URL, the OpenID issuer (default http://127.0.0.1:8080)
//	TWOFOLD_CLIENT_ID      --client-id       the step client's id (required)
//	TWOFOLD_CLIENT_SECRET  --client-secret   its secret (required; prefer the environment: flags show in ps)
//	SAMPLE_ADDR            --addr            where this sample listens (default 127.0.0.1:3001)
//	SAMPLE_PUBLIC_URL      --public-url      this sample's URL as the browser reaches it (default http://SAMPLE_ADDR);
//	                                         the step client's redirect URI is PUBLIC_URL/callback
//	SAMPLE_USERS           --users           a CSV file of the users who may sign in: email,password[,twofold_id]
//	TWOFOLD_PASSWORDLESS   --passwordless    offer "Sign in with your phone" (the step client must allow
//	                                         passwordless sign-in: twofold oidc-client update ID --passwordless)
//
// See README.md beside this file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what the sample needs to run.
type config struct {
	TwofoldURL   string // the issuer: Twofold's public URL, exactly as its id tokens name it
	ClientID     string
	ClientSecret string
	Addr         string
	PublicURL    string // without a trailing slash
	UsersFile    string
	Passwordless bool // offer "Sign in with your phone": the step client allows passwordless sign-in

	Logger     *slog.Logger     // nil: discard
	HTTPClient *http.Client     // for the calls to Twofold; nil: a client with a 10 second timeout
	now        func() time.Time // nil: time.Now
}

const (
	defaultTwofoldURL = "http://127.0.0.1:8080"
	defaultAddr       = "127.0.0.1:3001"
	callbackPath      = "/callback"
)

// parseConfig reads the environment, then the flags.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("oidc-login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	or := func(env, def string) string {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			return v
		}
		return def
	}
	var cfg config
	fs.StringVar(&cfg.TwofoldURL, "twofold-url", or("TWOFOLD_URL", defaultTwofoldURL), "Twofold's public URL, the OpenID issuer (env TWOFOLD_URL)")
	fs.StringVar(&cfg.ClientID, "client-id", getenv("TWOFOLD_CLIENT_ID"), "the step client's id (env TWOFOLD_CLIENT_ID)")
	fs.StringVar(&cfg.ClientSecret, "client-secret", getenv("TWOFOLD_CLIENT_SECRET"), "the step client's secret (env TWOFOLD_CLIENT_SECRET; prefer the environment: flags show in ps)")
	fs.StringVar(&cfg.Addr, "addr", or("SAMPLE_ADDR", defaultAddr), "address to listen on (env SAMPLE_ADDR)")
	fs.StringVar(&cfg.PublicURL, "public-url", getenv("SAMPLE_PUBLIC_URL"), "this sample's public URL; the step client's redirect URI is PUBLIC_URL/callback (env SAMPLE_PUBLIC_URL; default http://ADDR)")
	fs.StringVar(&cfg.UsersFile, "users", getenv("SAMPLE_USERS"), "a CSV file of the users who may sign in: email,password[,twofold_id] (env SAMPLE_USERS)")
	pl, _ := strconv.ParseBool(strings.TrimSpace(getenv("TWOFOLD_PASSWORDLESS")))
	fs.BoolVar(&cfg.Passwordless, "passwordless", pl, `offer "Sign in with your phone"; the step client must allow passwordless sign-in (env TWOFOLD_PASSWORDLESS)`)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: oidc-login [flags]

Signs users in with a password, then sends them to Twofold's hosted second-factor step by
OpenID Connect and back. It needs a step client of a Twofold application whose users are
matched by email, with the redirect URI PUBLIC_URL/callback (examples/oidc-login/README.md).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	return cfg, nil
}

// check validates cfg and fills in its defaults.
func (cfg *config) check() error {
	cfg.ClientID, cfg.ClientSecret = strings.TrimSpace(cfg.ClientID), strings.TrimSpace(cfg.ClientSecret)
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return errors.New("TWOFOLD_CLIENT_ID and TWOFOLD_CLIENT_SECRET are required: the step client's id and secret")
	}
	if cfg.TwofoldURL == "" {
		cfg.TwofoldURL = defaultTwofoldURL
	}
	cfg.TwofoldURL = strings.TrimRight(cfg.TwofoldURL, "/")
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + cfg.Addr
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	for name, raw := range map[string]string{"TWOFOLD_URL": cfg.TwofoldURL, "SAMPLE_PUBLIC_URL": cfg.PublicURL} {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("%s %q is not an absolute http(s) URL without a query", name, raw)
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "oidc-login:", err)
		os.Exit(1)
	}
}

// run starts the sample and serves until ctx ends.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger = log
	h, err := newServer(cfg)
	if err != nil {
		return err
	}
	// A first look at Twofold tells a wrong TWOFOLD_URL at once rather than at the first sign-in.
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := h.twofold(dctx); err != nil {
		log.Warn("Twofold's OpenID discovery failed; sign-ins fail until it answers", "issuer", h.cfg.TwofoldURL, "err", err)
	}
	cancel()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	log.Info("oidc-login sample listening", "addr", "http://"+ln.Addr().String(), "issuer", h.cfg.TwofoldURL,
		"redirect_uri", h.cfg.PublicURL+callbackPath)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
