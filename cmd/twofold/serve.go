package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/time/rate"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/authyapi"
	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/live"
	"github.com/twofold-auth/twofold/internal/masterkey"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passkeys"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/push"
	"github.com/twofold-auth/twofold/internal/recovery"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/verifyapi"
	"github.com/twofold-auth/twofold/internal/verifyfactors"
	"github.com/twofold-auth/twofold/internal/web"
)

func serveCmd(env Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Twofold server",
		Long: `Run the Twofold server: the Authy-compatible API under /protected/json and /onetouch/json, the
operators' console at /console/ (operators: twofold admin create), the web authenticator at
/authenticator/, /healthz and /metrics.

Everything is kept in the data directory: an SQLite database and a master key file (0600) that
seals secrets at rest. On first start an application is created so the API is callable at once.
Every flag can also be set with the environment variable shown.
` + providersHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd, env) },
	}
	f := cmd.Flags()
	f.String("addr", "127.0.0.1:8080", "address to listen on")
	f.String("public-url", "", "base URL clients reach this server at, for links such as QR codes; default: from each request's Host")
	f.Duration("code-ttl", 10*time.Minute, "how long an SMS, call or email code stays valid")
	f.Int("code-attempts", 5, "wrong tries a code survives")
	f.String("limit-failures", "10/15m", "failed verifications allowed per user, N/DURATION or off")
	f.String("limit-sends", "5/10m", "codes sent per user (SMS, call, email), N/DURATION or off")
	f.String("limit-number-sends", "5/10m", "codes sent per phone number, N/DURATION or off")
	f.String("limit-country-sends", "500/1h", "codes sent per country calling code, per application, N/DURATION or off")
	f.String("limit-app-sends", "1000/1h", "codes sent per application, N/DURATION or off")
	f.String("rate-limit", "200/1s", "API requests per API key, N/DURATION or off")
	f.String("device-rate-limit", "60/1m", "device API requests per device, apart from the API key's; counted by each server, N/DURATION or off")
	f.String("device-user-rate-limit", "120/1m", "device API requests per user, all its devices together; counted by each server, N/DURATION or off")
	f.String("address-rate-limit", "60/1m", "requests per client address (IPv6: per /64) to routes that need no key or token: device registration, QR images; counted by each server, N/DURATION or off")
	f.String("trusted-proxies", "", "comma-separated addresses or prefixes (10.0.0.0/8) of reverse proxies whose X-Forwarded-For names the client, for the limits per client address (console sign-in, device registration, QR images) and the address a console push shows; none by default: the connection's address counts")
	f.Int("device-streams", 8, "open event streams per device on each server; one more ends the oldest; 0 for no bound")
	f.Int("device-user-streams", 16, "open event streams per user, all its devices together, on each server; 0 for no bound")
	f.String("log-format", "text", "log format: text or json")
	f.String("log-level", "info", "log level: debug, info, warn, error")
	f.Int("max-pending-approvals", 5, "pending OneTouch approval requests allowed per user")
	f.Int("callback-workers", 16, "callbacks delivered at once; 0 delivers none (they wait in the outbox)")
	f.Duration("callback-backoff", 5*time.Second, "wait after a callback's first failure, doubling each time")
	f.Duration("callback-timeout", 10*time.Second, "time allowed for one callback delivery")
	f.Duration("callback-lease", 0, "how long a callback being delivered is reserved for this server; another server retries it after, should this one die; must exceed --callback-timeout, default that plus 1m")
	f.Duration("sweep-interval", time.Minute, "how often expired codes are deleted and approval requests expired")
	f.String("push-subject", "", "contact sent to Web Push services (mailto:you@example.com or an https URL); default: the public URL if https, else "+push.DefaultSubject+"")
	f.String("push-allow-hosts", "", "hosts (host or host:port, comma-separated) devices' push endpoints may name although they are or resolve to loopback, private or link-local addresses, such as an ntfy server on your network; http:// is accepted for these hosts only; default: none")
	f.String("callback-allow-hosts", "", "hosts (host or host:port, comma-separated) callback URLs may name although they are or resolve to loopback, private or link-local addresses; default: none")
	signinFlags(f)
	providerFlags(f)
	pprofFlags(f)
	stepFlags(f)
	passwordlessFlags(f)
	f.Duration("shutdown-timeout", 15*time.Second, "how long to let in-flight requests finish on SIGINT/SIGTERM")
	f.Bool("access-log", true, "log every request at info: method, route pattern, status, duration, application, request id (never a path, query, key, code or token); --access-log=false for none")
	setting(f) // every flag of serve configures the server
	return cmd
}

func serve(cmd *cobra.Command, env Env) (err error) {
	ctx := cmd.Context()
	f := cmd.Flags()
	log, err := newLogger(cmd, env.Stderr)
	if err != nil {
		return err
	}
	if format, _ := f.GetString("log-format"); strings.EqualFold(format, "json") {
		// Nothing but JSON on standard error: the error that stops the server is a log line too.
		defer func() {
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("twofold serve stopped", "err", err.Error())
				err = loggedError{err}
			}
		}()
	}
	stopPprof, err := startPprof(f, log)
	if err != nil {
		return err
	}
	defer stopPprof()
	cfg := verify.DefaultConfig()
	cfg.CodeTTL, _ = f.GetDuration("code-ttl")
	cfg.MaxAttempts, _ = f.GetInt("code-attempts")
	if cfg.CodeTTL <= 0 {
		return fmt.Errorf("%s must be positive, not %s", source(f, "code-ttl"), cfg.CodeTTL)
	}
	if cfg.MaxAttempts <= 0 {
		return fmt.Errorf("%s must be positive, not %d", source(f, "code-attempts"), cfg.MaxAttempts)
	}
	for flag, dst := range map[string]*verify.Limit{"limit-failures": &cfg.FailureLimit, "limit-sends": &cfg.SendLimit,
		"limit-number-sends": &cfg.NumberSendLimit, "limit-country-sends": &cfg.CountrySendLimit, "limit-app-sends": &cfg.AppSendLimit} {
		v, _ := f.GetString(flag)
		if *dst, err = parseLimit(v); err != nil {
			return fmt.Errorf("%s: %w", source(f, flag), err)
		}
	}
	signin, err := parseSigninFlags(f)
	if err != nil {
		return err
	}
	pwCfg, err := parsePasswordlessFlags(f)
	if err != nil {
		return err
	}
	rateText, _ := f.GetString("rate-limit")
	apiRate, err := parseLimit(rateText)
	if err != nil {
		return fmt.Errorf("%s: %w", source(f, "rate-limit"), err)
	}
	var deviceRate, deviceUserRate, addressRate verify.Limit
	for flag, dst := range map[string]*verify.Limit{"device-rate-limit": &deviceRate, "device-user-rate-limit": &deviceUserRate,
		"address-rate-limit": &addressRate} {
		v, _ := f.GetString(flag)
		if *dst, err = parseLimit(v); err != nil {
			return fmt.Errorf("%s: %w", source(f, flag), err)
		}
	}
	deviceStreams, _ := f.GetInt("device-streams")
	userStreams, _ := f.GetInt("device-user-streams")
	for flag, n := range map[string]int{"device-streams": deviceStreams, "device-user-streams": userStreams} {
		if n < 0 {
			return fmt.Errorf("%s must not be negative, not %d", source(f, flag), n)
		}
	}

	pushEgress, cbEgress, err := egressGuards(f, env, log)
	if err != nil {
		return err
	}

	db, err := database(cmd)
	if err != nil {
		return err
	}
	if !store.IsPostgresDSN(db) {
		dir, _ := f.GetString("data-dir")
		release, err := lockDataDir(dir)
		if err != nil {
			return err
		}
		defer release()
	}
	in, err := open(ctx, cmd, env, log, true)
	if err != nil {
		return err
	}
	defer in.Close()
	if in.createdKey {
		log.Info("created master key", "file", in.dataDir+"/master.key", "note", "back it up: without it sealed secrets cannot be read")
	}
	first, err := announceApps(ctx, in, cbEgress.Allowlist(), log)
	if err != nil {
		return err
	}

	m := metrics.New()
	router, tw, err := newRouter(ctx, f, env, in, m, log)
	if err != nil {
		return err
	}
	usage := apps.NewUsageRecorder(in.store, log)
	cbCfg := callback.DefaultConfig()
	cbCfg.Workers, _ = f.GetInt("callback-workers")
	cbCfg.Backoff, _ = f.GetDuration("callback-backoff")
	cbCfg.Timeout, _ = f.GetDuration("callback-timeout")
	cbCfg.Lease, _ = f.GetDuration("callback-lease")
	cbCfg.Egress = cbEgress
	if cbCfg.Lease != 0 && cbCfg.Lease <= cbCfg.Timeout {
		// A lease that ends while its delivery may still run would let another server send it too.
		return fmt.Errorf("%s (%s) must exceed %s (%s)", source(f, "callback-lease"), cbCfg.Lease, source(f, "callback-timeout"), cbCfg.Timeout)
	}
	dispatcher := callback.New(in.store, router, in.apps.Reveal, cbCfg, log, func(a callback.Attempt) {
		outcome := "failed"
		switch {
		case a.OK:
			outcome = "delivered"
		case a.Dropped:
			outcome = "dropped"
		case a.Disabled:
			outcome = "disabled"
		}
		m.Callbacks.WithLabelValues(outcome).Inc()
		if env.OnCallback != nil {
			env.OnCallback(a)
		}
	})
	dispatcher.SetWebhooks(callback.Webhooks{Store: in.store, Token: in.apps.RevealTwilioToken})
	in.apps.SetWebhookNotify(dispatcher.Notify)
	if env.OnVerifyEvents != nil {
		env.OnVerifyEvents(in.apps)
	}
	broker := live.NewBroker()
	sharedLimit, stopSharing, err := shareAcrossInstances(ctx, cmd, in, broker, apiRate, log)
	if err != nil {
		return err
	}
	defer stopSharing()
	m.DeviceStreams(func() float64 { return float64(broker.Count()) })
	vapid, err := push.LoadVAPIDKey(ctx, in.store, in.keys, in.now())
	if err != nil {
		return err
	}
	pusher, err := push.New(in.store, vapid, push.Config{Subject: mustString(f, "push-subject"), PublicURL: mustString(f, "public-url"),
		Egress: pushEgress,
		Observe: func(kind, outcome string) {
			m.Pushes.WithLabelValues(kind, outcome).Inc()
			if env.OnPush != nil {
				env.OnPush(kind, outcome)
			}
		}}, log, in.now)
	if err != nil {
		return fmt.Errorf("%s: %w", source(f, "push-subject"), err)
	}
	otCfg := onetouch.DefaultConfig()
	otCfg.MaxPending, _ = f.GetInt("max-pending-approvals")
	ot := onetouch.New(in.store, otCfg, onetouch.Hooks{CallbackQueued: dispatcher.Notify, Changed: broker.Publish, Created: pusher.Enqueue}, in.now)
	ot.SetHandoff(dispatcher) // an answer's callback goes to an idle worker without waiting for a claim
	us, vs := users.New(in.store, in.now), verify.New(in.store, router, in.keys, cfg, in.now)
	vs.SetUsage(usage) // statistics batched like API calls: no write per verification for them
	ds := devices.New(in.store, in.keys, in.apps.Reveal, 10*time.Minute, in.now)
	pw := passwordless.New(in.store, ot, pwCfg, in.now)
	in.auditServices(m, us, vs, ds, ot, pw)
	var pkAudit passkeys.Auditor // nil unless the trail is on: a nil *audit.Log is no Auditor
	if in.audit != nil {
		pkAudit = in.audit
	}
	pks := passkeys.New(in.store, vs, pkAudit, in.now) // the API's and the hosted step's
	recoveryKey, err := masterkey.RecoveryKey(cmd.Context(), in.store, in.keys)
	if err != nil {
		return err
	}
	rc := recovery.New(in.store, recoveryKey, in.audit, in.now)
	vs.SetRecovery(rc) // verify accepts recovery codes as a factor of their own
	api := authyapi.New(authyapi.Services{
		Apps:         in.apps,
		Users:        us,
		Verify:       vs,
		Devices:      ds,
		OneTouch:     ot,
		Usage:        usage,
		Live:         broker,
		Passwordless: pw,
		Recovery:     rc,
		Passkeys:     pks,
	}, m, log, authyapi.Config{
		PublicURL:  mustString(f, "public-url"),
		RatePerKey: perSecond(apiRate),
		Burst:      apiRate.N,
		Shared:     sharedLimit,
		// Devices' limits are not shared across servers like the API key's: see the Config.
		DeviceRate:       deviceRate,
		DeviceUserRate:   deviceUserRate,
		AddressRate:      addressRate,
		TrustedProxies:   signin.proxies,
		MaxDeviceStreams: deviceStreams,
		MaxUserStreams:   userStreams,
	}, in.now)
	// A Verify entity's Twofold devices are its push factors, challenged through OneTouch.
	factors := verifyfactors.New(in.store, in.keys, in.now)
	factors.SetApprovals(ot)
	factors.SetAuditor(in.audit)
	factors.SetEvents(verifyapi.WebhookEvents{Emitter: in.apps})
	verifyCfg := verifyapi.Config{PublicURL: mustString(f, "public-url"), Allow: api.AllowApp, MaxHeaderBytes: authyapi.MaxHeaderBytes}
	verifyAPI := verifyapi.New(verifyapi.Services{Apps: in.apps, Verify: vs,
		Factors: factors, Usage: usage}, m, log, verifyCfg, in.now)
	mux := http.NewServeMux()
	routes := routeMux{mux, env.OnRoute}
	api.Routes(routes)
	verifyAPI.Routes(routes)
	api.PushRoutes(routes, pusher)
	routes.Handle("GET /metrics", m.Handler())
	if tw != nil {
		routes.Handle("POST "+twilioStatusPath, tw.StatusHandler(func(ctx context.Context, sid, status, code string) error {
			errText := ""
			if code != "" {
				errText = "twilio error " + code
			}
			err := router.Report(ctx, "twilio", sid, status, errText)
			if errors.Is(err, twofold.ErrNotFound) {
				return nil // not one of ours, or swept: nothing to retry
			}
			return err
		}))
	}
	routes.Handle("GET /{$}", web.Home()) // a browser at the server's address finds the console and the authenticator
	routes.Handle("GET /authenticator/", web.Authenticator())
	routes.Handle("/console/", consoleHandler(in, us, vs, ds, ot, pw, pks, rc, dispatcher, router, mustString(f, "public-url"), signin, env.OnRoute, log))
	if err := hostedStep(routes, f, env, in, vs, ot, pw, pks, signin.proxies, log); err != nil {
		return err
	}
	routes.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := in.store.Ping(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "error": "database not answering"})
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	})

	addr, _ := f.GetString("addr")
	ln, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("listen on %s: the address is in use (another twofold serve?): choose another with --addr or TWOFOLD_ADDR", addr)
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w (set the address with --addr or TWOFOLD_ADDR)", addr, err)
	}
	access := accesslog.Config{Proxies: signin.proxies} // a trusted proxy's X-Request-Id is kept
	var accessLines *accesslog.Buffer
	if on, _ := f.GetBool("access-log"); on {
		// Its lines in batches (see accesslog.Buffer), all written out once the last request
		// is answered (and however serve returns).
		accessLines = accesslog.NewBuffer(env.Stderr, 100*time.Millisecond)
		defer accessLines.Close()
		access.Log, _ = newLogger(cmd, accessLines)
	}
	srv := &http.Server{
		Handler:           accesslog.Handler(verifyapi.Handler(authyapi.Handler(mux, m, log), mux, m, log, verifyCfg), access),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    authyapi.ReadHeaderLimit, // Handler refuses more than authyapi.MaxHeaderBytes, with the envelope
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(api.StopStreams) // event streams never end on their own

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	background.Go(func() { usage.Run(bg, 2*time.Second) })
	background.Go(func() { dispatcher.Run(bg) })
	background.Go(func() { pusher.Run(bg) })
	sweepEvery, _ := f.GetDuration("sweep-interval")
	background.Go(func() { sweep(bg, in, ot, sweepEvery, log) })

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("twofold listening", "addr", "http://"+ln.Addr().String(), "data_dir", in.dataDir, "database", in.engine)
	if first != nil { // bound: the next step printed now works
		next := fmt.Sprintf("%s app show %d --show-key --data-dir %s", selfCommand(), first.ID, shellQuote(in.dataDir))
		log.Info("next: print the first application's API key", "command", next)
		if format, _ := f.GetString("log-format"); format != "json" { // JSON logs: nothing but JSON on stderr
			fmt.Fprintf(env.Stderr, `
  Twofold is ready on http://%s. Your first application is %q (id %d).
  Print its API key with:

      %s

  then point your Authy client at this server with that key.

`, ln.Addr(), first.Name, first.ID, next)
		}
	}
	if env.Ready != nil {
		env.Ready(ln.Addr().String())
	}

	select {
	case err := <-serveErr:
		stopBG()
		background.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	timeout, _ := f.GetDuration("shutdown-timeout")
	log.Info("shutting down: finishing in-flight requests", "timeout", timeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	api.StopStreams() // Shutdown does not wait for the event streams' connections (taken over): this does
	stopBG()
	background.Wait() // callbacks in flight finish; the usage recorder flushes
	if accessLines != nil {
		accessLines.Close() // the last requests' lines before "stopped"
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// announceApps makes the first application on a fresh data directory and returns it (nil when
// there was one already), so that serve says, once it listens, how to get its key; and warns
// about sandbox applications, which accept a fixed token, and about callback URLs whose host
// the egress guard refuses.
func announceApps(ctx context.Context, in *instance, cbAllow egress.Allowlist, log *slog.Logger) (*twofold.App, error) {
	first, created, err := in.apps.EnsureFirst(ctx)
	if err != nil {
		return nil, fmt.Errorf("first application: %w", err)
	}
	var made *twofold.App
	if created {
		log.Info("created the first application", "app_id", first.ID, "name", first.Name)
		made = &first
	}
	list, err := in.apps.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range list {
		if a.Sandbox {
			log.Warn("sandbox application: nothing is delivered and the token 0000000 verifies for every user", "app_id", a.ID, "name", a.Name)
		}
		if u, err := url.Parse(a.CallbackURL); a.CallbackURL != "" && err == nil {
			if err := cbAllow.Check(u.Hostname(), portOf(u)); err != nil {
				log.Warn("callbacks will not be delivered: allow the host with --callback-allow-hosts if it is yours", "app_id", a.ID, "name", a.Name, "err", err)
			}
		}
	}
	return made, nil
}

// sweep deletes expired codes, counters and QR links, and expires approval requests whose time
// has passed (which queues their callbacks), every interval.
func sweep(ctx context.Context, in *instance, ot *onetouch.Service, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := in.store.Sweep(ctx, in.now()); err != nil {
				log.Warn("sweep expired rows", "err", err)
			} else if n > 0 {
				log.Debug("swept expired rows", "rows", n)
			}
			if n, err := ot.ExpireDue(ctx); err != nil {
				log.Warn("expire approval requests", "err", err)
			} else if n > 0 {
				log.Info("expired approval requests", "count", n)
			}
		}
	}
}

// newLogger is the logger --log-format and --log-level ask for, writing to w.
func newLogger(cmd *cobra.Command, w io.Writer) (*slog.Logger, error) {
	format, _ := cmd.Flags().GetString("log-format")
	levelText, _ := cmd.Flags().GetString("log-level")
	var level slog.Level
	if err := level.UnmarshalText([]byte(levelText)); err != nil {
		return nil, fmt.Errorf("%s: %w", source(cmd.Flags(), "log-level"), err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%s must be text or json, not %q", source(cmd.Flags(), "log-format"), format)
}

// routeMux registers routes on the server's mux and tells onRoute (if set) of each pattern.
type routeMux struct {
	*http.ServeMux
	onRoute func(pattern string)
}

func (m routeMux) Handle(pattern string, h http.Handler) {
	m.note(pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.note(pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

func (m routeMux) note(pattern string) {
	if m.onRoute != nil {
		m.onRoute(pattern)
	}
}

func perSecond(l verify.Limit) rate.Limit {
	if l.N <= 0 {
		return 0
	}
	return rate.Limit(float64(l.N) / l.Window.Seconds())
}

func mustString(f interface{ GetString(string) (string, error) }, name string) string {
	v, _ := f.GetString(name)
	return v
}

// selfCommand is how the user ran this program, for commands printed for them to paste:
// "twofold" when that is what the PATH finds, "go run ./cmd/twofold" for a binary go run
// built, else the path it was started by.
func selfCommand() string {
	exe, err := os.Executable()
	if err != nil {
		return "twofold"
	}
	if strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/twofold"
	}
	if found, err := exec.LookPath(filepath.Base(os.Args[0])); err == nil {
		if a, b := realPath(found), realPath(exe); a == b {
			return filepath.Base(os.Args[0])
		}
	}
	return os.Args[0]
}

func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
