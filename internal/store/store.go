// Package store keeps Sluice's desired state (pipes, functions, clusters,
// secrets, tokens), the status the engine reports for them, and which
// processes are alive. Implementations: sqlite (embedded, for `sluice dev`
// and single-process use) and postgres (shared by many processes).
// storetest is the contract suite both pass.
//
// The interface is split by what each part holds, so a component can ask
// for only what it uses; Store is all of them, and what callers pass around.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// ErrTokenNotFound is returned, wrapped, for an unknown API token.
var ErrTokenNotFound = errors.New("token not found")

// ErrInTransaction is returned, wrapped, by Atomic and Close called on the
// Store an Atomic call hands its function: transactions do not nest, and
// the transaction ends when the function returns.
var ErrInTransaction = errors.New("not allowed inside Atomic")

// Store is everything Sluice persists. Names are unique within a kind.
// Implementations return the errors each method names (wrapped) so callers
// can branch with errors.Is, and must be safe for concurrent use.
type Store interface {
	Pipes
	Functions
	Clusters
	Secrets
	Tokens
	Members
	// Atomic runs fn with a Store whose writes all commit together when
	// fn returns nil, and none of them otherwise; fn's error is returned
	// (possibly wrapped). Reads through the Store fn is given see its own
	// writes. That Store is valid only until fn returns; calling Atomic
	// or Close on it returns ErrInTransaction. fn must use only that
	// Store: an embedded store may serialise all access, so reaching for
	// the outer one inside fn can wait for fn itself.
	Atomic(ctx context.Context, fn func(tx Store) error) error
	// Close releases the store.
	Close() error
}

// Pipes persists pipes and their status.
type Pipes interface {
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
	// DeletePipe removes the named pipe, and the member statuses of its
	// UUID, or returns pipe.ErrNotFound.
	DeletePipe(ctx context.Context, name string) error
	// SetStatus records the engine's view of a pipe. It changes nothing
	// (and returns pipe.ErrNotFound) unless a pipe with that name and UUID
	// exists, and, when revision is not 0, still has that revision: a
	// status write racing a delete and re-create, or an update, cannot
	// land on the newer pipe. It does not bump Revision: status is not
	// spec.
	SetStatus(ctx context.Context, name, uuid string, revision int64, st pipe.Status) error
}

// Functions persists the functions pipes target by name.
type Functions interface {
	// PutFunction creates or replaces a function.
	PutFunction(ctx context.Context, f pipe.Function) (pipe.Function, error)
	// GetFunction returns the named function or pipe.ErrFunctionNotFound.
	GetFunction(ctx context.Context, name string) (pipe.Function, error)
	// ListFunctions returns every function ordered by name.
	ListFunctions(ctx context.Context) ([]pipe.Function, error)
	// DeleteFunction removes the named function or returns
	// pipe.ErrFunctionNotFound.
	DeleteFunction(ctx context.Context, name string) error
}

// Clusters persists named Kafka connections.
type Clusters interface {
	// PutCluster creates or replaces a cluster.
	PutCluster(ctx context.Context, c cluster.Cluster) (cluster.Cluster, error)
	// GetCluster returns the named cluster or cluster.ErrNotFound.
	GetCluster(ctx context.Context, name string) (cluster.Cluster, error)
	// ListClusters returns every cluster ordered by name.
	ListClusters(ctx context.Context) ([]cluster.Cluster, error)
	// DeleteCluster removes the named cluster or returns
	// cluster.ErrNotFound.
	DeleteCluster(ctx context.Context, name string) error
}

// Secrets persists sealed secrets; the store never sees their values.
type Secrets interface {
	// PutSecret creates or replaces a sealed secret, keeping Created of
	// an existing one.
	PutSecret(ctx context.Context, s SealedSecret) (SealedSecret, error)
	// GetSecret returns the named secret or secret.ErrNotFound.
	GetSecret(ctx context.Context, name string) (SealedSecret, error)
	// ListSecrets returns every secret ordered by name.
	ListSecrets(ctx context.Context) ([]SealedSecret, error)
	// DeleteSecret removes the named secret or returns secret.ErrNotFound.
	DeleteSecret(ctx context.Context, name string) error
}

// Tokens persists API tokens, by hash.
type Tokens interface {
	// CreateToken stores a token; pipe.ErrExists if the name is taken.
	CreateToken(ctx context.Context, t Token) (Token, error)
	// TokenByHash returns the token with that hash or ErrTokenNotFound.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// ListTokens returns every token ordered by name.
	ListTokens(ctx context.Context) ([]Token, error)
	// DeleteToken removes the named token or returns ErrTokenNotFound.
	DeleteToken(ctx context.Context, name string) error
}

// MemberStatus is one process's view of a pipe it runs.
type MemberStatus struct {
	PipeUUID             string             `json:"pipeUuid"`
	Member               string             `json:"member"`
	Partitions           map[string][]int32 `json:"partitions"` // topic → partitions this member holds
	LastProcessingResult string             `json:"lastProcessingResult"`
	Updated              time.Time          `json:"updated"`
}

// Members records which processes (members) are alive and what each one
// runs, for several processes sharing one store. Times are kept to the
// microsecond at least and returned in UTC; they are the callers' clocks,
// so readers compare them with a margin for skew.
type Members interface {
	// Heartbeat records that member is alive at t (creating or updating its row).
	Heartbeat(ctx context.Context, member string, t time.Time) error
	// LiveMembers returns the members whose last heartbeat is at or after since, ordered by name.
	LiveMembers(ctx context.Context, since time.Time) ([]string, error)
	// SetMemberStatus creates or replaces (PipeUUID, Member)'s status.
	// A zero Updated is stored as the store's current time.
	SetMemberStatus(ctx context.Context, s MemberStatus) error
	// MemberStatuses returns a pipe's member statuses updated at or after since, ordered by member.
	MemberStatuses(ctx context.Context, pipeUUID string, since time.Time) ([]MemberStatus, error)
}

// Notifier is a store whose changes made by any process can be heard of.
// It is not part of Store: an embedded store has one process, whose own
// writes its callers already know about.
type Notifier interface {
	// Changes sends (coalesced, never blocking the writer) soon after any
	// process commits a change to pipes, functions, clusters, secrets or
	// tokens (not to status, member statuses or heartbeats); the channel
	// is closed when ctx ends. It reconnects by itself after a lost
	// connection and then sends once, since changes may have been missed.
	// A send may also come when nothing changed; a receiver re-reads.
	Changes(ctx context.Context) <-chan struct{}
}
