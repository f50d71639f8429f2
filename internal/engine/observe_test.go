package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/cli"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/internal/store"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
)

// observed is an engine, not yet running, behind the real API server with
// the observability routes, as `sluice dev` serves it.
type observed struct {
	t     *testing.T
	st    store.Store
	eng   *engine.Engine
	api   *httptest.Server
	addrs []string

	cancel context.CancelFunc
	done   chan struct{}
}

func newObserved(t *testing.T, c *kfake.Cluster, tune ...func(*engine.Tuning)) *observed {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tun := fast
	tun.LagInterval = 200 * time.Millisecond
	for _, f := range tune {
		f(&tun)
	}
	eng, err := engine.New(engine.Config{Store: st, ReconcileInterval: 100 * time.Millisecond, Tuning: tun})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewHandler(eng, nil,
		api.WithMetrics(eng.MetricsHandler()), api.WithReadiness(eng.Ready), api.WithDescriber(eng)))
	t.Cleanup(srv.Close)
	o := &observed{t: t, st: st, eng: eng, api: srv}
	if c != nil {
		o.addrs = c.ListenAddrs()
	}
	return o
}

func (o *observed) run() {
	ctx, cancel := context.WithCancel(context.Background())
	o.cancel, o.done = cancel, make(chan struct{})
	go func() {
		defer close(o.done)
		_ = o.eng.Run(ctx)
	}()
	o.t.Cleanup(o.stop)
}

func (o *observed) stop() {
	if o.cancel != nil {
		o.cancel()
		<-o.done
	}
}

func (o *observed) create(spec pipe.Spec) pipe.Pipe {
	o.t.Helper()
	spec.BootstrapServers = o.addrs
	p, err := o.eng.CreatePipe(context.Background(), spec)
	if err != nil {
		o.t.Fatal(err)
	}
	return p
}

// scrape reads /metrics over HTTP and returns every sample as
// "name{k=v,...}" (labels sorted, as the text format writes them) → value.
func (o *observed) scrape() map[string]float64 {
	o.t.Helper()
	resp, err := http.Get(o.api.URL + "/metrics")
	if err != nil {
		o.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		o.t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		o.t.Fatalf("parse /metrics: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			key := name + "{" + strings.Join(ls, ",") + "}"
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key+"_count"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// metricsMatch waits until every wanted sample has its value, and reports
// the last scrape's differences on timeout.
func (o *observed) waitMetrics(timeout time.Duration, what string, want map[string]float64) map[string]float64 {
	o.t.Helper()
	var got map[string]float64
	deadline := time.Now().Add(timeout)
	for {
		got = o.scrape()
		var diff []string
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				diff = append(diff, k+"="+strconv.FormatFloat(g, 'f', -1, 64)+" (want "+strconv.FormatFloat(v, 'f', -1, 64)+")")
			}
		}
		if len(diff) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("timed out after %s waiting for %s:\n  %s", timeout, what, strings.Join(diff, "\n  "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasPipeSeries(samples map[string]float64, name string) []string {
	var out []string
	for k := range samples {
		if strings.Contains(k, "pipe="+name+",") || strings.Contains(k, "pipe="+name+"}") {
			out = append(out, k)
		}
	}
	return out
}

// TestMetricsOverHTTP: counters match the records produced, lag returns to
// 0 after delivery, a disabled pipe's lag grows with what is produced, and
// a deleted pipe's series disappear.
func TestMetricsOverHTTP(t *testing.T) {
	const topic, parts, n = "obs", 3, 40
	c := newCluster(t, topic, parts)
	produce(t, c.ListenAddrs(), topic, parts, n, time.Time{})
	s := sink.New()
	var failures atomic.Int64
	s.Decide = func(*sink.Event) sink.Decision {
		// The first two attempts fail, so failures are counted too.
		if failures.Add(1) <= 2 {
			return sink.Decision{Status: 503}
		}
		return sink.Decision{}
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	o := newObserved(t, c)
	o.run()
	o.create(pipe.Spec{Name: "live", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, BatchSize: 10,
		MaximumBatchingWindowInSeconds: ptr(0.0)})
	o.create(pipe.Spec{Name: "idle", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, Enabled: ptr(false)})

	total := float64(parts * n)
	got := o.waitMetrics(30*time.Second, "delivery, commits and lag 0 for live; lag of everything for idle", map[string]float64{
		`sluice_committed_events_total{pipe=live}`:                        total,
		`sluice_offset_lag_sum{pipe=live}`:                                0,
		`sluice_offset_lag_max{pipe=live}`:                                0,
		`sluice_offset_lag{partition=0,pipe=live,topic=obs}`:              0,
		`sluice_offset_lag_sum{pipe=idle}`:                                total,
		`sluice_offset_lag_max{pipe=idle}`:                                n,
		`sluice_offset_lag{partition=2,pipe=idle,topic=obs}`:              n,
		`sluice_pipe_state{pipe=idle,state=Disabled}`:                     1,
		`sluice_pipe_state{pipe=idle,state=Enabled}`:                      0,
		`sluice_pipe_state{pipe=live,state=Enabled}`:                      1,
		`sluice_pipe_up{pipe=live}`:                                       1,
		`sluice_pipe_up{pipe=idle}`:                                       0,
		`sluice_batches_in_flight{pipe=live}`:                             0,
		`sluice_filtered_out_events_total{pipe=live}`:                     0,
		`sluice_dropped_events_total{pipe=live}`:                          0,
		`sluice_on_failure_destination_delivered_events_total{pipe=live}`: 0,
		`sluice_commit_errors_total{pipe=live}`:                           0,
	})
	st := s.Stats()
	if st.Accepted != int64(total) {
		t.Fatalf("the sink accepted %d records, want %v (a redelivery would make the counts below ambiguous)", st.Accepted, total)
	}
	failed := got[`sluice_failed_invoke_events_total{pipe=live}`]
	if got[`sluice_invoke_errors_total{pipe=live}`] != 2 || failed < 2 {
		t.Fatalf("invoke errors %v, failed records %v: want 2 failed attempts", got[`sluice_invoke_errors_total{pipe=live}`], failed)
	}
	if inv := got[`sluice_invoked_events_total{pipe=live}`]; inv != total+failed {
		t.Fatalf("invoked %v, want the %v delivered plus the %v in failed attempts", inv, total, failed)
	}
	if p := got[`sluice_polled_events_total{pipe=live}`]; p != total {
		t.Fatalf("polled %v, want %v", p, total)
	}
	if c := got[`sluice_batch_delivery_seconds{pipe=live}_count`]; c != float64(st.Batches+2) {
		t.Fatalf("%v attempts timed, want %d batches plus 2 failed attempts", c, st.Batches)
	}

	// Records produced while a pipe is disabled are its growing lag; the
	// enabled one delivers them.
	produce(t, c.ListenAddrs(), topic, parts, 10, time.Time{})
	total += parts * 10
	o.waitMetrics(30*time.Second, "the disabled pipe's lag to grow", map[string]float64{
		`sluice_offset_lag_sum{pipe=idle}`:                   total,
		`sluice_offset_lag{partition=1,pipe=idle,topic=obs}`: n + 10,
		`sluice_offset_lag_sum{pipe=live}`:                   0,
		`sluice_committed_events_total{pipe=live}`:           total,
	})

	for _, name := range []string{"live", "idle"} {
		if err := o.eng.DeletePipe(context.Background(), name); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "the deleted pipes' series to disappear", func() bool {
		samples := o.scrape()
		return len(hasPipeSeries(samples, "live")) == 0 && len(hasPipeSeries(samples, "idle")) == 0
	})
}

// kadmView is what kadm says of a group's partitions: end and committed
// offsets.
func kadmView(t *testing.T, addrs []string, topic, group string) (ends map[int32]int64, commits map[int32]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	listed, err := adm.ListEndOffsets(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	ends = map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	commits = map[int32]int64{}
	fetched, err := adm.FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return ends, commits // a group that never committed
	}
	if err != nil {
		t.Fatal(err)
	}
	fetched.Each(func(o kadm.OffsetResponse) { commits[o.Partition] = o.At })
	return ends, commits
}

// TestDescribeMatchesKadm: describe, over the API client and the CLI, shows
// per-partition end, committed and lag as kadm sees them, for a pipe that
// delivered part of its topic and for a disabled one.
func TestDescribeMatchesKadm(t *testing.T) {
	const topic, parts = "desc", 2
	c := newCluster(t, topic, parts)
	produce(t, c.ListenAddrs(), topic, parts, 30, time.Time{})
	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	o := newObserved(t, c)
	o.run()
	live := o.create(pipe.Spec{Name: "live", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}},
		MaximumBatchingWindowInSeconds: ptr(0.0)})
	idle := o.create(pipe.Spec{Name: "idle", Topics: []string{topic}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, Enabled: ptr(false)})
	client := api.NewClient(o.api.URL, nil)

	check := func(p pipe.Pipe, wantLag map[int32]int64) observe.Description {
		t.Helper()
		var d observe.Description
		waitFor(t, 30*time.Second, "describe of "+p.Name+" to match kadm", func() bool {
			var err error
			d, err = client.Describe(context.Background(), p.Name)
			if err != nil {
				t.Fatal(err)
			}
			if d.Lag == nil || len(d.Lag.Partitions) != parts {
				return false
			}
			ends, commits := kadmView(t, o.addrs, topic, p.GroupID())
			var sum int64
			for _, pl := range d.Lag.Partitions {
				c, committed := commits[pl.Partition]
				if pl.Topic != topic || pl.EndOffset != ends[pl.Partition] || committed != (pl.CommittedOffset != nil) ||
					committed && *pl.CommittedOffset != c || pl.Lag != wantLag[pl.Partition] {
					return false
				}
				sum += pl.Lag
			}
			return d.Lag.Total == sum && d.Lag.Error == "" && !d.Lag.MeasuredAt.IsZero() &&
				(!p.IsEnabled() || d.LastProcessingResult == pipe.ResultOK)
		})
		return d
	}

	d := check(live, map[int32]int64{0: 0, 1: 0})
	if !d.Running || d.State != string(pipe.StateEnabled) || d.LastProcessingResult != pipe.ResultOK || d.ConsumerGroupID != live.UUID {
		t.Fatalf("live: %+v", d)
	}
	if d.Throughput.Records != parts*30 || d.Throughput.WindowSeconds != 60 || d.Throughput.RecordsPerSecond != float64(parts*30)/60 {
		t.Fatalf("live throughput %+v, want the %d records delivered in the last minute", d.Throughput, parts*30)
	}
	d = check(idle, map[int32]int64{0: 30, 1: 30})
	if d.Running || d.State != string(pipe.StateDisabled) || d.Throughput.Records != 0 || d.LastError != nil {
		t.Fatalf("idle: %+v", d)
	}

	// The CLI prints the same, as a table and as JSON.
	var out, errOut bytes.Buffer
	env := cli.Env{Stdout: &out, Stderr: &errOut}
	if code := cli.Run(context.Background(), []string{"--api", o.api.URL, "pipes", "describe", "idle"}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	table := out.String()
	for _, want := range []string{"State:", "Disabled", "Running on this server:  no", "60 total, 30 max", "TOPIC", "COMMITTED"} {
		if !strings.Contains(table, want) {
			t.Fatalf("table lacks %q:\n%s", want, table)
		}
	}
	var rows int
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) == 5 && f[0] == topic {
			rows++
			if f[2] != "-" || f[3] != "30" || f[4] != "30" {
				t.Fatalf("partition row %q: want no commit, end 30, lag 30", line)
			}
		}
	}
	if rows != parts {
		t.Fatalf("%d partition rows, want %d:\n%s", rows, parts, table)
	}
	out.Reset()
	if code := cli.Run(context.Background(), []string{"--api", o.api.URL, "-o", "json", "pipes", "describe", "live"}, env); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var fromCLI observe.Description
	if err := json.Unmarshal(out.Bytes(), &fromCLI); err != nil || fromCLI.Name != "live" || fromCLI.Lag == nil || len(fromCLI.Lag.Partitions) != parts {
		t.Fatalf("describe -o json: %v\n%s", err, out.String())
	}

	// An unknown pipe is the API's 404.
	if _, err := client.Describe(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), `"nope" not found`) {
		t.Fatalf("describe of an unknown pipe: %v", err)
	}
}

// TestDescribeShowsLastProblem: the latest PROBLEM is kept with its time
// after the target recovers.
func TestDescribeShowsLastProblem(t *testing.T) {
	c := newCluster(t, "prob", 1)
	produce(t, c.ListenAddrs(), "prob", 1, 5, time.Time{})
	s := sink.New()
	var fail atomic.Bool
	fail.Store(true)
	s.Decide = func(*sink.Event) sink.Decision {
		if fail.Load() {
			return sink.Decision{Status: 500}
		}
		return sink.Decision{}
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	o := newObserved(t, c)
	o.run()
	o.create(pipe.Spec{Name: "prob", Topics: []string{"prob"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: srv.URL}}, MaximumBatchingWindowInSeconds: ptr(0.0)})
	waitFor(t, 30*time.Second, "a failed attempt", func() bool {
		d, err := o.eng.Describe(context.Background(), "prob")
		return err == nil && d.LastError != nil
	})
	fail.Store(false)
	waitFor(t, 30*time.Second, "delivery", func() bool { return s.Stats().Accepted == 5 })
	d, err := o.eng.Describe(context.Background(), "prob")
	if err != nil {
		t.Fatal(err)
	}
	if d.LastError == nil || !strings.HasPrefix(d.LastError.Message, "PROBLEM: target answered 500") || time.Since(d.LastError.At) > time.Minute {
		t.Fatalf("last error %+v", d.LastError)
	}
}

// TestReadyz: not ready before the first reconcile, ready after, not ready
// once the store stops answering; /healthz stays 200 throughout.
func TestReadyz(t *testing.T) {
	o := newObserved(t, nil)
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(o.api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/readyz")
	var eb struct{ Code, Message string }
	if err := json.Unmarshal([]byte(body), &eb); code != http.StatusServiceUnavailable || err != nil || eb.Code != api.CodeNotReady ||
		!strings.Contains(eb.Message, "not reconciled") {
		t.Fatalf("/readyz before Run: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz before Run: %d", code)
	}
	o.run()
	waitFor(t, 10*time.Second, "ready", func() bool { code, _ := get("/readyz"); return code == http.StatusOK })

	o.stop()
	if err := o.st.Close(); err != nil {
		t.Fatal(err)
	}
	code, body = get("/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "store does not answer") {
		t.Fatalf("/readyz with a closed store: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with a closed store: %d", code)
	}
}

// TestLagDespiteAnUnreachableCluster: a cluster that does not answer
// delays only its own pipes' figures, which say why they are stale; the
// other cluster's pipes keep being measured every interval.
func TestLagDespiteAnUnreachableCluster(t *testing.T) {
	c := newCluster(t, "up", 1)
	// A "broker" that accepts connections and never answers: the worst
	// case, where only the timeout ends a measurement.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	dead := ln.Addr().String()
	o := newObserved(t, c, func(tun *engine.Tuning) { tun.LagTimeout = 3 * time.Second })
	o.run()
	o.create(pipe.Spec{Name: "up", Topics: []string{"up"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://127.0.0.1:1/"}}, Enabled: ptr(false)})
	if _, err := o.eng.CreatePipe(context.Background(), pipe.Spec{Name: "down", BootstrapServers: []string{dead}, Topics: []string{"t"},
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://127.0.0.1:1/"}}, Enabled: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		produce(t, c.ListenAddrs(), "up", 1, 1, time.Time{})
		// Well within the dead cluster's 3 s timeout.
		o.waitMetrics(2*time.Second, "the reachable cluster's lag", map[string]float64{`sluice_offset_lag_sum{pipe=up}`: float64(i)})
	}
	waitFor(t, 10*time.Second, "the unreachable cluster's error in describe", func() bool {
		d, err := o.eng.Describe(context.Background(), "down")
		return err == nil && d.Lag != nil && strings.Contains(d.Lag.Error, "no answer from Kafka within 3s")
	})
	if got := hasPipeSeries(o.scrape(), "down"); len(got) == 0 {
		t.Fatal("the pipe on the unreachable cluster has no series at all")
	}
}
