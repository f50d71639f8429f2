// Package engine runs pipes. It is the control loop between the store's
// desired state and what runs: like a Kubernetes controller, it lists the
// pipes, starts a runner for each enabled one, stops runners whose pipe was
// disabled, changed or deleted, and writes each pipe's status back. It also
// implements pipe.Service, so the API serves writes through it and a write
// wakes the loop at once instead of at the next tick.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/sluice-dev/sluice/internal/chain"
	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
)

// Config configures an Engine. Only Store is required.
type Config struct {
	Store  store.Store
	Logger *slog.Logger
	// ReconcileInterval is how often the store is re-read, which is how
	// changes made by other processes sharing the store are noticed
	// (default 2 s).
	ReconcileInterval time.Duration
	// Tuning of every pipe's source and retries; zero values keep the
	// defaults documented on each field's type.
	Tuning Tuning
	// HTTPClient posts to HTTP targets; nil uses a shared pooled client.
	HTTPClient *http.Client
	// Now is the clock, for validation of starting timestamps.
	Now func() time.Time
	// Keyring seals and opens secrets; nil refuses secret writes and
	// fails pipes whose cluster needs one.
	Keyring *secret.Keyring
	// Member is this process's name in every pipe's consumer group: each
	// runner joins as a static member (KIP-345) with the group instance id
	// member.InstanceID(Member, pipe UUID), so a restarted process takes
	// its place and partitions back without a rebalance. Empty joins as a
	// dynamic member. MemberSetting says where the name came from (e.g.
	// "memberName in the serve config"), for the problem shown when two
	// processes claim one name.
	Member        string
	MemberSetting string
	// Changes, when set, tells of changes other processes sharing the
	// store made (store.Notifier): the engine reconciles at once rather
	// than at its next interval.
	Changes store.Notifier
}

// Tuning holds process-wide knobs that are not part of a pipe's spec.
type Tuning struct {
	// BufferBytes bounds each pipe's buffered records (default 64 MiB).
	BufferBytes int
	// Consumer group timings (defaults: franz-go's 45 s session and 3 s
	// heartbeat; the rebalance timeout is source.DefaultRebalanceTimeout
	// of the stop grace, 15 s).
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	// CommitInterval (default 100 ms) and StopGrace (default 5 s): see
	// source.Config.
	CommitInterval time.Duration
	StopGrace      time.Duration
	// InitialBackoff and MaxBackoff bound retry delays (200 ms, 30 s).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// MetadataMaxAge bounds how late partitions added to a pipe's topic
	// are noticed (default 30 s): see source.Config.
	MetadataMaxAge time.Duration
	// LagInterval is how often every stored pipe's offset lag is
	// measured (default 10 s); LagTimeout bounds one cluster's
	// measurement (default 5 s), so an unreachable cluster delays only
	// its own pipes' figures. See lag.go.
	LagInterval time.Duration
	LagTimeout  time.Duration
	// SleepAfter is how long a pipe may see no record before it sleeps
	// (default DefaultSleepAfter; negative never): it commits, leaves its
	// consumer group and frees its Kafka client, and one shared fetch per
	// cluster watches its partitions; the next record wakes it. A runner
	// holding no partitions stays awake. See sleep.go.
	SleepAfter time.Duration
}

// Engine runs the pipes of one store. Create it with New and start it with
// Run.
type Engine struct {
	cfg   Config
	store store.Store
	log   *slog.Logger
	wake  chan struct{}

	mu      sync.Mutex
	runners map[string]*runner // by pipe name; owned by Run's goroutine

	// obs holds the metrics and what describe shows; reconciled is set
	// after the first successful reconcile, for readiness. See observe.go.
	obs        *observer
	reconciled atomic.Bool
	hosts      *hosts    // the hosted functions' processes
	members    *members  // the processes sharing the store
	watchers   *watchers // sleeping pipes' partitions, per connection
}

// New returns an engine over cfg.Store.
func New(cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("engine: a store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	e := &Engine{
		cfg:     cfg,
		store:   cfg.Store,
		log:     cfg.Logger,
		wake:    make(chan struct{}, 1),
		runners: map[string]*runner{},
		obs:     newObserver(),
	}
	e.hosts = &hosts{e: e}
	e.members = newMembers(e)
	e.watchers = &watchers{}
	return e, nil
}

// Atomic runs fn with the control plane over one store transaction: the
// pipes and clusters fn writes commit together or not at all (a Lambda
// mapping and the cluster it owns), and no process sees half of them.
func (e *Engine) Atomic(ctx context.Context, fn func(pipes pipe.Service, clusters cluster.Service) error) error {
	err := e.store.Atomic(ctx, func(tx store.Store) error {
		v := e.over(tx)
		return fn(v, v)
	})
	if err == nil {
		e.poke()
	}
	return err
}

// over is a view of e's control plane whose reads and writes go to st (a
// transaction); it is never run and holds no runners.
func (e *Engine) over(st store.Store) *Engine {
	return &Engine{cfg: e.cfg, store: st, log: e.log, wake: e.wake, runners: map[string]*runner{}, obs: e.obs, hosts: e.hosts, members: e.members, watchers: e.watchers}
}

func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// CreatePipe validates spec, assigns its UUID, fills its defaults and
// stores it; the pipe starts on the next reconcile, which this triggers.
func (e *Engine) CreatePipe(ctx context.Context, spec pipe.Spec) (pipe.Pipe, error) {
	if err := spec.Validate(e.cfg.Now()); err != nil {
		return pipe.Pipe{}, err
	}
	if spec.UUID != "" {
		return pipe.Pipe{}, &pipe.ValidationError{Kind: "pipe", Fields: []pipe.FieldError{{Field: "uuid", Value: spec.UUID,
			Reason: "Sluice assigns the UUID when it creates the pipe: leave it out"}}}
	}
	bind, err := e.checkTargetSecrets(ctx, spec)
	if err != nil {
		return pipe.Pipe{}, err
	}
	spec.UUID = uuid.NewString()
	spec = spec.Normalize()
	state := pipe.StateCreating
	if !spec.IsEnabled() {
		state = pipe.StateDisabled
	}
	p, err := e.store.CreatePipe(ctx, pipe.Pipe{Spec: spec, Status: pipe.Status{
		State:                 state,
		StateTransitionReason: "USER_INITIATED",
		LastProcessingResult:  pipe.ResultNoRecords,
		LastModified:          e.cfg.Now().UTC(),
	}})
	if err != nil {
		return pipe.Pipe{}, err
	}
	if err := e.storeBindings(ctx, bind); err != nil {
		return pipe.Pipe{}, err
	}
	e.poke()
	return p, nil
}

// storeBindings writes secrets with the brokers a first use bound them to.
func (e *Engine) storeBindings(ctx context.Context, bind []store.SealedSecret) error {
	for _, s := range bind {
		if _, err := e.store.PutSecret(ctx, s); err != nil {
			return fmt.Errorf("bind secret %q to where it is sent: %w", s.Name, err)
		}
	}
	return nil
}

// GetPipe returns a pipe with its latest status.
func (e *Engine) GetPipe(ctx context.Context, name string) (pipe.Pipe, error) {
	return e.store.GetPipe(ctx, name)
}

// ListPipes returns every pipe.
func (e *Engine) ListPipes(ctx context.Context) ([]pipe.Pipe, error) {
	return e.store.ListPipes(ctx)
}

// UpdatePipe replaces a pipe's spec. Create-only fields left empty keep
// their values; changing one is refused. The pipe moves to Updating,
// Enabling or Disabling, and the next reconcile, which this triggers,
// restarts its runner: the old one stops after its in-flight batch and
// commits what finished, so a changed batch size or target neither loses
// nor repeats finished work. An update that changes nothing is a no-op, so
// declarative tools can re-apply a spec freely.
func (e *Engine) UpdatePipe(ctx context.Context, spec pipe.Spec, ifRevision int64) (pipe.Pipe, error) {
	if ifRevision != 0 {
		// The caller's revision is the condition: a conflict is theirs.
		return e.updateOnce(ctx, spec, ifRevision)
	}
	return retryOnConflict(func() (pipe.Pipe, error) { return e.updateOnce(ctx, spec, 0) })
}

// retryOnConflict runs a read-modify-write again when another writer got
// in between its read and its write, a few times: unconditional writes
// should not fail because of a concurrent one.
func retryOnConflict[T any](write func() (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		v, err := write()
		if !errors.Is(err, pipe.ErrConflict) || attempt == 3 {
			return v, err
		}
	}
}

func (e *Engine) updateOnce(ctx context.Context, spec pipe.Spec, ifRevision int64) (pipe.Pipe, error) {
	cur, err := e.store.GetPipe(ctx, spec.Name)
	if err != nil {
		return pipe.Pipe{}, err
	}
	if cur.Status.State == pipe.StateDeleting {
		return pipe.Pipe{}, fmt.Errorf("update pipe %q: %w", spec.Name, pipe.ErrDeleting)
	}
	if ifRevision != 0 && ifRevision != cur.Revision {
		return pipe.Pipe{}, fmt.Errorf("update pipe %q: revision %d is not the current %d: %w", spec.Name, ifRevision, cur.Revision, pipe.ErrConflict)
	}
	spec = pipe.InheritCreateOnly(cur.Spec, spec)
	if err := spec.Validate(e.cfg.Now()); err != nil {
		return pipe.Pipe{}, err
	}
	spec = spec.Normalize()
	if v := pipe.CreateOnlyChanges(cur.Spec, spec); v != nil {
		return pipe.Pipe{}, v
	}
	if reflect.DeepEqual(spec, cur.Spec) {
		return cur, nil
	}
	bind, err := e.checkTargetSecrets(ctx, spec)
	if err != nil {
		return pipe.Pipe{}, err
	}
	st := cur.Status
	switch was, now := cur.IsEnabled(), spec.IsEnabled(); {
	case !was && now:
		st.State = pipe.StateEnabling
	case was && !now:
		st.State = pipe.StateDisabling
	case now:
		st.State = pipe.StateUpdating
	default:
		st.State = pipe.StateDisabled
	}
	st.StateTransitionReason = "USER_INITIATED"
	st.LastModified = e.cfg.Now().UTC()
	p, err := e.store.UpdatePipe(ctx, pipe.Pipe{Spec: spec, Status: st}, cur.Revision)
	if err != nil {
		return pipe.Pipe{}, err
	}
	if err := e.storeBindings(ctx, bind); err != nil {
		return pipe.Pipe{}, err
	}
	e.poke()
	return p, nil
}

// DeletePipe moves a pipe to Deleting; the next reconcile, which this
// triggers, stops its runner (committing its finished work) and then
// removes it. The consumer group and its offsets stay in Kafka, so a pipe
// re-created with the same consumer group id resumes where this one
// stopped. Deleting a pipe already being deleted is not an error.
func (e *Engine) DeletePipe(ctx context.Context, name string) error {
	_, err := retryOnConflict(func() (struct{}, error) {
		cur, err := e.store.GetPipe(ctx, name)
		if err != nil || cur.Status.State == pipe.StateDeleting {
			return struct{}{}, err
		}
		st := cur.Status
		st.State = pipe.StateDeleting
		st.StateTransitionReason = "USER_INITIATED"
		st.LastModified = e.cfg.Now().UTC()
		// A new revision, so a runner still writing status cannot undo
		// the state.
		_, err = e.store.UpdatePipe(ctx, pipe.Pipe{Spec: cur.Spec, Status: st}, cur.Revision)
		return struct{}{}, err
	})
	if err == nil {
		e.poke()
	}
	return err
}

// Run reconciles until ctx is done, then stops every pipe (in-flight
// batches finish within the stop grace or are abandoned uncommitted; finished
// work is committed) and returns.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.ReconcileInterval)
	defer t.Stop()
	// Members first: the lag monitor's first round asks who leads what.
	var bg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(ctx)
	defer func() {
		stopBg()
		bg.Wait()
	}()
	e.members.beat(ctx)
	bg.Add(1)
	go func() {
		defer bg.Done()
		e.members.run(bgCtx)
	}()
	if n := e.cfg.Changes; n != nil {
		bg.Add(1)
		go func() {
			defer bg.Done()
			for range n.Changes(bgCtx) {
				e.poke()
			}
		}()
	}
	stopMonitor := e.startLagMonitor(ctx)
	defer stopMonitor()
	// The hosted functions' processes stop after the pipes that use
	// them.
	defer e.hosts.closeAll()
	// After the pipes: a runner stops its watch as it stops.
	defer e.watchers.closeAll()
	defer e.stopAll()
	for {
		e.watchers.closeIdle()
		if err := e.reconcile(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("reconcile failed; retrying at the next tick", "err", err)
		} else if err == nil {
			e.reconciled.Store(true)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		case <-t.C:
		}
	}
}

func (e *Engine) reconcile(ctx context.Context) error {
	pipes, err := e.store.ListPipes(ctx)
	if err != nil {
		return fmt.Errorf("list pipes: %w", err)
	}
	funcs, err := e.store.ListFunctions(ctx)
	if err != nil {
		return fmt.Errorf("list functions: %w", err)
	}
	conns, err := e.loadConnections(ctx)
	if err != nil {
		return err
	}
	for name, err := range e.hosts.sync(funcs) {
		e.log.Error("cannot host function", "function", name, "err", err)
	}
	tenv := conns.targetEnv(funcs)
	want := make(map[string]pipe.Pipe, len(pipes))
	for _, p := range pipes {
		if p.IsEnabled() && p.Status.State != pipe.StateDeleting {
			want[p.Name] = p
		}
	}
	e.mu.Lock()
	var stop []*runner
	for name, r := range e.runners {
		p, ok := want[name]
		// A function whose URL changed, or a cluster or secret that
		// changed, restarts its pipes, as a spec change does.
		if !ok || p.UUID != r.uuid || p.Revision != r.revision || conns.key(p.Spec) != r.connKey ||
			conns.targetKey(p.Spec, tenv) != r.targetKey {
			stop = append(stop, r)
			delete(e.runners, name)
		}
	}
	e.mu.Unlock()
	stopRunners(stop)

	for _, p := range pipes {
		if p.Status.State == pipe.StateDeleting {
			// Its runner, if any, stopped above.
			if err := e.RemovePipe(ctx, p.Name); err != nil {
				e.log.Error("cannot remove deleted pipe; retrying", "pipe", p.Name, "err", err)
			}
			continue
		}
		if !p.IsEnabled() {
			if p.Status.State != pipe.StateDisabled {
				e.setStatus(ctx, p, pipe.StateDisabled, p.Status.LastProcessingResult)
			}
			continue
		}
		e.mu.Lock()
		_, running := e.runners[p.Name]
		e.mu.Unlock()
		if running {
			continue
		}
		conn, err := conns.resolve(ctx, p.Spec)
		if err != nil {
			problem := pipe.ProblemPrefix + err.Error()
			if p.Status.LastProcessingResult != problem {
				e.log.Error("cannot start pipe: its cluster cannot be used", "pipe", p.Name, "cluster", p.Cluster, "err", err)
				e.setStatus(ctx, p, p.Status.State, problem)
			}
			continue
		}
		penv := tenv
		penv.Kafka = conns.kafkaFor(ctx, p.Spec, conn)
		r, err := e.startRunner(ctx, p, chain.Env{Target: penv}, conns.targetKey(p.Spec, tenv), conn, conns.key(p.Spec))
		if err != nil {
			// Its target or failure destination cannot be made (a
			// function not registered, a secret missing): the error names
			// the fix, and a change to what it names restarts the pipe.
			problem := pipe.ProblemPrefix + err.Error()
			if p.Status.LastProcessingResult != problem {
				e.log.Error("cannot start pipe", "pipe", p.Name, "err", err)
				e.setStatus(ctx, p, p.Status.State, problem)
			}
			continue
		}
		e.mu.Lock()
		e.runners[p.Name] = r
		e.mu.Unlock()
	}
	return nil
}

func (e *Engine) setStatus(ctx context.Context, p pipe.Pipe, state pipe.State, result string) {
	st := pipe.Status{State: state, StateTransitionReason: p.Status.StateTransitionReason,
		LastProcessingResult: result, LastModified: e.cfg.Now().UTC()}
	if err := e.store.SetStatus(ctx, p.Name, p.UUID, p.Revision, st); err != nil && !errors.Is(err, pipe.ErrNotFound) {
		e.log.Warn("cannot record pipe status", "pipe", p.Name, "err", err)
	}
}

func (e *Engine) stopAll() {
	e.mu.Lock()
	all := make([]*runner, 0, len(e.runners))
	for name, r := range e.runners {
		all = append(all, r)
		delete(e.runners, name)
	}
	e.mu.Unlock()
	stopRunners(all)
}

// stopRunners stops runners in parallel, so a shutdown waits for the
// slowest pipe's grace, not their sum.
func stopRunners(rs []*runner) {
	for _, r := range rs {
		r.cancel()
	}
	for _, r := range rs {
		<-r.done
	}
}
