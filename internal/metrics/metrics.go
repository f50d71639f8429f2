// Package metrics holds Sluice's Prometheus collectors. Each engine owns
// one Metrics with a registry of its own (never the global default
// registry), so a process or a test can run many engines side by side and
// /metrics shows exactly one engine's pipes.
//
// Every series has the label pipe, the pipe's name. Counter names follow
// the reference platform's event source mapping metrics (OffsetLag,
// PolledEventCount, …), in Prometheus spelling.
//
// Offset lag, refreshed by the engine's lag monitor every lag interval for
// every stored pipe, enabled or not, by one of the processes sharing the
// store (the pipe's lag leader; the others have no lag series of it):
//
//	sluice_offset_lag{pipe,topic,partition}   gauge: records between the group's committed offset and the partition's end offset (see below)
//	sluice_offset_lag_max{pipe}               gauge: the largest sluice_offset_lag of the pipe (reference MaxOffsetLag)
//	sluice_offset_lag_sum{pipe}               gauge: the sum of the pipe's sluice_offset_lag (reference SumOffsetLag)
//
// The lag of a partition is its end offset (high watermark) minus the
// offset the pipe's consumer group would read next: the group's committed
// offset, or, for a partition without one, the offset the pipe's starting
// position picks (TRIM_HORIZON: the log start offset, so every retained
// record counts; LATEST: the end offset, so 0; AT_TIMESTAMP: the first
// offset at or after the timestamp). A committed offset below the log start
// counts from the log start, as those records are gone. A figure that
// cannot be refreshed (cluster unreachable) keeps its last value.
//
// Counters, per pipe, for this process's runners of it:
//
//	sluice_polled_events_total{pipe}                              records fetched from Kafka and handed to the pipe's partitions
//	sluice_filtered_out_events_total{pipe}                        records the pipe's filterCriteria kept out (committed, never delivered)
//	sluice_invoked_events_total{pipe}                             records in attempts sent to the target; a retried batch counts again
//	sluice_failed_invoke_events_total{pipe}                       records in attempts that failed
//	sluice_dropped_events_total{pipe}                             records given up without reaching the target or a failure destination (onFailure.discard)
//	sluice_on_failure_destination_delivered_events_total{pipe}    records handed to a failure destination
//	sluice_committed_events_total{pipe}                           records whose offsets a successful commit covered
//	sluice_polling_errors_total{pipe}                             fetch errors and failed broker connections
//	sluice_invoke_errors_total{pipe}                              failed attempts (one per batch attempt)
//	sluice_commit_errors_total{pipe}                              failed offset commits
//	sluice_produced_records_total{pipe}                           records a Kafka target's topic acknowledged (AT_MOST_ONCE: counted when the producer learns it)
//	sluice_produce_errors_total{pipe}                             records a Kafka target failed to produce
//	sluice_transaction_aborts_total{pipe}                         EXACTLY_ONCE transactions aborted; their records are delivered again
//
// Deliveries and state:
//
//	sluice_batch_delivery_seconds{pipe}   histogram: duration of one attempt, successful or failed (attempts abandoned at shutdown are not observed)
//	sluice_batches_in_flight{pipe}        gauge: attempts running now
//	sluice_concurrency{pipe}              gauge: batches the pipe may have in flight now, as its concurrency controller set it
//	sluice_concurrency_changes_total{pipe,reason} counter: changes of it, by reason (backlog: raised; throttled: halved)
//	sluice_partitions_held{pipe}          gauge: partitions the pipe's consumer group assigned to this process (0 while it holds none, e.g. during a rebalance)
//	sluice_pipe_state{pipe,state}         gauge: 1 for the pipe's stored state, 0 for the other states (Creating, Enabling, Enabled, Disabling, Disabled, Updating, Deleting)
//	sluice_pipe_up{pipe}                  gauge: 1 when this process runs the pipe and its last processing result is not a PROBLEM, else 0
//	sluice_pipe_asleep{pipe}              gauge: 1 while this process's runner of the pipe sleeps (idle: out of its group, its partitions watched for the next record), else 0
//	sluice_pipe_wakeups_total{pipe}       counter: times it woke from sleep
//
// Hosted functions (sluice functions set NAME --handler), per function:
//
//	sluice_function_invocations_total{function}   invocations a process answered (errors included)
//	sluice_function_errors_total{function}        invocations that ended in a function error (handler error, crash, timeout, init error)
//	sluice_function_cold_starts_total{function}   handler processes started
//	sluice_function_restarts_total{function}      processes started in place of one that crashed, timed out or failed its init
//
// The registry also has the standard go_* and process_* collectors.
//
// DeletePipe removes every series of a pipe, so /metrics does not grow
// with pipes that no longer exist.
package metrics

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// States are the values of sluice_pipe_state's state label.
var States = []pipe.State{
	pipe.StateCreating, pipe.StateEnabling, pipe.StateEnabled, pipe.StateDisabling,
	pipe.StateDisabled, pipe.StateUpdating, pipe.StateDeleting,
}

// deliveryBuckets span a fast local target (a few ms) to the longest
// target timeout a pipe may set (14 min), so a slow target still lands in
// a bucket that says how slow.
var deliveryBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 840}

// Metrics is one engine's collectors and their registry. Safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	functions Functions

	offsetLag    *prometheus.GaugeVec
	offsetLagMax *prometheus.GaugeVec
	offsetLagSum *prometheus.GaugeVec

	polled             *prometheus.CounterVec
	filteredOut        *prometheus.CounterVec
	invoked            *prometheus.CounterVec
	failedInvoke       *prometheus.CounterVec
	dropped            *prometheus.CounterVec
	onFailureDelivered *prometheus.CounterVec
	committed          *prometheus.CounterVec
	pollingErrors      *prometheus.CounterVec
	invokeErrors       *prometheus.CounterVec
	commitErrors       *prometheus.CounterVec
	produced           *prometheus.CounterVec
	produceErrors      *prometheus.CounterVec
	txnAborts          *prometheus.CounterVec
	concurrency        *prometheus.GaugeVec
	concurrencyChanges *prometheus.CounterVec

	batchDuration *prometheus.HistogramVec
	inFlight      *prometheus.GaugeVec
	held          *prometheus.GaugeVec
	state         *prometheus.GaugeVec
	up            *prometheus.GaugeVec
	asleep        *prometheus.GaugeVec
	wakeups       *prometheus.CounterVec

	vecs []interface {
		DeletePartialMatch(prometheus.Labels) int
	}

	mu sync.Mutex
	// lagParts are the partitions each pipe has sluice_offset_lag series
	// for, so SetLag removes only partitions that went away instead of
	// clearing the pipe's series, which a concurrent scrape would see as
	// a gap.
	lagParts map[string]map[partitionKey]struct{}
}

type partitionKey struct {
	topic     string
	partition int32
}

// New returns collectors registered on a new registry.
func New() *Metrics {
	pipeLabel := []string{"pipe"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, pipeLabel)
	}
	gauge := func(name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, append([]string{"pipe"}, labels...))
	}
	m := &Metrics{
		reg:          prometheus.NewRegistry(),
		offsetLag:    gauge("sluice_offset_lag", "Records between the consumer group's committed offset (or the starting position, without a commit) and the partition's end offset.", "topic", "partition"),
		offsetLagMax: gauge("sluice_offset_lag_max", "The largest partition offset lag of the pipe."),
		offsetLagSum: gauge("sluice_offset_lag_sum", "The sum of the pipe's partition offset lags."),

		polled:             counter("sluice_polled_events_total", "Records fetched from Kafka for the pipe."),
		filteredOut:        counter("sluice_filtered_out_events_total", "Records the pipe's filter dropped."),
		invoked:            counter("sluice_invoked_events_total", "Records in attempts sent to the target, retries included."),
		failedInvoke:       counter("sluice_failed_invoke_events_total", "Records in failed attempts."),
		dropped:            counter("sluice_dropped_events_total", "Records given up without reaching the target or a failure destination."),
		onFailureDelivered: counter("sluice_on_failure_destination_delivered_events_total", "Records handed to a failure destination."),
		committed:          counter("sluice_committed_events_total", "Records whose offsets were committed."),
		pollingErrors:      counter("sluice_polling_errors_total", "Fetch errors and failed broker connections."),
		invokeErrors:       counter("sluice_invoke_errors_total", "Failed delivery attempts."),
		commitErrors:       counter("sluice_commit_errors_total", "Failed offset commits."),
		produced:           counter("sluice_produced_records_total", "Records a Kafka target's topic acknowledged."),
		produceErrors:      counter("sluice_produce_errors_total", "Records a Kafka target failed to produce."),
		concurrency:        gauge("sluice_concurrency", "Batches the pipe may have in flight now, as its concurrency controller set it."),
		concurrencyChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sluice_concurrency_changes_total", Help: "Changes of the pipe's concurrency, by reason: backlog (raised) or throttled (halved)."}, []string{"pipe", "reason"}),
		txnAborts:          counter("sluice_transaction_aborts_total", "EXACTLY_ONCE transactions aborted (a rebalance, a produce error, a stop); their records are delivered again."),

		batchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_batch_delivery_seconds",
			Help:    "Duration of one delivery attempt, successful or failed.",
			Buckets: deliveryBuckets,
		}, pipeLabel),
		inFlight: gauge("sluice_batches_in_flight", "Delivery attempts running now."),
		held:     gauge("sluice_partitions_held", "Partitions of the pipe's consumer group this process holds."),
		state:    gauge("sluice_pipe_state", "1 for the pipe's current state, 0 for the others.", "state"),
		up:       gauge("sluice_pipe_up", "1 when this process runs the pipe and it has no problem."),
		asleep:   gauge("sluice_pipe_asleep", "1 while this process's runner of the pipe sleeps: idle, out of its group, its partitions watched for the next record."),
		wakeups:  counter("sluice_pipe_wakeups_total", "Times the pipe woke from sleep."),

		lagParts: map[string]map[partitionKey]struct{}{},
	}
	cs := []prometheus.Collector{
		m.offsetLag, m.offsetLagMax, m.offsetLagSum,
		m.polled, m.filteredOut, m.invoked, m.failedInvoke, m.dropped, m.onFailureDelivered, m.committed,
		m.pollingErrors, m.invokeErrors, m.commitErrors, m.produced, m.produceErrors, m.txnAborts, m.concurrency, m.concurrencyChanges,
		m.batchDuration, m.inFlight, m.held, m.state, m.up, m.asleep, m.wakeups,
	}
	for _, c := range cs {
		m.reg.MustRegister(c)
		m.vecs = append(m.vecs, c.(interface {
			DeletePartialMatch(prometheus.Labels) int
		}))
	}
	fn := func(name, help string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"function"})
		m.reg.MustRegister(c)
		return c
	}
	m.functions = Functions{
		invocations: fn("sluice_function_invocations_total", "Invocations of a hosted function a process answered, errors included."),
		errors:      fn("sluice_function_errors_total", "Invocations of a hosted function that ended in a function error (handler error, crash, timeout, init error)."),
		coldStarts:  fn("sluice_function_cold_starts_total", "Handler processes of a hosted function started."),
		restarts:    fn("sluice_function_restarts_total", "Handler processes started in place of one that crashed, timed out or failed its init."),
	}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Functions counts what hosted functions do (it is a host.Observer).
type Functions struct {
	invocations, errors, coldStarts, restarts *prometheus.CounterVec
}

// Functions is the hosted functions' collectors.
func (m *Metrics) Functions() *Functions { return &m.functions }

// Invoked counts an answered invocation.
func (f *Functions) Invoked(function string, failed bool) {
	f.invocations.WithLabelValues(function).Inc()
	if failed {
		f.errors.WithLabelValues(function).Inc()
	}
}

// ColdStart counts a process started.
func (f *Functions) ColdStart(function string) { f.coldStarts.WithLabelValues(function).Inc() }

// Restarted counts a process started in place of a failed one.
func (f *Functions) Restarted(function string) { f.restarts.WithLabelValues(function).Inc() }

// DeleteFunction removes a function's series.
func (f *Functions) DeleteFunction(function string) {
	for _, c := range []*prometheus.CounterVec{f.invocations, f.errors, f.coldStarts, f.restarts} {
		c.DeleteLabelValues(function)
	}
}

// Registry is the registry every series is on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Pipe is the per-pipe collectors a runner updates on its hot path: the
// children are looked up once, so an update is one atomic add. A Pipe
// obtained before DeletePipe keeps working but no longer shows on
// /metrics, so a late update from a stopping runner cannot bring a deleted
// pipe's series back.
type Pipe struct {
	Polled             prometheus.Counter
	FilteredOut        prometheus.Counter
	Invoked            prometheus.Counter
	FailedInvoke       prometheus.Counter
	Dropped            prometheus.Counter
	OnFailureDelivered prometheus.Counter
	Committed          prometheus.Counter
	PollingErrors      prometheus.Counter
	InvokeErrors       prometheus.Counter
	CommitErrors       prometheus.Counter
	Produced           prometheus.Counter
	ProduceErrors      prometheus.Counter
	TxnAborts          prometheus.Counter
	Concurrency        prometheus.Gauge
	// ConcurrencyChanged counts a change of the concurrency by reason.
	ConcurrencyChanged func(reason string)
	BatchDuration      prometheus.Observer
	InFlight           prometheus.Gauge
	PartitionsHeld     prometheus.Gauge
	Asleep             prometheus.Gauge
	Wakeups            prometheus.Counter
}

// Pipe returns the named pipe's collectors, creating its series at 0 so
// that a pipe shows every counter from its start (a rate over a series
// that appears with its first increment misses that increment).
func (m *Metrics) Pipe(name string) *Pipe {
	// Both reasons exist from the start, at 0, so a rate over them is
	// defined before the first change.
	m.concurrencyChanges.WithLabelValues(name, "backlog")
	m.concurrencyChanges.WithLabelValues(name, "throttled")
	return &Pipe{
		Polled:             m.polled.WithLabelValues(name),
		FilteredOut:        m.filteredOut.WithLabelValues(name),
		Invoked:            m.invoked.WithLabelValues(name),
		FailedInvoke:       m.failedInvoke.WithLabelValues(name),
		Dropped:            m.dropped.WithLabelValues(name),
		OnFailureDelivered: m.onFailureDelivered.WithLabelValues(name),
		Committed:          m.committed.WithLabelValues(name),
		PollingErrors:      m.pollingErrors.WithLabelValues(name),
		InvokeErrors:       m.invokeErrors.WithLabelValues(name),
		CommitErrors:       m.commitErrors.WithLabelValues(name),
		Produced:           m.produced.WithLabelValues(name),
		ProduceErrors:      m.produceErrors.WithLabelValues(name),
		TxnAborts:          m.txnAborts.WithLabelValues(name),
		Concurrency:        m.concurrency.WithLabelValues(name),
		ConcurrencyChanged: func(reason string) { m.concurrencyChanges.WithLabelValues(name, reason).Inc() },
		BatchDuration:      m.batchDuration.WithLabelValues(name),
		InFlight:           m.inFlight.WithLabelValues(name),
		PartitionsHeld:     m.held.WithLabelValues(name),
		Asleep:             m.asleep.WithLabelValues(name),
		Wakeups:            m.wakeups.WithLabelValues(name),
	}
}

// PartitionLag is one partition's offset lag.
type PartitionLag struct {
	Topic     string
	Partition int32
	Lag       int64
}

// SetLag replaces the pipe's offset lag series with parts, and sets its
// max and sum from them. Partitions not in parts lose their series.
func (m *Metrics) SetLag(pipeName string, parts []PartitionLag) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var maxLag, sum int64
	now := make(map[partitionKey]struct{}, len(parts))
	for _, p := range parts {
		now[partitionKey{p.Topic, p.Partition}] = struct{}{}
		m.offsetLag.WithLabelValues(pipeName, p.Topic, strconv.Itoa(int(p.Partition))).Set(float64(p.Lag))
		maxLag = max(maxLag, p.Lag)
		sum += p.Lag
	}
	for k := range m.lagParts[pipeName] {
		if _, ok := now[k]; !ok {
			m.offsetLag.DeleteLabelValues(pipeName, k.topic, strconv.Itoa(int(k.partition)))
		}
	}
	m.lagParts[pipeName] = now
	m.offsetLagMax.WithLabelValues(pipeName).Set(float64(maxLag))
	m.offsetLagSum.WithLabelValues(pipeName).Set(float64(sum))
}

// DropLag removes a pipe's lag series: another process sharing the store
// measures that pipe now, and one series per pipe across the processes is
// what sums and alerts over them need.
func (m *Metrics) DropLag(pipeName string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.lagParts[pipeName] {
		m.offsetLag.DeleteLabelValues(pipeName, k.topic, strconv.Itoa(int(k.partition)))
	}
	delete(m.lagParts, pipeName)
	m.offsetLagMax.DeleteLabelValues(pipeName)
	m.offsetLagSum.DeleteLabelValues(pipeName)
}

// SetState sets sluice_pipe_state: 1 for state, 0 for the other States.
func (m *Metrics) SetState(pipeName string, state pipe.State) {
	for _, s := range States {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(pipeName, string(s)).Set(v)
	}
}

// SetUp sets sluice_pipe_up.
func (m *Metrics) SetUp(pipeName string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(pipeName).Set(v)
}

// DeletePipe removes every series of the pipe.
func (m *Metrics) DeletePipe(pipeName string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, v := range m.vecs {
		v.DeletePartialMatch(prometheus.Labels{"pipe": pipeName})
	}
	delete(m.lagParts, pipeName)
}
