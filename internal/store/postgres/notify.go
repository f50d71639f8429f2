package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// channel is what the triggers of migration 0002 notify.
const channel = "sluice_changes"

// Listening limits. A process only reacts sooner with them; its periodic
// reconcile remains the fallback while it is not listening.
const (
	// connectTimeout bounds one attempt to connect and LISTEN, so that
	// an unreachable server shows up as a retry, not a hang.
	connectTimeout = 10 * time.Second
	// pingEvery is how long the listener waits for a notification before
	// it checks that the connection is still there: a server that
	// vanished without closing the TCP connection is otherwise noticed
	// only by keepalives, many minutes later.
	pingEvery   = 30 * time.Second
	pingTimeout = 5 * time.Second
	// Reconnects back off from minBackoff to maxBackoff, with jitter so
	// that the processes of a deployment do not reconnect in step after
	// a server restart.
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Changes sends, coalesced, after any process commits a change to pipes,
// functions, clusters, secrets or tokens in this store's schema (status,
// member statuses and heartbeats stay quiet). It listens on a connection
// of its own, outside the pool. The first LISTEN happens before Changes
// returns, when the server is reachable within connectTimeout, so a
// change committed after Changes returns is heard of; otherwise it keeps
// trying in the background and sends once connected. After a lost
// connection it reconnects and sends once, since changes may have been
// missed. The channel is closed when ctx ends or the DB is closed.
func (s *DB) Changes(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		close(ch)
		return ch
	}
	s.listeners.Add(1)
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.closing, cancel)
	conn, err := s.listen(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Warn("postgres store: cannot listen for changes yet; retrying", "err", err)
	}
	go func() {
		defer s.listeners.Done()
		defer close(ch)
		defer stop()
		defer cancel()
		s.listenLoop(ctx, conn, ch)
	}()
	return ch
}

// listenLoop hands notifications on to ch until ctx ends, reconnecting
// whenever conn is lost (or nil: the first attempt failed).
func (s *DB) listenLoop(ctx context.Context, conn *pgx.Conn, ch chan<- struct{}) {
	defer func() { closeConn(conn) }()
	send := func() {
		select {
		case ch <- struct{}{}:
		default: // one is pending already: the receiver re-reads everything
		}
	}
	prefix := s.schema + "."
	backoff := minBackoff
	for {
		if conn == nil {
			t := time.NewTimer(jitter(backoff))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			var err error
			if conn, err = s.listen(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				backoff = min(2*backoff, maxBackoff)
				s.log.Warn("postgres store: reconnecting the change listener", "err", err, "retryIn", backoff)
				continue
			}
			backoff = minBackoff
			s.log.Info("postgres store: change listener reconnected")
			send()
		}
		n, err := wait(ctx, conn)
		if err != nil {
			closeConn(conn)
			conn = nil
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("postgres store: change listener lost its connection", "err", err)
			continue
		}
		if n != nil && strings.HasPrefix(n.Payload, prefix) {
			send()
		}
	}
}

// wait returns the next notification, or nil if none came within
// pingEvery and the connection answered a ping.
func wait(ctx context.Context, conn *pgx.Conn) (*pgconn.Notification, error) {
	wctx, cancel := context.WithTimeout(ctx, pingEvery)
	n, err := conn.WaitForNotification(wctx)
	cancel()
	if err == nil {
		return n, nil
	}
	if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return nil, err
	}
	// A timeout leaves the connection usable (pgx only sets a deadline).
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := conn.Ping(pctx); err != nil {
		return nil, err
	}
	return nil, nil
}

// listen opens a connection with the pool's settings and LISTENs on it.
func (s *DB) listen(ctx context.Context) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	cfg := s.pool.Config().ConnConfig // a copy
	cfg.RuntimeParams["application_name"] = "sluice changes"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		closeConn(conn)
		return nil, err
	}
	s.listenPID.Store(conn.PgConn().PID())
	return conn, nil
}

func closeConn(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx) // the connection is being given up either way
}

// jitter is d ± 20%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((rand.Float64()*0.4-0.2)*float64(d))
}
