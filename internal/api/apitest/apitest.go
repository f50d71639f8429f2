// Package apitest serves the pipe API over a real sqlite store and the
// engine's control plane, with the engine never run, for tests of the API
// and of its clients such as the CLI. Pipes are validated, stored, listed
// and deleted exactly as in production; nothing consumes them.
package apitest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
	"github.com/sluice-dev/sluice/internal/target"
)

// Service is a pipe.Service over a store.Store: the control-plane half of
// the engine without the data plane.
type Service struct {
	Store store.Store
	// Now is the clock for validation and status times; nil means time.Now.
	Now func() time.Time

	once sync.Once
	eng  *engine.Engine
}

var (
	_ pipe.Service         = (*Service)(nil)
	_ pipe.FunctionService = (*Service)(nil)
	_ cluster.Service      = (*Service)(nil)
	_ secret.Service       = (*Service)(nil)
)

// NewService returns a Service over a new sqlite store in t.TempDir,
// closed when the test ends.
func NewService(t testing.TB) *Service {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sluice.db"))
	if err != nil {
		t.Fatalf("open test store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return &Service{Store: db}
}

// NewServer serves api.NewHandler over a NewService on a local port until
// the test ends.
func NewServer(t testing.TB) (*httptest.Server, *Service) {
	t.Helper()
	svc := NewService(t)
	srv := httptest.NewServer(api.NewHandler(svc, nil, svc.API()...))
	t.Cleanup(srv.Close)
	return srv, svc
}

// API is what the Service serves besides pipes: functions, clusters and
// secrets.
func (s *Service) API() []api.Option {
	return []api.Option{api.WithFunctions(s), api.WithClusters(s, s), api.WithInvoker(s), api.WithAtomic(s)}
}

// Atomic runs fn over one store transaction, as the engine does.
func (s *Service) Atomic(ctx context.Context, fn func(pipes pipe.Service, clusters cluster.Service) error) error {
	return s.engine().Atomic(ctx, fn)
}

// InvokeFunction invokes a registered function as the engine does.
func (s *Service) InvokeFunction(ctx context.Context, name string, payload []byte) (target.Invocation, error) {
	return s.engine().InvokeFunction(ctx, name, payload)
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// engine is the real control plane over Store, never run: pipes are
// validated, stored and deleted exactly as in production, and nothing
// consumes them.
func (s *Service) engine() *engine.Engine {
	s.once.Do(func() {
		// A fixed master key: tests need secrets sealed, not kept safe.
		kr, err := secret.NewKeyring(make([]byte, secret.KeySize))
		if err != nil {
			panic(fmt.Sprintf("apitest: %v", err))
		}
		e, err := engine.New(engine.Config{Store: s.Store, Now: s.now, Keyring: kr})
		if err != nil {
			panic(fmt.Sprintf("apitest: %v", err)) // only a nil Store fails
		}
		s.eng = e
	})
	return s.eng
}

// CreatePipe creates a pipe as the engine does.
func (s *Service) CreatePipe(ctx context.Context, spec pipe.Spec) (pipe.Pipe, error) {
	return s.engine().CreatePipe(ctx, spec)
}

// GetPipe returns the named pipe.
func (s *Service) GetPipe(ctx context.Context, name string) (pipe.Pipe, error) {
	return s.engine().GetPipe(ctx, name)
}

// ListPipes returns every pipe ordered by name.
func (s *Service) ListPipes(ctx context.Context) ([]pipe.Pipe, error) {
	return s.engine().ListPipes(ctx)
}

// UpdatePipe updates a pipe as the engine does.
func (s *Service) UpdatePipe(ctx context.Context, spec pipe.Spec, ifRevision int64) (pipe.Pipe, error) {
	return s.engine().UpdatePipe(ctx, spec, ifRevision)
}

// DeletePipe deletes the named pipe as the engine does, then finishes the
// deletion that the engine's reconcile would: with no runner to stop, the
// pipe leaves the store at once.
func (s *Service) DeletePipe(ctx context.Context, name string) error {
	if err := s.engine().DeletePipe(ctx, name); err != nil {
		return err
	}
	return s.engine().RemovePipe(ctx, name)
}

// PutFunction registers a function as the engine does.
func (s *Service) PutFunction(ctx context.Context, f pipe.Function) (pipe.Function, error) {
	return s.engine().PutFunction(ctx, f)
}

// GetFunction returns the named function.
func (s *Service) GetFunction(ctx context.Context, name string) (pipe.Function, error) {
	return s.engine().GetFunction(ctx, name)
}

// ListFunctions returns every function.
func (s *Service) ListFunctions(ctx context.Context) ([]pipe.Function, error) {
	return s.engine().ListFunctions(ctx)
}

// DeleteFunction deletes a function no pipe targets.
func (s *Service) DeleteFunction(ctx context.Context, name string) error {
	return s.engine().DeleteFunction(ctx, name)
}

// Run stands in for the engine's reconcile loop: it has nothing to run, so
// it waits for ctx and returns nil, as the engine does after a clean stop.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}

// PutCluster stores a cluster as the engine does.
func (s *Service) PutCluster(ctx context.Context, c cluster.Cluster) (cluster.Cluster, error) {
	return s.engine().PutCluster(ctx, c)
}

// GetCluster returns the named cluster.
func (s *Service) GetCluster(ctx context.Context, name string) (cluster.Cluster, error) {
	return s.engine().GetCluster(ctx, name)
}

// ListClusters returns every cluster.
func (s *Service) ListClusters(ctx context.Context) ([]cluster.Cluster, error) {
	return s.engine().ListClusters(ctx)
}

// DeleteCluster deletes a cluster no pipe uses.
func (s *Service) DeleteCluster(ctx context.Context, name string) error {
	return s.engine().DeleteCluster(ctx, name)
}

// PutSecret seals and stores a secret as the engine does.
func (s *Service) PutSecret(ctx context.Context, sec secret.Secret) (secret.Meta, error) {
	return s.engine().PutSecret(ctx, sec)
}

// GetSecret returns a secret's metadata.
func (s *Service) GetSecret(ctx context.Context, name string) (secret.Meta, error) {
	return s.engine().GetSecret(ctx, name)
}

// ListSecrets returns every secret's metadata.
func (s *Service) ListSecrets(ctx context.Context) ([]secret.Meta, error) {
	return s.engine().ListSecrets(ctx)
}

// DeleteSecret deletes a secret no cluster uses.
func (s *Service) DeleteSecret(ctx context.Context, name string) error {
	return s.engine().DeleteSecret(ctx, name)
}
