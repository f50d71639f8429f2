// Package sqlite is the embedded store.Store: one SQLite file, through the
// pure-Go modernc.org/sqlite driver so the binary needs no cgo. It is the
// store of `sluice dev` and of single-process deployments.
package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/store"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed schema.sql
var schema string

// busyTimeout is how long a statement waits for another connection's write
// lock (another process on the same file, e.g. a CLI tool inspecting it)
// before failing with SQLITE_BUSY. Longer than any write we make takes.
const busyTimeout = 5 * time.Second

// DB is a store.Store in one SQLite file. It is safe for concurrent use.
type DB struct {
	db *sql.DB
	// q runs every query: db itself, or the *sql.Tx of an Atomic call on
	// the DB that call hands its function (then tx is true).
	q   querier
	tx  bool
	now func() time.Time
}

// querier is what *sql.DB and *sql.Tx share, so every method runs
// unchanged inside or outside a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

var _ store.Store = (*DB)(nil)

// restrictFiles creates the database file readable by this user only, and
// tightens an existing one (and its -wal and -shm files) that others could
// read: it holds sealed secrets and token hashes. SQLite creates the -wal
// and -shm files with the database file's mode.
func restrictFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if st, err := os.Stat(p); err == nil && st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// migrations are columns added since a table was first created: CREATE
// TABLE IF NOT EXISTS leaves an older table as it was.
var migrations = []struct{ table, column, def string }{
	// Tokens made before scopes were all-powerful, and stay so.
	{"tokens", "scope", "TEXT NOT NULL DEFAULT 'admin'"},
	// Secrets stored before brokers were bound are bound by the clusters
	// that use them (engine.PutCluster).
	{"secrets", "brokers", "TEXT NOT NULL DEFAULT '[]'"},
	// Functions stored before Sluice hosted handlers are HTTP endpoints.
	{"functions", "handler", "TEXT NOT NULL DEFAULT ''"},
}

// migrate adds the columns an older store lacks.
func migrate(ctx context.Context, db *sql.DB) error {
	for _, m := range migrations {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info($1) WHERE name = $2`, m.table, m.column).Scan(&n); err != nil {
			return fmt.Errorf("migrate %s.%s: %w", m.table, m.column, err)
		}
		if n == 0 {
			// Names and definitions are ours, never input.
			if _, err := db.ExecContext(ctx, `ALTER TABLE `+m.table+` ADD COLUMN `+m.column+` `+m.def); err != nil {
				return fmt.Errorf("migrate %s.%s: %w", m.table, m.column, err)
			}
		}
	}
	return nil
}

// Open opens the SQLite database at path, creating the file and the schema
// if they do not exist. The parent directory must exist. Close the DB when
// done. The file is made readable by this user only (restrictFiles).
func Open(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open sqlite store: empty path")
	}
	// The driver splits the DSN at the first '?' to find its parameters, so
	// such a path would silently open a different file.
	if strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("open sqlite store %q: the path may not contain '?'", path)
	}
	if err := restrictFiles(path); err != nil {
		return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
	}
	// WAL lets readers (the API) proceed while the engine writes status;
	// synchronous stays at its FULL default because writes are few and a
	// created pipe should survive a power cut.
	// The pragmas go in the DSN so that every connection the pool opens,
	// not only the first, gets them.
	// _txlock=immediate makes Atomic's BEGIN take the write lock at once
	// (waiting out busyTimeout for another process): a deferred
	// transaction that reads and then writes would fail with SQLITE_BUSY,
	// not wait, if another connection wrote in between.
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_txlock=immediate",
		path, busyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
	}
	// One connection serialises all access in this process: SQLite allows
	// one writer anyway, and a single connection cannot deadlock on its own
	// locks or see SQLITE_BUSY from itself. The store's traffic is small
	// (pipe CRUD and periodic status), so this is not a bottleneck. An
	// Atomic call holds the connection, so other callers wait for it
	// rather than interleave with it.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %q: create schema: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite store %q: %w", path, err)
	}
	return &DB{db: db, q: db, now: time.Now}, nil
}

// Close closes the database.
func (s *DB) Close() error {
	if s.tx {
		return fmt.Errorf("close sqlite store: %w", store.ErrInTransaction)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close sqlite store: %w", err)
	}
	return nil
}

// CreatePipe stores p with Revision 1. The caller assigns p.UUID; a pipe
// without one is refused rather than stored with an empty identity.
func (s *DB) CreatePipe(ctx context.Context, p pipe.Pipe) (pipe.Pipe, error) {
	if p.UUID == "" {
		return pipe.Pipe{}, fmt.Errorf("create pipe %q: no UUID: the service assigns one before storing", p.Name)
	}
	p.Revision = 1
	spec, status, err := encode(p)
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("create pipe %q: %w", p.Name, err)
	}
	now := s.now().UTC()
	// ON CONFLICT DO NOTHING turns a taken name or UUID into zero affected
	// rows instead of a driver-specific constraint error, so the mapping to
	// pipe.ErrExists does not depend on SQLite's error codes.
	res, err := s.q.ExecContext(ctx, `
		INSERT INTO pipes (name, uuid, spec, status, revision, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT DO NOTHING`,
		p.Name, p.UUID, spec, status, p.Revision, now)
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("create pipe %q: %w", p.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("create pipe %q: %w", p.Name, err)
	}
	if n == 0 {
		if _, err := s.GetPipe(ctx, p.Name); errors.Is(err, pipe.ErrNotFound) {
			return pipe.Pipe{}, fmt.Errorf("create pipe %q: %w: its UUID %s belongs to another pipe", p.Name, pipe.ErrExists, p.UUID)
		}
		return pipe.Pipe{}, fmt.Errorf("create pipe %q: %w", p.Name, pipe.ErrExists)
	}
	return p, nil
}

// GetPipe returns the named pipe, or an error wrapping pipe.ErrNotFound.
func (s *DB) GetPipe(ctx context.Context, name string) (pipe.Pipe, error) {
	row := s.q.QueryRowContext(ctx, `
		SELECT name, uuid, spec, status, revision FROM pipes WHERE name = $1`, name)
	p, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return pipe.Pipe{}, fmt.Errorf("get pipe %q: %w", name, pipe.ErrNotFound)
	}
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("get pipe %q: %w", name, err)
	}
	return p, nil
}

// ListPipes returns every pipe ordered by name; an empty store gives an
// empty, non-nil slice.
func (s *DB) ListPipes(ctx context.Context) ([]pipe.Pipe, error) {
	rows, err := s.q.QueryContext(ctx, `
		SELECT name, uuid, spec, status, revision FROM pipes ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list pipes: %w", err)
	}
	defer rows.Close()
	pipes := []pipe.Pipe{}
	for rows.Next() {
		p, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list pipes: %w", err)
		}
		pipes = append(pipes, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list pipes: %w", err)
	}
	return pipes, nil
}

// DeletePipe removes the named pipe and its UUID's member statuses, or
// returns an error wrapping pipe.ErrNotFound.
func (s *DB) DeletePipe(ctx context.Context, name string) error {
	// One transaction, so a pipe is never gone while its member statuses
	// stay (or the reverse).
	return s.atomic(ctx, func(tx *DB) error {
		var uuid string
		err := tx.q.QueryRowContext(ctx, `DELETE FROM pipes WHERE name = $1 RETURNING uuid`, name).Scan(&uuid)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("delete pipe %q: %w", name, pipe.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("delete pipe %q: %w", name, err)
		}
		if _, err := tx.q.ExecContext(ctx, `DELETE FROM member_statuses WHERE pipe_uuid = $1`, uuid); err != nil {
			return fmt.Errorf("delete pipe %q: member statuses: %w", name, err)
		}
		return nil
	})
}

// UpdatePipe replaces p's spec and status if the stored revision is
// revision, and returns p with the next revision. The revision check is in
// the UPDATE's WHERE clause, so two writers racing from the same revision
// cannot both succeed.
func (s *DB) UpdatePipe(ctx context.Context, p pipe.Pipe, revision int64) (pipe.Pipe, error) {
	p.Revision = revision + 1
	spec, status, err := encode(p)
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("update pipe %q: %w", p.Name, err)
	}
	res, err := s.q.ExecContext(ctx, `
		UPDATE pipes SET spec = $1, status = $2, revision = $3, updated_at = $4
		WHERE name = $5 AND uuid = $6 AND revision = $7`,
		spec, status, p.Revision, s.now().UTC(), p.Name, p.UUID, revision)
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("update pipe %q: %w", p.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return pipe.Pipe{}, fmt.Errorf("update pipe %q: %w", p.Name, err)
	}
	if n == 0 {
		cur, err := s.GetPipe(ctx, p.Name)
		if err != nil || cur.UUID != p.UUID {
			return pipe.Pipe{}, fmt.Errorf("update pipe %q: %w", p.Name, pipe.ErrNotFound)
		}
		return pipe.Pipe{}, fmt.Errorf("update pipe %q: revision %d is not the stored %d: %w", p.Name, revision, cur.Revision, pipe.ErrConflict)
	}
	return p, nil
}

// SetStatus replaces the status of the pipe with this name, UUID and (when
// not 0) revision, or returns an error wrapping pipe.ErrNotFound if there
// is none. Revision is unchanged.
func (s *DB) SetStatus(ctx context.Context, name, uuid string, revision int64, st pipe.Status) error {
	status, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("set status of pipe %q: encode: %w", name, err)
	}
	res, err := s.q.ExecContext(ctx, `
		UPDATE pipes SET status = $1, updated_at = $2
		WHERE name = $3 AND uuid = $4 AND ($5 = 0 OR revision = $5)`,
		string(status), s.now().UTC(), name, uuid, revision)
	if err != nil {
		return fmt.Errorf("set status of pipe %q: %w", name, err)
	}
	return mustAffect(res, fmt.Sprintf("set status of pipe %q (uuid %s)", name, uuid))
}

func mustAffect(res sql.Result, op string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", op, pipe.ErrNotFound)
	}
	return nil
}

func encode(p pipe.Pipe) (spec, status string, err error) {
	sb, err := json.Marshal(p.Spec)
	if err != nil {
		return "", "", fmt.Errorf("encode spec: %w", err)
	}
	tb, err := json.Marshal(p.Status)
	if err != nil {
		return "", "", fmt.Errorf("encode status: %w", err)
	}
	return string(sb), string(tb), nil
}

type scanner interface{ Scan(dest ...any) error }

func scan(r scanner) (pipe.Pipe, error) {
	var (
		p            pipe.Pipe
		name, uuid   string
		spec, status string
		revision     int64
	)
	if err := r.Scan(&name, &uuid, &spec, &status, &revision); err != nil {
		return pipe.Pipe{}, err
	}
	var err error
	if p.Spec, err = pipe.DecodeStored([]byte(spec)); err != nil {
		return pipe.Pipe{}, fmt.Errorf("decode spec of pipe %q: %w", name, err)
	}
	if err := json.Unmarshal([]byte(status), &p.Status); err != nil {
		return pipe.Pipe{}, fmt.Errorf("decode status of pipe %q: %w", name, err)
	}
	// The columns are the indexed truth; the JSON copies cannot disagree
	// unless someone edited the file by hand, and then the keys win.
	p.Name, p.UUID, p.Revision = name, uuid, revision
	return p, nil
}
