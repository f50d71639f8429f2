// Package source reads a pipe's topics in its consumer group and hands
// per-partition batches, in offset order, to a handler; it commits a batch's
// offsets only after the handler reports the batch's outcome final.
//
// Shape (after Redpanda Connect's ordered franz-go reader): one poll loop
// moves fetched records into a byte-bounded buffer per partition and pauses
// fetching a partition whose buffer is full; one worker goroutine per
// assigned partition cuts batches from its buffer and runs the handler, so
// partitions progress concurrently while each has at most one batch in
// flight. Commits go through franz-go's marks: a worker marks a batch's last
// record after the handler returns, and the client commits marks on an
// interval, on revocation and on shutdown, never an offset past unfinished
// work.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/scale"
)

// Handler receives each batch; see package batch for the contract. The
// records it answers final are committed; the source hands the rest to it
// again in a new batch, unless the partition is stopping.
type Handler = batch.Handler

// Config configures a Source. Zero values take the documented defaults.
type Config struct {
	// Brokers, Topics and Group say what to read; all required.
	Brokers []string
	Topics  []string
	Group   string
	// StartOffset applies where the group has no committed offset (and
	// where the committed offset has left the log).
	StartOffset kgo.Offset

	// BatchSize caps the records of a batch (required, ≥1).
	BatchSize int
	// Window is how long a batch may wait for more records after its
	// first record arrived; 0 delivers what is buffered at once.
	Window time.Duration
	// MaxBatchBytes caps a batch's encoded size (required).
	MaxBatchBytes int
	// SizeOf is a record's encoded size and EnvelopeSize a batch's size
	// besides its records; they decide the cut by size. Required.
	SizeOf       func(*kgo.Record) int
	EnvelopeSize func(topic string, partition int32) int

	// BufferBytes bounds the record bytes buffered across the source's
	// partitions (default 64 MiB): the source stops polling while the
	// buffers hold that much. A partition holding four equal shares (at
	// most three quarters of the budget, at least MinPartitionBuffer) has
	// its fetching paused, so one stuck partition cannot take the whole
	// budget from the others.
	BufferBytes int

	// InstanceID, when set, makes the source a static member of its group
	// (KIP-345, Kafka's group.instance.id): a process restarted with the
	// same id takes its predecessor's place and partitions without a
	// rebalance, instead of joining as a new member while the dead one
	// lingers until its session or the rebalance times out. A static
	// member does not leave the group when it stops (that is the point:
	// its partitions wait for it), so its partitions move to others only
	// after SessionTimeout. Two live sources with one id fence each other;
	// the fenced one's Run returns ErrFenced. Kafka allows at most 249
	// characters of [a-zA-Z0-9._-].
	InstanceID string

	// Group timings. Session 45 s and heartbeat 3 s are franz-go's
	// defaults, except that a session shorter than 9 s gets a heartbeat
	// of a third of it (Kafka's guidance): franz-go refuses a heartbeat
	// longer than the session, and one heartbeat per session would expire
	// the member on a single late request. RebalanceTimeout defaults to
	// DefaultRebalanceTimeout(StopGrace), see there. Tests shorten them.
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	// MetadataMaxAge is how often the client refreshes metadata when
	// nothing prompts it (default 30 s). That refresh is how the group
	// notices partitions added to its topics; franz-go's default of 5 min
	// would leave records in a new partition unread that long. Shorter
	// than 5 s also lowers the least time between refreshes to match.
	MetadataMaxAge time.Duration
	// CommitInterval is the least time between two commits (default
	// 100 ms). A commit starts as soon as a batch finishes and the previous
	// commit is done and this long ago, so a crash redelivers at most the
	// batches in flight and those finished within one interval; revocation
	// and shutdown commit at once.
	CommitInterval time.Duration
	// StopGrace is how long a stopping partition's in-flight attempt may
	// run before it is canceled (default 5 s).
	StopGrace time.Duration
	// SleepAfter, when positive, lets the source stop once it has seen no
	// record for this long and may sleep (see Idle and sleepable): Run then returns an
	// *Idle after leaving the group, and the caller watches the offsets it
	// names and starts a new source when a record arrives. Zero never
	// sleeps. Transactional sources never sleep.
	SleepAfter time.Duration

	// Ordering is OrderingPartition (the default: one batch of a
	// partition in flight), OrderingKey or OrderingNone (see runKeyed).
	Ordering string
	// Limiter, when set, bounds the batches in flight across the source's
	// partitions: each holds a token while the handler runs. KEY and NONE
	// ordering get one of DefaultKeyedConcurrency tokens when none is set.
	Limiter *scale.Limiter
	// MaxInFlightRecords bounds a partition's window in KEY and NONE
	// ordering: the records taken from its buffer and not yet final
	// (default 100 batches, at most 10,000 and at least one batch). The
	// window, not the limiter, caps a keyed partition's rate when a key's
	// records wait behind its batch in flight: a record stays in the
	// window for its key's trips before it, so the window must hold many
	// trips' worth. The buffer's byte budget bounds it too.
	MaxInFlightRecords int

	// TransactionalID, for NewTransactional only, is the producer's
	// transactional id: unique per process and pipe, and the same when the
	// process comes back, so its open transaction is aborted at once.
	TransactionalID string
	// TransactionTimeout is how long a transaction may stay open (default
	// DefaultTransactionTimeout), for NewTransactional only.
	TransactionTimeout time.Duration
	// OnTxnAbort is told why each aborted transaction did not commit; nil
	// ignores it.
	OnTxnAbort func(error)

	// ClientOpts are added to the Kafka client's options (auth, TLS).
	ClientOpts []kgo.Opt
	// OnPollError is told of errors the client surfaces while fetching,
	// so the pipe's status can show them; nil ignores them.
	OnPollError func(error)
	// OnPolled is told how many records each poll handed to the
	// partitions; OnCommitted how many records a commit covered (counted
	// from the batches marked done, so gaps in the offsets such as
	// transaction markers do not count); OnCommitError of each failed
	// commit. They keep the source free of any metrics library; nil
	// ignores them.
	OnPolled      func(n int)
	OnCommitted   func(n int)
	OnCommitError func(error)
	// OnAssignment is told the partitions the source holds after each
	// change (assigned, revoked, lost, stopped), so the pipe's status can
	// say when it holds none; nil ignores it. It runs inside the client's
	// rebalance and must not block.
	OnAssignment func(held map[string][]int32)
	Logger       *slog.Logger
}

// DefaultKeyedConcurrency is the batches in flight of a KEY or NONE source
// without a Limiter.
const DefaultKeyedConcurrency = 64

// DefaultStopGrace is Config.StopGrace's default.
const DefaultStopGrace = 5 * time.Second

// DefaultRebalanceTimeout is the rebalance timeout for a given stop grace.
//
// The rebalance timeout is how long the coordinator, once a rebalance
// starts, waits for every member it knows to rejoin; all partitions of the
// group wait with it. A live member rejoins after its revoke callback,
// which here lets in-flight batches finish (at most the stop grace) and
// commits (one request, which franz-go bounds at about 10 s). A member
// that will never rejoin, a process killed while the group was joining,
// holds the whole group for the full timeout, so franz-go's 60 s default
// is a minute of no deliveries per such kill. The grace plus 10 s covers
// the live case and bounds the dead one; a member that overstays it is
// dropped from the generation and its partitions are redelivered by their
// next owner, which costs duplicates, never records.
func DefaultRebalanceTimeout(stopGrace time.Duration) time.Duration {
	return stopGrace + 10*time.Second
}

// ErrFenced is what Run returns when the group coordinator fenced this
// source (FENCED_INSTANCE_ID): another member joined with the same
// Config.InstanceID and took over its partitions. Rejoining at once would
// only fence the other in turn, so the source stops; the caller decides
// when to try again and tells the user which setting collides.
var ErrFenced = errors.New("fenced by another member with the same group instance id")

// MinPartitionBuffer is the least buffer a partition gets, so a partition
// always has room for at least a few fetch responses.
const MinPartitionBuffer = 1 << 20

func (c *Config) validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("source: no brokers")
	case len(c.Topics) == 0:
		return errors.New("source: no topics")
	case c.Group == "":
		return errors.New("source: no consumer group")
	case c.BatchSize < 1:
		return errors.New("source: batch size must be at least 1")
	case c.MaxBatchBytes < 1:
		return errors.New("source: max batch bytes must be positive")
	case c.SizeOf == nil || c.EnvelopeSize == nil:
		return errors.New("source: SizeOf and EnvelopeSize are required")
	}
	if c.BufferBytes <= 0 {
		c.BufferBytes = 64 << 20
	}
	switch c.Ordering {
	case "":
		c.Ordering = OrderingPartition
	case OrderingPartition:
	case OrderingKey, OrderingNone:
		if c.Limiter == nil {
			c.Limiter = scale.NewLimiter(DefaultKeyedConcurrency)
		}
	default:
		return fmt.Errorf("source: unknown ordering %q", c.Ordering)
	}
	if c.MaxInFlightRecords <= 0 {
		c.MaxInFlightRecords = max(min(100*c.BatchSize, 10000), c.BatchSize)
	}
	if c.CommitInterval <= 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.StopGrace <= 0 {
		c.StopGrace = DefaultStopGrace
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = DefaultRebalanceTimeout(c.StopGrace)
	}
	if c.HeartbeatInterval <= 0 && c.SessionTimeout > 0 && c.SessionTimeout < 9*time.Second {
		c.HeartbeatInterval = c.SessionTimeout / 3
	}
	if c.MetadataMaxAge <= 0 {
		c.MetadataMaxAge = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

type topicPartition struct {
	topic     string
	partition int32
}

// Source is one pipe's group consumer. Create it with New and run it with
// Run; it is not reusable after Run returns.
type Source struct {
	cfg     Config
	handler Handler
	cl      *kgo.Client
	log     *slog.Logger

	mu      sync.Mutex
	workers map[topicPartition]*worker

	// buffered is the record bytes held by all workers; space is signaled
	// when it drops below the budget, to wake a poll loop waiting for room.
	buffered atomic.Int64
	space    chan struct{}

	// marked is signaled when a worker marked a finished batch.
	marked chan struct{}

	// done tracks the batches marked but not yet committed, to count
	// committed records; cp decides what may be committed.
	done doneMarks
	cp   checkpointer

	// held is the partitions the group assigned us; reported to
	// OnAssignment on each change.
	held holdings

	// fence stops Run with ErrFenced; set by Run before the client runs
	// its group loop, read by the group hook.
	fence atomic.Pointer[context.CancelCauseFunc]
}

// New creates the Kafka client; it does not connect until Run.
func New(cfg Config, h Handler) (*Source, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Source{cfg: cfg, handler: h, log: cfg.Logger, workers: map[topicPartition]*worker{}, space: make(chan struct{}, 1), marked: make(chan struct{}, 1)}
	opts := append(groupOpts(cfg),
		// Marks, not polls, decide what is committed: only finished work.
		// The committer below commits promptly; franz-go's own autocommit
		// is a slow backstop.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(max(10*cfg.CommitInterval, 5*time.Second)),
		// The backstop's commits count like ours; this replaces
		// franz-go's callback, which only logged failures.
		kgo.AutoCommitCallback(s.autoCommitted),
		// Records handed to a worker must belong to a partition we still
		// own; blocking rebalances while we distribute a poll ensures it.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
		kgo.WithHooks(groupHook{s.fenced}),
	)
	opts = append(opts, cfg.ClientOpts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("source: kafka client: %w", err)
	}
	s.cl = cl
	return s, nil
}

// groupOpts are the client options of every consumer of a pipe: what to
// read, in which group, fetch sizes and group timings.
func groupOpts(cfg Config) []kgo.Opt {
	fetchMax := int32(min(max(cfg.BufferBytes/4, 1<<20), 50<<20))
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumeResetOffset(cfg.StartOffset),
		kgo.FetchMaxBytes(fetchMax),
		// Kafka's own consumer default. franz-go's 5 s is cheaper when
		// idle, but a partition resumed after backpressure waits for the
		// broker's in-flight long poll, and 5 s of that stalls a pipe.
		kgo.FetchMaxWait(500 * time.Millisecond),
		// A stuck partition is paused before another fetch like its last
		// would take it past three quarters of the budget (see push), and
		// a fetch of at most a quarter keeps it under the budget even when
		// the next fetch is larger, so the poll gate stays open for the
		// other partitions.
		kgo.FetchMaxPartitionBytes(min(fetchMax, 1<<20, int32(max(cfg.BufferBytes/4, 1)))),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Each pipe is a client of its own, so KIP-714 telemetry would be
		// one push stream per pipe; Sluice exports its own metrics. The
		// push loop's goroutine and compressors were about 30 KiB of an
		// idle pipe's memory.
		kgo.DisableClientMetrics(),
		kgo.MetadataMaxAge(cfg.MetadataMaxAge),
		kgo.WithLogger(kgoLogger{cfg.Logger}),
	}
	if cfg.MetadataMaxAge < 5*time.Second {
		// franz-go refuses a max age below its min age (default 5 s).
		opts = append(opts, kgo.MetadataMinAge(cfg.MetadataMaxAge))
	}
	if cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(cfg.SessionTimeout))
	}
	opts = append(opts, kgo.RebalanceTimeout(cfg.RebalanceTimeout))
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(cfg.InstanceID))
	}
	if cfg.HeartbeatInterval > 0 {
		opts = append(opts, kgo.HeartbeatInterval(cfg.HeartbeatInterval))
	}
	return opts
}

// Client is the underlying Kafka client, for lag queries.
func (s *Source) Client() *kgo.Client { return s.cl }

// Run consumes until ctx is done, then stops every partition (in-flight
// attempts get Config.StopGrace to finish), commits finished work, leaves
// the group (a static member stays, see Config.InstanceID) and closes the
// client. It returns nil, or ErrFenced when another member took over its
// instance id.
func (s *Source) Run(ctx context.Context) (err error) {
	ctx, fence := context.WithCancelCause(ctx)
	defer fence(nil)
	s.fence.Store(&fence)
	defer func() {
		if errors.Is(context.Cause(ctx), ErrFenced) {
			err = context.Cause(ctx)
		}
	}()
	committerDone := make(chan struct{})
	cctx, stopCommitter := context.WithCancel(ctx)
	go func() {
		defer close(committerDone)
		s.commitLoop(cctx)
	}()
	defer func() {
		stopCommitter()
		<-committerDone
		s.shutdown()
	}()
	// lastRecords is when the source last had work; see Config.SleepAfter.
	lastRecords := time.Now()
	for {
		// Backpressure without pausing: franz-go buffers at most one fetch
		// per broker until polled, so not polling bounds memory. (Pausing
		// would discard buffered fetches and refetch them, which costs
		// most of the throughput when the target is the bottleneck.)
		for s.buffered.Load() >= int64(s.cfg.BufferBytes) {
			select {
			case <-s.space:
			case <-ctx.Done():
				return nil
			}
		}
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if s.cfg.SleepAfter > 0 {
			pctx, cancel = context.WithDeadline(ctx, lastRecords.Add(s.cfg.SleepAfter))
		}
		fetches := s.cl.PollRecords(pctx, 10000)
		cancel()
		if ctx.Err() != nil {
			s.cl.AllowRebalance()
			return nil
		}
		failed := false
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, kgo.ErrClientClosed) {
				return
			}
			failed = true
			if errors.Is(err, kerr.FencedInstanceID) {
				s.fenced(err)
				return
			}
			s.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
			if s.cfg.OnPollError != nil {
				s.cfg.OnPollError(err)
			}
		})
		s.distribute(ctx, fetches)
		s.cl.AllowRebalance()
		if n := fetches.NumRecords(); n > 0 && s.cfg.OnPolled != nil {
			s.cfg.OnPolled(n)
		}
		switch {
		case fetches.NumRecords() > 0 || failed:
			lastRecords = time.Now()
		case s.cfg.SleepAfter > 0 && time.Since(lastRecords) >= s.cfg.SleepAfter:
			if idle, ok := s.sleepable(ctx); ok {
				idle.For = time.Since(lastRecords)
				return idle
			}
			// Busy, or holding nothing: look again after another while.
			lastRecords = time.Now()
		}
	}
}

func (s *Source) distribute(ctx context.Context, fetches kgo.Fetches) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		tp := topicPartition{p.Topic, p.Partition}
		w := s.workers[tp]
		if w == nil {
			w = s.startWorker(ctx, tp)
		}
		w.push(p.Records, now, s.partitionShare())
	})
}

// partitionShare is the bytes a partition may hold before its fetching is
// paused: four equal shares, so that under even load the poll gate, not
// pausing, does the throttling (a resumed partition waits for the broker's
// in-flight long poll, which costs throughput), but never more than three
// quarters of the budget, so a stuck partition leaves room for the others.
// s.mu is held.
func (s *Source) partitionShare() int {
	n := max(len(s.workers), 1)
	return max(min(4*s.cfg.BufferBytes/n, 3*s.cfg.BufferBytes/4), MinPartitionBuffer)
}

// freed returns n bytes to the budget and wakes a waiting poll loop.
func (s *Source) freed(n int) {
	if s.buffered.Add(-int64(n)) < int64(s.cfg.BufferBytes) {
		select {
		case s.space <- struct{}{}:
		default:
		}
	}
}

func (s *Source) startWorker(ctx context.Context, tp topicPartition) *worker {
	// The worker outlives a canceled Run ctx by the stop grace, so its
	// context is detached and canceled by stop.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w := &worker{
		src:    s,
		tp:     tp,
		notify: make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		cancel: cancel,
	}
	s.workers[tp] = w
	if s.cfg.Ordering == OrderingPartition {
		go w.run(wctx)
	} else {
		go w.runKeyed(wctx)
	}
	return w
}

// commitLoop commits marked offsets soon after batches finish, at most one
// commit in flight and one per CommitInterval, so commits keep up with
// deliveries without one request per batch.
func (s *Source) commitLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.marked:
		}
		if err := s.commitMarked(ctx); err != nil && ctx.Err() == nil {
			// The marks stay; the next signal or franz-go's backstop
			// autocommit retries them.
			s.log.Warn("commit failed; retrying with the next one", "err", err)
		}
		t := time.NewTimer(s.cfg.CommitInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// markDone records that b's first n records are final and marks the
// partition's contiguous commit offset (see checkpointer) when it advanced.
func (s *Source) markDone(b *batch.Batch, n int) {
	// Recorded before the mark, so a commit that includes the mark always
	// finds the batch to count.
	s.done.add(topicPartition{b.Topic, b.Partition}, b.Records[n-1].Offset+1, n)
	offset, epochOf, ok := s.cp.final(b, n)
	if !ok {
		return
	}
	s.cl.MarkCommitOffsets(map[string]map[int32]kgo.EpochOffset{
		b.Topic: {b.Partition: {Epoch: epochOf.LeaderEpoch, Offset: offset}},
	})
	select {
	case s.marked <- struct{}{}:
	default:
	}
}

// groupHook sees the errors that end a group session: FENCED_INSTANCE_ID
// must stop the source before franz-go's backoff (a quarter second) ends
// and it rejoins, which would fence the other member in turn.
type groupHook struct{ fenced func(error) }

var _ kgo.HookGroupManageError = groupHook{}

func (h groupHook) OnGroupManageError(err error) {
	if errors.Is(err, kerr.FencedInstanceID) {
		h.fenced(err)
	}
}

func (s *Source) fenced(err error) {
	if f := s.fence.Load(); f != nil {
		(*f)(fmt.Errorf("%w (%v)", ErrFenced, err))
	}
}

// assigned records partitions the group gave us; their workers start when
// their first records arrive.
func (s *Source) assigned(_ context.Context, _ *kgo.Client, added map[string][]int32) {
	s.changeHeld(added, true)
}

// changeHeld adds or removes partitions (all when tps is nil and !add)
// from what we hold, and reports the result if that changed it.
func (s *Source) changeHeld(tps map[string][]int32, add bool) {
	s.held.change(tps, add, s.cfg.OnAssignment)
}

// revoked runs inside the client's rebalance: stop the partitions, let
// their in-flight batches finish within the grace, and commit what
// finished before the partitions move to another member.
func (s *Source) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return // a cooperative rebalance that moved nothing of ours; nil would mean "all" below
	}
	s.changeHeld(revoked, false)
	s.stopWorkers(revoked, s.cfg.StopGrace)
	if err := s.commitMarked(ctx); err != nil {
		s.log.Warn("commit on revoke failed; the next owner may redeliver", "err", err)
	}
	// What was not committed now never will be by us.
	s.done.drop(revoked)
	s.cp.drop(revoked)
}

// lost means the partitions already belong to someone else: committing
// could rewind their progress, so only stop.
func (s *Source) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	if len(lost) == 0 {
		return
	}
	s.changeHeld(lost, false)
	s.stopWorkers(lost, 0)
	s.done.drop(lost)
	s.cp.drop(lost)
}

// stopWorkers stops the workers of the given partitions (all when nil) and
// waits for them.
func (s *Source) stopWorkers(tps map[string][]int32, grace time.Duration) {
	s.mu.Lock()
	var stopping []*worker
	for tp, w := range s.workers {
		if tps != nil && !contains(tps[tp.topic], tp.partition) {
			continue
		}
		delete(s.workers, tp)
		stopping = append(stopping, w)
	}
	s.mu.Unlock()
	var resume map[string][]int32
	for _, w := range stopping {
		w.stop(grace)
		if resume == nil {
			resume = map[string][]int32{}
		}
		resume[w.tp.topic] = append(resume[w.tp.topic], w.tp.partition)
	}
	for _, w := range stopping {
		<-w.done
	}
	// A partition paused for a full buffer must not stay paused if it is
	// assigned to us again later.
	if resume != nil {
		s.cl.ResumeFetchPartitions(resume)
	}
}

func (s *Source) shutdown() {
	s.stopWorkers(nil, s.cfg.StopGrace)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.commitMarked(ctx); err != nil {
		s.log.Warn("final commit failed; finished work may be redelivered", "err", err)
	}
	s.cl.CloseAllowingRebalance()
	s.changeHeld(nil, false)
}

func contains(ps []int32, p int32) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}
