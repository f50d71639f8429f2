// Package store keeps Sluice's desired state (pipes) and the status the
// engine reports for them. Implementations: sqlite (embedded, for `sluice
// dev` and single-process use) and, later, PostgreSQL for many processes.
package store

import (
	"context"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// Store persists pipes. Names are unique. Implementations return
// pipe.ErrNotFound and pipe.ErrExists (wrapped) so callers can branch with
// errors.Is, and must be safe for concurrent use.
type Store interface {
	// CreatePipe stores a new pipe with Revision 1; pipe.ErrExists if the
	// name is taken.
	CreatePipe(ctx context.Context, p pipe.Pipe) (pipe.Pipe, error)
	// GetPipe returns the named pipe or pipe.ErrNotFound.
	GetPipe(ctx context.Context, name string) (pipe.Pipe, error)
	// ListPipes returns every pipe ordered by name.
	ListPipes(ctx context.Context) ([]pipe.Pipe, error)
	// DeletePipe removes the named pipe or returns pipe.ErrNotFound.
	DeletePipe(ctx context.Context, name string) error
	// SetStatus records the engine's view of a pipe. It changes nothing
	// (and returns pipe.ErrNotFound) unless a pipe with that name and UUID
	// exists, so a status write racing a delete and re-create cannot land
	// on the new pipe. It does not bump Revision: status is not spec.
	SetStatus(ctx context.Context, name, uuid string, st pipe.Status) error
	// Close releases the store.
	Close() error
}
