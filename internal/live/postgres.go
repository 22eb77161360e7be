package live

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// Relay carries a broker's publications between the servers that share one PostgreSQL
// database, by LISTEN/NOTIFY. Publish sends NOTIFY on the relay's channel with the payload
// "APPID:USERID"; one dedicated connection per server LISTENs on it and wakes the local
// subscribers of every notification, the server's own included, so a publication wakes each
// stream once. When that connection drops, the relay reconnects with backoff and then wakes
// every local stream once: they re-read the store, so nothing published during the gap is
// missed. When NOTIFY itself fails, the publishing server wakes its own streams directly.
type Relay struct {
	broker  *Broker
	cfg     *pgx.ConnConfig
	channel string
	db      *sql.DB // for NOTIFY, from any goroutine
	log     *slog.Logger
	cancel  context.CancelFunc
	done    chan struct{}
}

// relayBackoff bounds the wait between reconnection attempts of the listening connection.
const (
	relayMinBackoff = 100 * time.Millisecond
	relayMaxBackoff = 5 * time.Second
	notifyTimeout   = 2 * time.Second
)

// ChannelPrefix names the NOTIFY channel: twofold_live in the public schema, and
// twofold_live_SCHEMA in another, so that deployments sharing a database by schema (search_path)
// do not wake each other.
const ChannelPrefix = "twofold_live"

// StartRelay connects to the PostgreSQL database dsn names, listens, and routes b's
// publications through NOTIFY until Close. The first connection is made before it returns, so
// a server that starts has its relay working.
func StartRelay(ctx context.Context, dsn string, b *Broker, log *slog.Logger) (*Relay, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("live relay: %w", err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "twofold-live"
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("live relay: %w", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Minute)
	var schema string
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(current_schema(), 'public')`).Scan(&schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("live relay: %w", err)
	}
	channel := ChannelPrefix
	if schema != "public" {
		channel += "_" + schema
	}
	if len(channel) > 63 { // PostgreSQL truncates identifiers to 63 bytes
		channel = channel[:63]
	}
	r := &Relay{broker: b, cfg: cfg, channel: channel, db: db, log: log, done: make(chan struct{})}
	conn, err := r.listen(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	go r.run(runCtx, conn)
	b.SetSender(r.send)
	return r, nil
}

// Channel is the NOTIFY channel the relay uses.
func (r *Relay) Channel() string { return r.channel }

// Close stops listening and closes the relay's connections. Publications made afterwards wake
// this server's streams only.
func (r *Relay) Close() error {
	r.cancel()
	<-r.done
	return r.db.Close()
}

func (r *Relay) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, r.cfg)
	if err != nil {
		return nil, fmt.Errorf("live relay: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{r.channel}.Sanitize()); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("live relay: listen: %w", err)
	}
	return conn, nil
}

// send publishes a wake-up to every server; false when the database could not take it.
func (r *Relay) send(appID, userID int64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	payload := strconv.FormatInt(appID, 10) + ":" + strconv.FormatInt(userID, 10)
	if _, err := r.db.ExecContext(ctx, `SELECT pg_notify($1, $2)`, r.channel, payload); err != nil {
		r.log.Warn("live relay: notify", "err", err)
		return false
	}
	return true
}

// run delivers notifications to the broker and keeps the listening connection up.
func (r *Relay) run(ctx context.Context, conn *pgx.Conn) {
	defer close(r.done)
	backoff := relayMinBackoff
	for {
		if conn == nil {
			c, err := r.listen(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				r.log.Warn("live relay: reconnect", "err", err, "retry_in", backoff)
				select {
				case <-ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, relayMaxBackoff)
				continue
			}
			conn, backoff = c, relayMinBackoff
			r.log.Info("live relay: listening again")
			r.broker.WakeAll() // what was published while nobody listened
		}
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			closeCtx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn.Close(closeCtx)
			cancel()
			conn = nil
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("live relay: connection lost", "err", err)
			continue
		}
		if appID, userID, err := parsePayload(n.Payload); err == nil {
			r.broker.Wake(appID, userID)
		} else {
			r.log.Warn("live relay: bad notification", "payload", n.Payload)
		}
	}
}

func parsePayload(p string) (appID, userID int64, err error) {
	a, u, ok := strings.Cut(p, ":")
	if !ok {
		return 0, 0, errors.New("no colon")
	}
	if appID, err = strconv.ParseInt(a, 10, 64); err != nil {
		return 0, 0, err
	}
	userID, err = strconv.ParseInt(u, 10, 64)
	return appID, userID, err
}
