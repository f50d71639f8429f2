package e2e

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/sink"
)

// TestKeyOrderingFromTheCLI: a KEY pipe created with the CLI on `sluice
// dev`, over records kafka-python produced with recurring keys and some
// without a key, to an endpoint that takes 20 ms a call: every record
// arrives, each key's records in offset order, a keyless record after
// everything before it and before everything after it, several calls of
// one partition at once, describe shows the concurrency, and the commits
// reach the end offsets. (How much faster than PARTITION it is lives in
// `sluice bench slow-target`.)
func TestKeyOrderingFromTheCLI(t *testing.T) {
	python := needKafkaPython(t)
	d := startDev(t, t.TempDir(), freeAddr(t), freeAddr(t))
	createTopics(t, d.kafka, map[string]int32{"events": 2})
	var inFlight, peak atomic.Int64
	s := sink.New()
	s.Decide = func(*sink.Event) sink.Decision {
		n := inFlight.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		inFlight.Add(-1)
		return sink.Decision{}
	}
	srv := httptest.NewServer(s)
	defer srv.Close()
	d.CLI("pipes", "create", "keyed", "--bootstrap-servers", d.kafka, "--topic", "events", "--target", srv.URL,
		"--ordering", "KEY", "--max-concurrency", "32", "--batch-size", "5", "--batching-window", "0s")

	const perPartition = 400
	script := fmt.Sprintf(`
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=%q)
for part in range(2):
    for i in range(%d):
        key = None if i %% 40 == 39 else ("user-%%d" %% (i %% 25)).encode()
        p.send("events", key=key, value=("e-%%d-%%d" %% (part, i)).encode(), partition=part)
p.flush()
`, d.kafka, perPartition)
	if out, err := exec.Command(python, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("kafka-python: %v\n%s", err, out)
	}
	group := getPipe(t, d, "keyed").GroupID()
	waitFor(t, 60*time.Second, "every record delivered and committed", func() bool {
		_, committed := offsets(t, d.kafka, "events", group)
		return len(firstDeliveries(s.Records())) == 2*perPartition && committed[0] == perPartition && committed[1] == perPartition
	})
	first := firstDeliveries(s.Records())
	last := map[string]int64{}
	order := map[int32][]sink.Record{}
	for _, r := range first {
		order[r.Partition] = append(order[r.Partition], r)
		if r.Key == nil {
			continue
		}
		k := fmt.Sprintf("%d/%s", r.Partition, r.Key)
		if l, ok := last[k]; ok && l > r.Offset {
			t.Fatalf("key %s: offset %d arrived after %d", k, r.Offset, l)
		}
		last[k] = r.Offset
	}
	for p, rs := range order {
		for i, r := range rs {
			if r.Key != nil {
				continue
			}
			for _, x := range rs[:i] {
				if x.Offset > r.Offset {
					t.Fatalf("partition %d: %d arrived before the keyless record %d", p, x.Offset, r.Offset)
				}
			}
			for _, x := range rs[i+1:] {
				if x.Offset < r.Offset {
					t.Fatalf("partition %d: %d arrived after the keyless record %d", p, x.Offset, r.Offset)
				}
			}
		}
	}
	if peak.Load() <= 2 {
		t.Fatalf("at most %d calls in flight with two partitions: KEY order should have more", peak.Load())
	}
	var desc observe.Description
	if err := json.Unmarshal([]byte(d.CLI("pipes", "describe", "keyed", "-o", "json")), &desc); err != nil || desc.Concurrency == nil ||
		desc.Concurrency.Ordering != "KEY" || desc.Concurrency.Maximum != 32 {
		t.Fatalf("describe: %+v, %v", desc.Concurrency, err)
	}
	if out := d.CLI("pipes", "describe", "keyed"); !strings.Contains(out, "ordering KEY") {
		t.Fatalf("describe shows:\n%s", out)
	}
	t.Logf("peak %d calls in flight; concurrency %+v", peak.Load(), desc.Concurrency)
}

// firstDeliveries is each record's first arrival, in arrival order.
func firstDeliveries(rs []sink.Record) []sink.Record {
	seen := map[[2]int64]bool{}
	var out []sink.Record
	for _, r := range rs {
		id := [2]int64{int64(r.Partition), r.Offset}
		if !seen[id] {
			seen[id] = true
			out = append(out, r)
		}
	}
	return out
}
