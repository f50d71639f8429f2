package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/bench"
	"github.com/sluice-dev/sluice/internal/pipe"
)

func (a *app) benchCmd() *cobra.Command {
	var o bench.Options
	var brokers string
	var asJSON bool
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "bench [throughput|latency|slow-target|many-pipes|kafka-target|hosted-function|scale-out]",
		Short: "Measure pipes against a bare consumer and a bare pipeline on the same records",
		Long: `Start an embedded broker (or use --brokers), produce records, and measure
Sluice against baselines read from the same records in the same run:

  bare consumer   a franz-go group consumer that only polls
  bare pipeline   a plain poll, encode, post, commit loop with one batch in
                  flight per partition and no framework
  bare copy       (kafka-target) a plain poll, produce, commit loop with
                  franz-go, each poll produced whole and acknowledged

Ratios to them are the figures to compare across machines: the noise of a
shared machine cancels out of a ratio, not out of an absolute rate.

Scenarios:
  throughput   (default) 500,000 records of 1 KiB over 8 partitions, read as
               fast as possible, at batch sizes 100 and 1,000
  latency      1,000 records/s while reading; latency is from the produce
               call to the endpoint's receipt
  slow-target  400,000 records of 1 KiB and 1,000 keys (--keys) over 8
               partitions; the endpoint takes 50 ms a call: partitions are
               delivered concurrently, so the PARTITION pipe's rate is about
               partitions × batch / 50 ms. Then the same records by a KEY and
               a NONE pipe (maximum concurrency 200), each in a group of its
               own: their rates over the PARTITION pipe's (the goal: KEY at
               10× or more), and whether each key's records were first
               delivered in offset order (a violation fails the run). Last,
               a throttle phase (--skip-throttle leaves it out): a KEY pipe
               whose endpoint answers 429 with Retry-After: 1 from 3 s to 5 s
               after its first call (--throttle-from, --throttle-to), fed
               records until 12 s after (--throttle-watch) and then until
               every record was accepted; it prints the concurrency limit
               before, how soon it halved, its lowest, and what it recovered
               to and when
  many-pipes   1,000 idle pipes on one process: memory and goroutines per
               pipe, idle CPU
  kafka-target 200,000 records of 1 KiB over 8 partitions copied into another
               topic, from a fresh group into a fresh topic each: by a bare
               franz-go consume, produce (acks all, idempotent, uncompressed
               as the target's defaults), commit loop,
               then by a pipe with a kafka target at AT_LEAST_ONCE,
               AT_MOST_ONCE and EXACTLY_ONCE (batch size 100 unless
               --batch-size says otherwise). A pipe is timed from its
               creation until the output holds every record (for
               EXACTLY_ONCE, until its committed offsets reach the end of the
               source). The goal: AT_LEAST_ONCE at 0.8× the bare loop or more
  hosted-function
               no Kafka: one batch (--batch-size, default 100 records of
               --size) delivered --records times (default 5,000) at 1 and 8
               at a time, by the function target to a hosted no-op handler
               built with aws-lambda-go (this binary, linked as
               sluice-noop-handler) and by the HTTP target to a no-op local
               endpoint: batches/s, latency, and the ratios
  scale-out    400,000 records of 1 KiB over 16 partitions, read by a pipe
               on one process and then (a group of its own) on two sharing
               one store, as 'sluice serve' processes on PostgreSQL; each
               process allows --concurrency batches in flight (default 4),
               the endpoint takes --target-delay (default 20 ms): the rate
               with two over the rate with one

The pipe's batching window is 0 unless --batching-window says otherwise: the
baselines have none, and a window would hold each partition's last partial
batch back and count against the pipe.

CPU seconds and peak RSS are the whole process's during each phase: with the
embedded broker they include the broker's work. For figures of Sluice alone,
run a broker in another process (sluice dev) and pass --brokers.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: bench.Scenarios,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Scenario = args[0]
			}
			if brokers != "" {
				o.Brokers = strings.Split(brokers, ",")
			}
			o = bench.Defaults(o)
			if err := o.Validate(); err != nil {
				return err
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			fmt.Fprintf(a.env.Stderr, "bench %s: measuring...\n", o.Scenario)
			r, err := bench.Run(cmd.Context(), o)
			// Keys out of order fail the run, but only after its figures
			// are out: they are the evidence.
			if err != nil && !errors.Is(err, bench.ErrOrderViolated) {
				return err
			}
			if asJSON || a.output == outputJSON {
				if werr := writeJSON(a.env.Stdout, r); werr != nil {
					return werr
				}
				return err
			}
			writeBench(a.env.Stdout, r)
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Records, "records", 0, "records to produce (default: the scenario's)")
	f.IntVar(&o.Size, "size", 1024, "bytes per record value")
	f.IntVar(&o.Partitions, "partitions", 0, "partitions per topic (default 8; 1 for many-pipes)")
	f.IntSliceVar(&o.BatchSizes, "batch-size", nil, "the pipe's batch size; a list runs each, throughput only (default 100,1000 for throughput, else 100)")
	f.StringVar(&brokers, "brokers", "", "HOST:PORT[,...] of a cluster to use instead of an embedded broker")
	f.Float64Var(&o.Window, "batching-window", 0, "the pipe's batching window in seconds (the baselines have none)")
	f.IntVar(&o.Rate, "rate", 0, "latency: records a second (default 1000)")
	f.StringVar(&o.Filter, "filter", "", `throughput: also run the pipe with this event pattern (e.g. '{"partition":[{"numeric":[">=",0]}]}', which keeps every record) and report its rate against the pipe's`)
	f.DurationVar(&o.TargetDelay, "target-delay", 0, "how long the endpoint takes a call (default 50ms for slow-target, else 0)")
	f.IntVar(&o.Keys, "keys", 0, "slow-target: distinct record keys (default 1000)")
	f.DurationVar(&o.ThrottleFrom, "throttle-from", 0, "slow-target: when the throttle phase's endpoint starts answering 429, after its first call (default 3s)")
	f.DurationVar(&o.ThrottleTo, "throttle-to", 0, "slow-target: when it stops (default 5s)")
	f.DurationVar(&o.ThrottleWatch, "throttle-watch", 0, "slow-target: how long after that the throttle phase goes on feeding the pipe (default 12s)")
	f.BoolVar(&o.SkipThrottle, "skip-throttle", false, "slow-target: leave the throttle phase out")
	f.IntVar(&o.Concurrency, "concurrency", 0, "scale-out: batches in flight per process (default 4)")
	f.IntVar(&o.Pipes, "pipes", 0, "many-pipes: pipes to run (default 1000)")
	f.DurationVar(&o.Idle, "idle", 0, "many-pipes: how long to watch them idle (default 10s)")
	f.DurationVar(&o.SleepAfter, "sleep-after", 0, "many-pipes: the engine's sleep-after (default 5s; negative keeps the pipes awake)")
	f.StringVar(&o.HeapProfile, "heap-profile", "", "many-pipes: write a heap profile to this file at the end of the idle window (FILE.goroutines: the goroutines; FILE.cpu: a CPU profile of the idle window)")
	f.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the whole run to this file (read it with 'go tool pprof')")
	f.BoolVar(&asJSON, "json", false, "print one JSON object (same as --output json)")
	return cmd
}

// startCPUProfile profiles the process into path until the returned stop
// is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func writeBench(out io.Writer, r bench.Result) {
	o := r.Options
	if inv := r.Invoke; inv != nil {
		writeInvoke(out, inv, o)
		return
	}
	if so := r.ScaleOut; so != nil {
		fmt.Fprintf(out, "scenario %s, broker %s: %d records of %d B over %d partitions, endpoint takes %s a call, %d batches in flight per process\n",
			o.Scenario, r.Broker, o.Records, o.Size, o.Partitions, o.TargetDelay, so.Concurrency)
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(w, "processes\tseconds\trecords/s\tCPU s\tpeak RSS MiB\tcalls\tmax concurrent\t\n")
		for i, p := range []bench.Phase{so.One, so.Two} {
			fmt.Fprintf(w, "%d\t%.2f\t%.0f\t%.2f\t%.0f\t%d\t%d\t\n", i+1, p.Seconds, p.RecordsPerSec, p.CPUSeconds, mib(p.PeakRSSBytes), p.Batches, p.MaxConcurrentCalls)
		}
		w.Flush()
		fmt.Fprintf(out, "two processes / one: %.2f\n", so.TwoToOne)
		return
	}
	fmt.Fprintf(out, "scenario %s, broker %s\n", o.Scenario, r.Broker)
	if r.Idle != nil {
		i := r.Idle
		fmt.Fprintf(out, "%d pipes, each on a topic of %d partition(s), all live (one record each) after %.1f s\n", i.Pipes, o.Partitions, i.StartSeconds)
		if o.SleepAfter > 0 {
			fmt.Fprintf(out, "all asleep %.1f s later (sleep after %s); %d asleep at the end of the idle window\n", i.SleepSeconds, o.SleepAfter, i.Asleep)
		} else {
			fmt.Fprintf(out, "sleep off: every pipe stays in its group\n")
		}
		w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(w, "\tbefore\tafter\tper pipe\t\n")
		fmt.Fprintf(w, "RSS (MiB)\t%.1f\t%.1f\t%.1f KiB\t\n", mib(i.RSSBeforeBytes), mib(i.RSSAfterBytes), float64(i.RSSPerPipeBytes)/1024)
		fmt.Fprintf(w, "goroutines\t%d\t%d\t%.1f\t\n", i.GoroutinesBefore, i.GoroutinesAfter, i.GoroutinesPerPipe)
		w.Flush()
		fmt.Fprintf(out, "Go heap per pipe: %.1f KiB; peak RSS %.1f MiB\n", float64(i.HeapPerPipeBytes)/1024, mib(r.PeakRSSBytes))
		fmt.Fprintf(out, "idle CPU: %.2f s over %.0f s (%.1f%% of one core)\n", i.IdleCPUSeconds, i.IdleSeconds, i.IdleCPUPercent)
		if i.WakeSamples > 0 {
			fmt.Fprintf(out, "wake latency (one record to an idle pipe, produce to endpoint, %d pipes): min %.0f ms, median %.0f ms, max %.0f ms\n",
				i.WakeSamples, i.WakeLatencyMsMin, i.WakeLatencyMsMedian, i.WakeLatencyMsMax)
		}
		return
	}
	if o.Scenario == bench.KafkaTarget {
		writeKafkaTarget(out, r)
		return
	}
	fmt.Fprintf(out, "%d records of %d B over %d partitions", o.Records, o.Size, o.Partitions)
	if o.TargetDelay > 0 {
		fmt.Fprintf(out, ", endpoint takes %s a call", o.TargetDelay)
	}
	if o.Scenario == bench.Latency {
		fmt.Fprintf(out, ", produced at %d/s", o.Rate)
	}
	fmt.Fprintf(out, ", batching window %gs", o.Window)
	fmt.Fprintln(out)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "reader\tbatch\tseconds\trecords/s\tMB/s\tp50 ms\tp99 ms\tmax ms\tCPU s\tpeak RSS MiB\tcalls\tmax concurrent\tfirst call s\t\n")
	row := func(p bench.Phase) {
		batch, calls, conc, first := "-", "-", "-", "-"
		if p.FirstCallSeconds > 0 {
			first = fmt.Sprintf("%.2f", p.FirstCallSeconds)
		}
		if p.BatchSize > 0 {
			batch = fmt.Sprint(p.BatchSize)
		}
		if p.Batches > 0 {
			calls = fmt.Sprint(p.Batches)
		}
		if p.MaxConcurrentCalls > 0 {
			conc = fmt.Sprint(p.MaxConcurrentCalls)
		}
		fmt.Fprintf(w, "%s\t%s\t%.2f\t%.0f\t%.1f\t%s\t%s\t%s\t%.2f\t%.0f\t%s\t%s\t%s\t\n", p.Name, batch, p.Seconds, p.RecordsPerSec, p.MBPerSec,
			ms(p.LatencyMsP50), ms(p.LatencyMsP99), ms(p.LatencyMsMax), p.CPUSeconds, mib(p.PeakRSSBytes), calls, conc, first)
	}
	if r.BareConsumer != nil {
		row(*r.BareConsumer)
	}
	for _, run := range r.Runs {
		row(run.BarePipeline)
		row(run.Pipe)
		if run.FilteredPipe != nil {
			row(*run.FilteredPipe)
		}
	}
	w.Flush()
	for _, run := range r.Runs {
		fmt.Fprintf(out, "batch %d: pipe / bare pipeline %.2f, pipe / bare consumer %.2f", run.BatchSize, run.PipeToBarePipeline, run.PipeToBareConsumer)
		if run.FilteredPipe != nil {
			fmt.Fprintf(out, ", pipe+filter / pipe %.2f", run.FilteredToPipe)
		}
		fmt.Fprintln(out)
	}
	for _, run := range r.Runs {
		writeOrderings(out, run)
	}
	if r.Throttle != nil {
		writeThrottle(out, r.Throttle)
	}
}

// writeOrderings prints slow-target's pipe at each ordering over the same
// records, with what the endpoint saw of its calls (their records and
// keys, and how many were open at once) and the controller's peaks, which
// together say what bounded each rate; then the KEY goal.
func writeOrderings(out io.Writer, run bench.Pass) {
	if len(run.Orderings) == 0 {
		return
	}
	fmt.Fprintf(out, "orderings at batch %d, each in a group of its own over the same records:\n", run.BatchSize)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "ordering\tseconds\trecords/s\t/ PARTITION\tbest 1 s rec/s\t/ PARTITION\tcalls\trecords/call\tkeys/call\tmean concurrent\tmax concurrent\tpeak limit\tpeak in flight\torder violations\tredelivered\t\n")
	for _, o := range run.Orderings {
		p := o.Pipe
		perCall := 0.0
		if p.Batches > 0 {
			perCall = float64(p.Records) / float64(p.Batches)
		}
		fmt.Fprintf(w, "%s\t%.2f\t%.0f\t%.2f\t%.0f\t%.2f\t%d\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%d\t\n", o.Ordering, p.Seconds, p.RecordsPerSec, o.ToPartition,
			p.BestSecondRecordsPerSec, o.BestSecondToPartition, p.Batches, perCall, p.KeysPerCall, p.MeanConcurrentCalls, p.MaxConcurrentCalls, p.PeakConcurrency, p.PeakInFlight, o.OrderViolations, o.Redelivered)
	}
	w.Flush()
	for _, o := range run.Orderings {
		if o.Ordering != pipe.OrderingKey {
			continue
		}
		verdict := "met"
		if o.ToPartition < bench.KeyGoal {
			verdict = "not met"
		}
		fmt.Fprintf(out, "goal KEY / PARTITION >= %g: %s (%.2f; best second %.2f)", bench.KeyGoal, verdict, o.ToPartition, o.BestSecondToPartition)
		for _, n := range run.Orderings {
			if n.Ordering == pipe.OrderingNone {
				fmt.Fprintf(out, "; NONE / PARTITION %.2f (best second %.2f)", n.ToPartition, n.BestSecondToPartition)
			}
		}
		fmt.Fprintln(out)
	}
}

// writeThrottle prints the throttle phase: what was delivered, then the
// concurrency limit's timeline in figures and in steps of half a second,
// the window of 429s in brackets.
func writeThrottle(out io.Writer, t *bench.Throttle) {
	fmt.Fprintf(out, "throttle: %s pipe at batch %d, the endpoint answers 429 (Retry-After: 1) from %.1f s to %.1f s after its first call\n",
		t.Ordering, t.BatchSize, t.FromSeconds, t.ToSeconds)
	fmt.Fprintf(out, "  %d records, all accepted in %.1f s; %d calls refused; order violations %d, redelivered %d\n",
		t.Records, t.Seconds, t.Refused, t.OrderViolations, t.Redelivered)
	halved := "never halved"
	if t.HalvedAfterSeconds != nil {
		halved = fmt.Sprintf("at half or less %.1f s in", *t.HalvedAfterSeconds)
	}
	back := fmt.Sprintf("not back at %d", t.Before)
	if t.BackAfterSeconds != nil {
		back = fmt.Sprintf("back at %d or more %.1f s after the throttling ended", t.Before, *t.BackAfterSeconds)
	}
	recovered := fmt.Sprintf("did not rise again (%d at the end of the watch)", t.Recovered)
	if t.RecoveredAfterSeconds != nil {
		recovered = fmt.Sprintf("%d at the end of the watch, since %.1f s after", t.Recovered, *t.RecoveredAfterSeconds)
	}
	fmt.Fprintf(out, "  concurrency %d before; %s; lowest %d at +%.1f s; %s; %s\n", t.Before, halved, t.Minimum, t.MinimumAtSeconds, back, recovered)
	fmt.Fprintf(out, "  limit every 0.5 s from the first call: %s\n", steps(t))
}

// steps is the limit at each half second from the first call, the first
// sample at or after it, with the throttling window in brackets.
func steps(t *bench.Throttle) string {
	var b strings.Builder
	next, open, closed := 0.0, false, false
	for _, x := range t.Samples {
		if x.Seconds < next {
			continue
		}
		if !open && next >= t.FromSeconds {
			b.WriteString(" [")
			open = true
		} else if open && !closed && next >= t.ToSeconds {
			b.WriteString("]")
			closed = true
		}
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "[") {
			b.WriteByte(' ')
		}
		fmt.Fprint(&b, x.Limit)
		for next <= x.Seconds {
			next += 0.5
		}
	}
	if open && !closed {
		b.WriteString("]")
	}
	return strings.TrimSpace(b.String())
}

// writeKafkaTarget prints the kafka-target scenario: the bare copy loop,
// then a line per delivery guarantee with its rate, the bare loop's and
// their ratio, and whether AT_LEAST_ONCE met the goal.
func writeKafkaTarget(out io.Writer, r bench.Result) {
	o := r.Options
	batch := 0
	if len(o.BatchSizes) > 0 {
		batch = o.BatchSizes[0]
	}
	fmt.Fprintf(out, "%d records of %d B over %d partitions, each copier into a topic of %d partitions, pipe batch size %d, batching window %gs\n",
		o.Records, o.Size, o.Partitions, o.Partitions, batch, o.Window)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "copier\tseconds\trecords/s\tMB/s\tbare records/s\tpipe / bare\tCPU s\tpeak RSS MiB\tfirst out s\t\n")
	if b := r.BareCopy; b != nil {
		fmt.Fprintf(w, "%s\t%.2f\t%.0f\t%.1f\t-\t-\t%.2f\t%.0f\t-\t\n", b.Name, b.Seconds, b.RecordsPerSec, b.MBPerSec, b.CPUSeconds, mib(b.PeakRSSBytes))
	}
	var bare float64
	if r.BareCopy != nil {
		bare = r.BareCopy.RecordsPerSec
	}
	for _, c := range r.KafkaTarget {
		p := c.Pipe
		fmt.Fprintf(w, "%s\t%.2f\t%.0f\t%.1f\t%.0f\t%.2f\t%.2f\t%.0f\t%.2f\t\n", p.Name, p.Seconds, p.RecordsPerSec, p.MBPerSec, bare, c.PipeToBareCopy, p.CPUSeconds, mib(p.PeakRSSBytes), p.FirstCallSeconds)
	}
	w.Flush()
	for _, c := range r.KafkaTarget {
		if c.Delivery != pipe.AtLeastOnce {
			continue
		}
		verdict := "met"
		if c.PipeToBareCopy < bench.KafkaTargetGoal {
			verdict = "not met"
		}
		fmt.Fprintf(out, "goal AT_LEAST_ONCE / bare copy >= %.2f: %s (%.2f)\n", bench.KafkaTargetGoal, verdict, c.PipeToBareCopy)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func ms(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *v)
}

// writeInvoke prints the hosted-function scenario.
func writeInvoke(out io.Writer, inv *bench.Invoke, o bench.Options) {
	fmt.Fprintf(out, "scenario %s: %d deliveries a phase of one batch of %d records (%d bytes as an event)\n", o.Scenario, o.Records, inv.RecordsPerBatch, inv.BatchBytes)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "target\tconcurrency\tbatches/s\tp50 ms\tp99 ms\tmax ms\tCPU s\t/ http\tp99 over http ms\t\n")
	for _, p := range inv.Runs {
		rel, over := "-", "-"
		if p.ToHTTP > 0 {
			rel, over = fmt.Sprintf("%.2f", p.ToHTTP), fmt.Sprintf("%+.2f", p.P99OverheadMs)
		}
		fmt.Fprintf(w, "%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n", p.Target, p.Concurrency, p.BatchesPerSec, p.P50Ms, p.P99Ms, p.MaxMs, p.CPUSeconds, rel, over)
	}
	w.Flush()
}
