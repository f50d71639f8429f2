package bench

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/event"
)

// TestThroughputMeasuresEveryReader runs a small throughput scenario end to
// end at two batch sizes: every reader must read every record, and every
// figure the report prints must be measured.
func TestThroughputMeasuresEveryReader(t *testing.T) {
	r, err := Run(context.Background(), Options{Scenario: Throughput, Records: 3000, Size: 256, Partitions: 3, BatchSizes: []int{50, 500}})
	if err != nil {
		t.Fatal(err)
	}
	if r.BareConsumer == nil || r.BareConsumer.Records != 3000 || r.BareConsumer.RecordsPerSec <= 0 {
		t.Fatalf("bare consumer %+v", r.BareConsumer)
	}
	if len(r.Runs) != 2 || r.Runs[0].BatchSize != 50 || r.Runs[1].BatchSize != 500 {
		t.Fatalf("runs %+v", r.Runs)
	}
	for _, run := range r.Runs {
		for _, p := range []Phase{run.BarePipeline, run.Pipe} {
			if p.Records != 3000 || p.RecordsPerSec <= 0 || p.CPUSeconds <= 0 || p.PeakRSSBytes <= 0 {
				t.Fatalf("batch size %d: %s %+v", run.BatchSize, p.Name, p)
			}
			// Each partition's 1,000 records need at least this many calls.
			if min := int64(3 * ((1000 + run.BatchSize - 1) / run.BatchSize)); p.Batches < min {
				t.Fatalf("batch size %d: %s made %d calls, fewer than %d", run.BatchSize, p.Name, p.Batches, min)
			}
		}
		if run.PipeToBareConsumer <= 0 || run.PipeToBarePipeline <= 0 {
			t.Fatalf("ratios %+v", run)
		}
	}
	if r.PipeRecordsPerSec != r.Runs[0].Pipe.RecordsPerSec || r.BarePipelineRecordsPerSec != r.Runs[0].BarePipeline.RecordsPerSec ||
		r.BareConsumerRecordsPerSec != r.BareConsumer.RecordsPerSec {
		t.Fatalf("top-level figures are not the first batch size's: %+v", r)
	}
}

// TestLatencyTimesEveryRecord: each reader times every record it was given,
// from the produce call stamped in the value.
func TestLatencyTimesEveryRecord(t *testing.T) {
	r, err := Run(context.Background(), Options{Scenario: Latency, Records: 300, Rate: 1000, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	run := r.Runs[0]
	for _, p := range []Phase{*r.BareConsumer, run.BarePipeline, run.Pipe} {
		if p.LatencySamples != 300 {
			t.Fatalf("%s timed %d of 300 records", p.Name, p.LatencySamples)
		}
		if !(*p.LatencyMsP50 > 0 && *p.LatencyMsP50 <= *p.LatencyMsP99 && *p.LatencyMsP99 <= *p.LatencyMsMax) {
			t.Fatalf("%s: p50 %v p99 %v max %v", p.Name, *p.LatencyMsP50, *p.LatencyMsP99, *p.LatencyMsMax)
		}
	}
	if r.LatencyMsP99 == nil || *r.LatencyMsP99 != *run.Pipe.LatencyMsP99 {
		t.Fatalf("top-level p99 %v is not the pipe's", r.LatencyMsP99)
	}
}

// TestSlowTargetDeliversPartitionsConcurrently: with an endpoint that takes
// a while per call, the pipe keeps a call in flight for several partitions
// at once; the KEY and NONE pipes read the same records, the KEY pipe
// delivering each key's records in order; and the throttle phase sees
// 429s and still has every record accepted, in key order.
func TestSlowTargetDeliversPartitionsConcurrently(t *testing.T) {
	r, err := Run(context.Background(), Options{Scenario: SlowTarget, Records: 2000, Size: 64, Partitions: 4, Keys: 50,
		BatchSizes: []int{50}, TargetDelay: 20 * time.Millisecond,
		ThrottleFrom: 300 * time.Millisecond, ThrottleTo: 800 * time.Millisecond, ThrottleWatch: time.Second, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	run := r.Runs[0]
	if c := run.Pipe.MaxConcurrentCalls; c < 2 {
		t.Fatalf("the pipe had at most %d call in flight over 4 partitions", c)
	}
	if len(run.Orderings) != 3 {
		t.Fatalf("orderings %+v", run.Orderings)
	}
	for i, ord := range []string{"PARTITION", "KEY", "NONE"} {
		o := run.Orderings[i]
		if o.Ordering != ord || o.Pipe.Records != 2000 || o.Pipe.RecordsPerSec <= 0 || o.ToPartition <= 0 || o.Pipe.Batches <= 0 || o.Pipe.PeakConcurrency <= 0 {
			t.Fatalf("%s: %+v", ord, o)
		}
		if ord != "NONE" && o.OrderViolations != 0 {
			t.Fatalf("%s delivered %d records out of key order", ord, o.OrderViolations)
		}
	}
	th := r.Throttle
	if th == nil || th.Records <= 0 || th.Seconds <= 0 || th.Refused <= 0 || len(th.Samples) == 0 || th.Before <= 0 || th.Minimum <= 0 {
		t.Fatalf("throttle %+v", th)
	}
	if th.OrderViolations != 0 {
		t.Fatalf("the throttled KEY pipe delivered %d records out of key order", th.OrderViolations)
	}
}

// TestThrottleTimeline reads the figures out of samples: before, the
// lowest and when, half, back, and the limit at the end of the watch.
func TestThrottleTimeline(t *testing.T) {
	th := &Throttle{FromSeconds: 2, ToSeconds: 4}
	for i, l := range []int{1, 4, 16, 16, 16, 8, 4, 4, 4, 5, 6, 8, 16, 20, 20} {
		th.Samples = append(th.Samples, Sample{Seconds: 0.5 * float64(i), Limit: l})
	}
	// Samples at 0 … 7 s; the watch ends at 6 s.
	timeline(th, 2*time.Second)
	if th.Before != 16 || th.Minimum != 4 || th.MinimumAtSeconds != 1 || th.HalvedAfterSeconds == nil || *th.HalvedAfterSeconds != 0.5 {
		t.Fatalf("%+v", th)
	}
	if th.BackAfterSeconds == nil || *th.BackAfterSeconds != 2 || th.Recovered != 16 || th.RecoveredAfterSeconds == nil || *th.RecoveredAfterSeconds != 2 {
		t.Fatalf("back %v, recovered %d after %v", th.BackAfterSeconds, th.Recovered, th.RecoveredAfterSeconds)
	}
}

// TestEachRecordReadsTheEncodersFields: the endpoint's reader finds every
// record's partition, offset and key in what the encoder writes.
func TestEachRecordReadsTheEncodersFields(t *testing.T) {
	enc := event.NewEncoder(event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: []string{"b:9092"}})
	recs := []*kgo.Record{
		{Topic: "t", Partition: 3, Offset: 7, Key: []byte("a"), Value: []byte(`x","offset":1,`)},
		{Topic: "t", Partition: 3, Offset: 12, Value: []byte("y")},
		{Topic: "t", Partition: 3, Offset: 1234567, Key: []byte("bb"), Value: nil},
	}
	var got []string
	n := eachRecord(enc.Append(nil, recs), func(p int32, off int64, key []byte) {
		got = append(got, fmt.Sprintf("%d/%d/%q", p, off, key))
	})
	want := []string{`3/7/"YQ=="`, `3/12/""`, `3/1234567/"YmI="`}
	if n != 3 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %d: %v, want %v", n, got, want)
	}
}

// TestOrderCheck counts a key's record first accepted after a later one,
// and a record accepted twice, but not records of other keys.
func TestOrderCheck(t *testing.T) {
	var c orderCheck
	for _, r := range []struct {
		off int64
		key string
	}{{1, "a"}, {3, "a"}, {4, "b"}, {0, "b"}, {2, "a"}, {3, "a"}, {200, "c"}} {
		c.accept(0, r.off, []byte(r.key))
	}
	if c.distinct != 6 || c.violations != 2 || c.redelivered != 1 {
		t.Fatalf("%+v", c)
	}
}

// TestManyPipesAreLive: every pipe delivers its record before the idle
// figures are taken.
func TestManyPipesAreLive(t *testing.T) {
	r, err := Run(context.Background(), Options{Scenario: ManyPipes, Pipes: 20, Idle: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Idle == nil || r.Idle.Pipes != 20 || r.Idle.GoroutinesAfter <= r.Idle.GoroutinesBefore || r.Idle.RSSAfterBytes <= 0 || r.PeakRSSBytes <= 0 {
		t.Fatalf("idle %+v", r.Idle)
	}
}

// TestKafkaTargetMeasuresEveryCopier: the bare copy loop and a pipe at
// each delivery guarantee each copy every record into a topic of its own.
func TestKafkaTargetMeasuresEveryCopier(t *testing.T) {
	r, err := Run(context.Background(), Options{Scenario: KafkaTarget, Records: 2000, Size: 128, Partitions: 3, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if r.BareCopy == nil || r.BareCopy.Records != 2000 || r.BareCopy.RecordsPerSec <= 0 {
		t.Fatalf("bare copy %+v", r.BareCopy)
	}
	if len(r.KafkaTarget) != 3 {
		t.Fatalf("kafka target %+v", r.KafkaTarget)
	}
	for i, d := range []string{"AT_LEAST_ONCE", "AT_MOST_ONCE", "EXACTLY_ONCE"} {
		c := r.KafkaTarget[i]
		if c.Delivery != d || c.Pipe.Records != 2000 || c.Pipe.RecordsPerSec <= 0 || c.PipeToBareCopy <= 0 {
			t.Fatalf("%s: %+v", d, c)
		}
	}
	if r.PipeToBarePipeline != r.KafkaTarget[0].PipeToBareCopy || r.BarePipelineRecordsPerSec != r.BareCopy.RecordsPerSec {
		t.Fatalf("top-level figures are not AT_LEAST_ONCE's against the bare copy: %+v", r)
	}
}

func TestOptionsNameTheBadFlag(t *testing.T) {
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{Scenario: "fast"}, `scenario "fast"`},
		{Options{Size: 8}, "--size 8"},
		{Options{Records: -1}, "--records -1"},
		{Options{BatchSizes: []int{0}}, "--batch-size 0"},
		{Options{BatchSizes: []int{20000}}, "--batch-size 20000"},
		{Options{Scenario: Latency, Rate: -5}, "--rate -5"},
		{Options{Scenario: KafkaTarget, BatchSizes: []int{100, 1000}}, "--batch-size [100 1000]"},
		{Options{Scenario: SlowTarget, Keys: -1}, "--keys -1"},
		{Options{Scenario: SlowTarget, ThrottleFrom: 5 * time.Second, ThrottleTo: 4 * time.Second}, "--throttle-from 5s --throttle-to 4s"},
	} {
		_, err := Run(context.Background(), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error naming %s", c.o, err, c.want)
		}
	}
}
