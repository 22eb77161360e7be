package main

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/twofold-auth/twofold/internal/authyapi"
	"github.com/twofold-auth/twofold/internal/live"
	"github.com/twofold-auth/twofold/internal/verify"
)

// shareAcrossInstances makes servers that share one PostgreSQL database behave as one: event
// stream wake-ups cross servers (LISTEN/NOTIFY) and the per-key request rate is counted in the
// database. On SQLite (one server per data directory) it does nothing. Codes, TOTP replay,
// approval answers, the other limits and callback leases live in the store already. The device
// API's and the per-address limits stay each server's own (authyapi.Config.DeviceRate says why).
func shareAcrossInstances(ctx context.Context, cmd *cobra.Command, in *instance, broker *live.Broker, apiRate verify.Limit,
	log *slog.Logger) (shared *authyapi.SharedLimiter, stop func(), err error) {
	if in.engine != "postgres" {
		return nil, func() {}, nil
	}
	dsn, err := database(cmd)
	if err != nil {
		return nil, nil, err
	}
	relay, err := live.StartRelay(ctx, dsn, broker, log)
	if err != nil {
		return nil, nil, err
	}
	if apiRate.N > 0 {
		shared = authyapi.NewSharedLimiter(in.store, apiRate.N, apiRate.Window, log)
	}
	return shared, func() { relay.Close() }, nil
}
