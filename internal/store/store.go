// Package store keeps Sluice's desired state (pipes) and the status the
// engine reports for them. Implementations: sqlite (embedded, for `sluice
// dev` and single-process use) and, later, PostgreSQL for many processes.
package store

import (
	"context"
	"errors"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// ErrTokenNotFound is returned, wrapped, for an unknown API token.
var ErrTokenNotFound = errors.New("token not found")

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
	// UpdatePipe replaces the spec and status of the pipe with p's name
	// and UUID and bumps its Revision, if the stored Revision is revision;
	// pipe.ErrConflict if it is not, pipe.ErrNotFound if there is no such
	// pipe.
	UpdatePipe(ctx context.Context, p pipe.Pipe, revision int64) (pipe.Pipe, error)
	// DeletePipe removes the named pipe or returns pipe.ErrNotFound.
	DeletePipe(ctx context.Context, name string) error
	// SetStatus records the engine's view of a pipe. It changes nothing
	// (and returns pipe.ErrNotFound) unless a pipe with that name and UUID
	// exists, and, when revision is not 0, still has that revision: a
	// status write racing a delete and re-create, or an update, cannot
	// land on the newer pipe. It does not bump Revision: status is not
	// spec.
	SetStatus(ctx context.Context, name, uuid string, revision int64, st pipe.Status) error
	// PutFunction creates or replaces a function.
	PutFunction(ctx context.Context, f pipe.Function) (pipe.Function, error)
	// GetFunction returns the named function or pipe.ErrFunctionNotFound.
	GetFunction(ctx context.Context, name string) (pipe.Function, error)
	// ListFunctions returns every function ordered by name.
	ListFunctions(ctx context.Context) ([]pipe.Function, error)
	// DeleteFunction removes the named function or returns
	// pipe.ErrFunctionNotFound.
	DeleteFunction(ctx context.Context, name string) error
	// PutCluster creates or replaces a cluster.
	PutCluster(ctx context.Context, c cluster.Cluster) (cluster.Cluster, error)
	// GetCluster returns the named cluster or cluster.ErrNotFound.
	GetCluster(ctx context.Context, name string) (cluster.Cluster, error)
	// ListClusters returns every cluster ordered by name.
	ListClusters(ctx context.Context) ([]cluster.Cluster, error)
	// DeleteCluster removes the named cluster or returns
	// cluster.ErrNotFound.
	DeleteCluster(ctx context.Context, name string) error
	// PutSecret creates or replaces a sealed secret, keeping Created of
	// an existing one.
	PutSecret(ctx context.Context, s SealedSecret) (SealedSecret, error)
	// GetSecret returns the named secret or secret.ErrNotFound.
	GetSecret(ctx context.Context, name string) (SealedSecret, error)
	// ListSecrets returns every secret ordered by name.
	ListSecrets(ctx context.Context) ([]SealedSecret, error)
	// DeleteSecret removes the named secret or returns secret.ErrNotFound.
	DeleteSecret(ctx context.Context, name string) error
	// CreateToken stores a token; pipe.ErrExists if the name is taken.
	CreateToken(ctx context.Context, t Token) (Token, error)
	// TokenByHash returns the token with that hash or ErrTokenNotFound.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// ListTokens returns every token ordered by name.
	ListTokens(ctx context.Context) ([]Token, error)
	// DeleteToken removes the named token or returns ErrTokenNotFound.
	DeleteToken(ctx context.Context, name string) error
	// Close releases the store.
	Close() error
}
