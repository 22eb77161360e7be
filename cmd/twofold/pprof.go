package main

import (
	"context"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/spf13/pflag"
)

// pprofFlags adds the opt-in profiling listener's flags to serve.
func pprofFlags(f *pflag.FlagSet) {
	f.String("pprof-addr", "", "serve Go's profiles (net/http/pprof, /debug/pprof/) and memory figures (/debug/vars) on this separate address, such as 127.0.0.1:6060; off by default, loopback only unless --pprof-allow-remote")
	f.Bool("pprof-allow-remote", false, "let --pprof-addr listen on a non-loopback address; profiles reveal memory contents and cost CPU, so keep them off the network")
}

// startPprof serves the profiles when --pprof-addr is set, and returns the function that stops
// them. It refuses an address that is not loopback (":6060" is every interface) unless
// --pprof-allow-remote says so, both as written and as the socket ends up bound.
func startPprof(f *pflag.FlagSet, log *slog.Logger) (stop func(), err error) {
	addr, _ := f.GetString("pprof-addr")
	if addr == "" {
		return func() {}, nil
	}
	remote, _ := f.GetBool("pprof-allow-remote")
	if !remote && !loopbackAddr(addr) {
		return nil, fmt.Errorf("%s %q is not a loopback address (such as 127.0.0.1:6060); add --pprof-allow-remote (TWOFOLD_PPROF_ALLOW_REMOTE=true) to expose profiles beyond this machine", source(f, "pprof-addr"), addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source(f, "pprof-addr"), err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !remote && (!ok || !tcp.IP.IsLoopback()) {
		ln.Close()
		return nil, fmt.Errorf("%s %q bound %s, which is not loopback; add --pprof-allow-remote (TWOFOLD_PPROF_ALLOW_REMOTE=true) to allow it", source(f, "pprof-addr"), addr, ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and every named profile: heap, goroutine, allocs, ...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler()) // runtime.MemStats as JSON
	// No write timeout: a CPU profile or trace takes as long as it is asked to (?seconds=).
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof listener stopped", "err", err)
		}
	}()
	log.Info("pprof listening", "addr", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close() // a profile still being taken
		}
		<-done
	}, nil
}

// loopbackAddr reports whether host:port names this machine only: localhost or a loopback IP.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
