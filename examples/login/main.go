// Command login is the login flow of the Authy two-factor tutorials, built on Twofold: sign up
// with a phone number, log in with a password, then approve the login in an authenticator app
// (OneTouch) or type a code sent by SMS or a voice call.
//
// It talks to Twofold only through the public package
// github.com/twofold-auth/twofold/client. Configuration comes from the environment or flags:
//
//	TWOFOLD_URL        --twofold-url   Twofold's address (default http://127.0.0.1:8080)
//	TWOFOLD_API_KEY    --api-key       the application's API key (required)
//	SAMPLE_ADDR        --addr          where this sample listens (default 127.0.0.1:3000)
//	SAMPLE_PUBLIC_URL  --public-url    the URL Twofold calls back (default http://SAMPLE_ADDR)
//	SAMPLE_SEED_USERS  --seed-users    a CSV file of users to start with, each with their authy_id,
//	                                   as after a move from Authy (see seed.go)
//	SAMPLE_PHONE_WAIT  --phone-wait    how long "Sign in with your phone" waits for the phone
//	                                   (default 90s; 1s to 10m)
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
	"strings"
	"syscall"
	"time"

	"github.com/twofold-auth/twofold/client"
)

// config is what the sample needs to run.
type config struct {
	TwofoldURL string // Twofold's base URL
	APIKey     string // the Twofold application's API key
	Addr       string // host:port to listen on
	PublicURL  string // this sample's URL as Twofold (and the browser) reach it, without a trailing slash
	SeedUsers  string // a CSV file of users to start with (see seed.go); "" for none
	// PhoneWait is how long "Sign in with your phone" waits for the phone to answer: the
	// passwordless request's expiry. Short, so that someone without the app, or whose phone is
	// elsewhere, is soon back at the password form. 0: defaultPhoneWait.
	PhoneWait time.Duration

	Logger     *slog.Logger // nil: discard
	HTTPClient *http.Client // for the calls to Twofold; nil: a client with a 10 second timeout

	now func() time.Time // the clock; nil: time.Now (tests set it)
}

const (
	defaultTwofoldURL = "http://127.0.0.1:8080"
	defaultAddr       = "127.0.0.1:3000"
	defaultPhoneWait  = 90 * time.Second
	maxPhoneWait      = 10 * time.Minute // Twofold's longest passwordless request
)

// parseConfig reads the configuration from the environment, then the flags, which win.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	or := func(env, def string) string {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			return v
		}
		return def
	}
	var cfg config
	fs.StringVar(&cfg.TwofoldURL, "twofold-url", or("TWOFOLD_URL", defaultTwofoldURL), "Twofold's base URL (env TWOFOLD_URL)")
	fs.StringVar(&cfg.APIKey, "api-key", getenv("TWOFOLD_API_KEY"), "the application's API key (env TWOFOLD_API_KEY; prefer the environment: flags show in ps)")
	fs.StringVar(&cfg.Addr, "addr", or("SAMPLE_ADDR", defaultAddr), "address to listen on (env SAMPLE_ADDR)")
	fs.StringVar(&cfg.PublicURL, "public-url", getenv("SAMPLE_PUBLIC_URL"), "this sample's public URL, which Twofold calls back at /authy/callback (env SAMPLE_PUBLIC_URL; default http://ADDR)")
	fs.StringVar(&cfg.SeedUsers, "seed-users", getenv("SAMPLE_SEED_USERS"), "a CSV file of users to start with, with their authy_ids, as a database after a move from Authy holds them:\n"+
		"columns email,password_hash (or password),country_code,phone,authy_id (env SAMPLE_SEED_USERS)")
	phoneWait := defaultPhoneWait
	if v := strings.TrimSpace(getenv("SAMPLE_PHONE_WAIT")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return config{}, fmt.Errorf("SAMPLE_PHONE_WAIT %q is not a duration, like 90s", v)
		}
		phoneWait = d
	}
	fs.DurationVar(&cfg.PhoneWait, "phone-wait", phoneWait, "how long \"Sign in with your phone\" waits for the phone, 1s to 10m (env SAMPLE_PHONE_WAIT)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: login [flags]

The Authy tutorial's login flow on Twofold: sign up, log in with a password, then approve the
login in the authenticator app (OneTouch) or type a code sent by SMS.

Get the API key with:  twofold app show 1 --show-key
Point OneTouch callbacks at this sample with:
                       twofold app update 1 --callback-url PUBLIC_URL/authy/callback
and, when PUBLIC_URL is on loopback or a private network, allow its host:port on the server with
                       twofold serve --callback-allow-hosts HOST:PORT
Start with users who already have an Authy id (imported into Twofold), as after a move from
Authy, with --seed-users FILE.

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
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + cfg.Addr
	}
	if strings.TrimSpace(cfg.APIKey) == "" {
		return config{}, errors.New("TWOFOLD_API_KEY is not set: give the Twofold application's API key " +
			"(print it with: twofold app show 1 --show-key), in the environment or with --api-key")
	}
	return cfg, nil
}

// check validates cfg and fills in its defaults.
func (cfg *config) check() error {
	cfg.APIKey = strings.TrimSpace(cfg.APIKey)
	if cfg.APIKey == "" {
		return errors.New("TWOFOLD_API_KEY is required")
	}
	if cfg.TwofoldURL == "" {
		cfg.TwofoldURL = defaultTwofoldURL
	}
	if cfg.Addr == "" {
		cfg.Addr = defaultAddr
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + cfg.Addr
	}
	if cfg.PhoneWait == 0 {
		cfg.PhoneWait = defaultPhoneWait
	}
	if cfg.PhoneWait < time.Second || cfg.PhoneWait > maxPhoneWait {
		return fmt.Errorf("SAMPLE_PHONE_WAIT %s: give 1s to 10m", cfg.PhoneWait)
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return fmt.Errorf("SAMPLE_PUBLIC_URL %q is not an absolute http(s) URL without a query", cfg.PublicURL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
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
		fmt.Fprintln(os.Stderr, "login:", err)
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
	// A first call tells a wrong key or address at once rather than at the first sign-up.
	tf, _ := client.New(cfg.TwofoldURL, cfg.APIKey)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	app, err := tf.App(cctx)
	cancel()
	switch {
	case client.IsCode(err, client.CodeInvalidAPIKey):
		return fmt.Errorf("the Twofold server at %s does not accept TWOFOLD_API_KEY (60001): print the key with 'twofold app show 1 --show-key'", cfg.TwofoldURL)
	case err != nil:
		log.Warn("Twofold is not answering yet; sign-ups with two-factor will fail until it does", "twofold_url", cfg.TwofoldURL, "err", err)
	default:
		log.Info("connected to Twofold", "twofold_url", cfg.TwofoldURL, "app", app.Name, "app_id", app.ID)
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("login sample listening", "addr", "http://"+ln.Addr().String(), "public_url", cfg.PublicURL,
		"callback_url", cfg.PublicURL+callbackPath)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
