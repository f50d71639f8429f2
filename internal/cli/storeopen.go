package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-dev/sluice/internal/store"
	"github.com/sluice-dev/sluice/internal/store/postgres"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
)

// isPostgres reports whether a store setting names a PostgreSQL database.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// serverStore is a server's store, opened: the PostgreSQL database the
// store setting names (shared by several processes), else the SQLite file
// in dataDir.
type serverStore struct {
	store.Store
	// where names it for messages, without a password.
	where string
	// changes hears of other processes' writes; nil for SQLite, which one
	// process owns.
	changes store.Notifier
	// sqlitePath is the SQLite file, for a second handle; "" for PostgreSQL.
	sqlitePath string
}

// openServerStore opens the store of a server's settings. Only create
// makes an SQLite store (and its directory) when missing: listing or
// deleting tokens in a directory without one is a wrong --data-dir.
func (a *app) openServerStore(ctx context.Context, dsn, dataDir string, create bool) (*serverStore, error) {
	if dsn != "" {
		db, err := postgres.Open(ctx, dsn, postgres.WithLogger(a.log))
		if err != nil {
			return nil, fmt.Errorf("store %s: %w", postgres.Redact(dsn), err)
		}
		return &serverStore{Store: db, where: postgres.Redact(dsn), changes: db}, nil
	}
	if dataDir == "" {
		return nil, errors.New("--data-dir is empty: give the server's data directory")
	}
	path := filepath.Join(dataDir, "sluice.db")
	if create {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("data directory: %w", err)
		}
	} else if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no Sluice store at %s: give the server's --data-dir or --config ('sluice serve' and 'sluice tokens create' create it)", path)
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	return &serverStore{Store: db, where: path, sqlitePath: path}, nil
}
