package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/chain"
	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/destination"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/kafkaauth"
	"github.com/sluice-dev/sluice/internal/member"
	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/scale"
	"github.com/sluice-dev/sluice/internal/source"
	"github.com/sluice-dev/sluice/internal/stage"
	"github.com/sluice-dev/sluice/internal/target"
)

// runner runs one pipe: a source whose handler is the retrying target.
type runner struct {
	name     string
	uuid     string
	revision int64
	connKey  string // what its Kafka connection was made of; see connections.key
	// targetKey is what its target's secrets were; see connections.targetKey.
	targetKey string
	cancel    context.CancelFunc
	done      chan struct{}

	eng *Engine
	log *slog.Logger

	// instanceID is the runner's static member id in the pipe's group
	// ("" joins as a dynamic member); rebalanceTimeout what its source
	// uses, for messages.
	instanceID       string
	rebalanceTimeout time.Duration
	// source is the running source, nil between sources; the group watch
	// asks the coordinator through its client.
	source atomic.Pointer[consumer]

	mu          sync.Mutex
	state       pipe.State
	reason      string
	delivered   bool   // a batch has succeeded since start
	targetIssue string // the latest delivery failure, until a success
	kafkaIssue  string // the latest Kafka connection failure, until progress
	groupIssue  string // the group cannot consume the pipe's lag; see group.go
	memberIssue string // another process took this one's instance id, until it holds partitions again
	destIssue   string // the failure destination refuses records, until it takes them
	// exhausted holds, per partition, the problem of a batch whose
	// retries ran out and which is retried on (no failure destination):
	// it stays the result until that batch is delivered, rather than
	// giving way to the next attempt's plain failure.
	exhausted    map[partitionKey]string
	retrying     map[partitionKey]observe.Retry // failing batches; see waiting
	lastReported string
	dirty        chan struct{} // status changed; capacity 1
	groupPoke    chan struct{} // this process's partitions changed: look at the group now; capacity 1
	throttled    chan struct{} // the target throttled: the controller ticks a scaleTick later; capacity 1
	held         map[string][]int32
	heldCount    int
	group        *observe.Group // the latest look at the group
	asleep       *observe.Sleep // set while the runner sleeps; see sleep.go
	changes      resultLog

	obs *pipeObs // metrics, throughput and last problem; see observe.go

	// limiter bounds the pipe's batches in flight; ctrl moves its limit
	// (see package scale); ordering is the spec's.
	limiter  *scale.Limiter
	ctrl     *scale.Controller
	ordering string
}

func (e *Engine) startRunner(ctx context.Context, p pipe.Pipe, env chain.Env, targetKey string, conn connection, connKey string) (*runner, error) {
	spec := p.Spec
	log := e.log.With("pipe", spec.Name)
	r := &runner{
		name: spec.Name, uuid: spec.UUID, revision: p.Revision, connKey: connKey, targetKey: targetKey,
		done: make(chan struct{}), eng: e, log: log,
		state: pipe.StateEnabled, reason: p.Status.StateTransitionReason,
		lastReported: p.Status.LastProcessingResult,
		dirty:        make(chan struct{}, 1),
		groupPoke:    make(chan struct{}, 1),
		throttled:    make(chan struct{}, 1),
		// Before the Kafka client exists: its hooks fire from creation.
		obs: e.obs.entry(spec.Name),
	}
	if p.Status.LastProcessingResult == pipe.ResultOK {
		r.delivered = true
	}
	tun := e.cfg.Tuning
	if e.cfg.Member != "" {
		r.instanceID = member.InstanceID(e.cfg.Member, spec.UUID)
	}
	r.rebalanceTimeout = tun.RebalanceTimeout
	if r.rebalanceTimeout <= 0 {
		r.rebalanceTimeout = source.DefaultRebalanceTimeout(cmp.Or(tun.StopGrace, source.DefaultStopGrace))
	}

	enc, err := event.NewFormatEncoder(conn.source, event.Format(spec.Format))
	if err != nil {
		return nil, err
	}
	if spec.BatchSize == 1 {
		enc.UseBinaryMode() // CloudEvents: one record per call goes in binary mode
	}
	env.Target.Encoder, env.Target.Source = enc, conn.source
	env.Target.Pipe = spec.Name
	env.Target.Produced = r.produced
	env.Observer = r
	env.InitialBackoff, env.MaxBackoff = tun.InitialBackoff, tun.MaxBackoff
	env.Meta = destination.Meta{EventSourceARN: conn.source.EventSourceARN, BootstrapServers: conn.brokers, FunctionARN: target.Describe(spec, env.Target)}
	pl, err := chain.Open(ctx, spec, env)
	if err != nil {
		return nil, err
	}
	watch := &kafkaauth.ConnWatch{ClientCert: conn.auth == cluster.AuthMTLS}
	srcCfg := source.Config{
		Brokers:           conn.brokers,
		Topics:            spec.Topics,
		Group:             spec.GroupID(),
		InstanceID:        r.instanceID,
		StartOffset:       startOffset(spec),
		BatchSize:         spec.BatchSize,
		Window:            spec.BatchingWindow(),
		MaxBatchBytes:     spec.PayloadLimitBytes,
		SizeOf:            enc.Size,
		EnvelopeSize:      enc.EnvelopeSize,
		BufferBytes:       tun.BufferBytes,
		SessionTimeout:    tun.SessionTimeout,
		RebalanceTimeout:  r.rebalanceTimeout,
		HeartbeatInterval: tun.HeartbeatInterval,
		CommitInterval:    tun.CommitInterval,
		StopGrace:         tun.StopGrace,
		MetadataMaxAge:    tun.MetadataMaxAge,
		SleepAfter:        tun.sleepAfter(),
		ClientOpts:        append([]kgo.Opt{kgo.WithHooks(connHook{r, watch})}, conn.opts...),
		OnPollError:       r.pollError,
		OnPolled:          r.polled,
		OnCommitted:       r.committedRecords,
		OnCommitError:     r.commitError,
		OnAssignment:      r.assignment,
		Logger:            log,
	}
	if k := spec.Target.Kafka; k != nil && k.Delivery == pipe.ExactlyOnce {
		srcCfg.TransactionalID = transactionalID(spec, r.instanceID)
		srcCfg.ClientOpts = append(srcCfg.ClientOpts, target.TxnProducerOpts(*k)...)
		srcCfg.OnTxnAbort = r.txnAborted
	}

	r.ordering = cmp.Or(spec.Ordering, pipe.OrderingPartition)
	r.limiter = scale.NewLimiter(spec.MaximumConcurrency)
	policy := scale.Policy{Min: cmp.Or(spec.MinimumConcurrency, pipe.DefaultMinimumConcurrency), Max: cmp.Or(spec.MaximumConcurrency, pipe.DefaultMaximumConcurrency)}
	if r.ordering == pipe.OrderingPartition {
		// One batch per partition already bounds it: start unbounded
		// within the maximum, as before there was a controller, and only
		// throttling lowers it.
		policy.Start = policy.Max
	}
	r.ctrl = scale.NewController(r.limiter, policy, r.concurrencyChanged)
	r.limiter.OnStarved(func() { r.ctrl.Starved(time.Now()) })
	r.obs.m.Concurrency.Set(float64(r.limiter.Limit()))
	srcCfg.Limiter, srcCfg.Ordering = r.limiter, r.ordering

	e.obs.attach(r.obs)
	rctx, cancel := context.WithCancel(ctx)
	r.cancel = cancel
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.statusLoop(rctx)
	}()
	go func() {
		defer close(r.done)
		log.Info("pipe started", "topics", spec.Topics, "group", spec.GroupID(), "instance_id", r.instanceID,
			"target", target.Describe(spec, env.Target), "brokers", conn.brokers, "auth", conn.auth)
		r.consume(rctx, conn, spec, srcCfg, pl.Handler)
		if err := pl.Close(); err != nil {
			log.Warn("cannot close the pipe's target or failure destination", "err", err)
		}
		wg.Wait()
		r.flushChanges(time.Now(), true)
		e.obs.detach(r.obs)
		// Write the last word after the loop has stopped so it cannot be
		// overwritten by an older one.
		r.writeStatus(context.WithoutCancel(ctx))
		log.Info("pipe stopped")
	}()
	r.markDirty()
	return r, nil
}

// consumer is a pipe's source: at least once, or in transactions.
type consumer interface {
	Run(ctx context.Context) error
	Client() *kgo.Client
}

func newConsumer(cfg source.Config, h source.Handler) (consumer, error) {
	if cfg.TransactionalID != "" {
		return source.NewTransactional(cfg, h)
	}
	return source.New(cfg, h)
}

// transactionalID is an EXACTLY_ONCE pipe's transactional id: per pipe and
// process, and the same when a process with the same member name comes
// back, so that its predecessor's open transaction is aborted at once. A
// process without a member name gets a random one per start. The prefix
// sluice-PIPE-UUID is what a prefixed ACL grants.
func transactionalID(spec pipe.Spec, instanceID string) string {
	if instanceID != "" {
		return "sluice-" + instanceID
	}
	return "sluice-" + spec.UUID + "-" + strconv.FormatUint(rand.Uint64(), 36)
}

// scaleTick is how long after a throttle the concurrency controller looks
// back: the throttles within it halve the concurrency once.
const scaleTick = time.Second

// scaleLoop ticks the concurrency controller a scaleTick after the target
// throttled, until ctx ends. The controller's tick does nothing without a
// throttle, so a pipe whose target does not throttle has no timer.
func (r *runner) scaleLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.throttled:
		}
		t := time.NewTimer(scaleTick)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case now := <-t.C:
			r.ctrl.Tick(now)
		}
	}
}

// concurrencyChanged records a change of the concurrency in the metrics
// and the log.
func (r *runner) concurrencyChanged(c scale.Change) {
	r.obs.m.Concurrency.Set(float64(c.To))
	r.obs.m.ConcurrencyChanged(c.Reason)
	r.log.Info("concurrency changed", "from", c.From, "to", c.To, "reason", c.Reason)
}

// throttling says whether a delivery error is the target asking for less:
// 429 or 503, a Retry-After, or no answer in time.
func throttling(err error) bool {
	var st interface{ HTTPStatus() int }
	if errors.As(err, &st) && (st.HTTPStatus() == 429 || st.HTTPStatus() == 503) {
		return true
	}
	return batch.RetryAfter(err) > 0 || batch.TargetUnavailable(err)
}

// concurrency is the controller's state, for describe.
func (r *runner) concurrency() *observe.Concurrency {
	cur, lo, hi, last := r.ctrl.State()
	c := &observe.Concurrency{Ordering: r.ordering, Current: cur, Minimum: lo, Maximum: hi, InFlight: r.limiter.InUse()}
	if last != nil {
		c.LastChange = &observe.ConcurrencyChange{From: last.From, To: last.To, Reason: last.Reason, At: last.At.UTC()}
	}
	return c
}

// partitionKey names a partition.
type partitionKey struct {
	topic     string
	partition int32
}

// Fenced sources wait this long before they try again, doubling up to
// the maximum: long enough that two processes claiming one member name do
// not fence each other many times a second, short enough that a process
// whose twin went away takes over within minutes.
const (
	fencedRetryMin = 5 * time.Second
	fencedRetryMax = 2 * time.Minute
)

// consume runs the pipe's source until ctx ends. The consumer starts only
// once the cluster lets it in and every permission it needs is there (a
// group consumer retries auth failures silently, and would join the group
// meanwhile). A source fenced by another member with the same instance id
// is shown as a problem naming the setting and started again after a
// backoff.
func (r *runner) consume(ctx context.Context, conn connection, spec pipe.Spec, cfg source.Config, h source.Handler) {
	backoff := fencedRetryMin
	woken := false
	for woken || r.preflight(ctx, conn, spec) {
		woken = false
		src, err := newConsumer(cfg, h)
		if err != nil {
			r.log.Error("cannot start the Kafka consumer", "err", err)
			r.update(func() { r.kafkaIssue = err.Error() })
			return
		}
		r.source.Store(&src)
		started := time.Now()
		err = r.run(ctx, spec, src)
		r.source.Store(nil)
		var idle *source.Idle
		if ctx.Err() == nil && errors.As(err, &idle) {
			// Asleep until a record comes; the access checked at start
			// still holds, so no preflight on waking.
			if woken = r.sleep(ctx, conn, idle); !woken {
				return
			}
			continue
		}
		if ctx.Err() != nil || !errors.Is(err, source.ErrFenced) {
			if err != nil {
				r.log.Error("pipe stopped with an error", "err", err)
			}
			return
		}
		if time.Since(started) > 2*fencedRetryMax {
			backoff = fencedRetryMin // fenced again after a long run: a new collision
		}
		problem := fmt.Sprintf("Another process joined consumer group %q with this process's group instance id %q and took over its partitions: "+
			"the member name %q (from %s) must be unique per process. Rejoining in %s.",
			spec.GroupID(), r.instanceID, r.eng.cfg.Member, cmp.Or(r.eng.cfg.MemberSetting, "the engine's configuration"), backoff)
		r.update(func() { r.memberIssue = problem })
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, fencedRetryMax)
	}
}

// run runs one source with the loops that watch it (the concurrency
// controller's tick, the group check): they run only while a source does,
// so a sleeping pipe costs no timers.
func (r *runner) run(ctx context.Context, spec pipe.Spec, src consumer) error {
	actx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.scaleLoop(actx)
	}()
	go func() {
		defer wg.Done()
		r.watchGroup(actx, spec)
	}()
	defer func() {
		stop()
		wg.Wait()
	}()
	return src.Run(ctx)
}

// preflight checks, before the pipe consumes, that the cluster accepts its
// credentials and grants every permission the reference requires (see
// kafkaauth.CheckAccess), showing what is missing as the pipe's problem and
// checking again with backoff until it is there. It returns false when ctx
// ends first.
func (r *runner) preflight(ctx context.Context, conn connection, spec pipe.Spec) bool {
	tun := r.eng.cfg.Tuning
	watch := &kafkaauth.ConnWatch{ClientCert: conn.auth == cluster.AuthMTLS}
	cl, err := kgo.NewClient(conn.clientOpts(kgo.DisableClientMetrics(), kgo.WithHooks(preflightHook{r, watch}))...)
	if err != nil {
		r.update(func() { r.kafkaIssue = err.Error() })
		return false
	}
	defer cl.Close()
	backoff := max(tun.InitialBackoff, 100*time.Millisecond)
	for {
		cctx, cancel := context.WithTimeout(ctx, preflightTimeout)
		err := kafkaauth.CheckAccess(cctx, cl, conn.principal, spec.Topics, spec.GroupID())
		cancel()
		if ctx.Err() != nil {
			return false
		}
		if err == nil {
			r.update(func() { r.kafkaIssue = "" })
			return true
		}
		wait := backoff
		var ae *kafkaauth.AccessError
		var problem string
		switch {
		case errors.As(err, &ae):
			problem = ae.Error()
		case errors.Is(err, kafkaauth.ErrTopicNotFound):
			// The error already says what to do; add what happens next.
			problem = fmt.Sprintf("%s. The pipe starts when it exists.", err)
			wait = min(backoff, time.Second) // a topic being created should not wait long
		default:
			problem = watch.Problem(err)
		}
		r.update(func() { r.kafkaIssue = problem })
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
		backoff = min(2*backoff, max(tun.MaxBackoff, time.Second))
	}
}

// preflightHook shows a connection failure (dial, TLS, SASL) as soon as
// the preflight's client meets it, rather than when the check times out;
// unlike connHook it never clears the problem: the check's result does.
type preflightHook struct {
	r     *runner
	watch *kafkaauth.ConnWatch
}

func (h preflightHook) OnBrokerConnect(meta kgo.BrokerMetadata, d time.Duration, c net.Conn, err error) {
	h.watch.OnBrokerConnect(meta, d, c, err)
	h.show()
}

func (h preflightHook) OnBrokerRead(meta kgo.BrokerMetadata, key int16, n int, wait, read time.Duration, err error) {
	h.watch.OnBrokerRead(meta, key, n, wait, read, err)
	if err != nil {
		h.show()
	}
}

func (h preflightHook) show() {
	if h.watch.Err() != nil {
		h.r.update(func() { h.r.kafkaIssue = h.watch.Problem(nil) })
	}
}

// preflightTimeout bounds one access check; a broker that does not answer
// in this long is reported as a connection problem and tried again.
const preflightTimeout = 10 * time.Second

func startOffset(s pipe.Spec) kgo.Offset {
	switch s.StartingPosition {
	case pipe.Latest:
		return kgo.NewOffset().AtEnd()
	case pipe.AtTimestamp:
		return kgo.NewOffset().AfterMilli(s.StartingPositionTimestamp.UnixMilli())
	default:
		return kgo.NewOffset().AtStart()
	}
}

// result is the LastProcessingResult now; r.mu is held.
func (r *runner) result() string {
	switch {
	case r.memberIssue != "":
		return pipe.ProblemPrefix + r.memberIssue
	case r.kafkaIssue != "":
		return pipe.ProblemPrefix + r.kafkaIssue
	case r.groupIssue != "":
		return pipe.ProblemPrefix + r.groupIssue
	case r.destIssue != "":
		return pipe.ProblemPrefix + r.destIssue
	case len(r.exhausted) > 0:
		first := slices.MinFunc(slices.Collect(maps.Keys(r.exhausted)), func(a, b partitionKey) int {
			return cmp.Or(strings.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
		})
		return pipe.ProblemPrefix + r.exhausted[first]
	case r.targetIssue != "":
		return pipe.ProblemPrefix + r.targetIssue
	case r.delivered:
		return pipe.ResultOK
	default:
		return pipe.ResultNoRecords
	}
}

func (r *runner) markDirty() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

// update changes the status under r.mu and, when the visible result
// changed, schedules a store write and logs it (see resultLog: a target
// failing every other batch costs one line per interval, not one per
// change).
func (r *runner) update(fn func()) {
	r.mu.Lock()
	before := r.result()
	fn()
	after := r.result()
	r.mu.Unlock()
	r.obs.sawResult(after)
	if before != after {
		if r.changes.change(time.Now(), after) {
			logResult(r.log, after)
		}
		r.markDirty()
	}
}

func logResult(log *slog.Logger, result string) {
	if strings.HasPrefix(result, pipe.ProblemPrefix) {
		log.Warn("pipe has a problem", "result", result)
	} else {
		log.Info("pipe processing", "result", result)
	}
}

// flushChanges logs the changes resultLog held back, once their interval
// ended (or now, when final).
func (r *runner) flushChanges(now time.Time, final bool) {
	sum, ok := r.changes.flush(now, final)
	if !ok {
		return
	}
	r.mu.Lock()
	cur := r.result()
	r.mu.Unlock()
	msg := fmt.Sprintf("pipe result changed %d times in the last %s", sum.n, sum.span.Round(time.Second))
	if sum.problems > 0 {
		r.log.Warn(msg, "results", sum.String(), "result", cur)
	} else {
		r.log.Info(msg, "results", sum.String(), "result", cur)
	}
}

// The runner is the stages' Observer: it keeps the pipe's status and
// metrics from what they report.
var _ stage.Observer = (*runner)(nil)

func (r *runner) Failed(b *batch.Batch, attempt int, err error) {
	if throttling(err) {
		r.ctrl.Throttled()
		select {
		case r.throttled <- struct{}{}:
		default:
		}
	}
	key := partitionKey{b.Topic, b.Partition}
	r.update(func() {
		r.targetIssue = target.ProblemOf(err)
		if _, ok := r.exhausted[key]; ok {
			r.exhausted[key] = exhaustedProblem(attempt, err)
		}
	})
	r.log.Debug("delivery failed", "topic", b.Topic, "partition", b.Partition,
		"first_offset", b.FirstOffset(), "attempt", attempt, "err", err)
}

// exhaustedProblem is the status shown while records whose retries ran
// out keep being retried because no failure destination is configured.
func exhaustedProblem(attempts int, err error) string {
	return fmt.Sprintf("retries exhausted after %d attempts and no failure destination is configured, so the batch keeps being retried: %s",
		attempts, target.ProblemOf(err))
}

// Waiting records when a failing batch's next attempt comes, for describe.
func (r *runner) Waiting(b *batch.Batch, next int, at time.Time) {
	key := partitionKey{b.Topic, b.Partition}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retrying == nil {
		r.retrying = map[partitionKey]observe.Retry{}
	}
	rt, ok := r.retrying[key]
	if !ok || rt.FirstOffset != b.FirstOffset() {
		rt = observe.Retry{Topic: b.Topic, Partition: b.Partition, FirstOffset: b.FirstOffset(), FailingSince: time.Now().UTC()}
	}
	rt.NextAttempt, rt.NextAttemptAt = next, at.UTC()
	rt.Problem = r.targetIssue
	r.retrying[key] = rt
}

func (r *runner) Exhausted(b *batch.Batch, attempts int, err error) {
	r.update(func() {
		if r.exhausted == nil {
			r.exhausted = map[partitionKey]string{}
		}
		r.exhausted[partitionKey{b.Topic, b.Partition}] = exhaustedProblem(attempts, err)
	})
	r.log.Error("retries exhausted; no failure destination configured, so the batch keeps being retried",
		"topic", b.Topic, "partition", b.Partition, "first_offset", b.FirstOffset(), "last_offset", b.LastOffset(), "err", err)
}

func (r *runner) Delivered(b *batch.Batch, _ int) {
	r.mu.Lock()
	clean := r.delivered && r.targetIssue == "" && r.kafkaIssue == "" && r.memberIssue == "" && len(r.exhausted) == 0 && len(r.retrying) == 0
	r.mu.Unlock()
	if clean {
		return // the hot path: nothing changes
	}
	r.update(func() {
		r.delivered = true
		r.targetIssue = ""
		r.kafkaIssue = ""
		r.memberIssue = ""
		delete(r.exhausted, partitionKey{b.Topic, b.Partition})
		delete(r.retrying, partitionKey{b.Topic, b.Partition})
	})
}

// HandedOff counts and logs records that left the pipe undelivered, with
// their offsets, so an operator can find them.
func (r *runner) HandedOff(b *batch.Batch, status batch.Status, n int, cond batch.Condition, err error) {
	m := r.obs.m
	args := []any{"topic", b.Topic, "partition", b.Partition, "first_offset", b.FirstOffset(), "last_offset", b.LastOffset(),
		"records", n, "condition", string(cond)}
	if err != nil {
		args = append(args, "err", target.ProblemOf(err))
	}
	last := &observe.HandOff{At: time.Now().UTC(), Topic: b.Topic, Partition: b.Partition, FirstOffset: b.FirstOffset(), LastOffset: b.LastOffset(),
		Records: n, Condition: string(cond), To: "destination"}
	po := r.obs
	po.mu.Lock()
	if status == batch.Discarded {
		last.To = "discard"
		po.failed.Discarded += int64(n)
	} else {
		po.failed.DeadLettered += int64(n)
	}
	po.failed.Last = last
	po.historyOf(r.uuid).AddFlow(last.At, 0, n)
	po.mu.Unlock()
	if status == batch.Discarded {
		m.Dropped.Add(float64(n))
		r.log.Warn("records discarded after their retry limits ran out (onFailure.discard)", args...)
	} else {
		m.OnFailureDelivered.Add(float64(n))
		r.log.Warn("records handed to the failure destination", args...)
	}
	r.update(func() {
		delete(r.exhausted, partitionKey{b.Topic, b.Partition})
		delete(r.retrying, partitionKey{b.Topic, b.Partition})
	})
}

// DestinationFailed shows a failure destination that refuses records as
// the pipe's problem until it accepts them again.
func (r *runner) DestinationFailed(b *batch.Batch, err error) {
	if err == nil {
		r.update(func() { r.destIssue = "" })
		return
	}
	problem := fmt.Sprintf("the failure destination refused records of %s-%d from offset %d, so they are kept and offered again: %s",
		b.Topic, b.Partition, b.FirstOffset(), target.ProblemOf(err))
	r.update(func() { r.destIssue = problem })
	r.log.Warn("failure destination refused records; retrying", "topic", b.Topic, "partition", b.Partition,
		"first_offset", b.FirstOffset(), "err", err)
}

func (r *runner) pollError(err error) {
	r.obs.m.PollingErrors.Inc()
	r.update(func() { r.kafkaIssue = kafkaauth.Problem(err) })
}

// connHook reports broker connection failures (dial, TLS, SASL), which
// the group consumer otherwise retries silently, phrased as the reference
// does, and clears them once a broker answers again.
type connHook struct {
	r     *runner
	watch *kafkaauth.ConnWatch
}

var (
	_ kgo.HookBrokerConnect = connHook{}
	_ kgo.HookBrokerRead    = connHook{}
)

func (h connHook) OnBrokerConnect(meta kgo.BrokerMetadata, d time.Duration, c net.Conn, err error) {
	h.watch.OnBrokerConnect(meta, d, c, err)
	if err != nil {
		h.r.obs.m.PollingErrors.Inc()
		h.r.update(func() { h.r.kafkaIssue = h.watch.Problem(err) })
		return
	}
	h.clearIfHealthy()
}

func (h connHook) OnBrokerRead(meta kgo.BrokerMetadata, key int16, n int, wait, read time.Duration, err error) {
	h.watch.OnBrokerRead(meta, key, n, wait, read, err)
	if err != nil {
		if we := h.watch.Err(); we != nil {
			h.r.update(func() { h.r.kafkaIssue = h.watch.Problem(nil) })
		}
		return
	}
	h.clearIfHealthy()
}

// clearIfHealthy clears a connection problem once the watch has seen a
// broker answer after authenticating; the hot path takes one lock.
func (h connHook) clearIfHealthy() {
	h.r.mu.Lock()
	had := h.r.kafkaIssue != ""
	h.r.mu.Unlock()
	if had && h.watch.Err() == nil {
		h.r.update(func() { h.r.kafkaIssue = "" })
	}
}

// statusWriteInterval spaces status writes: a flapping target changes the
// result many times a second, and the store needs only the latest.
const statusWriteInterval = 250 * time.Millisecond

func (r *runner) statusLoop(ctx context.Context) {
	var next time.Time // no write before this
	for {
		var wait, summary <-chan time.Time
		dirty := r.dirty
		if d := time.Until(next); d > 0 {
			dirty = nil // spaced: wait out the interval first
			wait = time.After(d)
		}
		// resultLog's interval ends on a timer, so a summary is due
		// even when nothing changes after the last held-back change;
		// with nothing held back there is no timer (a quiet pipe wakes
		// nobody).
		if due, ok := r.changes.due(); ok {
			summary = time.After(time.Until(due))
		}
		select {
		case <-ctx.Done():
			return
		case now := <-summary:
			r.flushChanges(now, false)
		case <-wait:
		case <-dirty:
			r.writeStatus(ctx)
			next = time.Now().Add(statusWriteInterval)
		}
	}
}

func (r *runner) writeStatus(ctx context.Context) {
	r.mu.Lock()
	result := r.result()
	state := r.state
	reason := r.reason
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st := pipe.Status{State: state, StateTransitionReason: reason, LastProcessingResult: result, LastModified: r.eng.cfg.Now().UTC()}
	if err := r.eng.store.SetStatus(ctx, r.name, r.uuid, r.revision, st); err != nil && !errors.Is(err, pipe.ErrNotFound) {
		r.log.Warn("cannot record pipe status", "err", err)
	}
	// With several processes, the pipe's status is the last one written;
	// each member's own share is kept beside it.
	if err := r.eng.members.setStatus(ctx, r.uuid, r.heldPartitions(), result); err != nil {
		r.log.Warn("cannot record this member's status of the pipe", "err", err)
	}
}
