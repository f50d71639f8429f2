package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/bench"
)

// TestBenchJSON runs a small throughput benchmark through the CLI: --json
// prints one object with the figures scripts read.
func TestBenchJSON(t *testing.T) {
	r := mustOK(t, run(t, nil, "bench", "throughput", "--records", "2000", "--size", "128", "--partitions", "2", "--batch-size", "100", "--json"))
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("--json printed %q: %v", r.stdout, err)
	}
	for _, k := range []string{"pipe_records_per_sec", "bare_consumer_records_per_sec", "bare_pipeline_records_per_sec",
		"pipe_to_bare_consumer_ratio", "pipe_to_bare_pipeline_ratio", "peak_rss_bytes", "cpu_seconds"} {
		if v, ok := got[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", k, got[k])
		}
	}
	for _, k := range []string{"latency_ms_p50", "latency_ms_p99"} {
		if _, ok := got[k]; !ok {
			t.Errorf("%s missing (null when the scenario does not time records)", k)
		}
	}
}

// TestBenchTable: the latency scenario's table shows the percentiles and
// the ratios.
func TestBenchTable(t *testing.T) {
	r := mustOK(t, run(t, nil, "bench", "latency", "--records", "200", "--rate", "2000", "--partitions", "2"))
	for _, want := range []string{"p99 ms", "bare consumer", "bare pipeline", "pipe / bare pipeline"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestBenchRejectsUnknownScenario(t *testing.T) {
	r := run(t, nil, "bench", "fastest")
	if r.code == 0 || !strings.Contains(r.stderr, `scenario "fastest"`) {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestBenchTableColumns: the header names every column the rows have
// (cells are at least two spaces apart; labels have single spaces).
func TestBenchTableColumns(t *testing.T) {
	var b strings.Builder
	writeBench(&b, bench.Result{BareConsumer: &bench.Phase{Name: "bare consumer", Seconds: 1, RecordsPerSec: 10, FirstCallSeconds: 0.5}})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	cells := regexp.MustCompile(`\s{2,}`)
	header := cells.Split(strings.TrimSpace(lines[2]), -1)
	row := cells.Split(strings.TrimSpace(lines[3]), -1)
	if len(header) != len(row) || header[len(header)-1] != "first call s" || row[len(row)-1] != "0.50" {
		t.Errorf("header %q (%d) and row %q (%d) differ:\n%s", header, len(header), row, len(row), b.String())
	}
}

// TestBenchKafkaTargetTable: kafka-target prints a line per delivery
// guarantee with its rate, the bare copy's and their ratio, and the goal.
func TestBenchKafkaTargetTable(t *testing.T) {
	var b strings.Builder
	bare := &bench.Phase{Name: "bare copy", Seconds: 1, RecordsPerSec: 1000}
	r := bench.Result{Options: bench.Options{Scenario: bench.KafkaTarget, Records: 1000, Size: 64, Partitions: 2, BatchSizes: []int{100}}, BareCopy: bare}
	for i, d := range []string{"AT_LEAST_ONCE", "AT_MOST_ONCE", "EXACTLY_ONCE"} {
		rate := float64(900 - 200*i)
		r.KafkaTarget = append(r.KafkaTarget, bench.KafkaCopy{Delivery: d, Pipe: bench.Phase{Name: "pipe " + d, Seconds: 1, RecordsPerSec: rate}, PipeToBareCopy: rate / 1000})
	}
	writeBench(&b, r)
	out := b.String()
	for _, want := range []string{"pipe AT_LEAST_ONCE", "pipe AT_MOST_ONCE", "pipe EXACTLY_ONCE", "bare records/s", "0.90", "0.70", "0.50",
		"goal AT_LEAST_ONCE / bare copy >= 0.80: met (0.90)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestBenchSlowTargetTable: slow-target prints a row per ordering with its
// rate over the PARTITION pipe's, the KEY goal, and the throttle phase's
// timeline with the window of 429s in brackets.
func TestBenchSlowTargetTable(t *testing.T) {
	var b strings.Builder
	half, back, rec := 1.0, 4.5, 5.0
	r := bench.Result{Options: bench.Options{Scenario: bench.SlowTarget, Records: 1000, Size: 64, Partitions: 2, TargetDelay: 50 * time.Millisecond},
		Runs: []bench.Pass{{BatchSize: 100, Orderings: []bench.Ordered{
			{Ordering: "PARTITION", Pipe: bench.Phase{Seconds: 1, Records: 1000, RecordsPerSec: 1000, Batches: 10}, ToPartition: 1},
			{Ordering: "KEY", Pipe: bench.Phase{Seconds: 0.2, Records: 1000, RecordsPerSec: 5000, Batches: 30}, ToPartition: 5, OrderViolations: 0},
			{Ordering: "NONE", Pipe: bench.Phase{Seconds: 0.1, Records: 1000, RecordsPerSec: 10000, Batches: 10}, ToPartition: 10, OrderViolations: 7},
		}}},
		Throttle: &bench.Throttle{Ordering: "KEY", BatchSize: 100, FromSeconds: 1, ToSeconds: 2, Records: 5000, Seconds: 9, Refused: 12,
			Before: 8, Minimum: 2, MinimumAtSeconds: 1, HalvedAfterSeconds: &half, BackAfterSeconds: &back, Recovered: 10, RecoveredAfterSeconds: &rec,
			Samples: []bench.Sample{{Seconds: 0, Limit: 1}, {Seconds: 0.5, Limit: 8}, {Seconds: 1, Limit: 8}, {Seconds: 1.5, Limit: 4},
				{Seconds: 2, Limit: 2}, {Seconds: 2.5, Limit: 2}}},
	}
	writeBench(&b, r)
	out := b.String()
	for _, want := range []string{"ordering", "PARTITION", "5.00", "goal KEY / PARTITION >= 10: not met (5.00", "NONE / PARTITION 10.00",
		"12 calls refused", "concurrency 8 before", "lowest 2 at +1.0 s", "back at 8 or more 4.5 s after", "10 at the end of the watch",
		"1 8 [8 4] 2 2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
