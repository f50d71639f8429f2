package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-dev/sluice/internal/store"
)

// Atomic runs fn in one SQLite transaction on the store's one connection:
// other callers wait until fn returns, and BEGIN IMMEDIATE (the DSN's
// _txlock) holds the file's write lock for the whole transaction, so a
// read-then-write inside fn cannot lose a race with another process.
func (s *DB) Atomic(ctx context.Context, fn func(tx store.Store) error) error {
	if s.tx {
		return fmt.Errorf("sqlite store: atomic: %w", store.ErrInTransaction)
	}
	return s.atomic(ctx, func(tx *DB) error { return fn(tx) })
}

// atomic runs fn in a transaction, or, when s is already one, in it: the
// methods that write several rows use it to stay all-or-nothing either way.
func (s *DB) atomic(ctx context.Context, fn func(tx *DB) error) (err error) {
	if s.tx {
		return fn(s)
	}
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite store: begin: %w", err)
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// A panic in fn still releases the connection, which every other
		// caller is waiting for.
		if rbErr := sqlTx.Rollback(); rbErr != nil && err != nil {
			err = errors.Join(err, fmt.Errorf("sqlite store: rollback: %w", rbErr))
		}
	}()
	if err := fn(&DB{db: s.db, q: sqlTx, tx: true, now: s.now}); err != nil {
		return err
	}
	committed = true
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlite store: commit: %w", err)
	}
	return nil
}
