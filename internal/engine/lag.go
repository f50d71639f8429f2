package engine

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/metrics"
	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// Lag monitor defaults; see Tuning.
const (
	defaultLagInterval = 10 * time.Second
	defaultLagTimeout  = 5 * time.Second
)

// lagMonitor measures the offset lag of every stored pipe, enabled or not,
// from outside its consumer: a disabled pipe has no runner, and its lag is
// exactly what grows while it is disabled. It reads the store's list on its
// own tick rather than hooking into reconcile, and uses one admin client
// per distinct bootstrap-server list, shared by the pipes on that cluster
// and closed when no stored pipe uses it.
//
// Each cluster is measured in a goroutine of its own with a timeout, and a
// cluster still being measured is skipped by the next round: an unreachable
// cluster delays only its own pipes' figures.
type lagMonitor struct {
	e        *Engine
	interval time.Duration
	timeout  time.Duration

	clients map[string]*adminClient // by clusterKey; only run's goroutine touches the map
	wg      sync.WaitGroup          // measuring goroutines
}

type adminClient struct {
	cl  *kgo.Client
	adm *kadm.Client
	// busy is set by the monitor before it starts a measurement and
	// cleared by the measurement when done; lastErr belongs to whoever
	// set busy.
	busy    atomic.Bool
	lastErr string
}

// startLagMonitor starts the monitor; stop cancels it and waits for it and
// its measurements, and closes its clients.
func (e *Engine) startLagMonitor(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	m := &lagMonitor{
		e:        e,
		interval: e.cfg.Tuning.LagInterval,
		timeout:  e.cfg.Tuning.LagTimeout,
		clients:  map[string]*adminClient{},
	}
	if m.interval <= 0 {
		m.interval = defaultLagInterval
	}
	if m.timeout <= 0 {
		m.timeout = defaultLagTimeout
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (m *lagMonitor) run(ctx context.Context) {
	defer func() {
		// Closing first fails the requests still waiting on a silent
		// broker, so stopping does not wait for their timeouts.
		for _, ac := range m.clients {
			ac.cl.Close()
		}
		m.wg.Wait()
	}()
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		m.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// clusterKey identifies brokers given inline, in any order.
func clusterKey(servers []string) string {
	s := slices.Clone(servers)
	slices.Sort(s)
	return strings.Join(s, ",")
}

func (m *lagMonitor) round(ctx context.Context) {
	e := m.e
	lctx, cancel := context.WithTimeout(ctx, m.timeout)
	pipes, err := e.store.ListPipes(lctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("lag monitor cannot list pipes; retrying at the next tick", "err", err)
		}
		return
	}
	e.obs.sync(pipes, e.healthyRunners())

	lctx, cancel = context.WithTimeout(ctx, m.timeout)
	conns, err := e.loadConnections(lctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("lag monitor cannot read clusters; retrying at the next tick", "err", err)
		}
		return
	}
	// Pipes sharing a connection (the same brokers, or the same cluster
	// with the same credentials) share one admin client.
	byCluster := map[string][]pipe.Pipe{}
	for _, p := range pipes {
		if p.Status.State == pipe.StateDeleting {
			continue
		}
		if !e.members.leads(p.UUID) {
			// Another live member measures it.
			e.obs.dropLag(p.Name)
			continue
		}
		k := conns.key(p.Spec)
		byCluster[k] = append(byCluster[k], p)
	}
	for k, ps := range byCluster {
		ac := m.clients[k]
		if ac == nil {
			rctx, cancel := context.WithTimeout(ctx, m.timeout)
			conn, err := conns.resolve(rctx, ps[0].Spec)
			cancel()
			if err != nil {
				for _, p := range ps {
					e.obs.setLagError(p, err)
				}
				continue
			}
			opts := conn.clientOpts(kgo.DisableClientMetrics(),
				// A broker that accepts a connection and never answers
				// holds a request this long past the context's end
				// (default 10 s); measure does not wait for it, but the
				// cluster stays busy, and so skipped, until it returns.
				kgo.RequestTimeoutOverhead(m.timeout))
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				// Only malformed seeds fail here, which validation
				// refuses; nothing to retry until the spec changes.
				e.log.Warn("lag monitor cannot create a Kafka client", "pipes", names(ps), "err", err)
				continue
			}
			ac = &adminClient{cl: cl, adm: kadm.NewClient(cl)}
			m.clients[k] = ac
		}
		if !ac.busy.CompareAndSwap(false, true) {
			continue // the previous measurement of this cluster still runs
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer ac.busy.Store(false)
			m.measure(ctx, ac, ps)
		}()
	}
	for k, ac := range m.clients {
		if _, used := byCluster[k]; !used && !ac.busy.Load() {
			ac.cl.Close()
			delete(m.clients, k)
		}
	}
}

func names(ps []pipe.Pipe) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

// clusterOffsets is what one measurement reads of a cluster.
type clusterOffsets struct {
	ends, starts kadm.ListedOffsets
	fetched      kadm.FetchOffsetsResponses
	err          error
}

// measure reads the offsets of one cluster's pipes and records their lag.
// The reads run aside so that the timeout bounds when figures (or the
// error saying they are stale) are recorded even if the client overstays
// it; measure returns, clearing busy, only once the reads have. Errors are
// logged when they change, not every round.
func (m *lagMonitor) measure(ctx context.Context, ac *adminClient, ps []pipe.Pipe) {
	e := m.e
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	res := make(chan clusterOffsets, 1)
	go func() { res <- readOffsets(ctx, ac.adm, ps) }()
	var offs clusterOffsets
	select {
	case offs = <-res:
	case <-ctx.Done():
		offs.err = ctx.Err()
		defer func() { <-res }()
	}
	if errors.Is(offs.err, context.DeadlineExceeded) {
		offs.err = errors.New("no answer from Kafka within " + m.timeout.String())
	}
	now := time.Now()
	var failed []string
	for _, p := range ps {
		perr := offs.err
		var lag observe.Lag
		if perr == nil {
			lag, perr = measurePipe(ctx, ac.adm, p, offs.ends, offs.starts, offs.fetched[p.GroupID()], now)
		}
		if perr != nil {
			if errors.Is(perr, context.DeadlineExceeded) {
				perr = errors.New("no answer from Kafka within " + m.timeout.String())
			}
			e.obs.setLagError(p, perr)
			failed = append(failed, p.Name)
			continue
		}
		e.obs.setLag(p, lag)
	}
	if errors.Is(context.Cause(ctx), context.Canceled) {
		return // stopping
	}
	msg := ""
	if len(failed) > 0 {
		msg = e.obs.lagError(failed[0])
	}
	if msg != ac.lastErr {
		if msg != "" {
			e.log.Warn("cannot measure offset lag", "pipes", failed, "err", msg)
		} else {
			e.log.Info("offset lag measured again", "pipes", names(ps))
		}
		ac.lastErr = msg
	}
}

// readOffsets reads the end and start offsets of the pipes' topics and the
// committed offsets of their groups.
func readOffsets(ctx context.Context, adm *kadm.Client, ps []pipe.Pipe) clusterOffsets {
	// Sets: a cluster can hold a thousand pipes, each on its own topic.
	topicSet, groupSet := map[string]bool{}, map[string]bool{}
	for _, p := range ps {
		for _, t := range p.Topics {
			topicSet[t] = true
		}
		groupSet[p.GroupID()] = true
	}
	topics, groups := slices.Collect(maps.Keys(topicSet)), slices.Collect(maps.Keys(groupSet))
	var o clusterOffsets
	o.ends, o.err = adm.ListEndOffsets(ctx, topics...)
	if o.err == nil {
		o.starts, o.err = adm.ListStartOffsets(ctx, topics...)
	}
	if o.err == nil {
		o.fetched = adm.FetchManyOffsets(ctx, groups...)
	}
	return o
}

// measurePipe computes one pipe's lag from the cluster's offsets. See
// package metrics for the definition.
func measurePipe(ctx context.Context, adm *kadm.Client, p pipe.Pipe, ends, starts kadm.ListedOffsets, fetched kadm.FetchOffsetsResponse, now time.Time) (observe.Lag, error) {
	// A group that never committed does not exist for the broker (Kafka
	// answers GROUP_ID_NOT_FOUND, kfake too): it has no commits, which is
	// what a disabled pipe that never ran looks like.
	if fetched.Err != nil && !errors.Is(fetched.Err, kerr.GroupIDNotFound) {
		return observe.Lag{}, fetched.Err
	}
	lag := observe.Lag{MeasuredAt: now, Partitions: []observe.Partition{}}
	var after kadm.ListedOffsets // AT_TIMESTAMP's offsets, read when first needed
	for _, topic := range p.Topics {
		parts := make([]int32, 0, len(ends[topic]))
		for part, o := range ends[topic] {
			if o.Err == nil && part >= 0 {
				parts = append(parts, part)
			}
		}
		slices.Sort(parts)
		for _, part := range parts {
			end := ends[topic][part].Offset
			var start int64
			if o, ok := starts.Lookup(topic, part); ok && o.Err == nil && o.Offset >= 0 {
				start = o.Offset
			}
			pl := observe.Partition{Topic: topic, Partition: part, StartOffset: start, EndOffset: end}
			var next int64
			if o, ok := fetched.Fetched.Lookup(topic, part); ok && o.Err == nil && o.At >= 0 {
				c := o.At
				pl.CommittedOffset = &c
				// Below the log start, the records in between are gone:
				// the consumer resumes at the start.
				next = max(c, start)
			} else {
				switch p.StartingPosition {
				case pipe.Latest:
					next = end
				case pipe.AtTimestamp:
					if after == nil && p.StartingPositionTimestamp != nil {
						var err error
						if after, err = adm.ListOffsetsAfterMilli(ctx, p.StartingPositionTimestamp.UnixMilli(), p.Topics...); err != nil {
							return observe.Lag{}, err
						}
					}
					next = end // no record at or after the timestamp yet
					if o, ok := after.Lookup(topic, part); ok && o.Err == nil && o.Offset >= 0 {
						next = max(o.Offset, start)
					}
				default:
					next = start
				}
			}
			pl.Lag = max(end-next, 0)
			lag.Total += pl.Lag
			lag.Max = max(lag.Max, pl.Lag)
			lag.Partitions = append(lag.Partitions, pl)
		}
	}
	return lag, nil
}

// setLag records a measurement, unless the pipe was removed meanwhile:
// its series must not come back.
func (o *observer) setLag(p pipe.Pipe, lag observe.Lag) {
	o.mu.Lock()
	defer o.mu.Unlock()
	po := o.pipes[p.Name]
	if po == nil {
		return
	}
	parts := make([]metrics.PartitionLag, len(lag.Partitions))
	for i, pl := range lag.Partitions {
		parts[i] = metrics.PartitionLag{Topic: pl.Topic, Partition: pl.Partition, Lag: pl.Lag}
	}
	o.m.SetLag(p.Name, parts)
	po.mu.Lock()
	po.lag, po.lagUUID = &lag, p.UUID
	po.historyOf(p.UUID).AddLag(lag.MeasuredAt, lag)
	po.mu.Unlock()
}

// setLagError keeps the pipe's last figures (and series) and says why
// they could not be refreshed.
func (o *observer) setLagError(p pipe.Pipe, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	po := o.pipes[p.Name]
	if po == nil {
		return
	}
	po.mu.Lock()
	defer po.mu.Unlock()
	var l observe.Lag
	if po.lag != nil && po.lagUUID == p.UUID {
		l = *po.lag
	}
	l.Error = err.Error()
	po.lag, po.lagUUID = &l, p.UUID
}

// lagError is the pipe's current lag measurement error, or "".
func (o *observer) lagError(name string) string {
	po := o.lookup(name)
	if po == nil {
		return ""
	}
	po.mu.Lock()
	defer po.mu.Unlock()
	if po.lag == nil {
		return ""
	}
	return po.lag.Error
}

// runnerList is the runners now. It is copied under e.mu and read
// outside it: e.mu is never held while a runner's lock is taken.
func (e *Engine) runnerList() []*runner {
	e.mu.Lock()
	defer e.mu.Unlock()
	rs := make([]*runner, 0, len(e.runners))
	for _, r := range e.runners {
		rs = append(rs, r)
	}
	return rs
}

// healthyRunners says, for each pipe this process runs, whether its
// result is free of problems: sluice_pipe_up.
func (e *Engine) healthyRunners() map[string]bool {
	rs := e.runnerList()
	out := make(map[string]bool, len(rs))
	for _, r := range rs {
		r.mu.Lock()
		out[r.name] = !strings.HasPrefix(r.result(), pipe.ProblemPrefix)
		r.mu.Unlock()
	}
	return out
}

// dropLag forgets a pipe's lag figures and series: another member leads
// the pipe now. A no-op when there are none.
func (o *observer) dropLag(name string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	po := o.pipes[name]
	if po == nil {
		return
	}
	po.mu.Lock()
	had := po.lag != nil
	po.lag, po.lagUUID = nil, ""
	po.mu.Unlock()
	if had {
		o.m.DropLag(name)
	}
}
