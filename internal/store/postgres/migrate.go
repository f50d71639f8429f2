package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrationFiles are the schema's versions, NNNN_what.sql, applied in
// order. A released file never changes: a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int64
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in version order and checks
// that the versions run 1, 2, … without gaps or repeats.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name is not NNNN_what.sql", base)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return int(a.version - b.version) })
	for i, m := range ms {
		if m.version != int64(i+1) {
			return nil, fmt.Errorf("migration %s: version %d, want %d", m.name, m.version, i+1)
		}
	}
	return ms, nil
}

// ErrSchemaTooNew is returned, wrapped, by Open for a store that a newer
// Sluice migrated: this binary does not know its schema and must not write
// to it.
var ErrSchemaTooNew = errors.New("the store's schema is newer than this binary")

// migrate applies the migrations the store lacks, each in a transaction of
// its own that also records it in schema_migrations. Every transaction
// first takes an advisory lock for this schema, so processes starting
// together wait for each other and each migration runs once; the loser
// sees it recorded and moves on.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration) error {
	for {
		var done bool
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			var schema *string
			if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
				return err
			}
			if schema == nil {
				return errors.New("no schema to create tables in: the search_path names none that exists")
			}
			// Two keys: a constant for "Sluice's migrations" and the
			// schema, so stores in other schemas of the database do not
			// wait for this one.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('sluice schema_migrations'), hashtext(current_schema()))`); err != nil {
				return fmt.Errorf("lock: %w", err)
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    BIGINT      PRIMARY KEY,
				applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
			)`); err != nil {
				return fmt.Errorf("create schema_migrations: %w", err)
			}
			rows, _ := tx.Query(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
			applied, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return fmt.Errorf("read schema_migrations: %w", err)
			}
			known := int64(len(ms))
			if n := len(applied); n > 0 && applied[n-1] > known {
				return fmt.Errorf("%w: it has version %d, this binary knows up to %d: run a newer sluice",
					ErrSchemaTooNew, applied[n-1], known)
			}
			next := pendingMigration(ms, applied)
			if next == nil {
				done = true
				return nil
			}
			if _, err := tx.Exec(ctx, next.sql); err != nil {
				return fmt.Errorf("migration %s: %w", next.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, next.version); err != nil {
				return fmt.Errorf("record migration %s: %w", next.name, err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if done {
			return nil
		}
	}
}

// pendingMigration is the first migration not in applied, or nil.
func pendingMigration(ms []migration, applied []int64) *migration {
	for i := range ms {
		if !slices.Contains(applied, ms[i].version) {
			return &ms[i]
		}
	}
	return nil
}
