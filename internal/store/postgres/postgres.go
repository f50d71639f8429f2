// Package postgres is the shared store.Store: PostgreSQL through pgx, for
// several `sluice serve` processes pointed at one database. It keeps the
// SQLite store's logical schema and semantics (the storetest suite holds
// both to them) and adds what several processes need: revision checks in
// the statements themselves, versioned migrations that run once however
// many processes start together, and change notifications (Changes) so
// that a write through one process wakes the others.
//
// The DSN is any connection string pgx accepts (a postgres:// URL or
// keyword=value pairs). The store's tables live in the schema the
// connection's search_path selects (public by default), so one database
// can hold several stores: add search_path=NAME to the DSN.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sluice-dev/sluice/internal/store"
)

// DB is a store.Store and store.Notifier in one PostgreSQL schema. It is
// safe for concurrent use, by any number of processes.
type DB struct {
	// q runs every query: the pool, or the transaction of an Atomic call
	// on the DB that call hands its function (then tx is true).
	q  querier
	tx bool
	*core
}

// core is what a DB and the DBs of its transactions share.
type core struct {
	pool   *pgxpool.Pool
	now    func() time.Time
	log    *slog.Logger
	schema string // where the tables are; notifications name it

	// Change listeners: Close stops them (cancel) and waits for them.
	mu        sync.Mutex
	closed    bool
	cancel    context.CancelFunc
	closing   context.Context
	listeners sync.WaitGroup
	// listenPID is the backend of the latest listening connection, for
	// tests that kill it.
	listenPID atomic.Uint32
}

// querier is what *pgxpool.Pool and pgx.Tx share, so every method runs
// unchanged inside or outside a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var (
	_ store.Store    = (*DB)(nil)
	_ store.Notifier = (*DB)(nil)
)

// Option configures Open.
type Option func(*core)

// WithLogger is where the store reports what it recovers from by itself
// (a lost listening connection); the default is slog.Default().
func WithLogger(l *slog.Logger) Option { return func(c *core) { c.log = l } }

// Open connects to the database dsn names, applies the migrations its
// schema lacks and returns the store. Errors never contain the DSN's
// password (see Redact). Close the DB when done.
func Open(ctx context.Context, dsn string, opts ...Option) (*DB, error) {
	secrets := passwords(dsn)
	fail := func(what string, err error) error {
		return fmt.Errorf("open postgres store %s: %s: %w", Redact(dsn), what, scrub(err, secrets))
	}
	ms, err := loadMigrations()
	if err != nil {
		return nil, fail("embedded migrations", err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx redacts what it can of the DSN in its parse errors; scrub
		// catches what it could not recognise.
		return nil, fail("parse DSN", err)
	}
	if p := cfg.ConnConfig.Password; p != "" {
		secrets = append(secrets, p) // from a passfile or an unusual spelling
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "sluice"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail("connect", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fail("connect", err)
	}
	if err := migrate(ctx, pool, ms); err != nil {
		pool.Close()
		return nil, fail("schema", err)
	}
	c := &core{pool: pool, now: time.Now, log: slog.Default()}
	for _, o := range opts {
		o(c)
	}
	if err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&c.schema); err != nil {
		pool.Close()
		return nil, fail("schema", err)
	}
	c.closing, c.cancel = context.WithCancel(context.Background())
	return &DB{q: pool, core: c}, nil
}

// Close stops the change listeners and closes the pool.
func (s *DB) Close() error {
	if s.tx {
		return fmt.Errorf("close postgres store: %w", store.ErrInTransaction)
	}
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return nil
	}
	s.cancel()
	s.listeners.Wait()
	s.pool.Close()
	return nil
}

// Atomic runs fn in one transaction (READ COMMITTED, PostgreSQL's
// default). Revision checks are in the statements, so a concurrent writer
// from any process makes a stale UpdatePipe fail with pipe.ErrConflict
// rather than overwrite. PostgreSQL may abort a transaction that
// deadlocked with another; Atomic returns that error and does not retry,
// since fn may have done more than write to the store.
func (s *DB) Atomic(ctx context.Context, fn func(tx store.Store) error) error {
	if s.tx {
		return fmt.Errorf("postgres store: atomic: %w", store.ErrInTransaction)
	}
	var fnErr error
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		fnErr = fn(&DB{q: tx, tx: true, core: s.core})
		return fnErr
	})
	if fnErr != nil {
		return fnErr // as is: callers branch on it
	}
	if err != nil {
		return fmt.Errorf("postgres store: atomic: %w", err)
	}
	return nil
}

// stamp is the store's time for a write: UTC, and whole microseconds as
// PostgreSQL keeps them, so what a write returns equals what a read gives.
func (c *core) stamp() time.Time { return c.now().UTC().Truncate(time.Microsecond) }

const mask = "xxxxx"

// kvPassword matches password=… (or sslpassword=…, the client key's
// passphrase) in a keyword/value DSN, quoted or not.
var kvPassword = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// queryPassword matches a password or sslpassword parameter in a URL's
// query.
var queryPassword = regexp.MustCompile(`(?i)([?&](?:ssl)?password=)([^&#]*)`)

// Redact returns dsn with its password (and sslpassword), wherever it is
// written, replaced by xxxxx: for errors and logs, which must never show it. It understands
// URLs (postgres://user:password@host/db?password=…) and keyword/value
// strings (password=… or password='…'); a URL it cannot parse loses its
// whole user information.
func Redact(dsn string) string {
	if !isURL(dsn) {
		return kvPassword.ReplaceAllString(dsn, "${1}"+mask)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		// Unparsable, so the user information cannot be told apart
		// reliably: drop all of it.
		scheme, rest, _ := strings.Cut(dsn, "://")
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			rest = mask + rest[at:]
		}
		return queryPassword.ReplaceAllString(scheme+"://"+rest, "${1}"+mask)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), mask)
		}
	}
	q := u.Query()
	for _, k := range []string{"password", "sslpassword"} {
		if q.Has(k) {
			q.Set(k, mask)
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

func isURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// passwords are the strings Redact hides, in the forms an error could
// quote them (raw and decoded), so scrub can remove them from errors
// that quote the DSN in a way Redact did not foresee.
func passwords(dsn string) []string {
	var out []string
	add := func(p string) {
		if p != "" {
			out = append(out, p)
			if d, err := url.QueryUnescape(p); err == nil && d != p {
				out = append(out, d)
			}
			if uq := strings.Trim(p, "'"); uq != p && uq != "" {
				out = append(out, uq)
			}
		}
	}
	if isURL(dsn) {
		_, rest, _ := strings.Cut(dsn, "://")
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			if _, pw, ok := strings.Cut(rest[:at], ":"); ok {
				add(pw)
			}
		}
		for _, m := range queryPassword.FindAllStringSubmatch(dsn, -1) {
			add(m[2])
		}
		return out
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		add(m[2])
	}
	return out
}

// scrub returns err with every secret in its message masked, still
// matching what err matches with errors.Is and errors.As.
func scrub(err error, secrets []string) error {
	if err == nil || len(secrets) == 0 {
		return err
	}
	msg := err.Error()
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, mask)
	}
	return &scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// isNoRows reports whether err is a query's empty result.
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
