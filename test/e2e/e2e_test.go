// Package e2e runs the real sluice binary as a user would: `sluice dev`,
// pipes created with the CLI, records produced by Kafka clients nobody here
// wrote (kcat, kafka-python), an HTTP endpoint receiving them, and a
// SIGKILL of the whole process mid-stream.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/test/testproc"
)

var binary string

func TestMain(m *testing.M) {
	bin, remove, err := testproc.Build()
	if err != nil {
		panic(err)
	}
	binary = bin
	code := m.Run()
	remove()
	os.Exit(code)
}

// need skips a test whose third-party client is missing, except in CI,
// where .ci/run installs it and its absence is a failure.
func need(t *testing.T, path string) string {
	t.Helper()
	p, err := exec.LookPath(path)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is required in CI (.ci/run installs it): %v", path, err)
		}
		t.Skipf("%s not installed", path)
	}
	return p
}

var freeAddr = testproc.FreeAddr

// devProc is a running `sluice dev` (or `serve`) with the broker address
// it was given.
type devProc struct {
	*testproc.Proc
	kafka string
}

// startDev runs `sluice dev` and waits until its API answers.
func startDev(t *testing.T, dataDir, kafka, api string) *devProc {
	t.Helper()
	d := startSluice(t, api, "dev", "--data-dir", dataDir, "--kafka-addr", kafka, "--api-addr", api)
	d.kafka = kafka
	return d
}

// startSluice runs the sluice binary with args and waits until the API at
// api answers.
func startSluice(t *testing.T, api string, args ...string) *devProc {
	t.Helper()
	return &devProc{Proc: testproc.Start(t, binary, "sluice "+args[0], api, args...)}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// endOffsets and committedOffsets read the broker with kadm.
func offsets(t *testing.T, broker, topic, group string) (end, committed map[int32]int64) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	end, committed = map[int32]int64{}, map[int32]int64{}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) { end[o.Partition] = o.Offset })
	if group != "" {
		got, err := adm.FetchOffsets(ctx, group)
		if err == nil {
			got.Each(func(o kadm.OffsetResponse) {
				if o.Topic == topic {
					committed[o.Partition] = o.At
				}
			})
		}
	}
	return end, committed
}

func getPipe(t *testing.T, d *devProc, name string) pipe.Pipe {
	t.Helper()
	var p pipe.Pipe
	out := d.CLI("pipes", "get", name, "--output", "json")
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("pipes get -o json printed %q: %v", out, err)
	}
	return p
}

// TestDevWithThirdPartyProducers is the acceptance check: the CLI
// creates a pipe on `sluice dev`, kcat and kafka-python produce, the HTTP
// endpoint receives the reference event in order per partition, and the
// group's commits reach the end of every partition.
func TestDevWithThirdPartyProducers(t *testing.T) {
	kcat := need(t, "kcat")
	python := need(t, "/usr/bin/python3")
	if err := exec.Command(python, "-c", "import kafka").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("kafka-python is required in CI: %v", err)
		}
		t.Skip("kafka-python not installed")
	}

	d := startDev(t, t.TempDir(), freeAddr(t), freeAddr(t))
	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()

	out := d.CLI("pipes", "create", "orders", "--bootstrap-servers", d.kafka, "--topic", "orders",
		"--target", srv.URL, "--batch-size", "10", "--batching-window", "100ms")
	if !strings.Contains(out, "orders") {
		t.Fatalf("create printed %q", out)
	}

	// kcat: 30 keyed records to each of the 3 partitions, with a header.
	for p := 0; p < 3; p++ {
		var in bytes.Buffer
		for i := 0; i < 30; i++ {
			fmt.Fprintf(&in, "key-%d:kcat-%d-%d\n", i, p, i)
		}
		cmd := exec.Command(kcat, "-P", "-b", d.kafka, "-t", "orders", "-p", fmt.Sprint(p), "-K:", "-H", "source=kcat")
		cmd.Stdin = &in
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("kcat: %v\n%s", err, out)
		}
	}
	// kafka-python: 20 records per partition, one with a null key and a
	// header of binary bytes.
	script := fmt.Sprintf(`
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=%q)
for part in range(3):
    for i in range(20):
        key = None if i == 0 else ("py-%%d" %% i).encode()
        p.send("orders", key=key, value=("python-%%d-%%d" %% (part, i)).encode(), partition=part,
               headers=[("bin", bytes([0xff, 0x00, 0x80]))])
p.flush()
p.close()
`, d.kafka)
	if out, err := exec.Command(python, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("kafka-python: %v\n%s", err, out)
	}

	want := map[int32]int64{0: 50, 1: 50, 2: 50}
	waitFor(t, 60*time.Second, "every record at the endpoint", func() bool {
		_, err := sink.Check(s.Records(), "orders", want)
		return err == nil
	})
	if _, err := sink.Check(s.Records(), "orders", want); err != nil {
		t.Fatal(err)
	}
	var sawNullKey, sawBinary, sawKcatHeader bool
	for _, r := range s.Records() {
		if r.Offset < 30 {
			if string(r.Value) != fmt.Sprintf("kcat-%d-%d", r.Partition, r.Offset) || string(r.Key) != fmt.Sprintf("key-%d", r.Offset) {
				t.Fatalf("kcat record %d/%d arrived as key %q value %q", r.Partition, r.Offset, r.Key, r.Value)
			}
			sawKcatHeader = sawKcatHeader || (len(r.Headers) == 1 && r.Headers[0].Key == "source" && string(r.Headers[0].Value) == "kcat")
		} else {
			if string(r.Value) != fmt.Sprintf("python-%d-%d", r.Partition, r.Offset-30) {
				t.Fatalf("python record %d/%d arrived as %q", r.Partition, r.Offset, r.Value)
			}
			sawNullKey = sawNullKey || r.Key == nil
			sawBinary = sawBinary || (len(r.Headers) == 1 && bytes.Equal(r.Headers[0].Value, []byte{0xff, 0x00, 0x80}))
		}
	}
	if !sawNullKey || !sawBinary || !sawKcatHeader {
		t.Fatalf("null key %v, binary header %v, kcat header %v", sawNullKey, sawBinary, sawKcatHeader)
	}

	p := getPipe(t, d, "orders")
	waitFor(t, 30*time.Second, "commits at the end of each partition", func() bool {
		end, committed := offsets(t, d.kafka, "orders", p.GroupID())
		for part, e := range end {
			if committed[part] != e {
				return false
			}
		}
		return len(end) == 3
	})
	waitFor(t, 10*time.Second, "LastProcessingResult OK", func() bool {
		p := getPipe(t, d, "orders")
		return p.Status.LastProcessingResult == pipe.ResultOK && p.Status.State == pipe.StateEnabled
	})
	if list := d.CLI("pipes", "list"); !strings.Contains(list, "orders") || !strings.Contains(list, "OK") {
		t.Fatalf("pipes list printed %q", list)
	}
	d.CLI("pipes", "delete", "orders")
	d.Signal(syscall.SIGTERM)
}

// TestKilledMidStreamLosesNothing SIGKILLs `sluice serve` while it
// delivers from a 3-broker cluster, restarts it on the same store, and
// counts every offset.
func TestKilledMidStreamLosesNothing(t *testing.T) {
	const topic, parts, perPartition = "stream", 3, 10000
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(parts, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ",")

	dataDir := t.TempDir()
	api := freeAddr(t)
	config := filepath.Join(dataDir, "sluice.yaml")
	// A short session so the restarted process gets the dead one's
	// partitions back in seconds.
	if err := os.WriteFile(config, []byte(fmt.Sprintf("apiAddr: %s\ndataDir: %s\ngroupSessionTimeout: 6s\n", api, dataDir)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startSluice(t, api, "serve", "--config", config)
	s := sink.New()
	// A slowish target so the kills land mid-stream.
	s.Decide = func(*sink.Event) sink.Decision { return sink.Decision{Delay: 10 * time.Millisecond} }
	srv := httptest.NewServer(s)
	defer srv.Close()
	d.CLI("pipes", "create", "stream", "--bootstrap-servers", brokers, "--topic", topic, "--target", srv.URL,
		"--batch-size", "20", "--batching-window", "10ms")

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for p := int32(0); p < parts; p++ {
		for i := 0; i < perPartition; i++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(fmt.Sprintf("%d-%d", p, i))})
		}
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	const kills = 3
	for kill := 0; kill < kills; kill++ {
		before := s.Stats().Accepted
		waitFor(t, 60*time.Second, "deliveries before the kill", func() bool { return s.Stats().Accepted > before+1000 })
		d.Signal(syscall.SIGKILL)
		d = startSluice(t, api, "serve", "--config", config)
	}
	want := map[int32]int64{0: perPartition, 1: perPartition, 2: perPartition}
	waitFor(t, 90*time.Second, "every record after the kills", func() bool {
		_, err := sink.Check(s.Records(), topic, want)
		return err == nil
	})
	dups, err := sink.Check(s.Records(), topic, want)
	if err != nil {
		t.Fatal(err)
	}
	p := getPipe(t, d, "stream")
	waitFor(t, 30*time.Second, "commits at the end", func() bool {
		end, committed := offsets(t, c.ListenAddrs()[0], topic, p.GroupID())
		return committed[0] == end[0] && committed[1] == end[1] && committed[2] == end[2] && end[0] == perPartition
	})
	t.Logf("%d records, %d redelivered after %d SIGKILLs", parts*perPartition, dups, kills)
	d.Signal(syscall.SIGTERM)
}

// TestDevDemoDeliversRecords runs the README's first command: `sluice dev
// --demo` alone shows records produced, delivered and printed.
func TestDevDemoDeliversRecords(t *testing.T) {
	api := freeAddr(t)
	d := startSluice(t, api, "dev", "--demo", "--data-dir", t.TempDir(), "--kafka-addr", freeAddr(t), "--api-addr", api)
	waitFor(t, 30*time.Second, "the demo endpoint to print two deliveries", func() bool {
		return strings.Count(d.Out.String(), "received demo-") >= 2
	})
	if out := d.Out.String(); !strings.Contains(out, `value {"order":1,`) {
		t.Fatalf("the first demo record was not printed:\n%s", out)
	}
	waitFor(t, 10*time.Second, "the demo pipe to report OK", func() bool {
		return getPipe(t, d, "demo").Status.LastProcessingResult == pipe.ResultOK
	})
	d.Signal(syscall.SIGINT)
}

// TestQuickstart follows the README's quickstart with nothing but the
// binary: dev, sink, pipes create, produce, pipes get.
func TestQuickstart(t *testing.T) {
	d := startDev(t, t.TempDir(), freeAddr(t), freeAddr(t))
	sinkAddr := freeAddr(t)
	sinkOut := &testproc.Buffer{}
	sinkCmd := exec.Command(binary, "sink", "--addr", sinkAddr)
	sinkCmd.Stdout, sinkCmd.Stderr = sinkOut, sinkOut
	if err := sinkCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sinkCmd.Process.Signal(syscall.SIGINT); _ = sinkCmd.Wait() }()
	waitFor(t, 10*time.Second, "the sink to listen", func() bool { return strings.Contains(sinkOut.String(), "Printing deliveries") })

	d.CLI("pipes", "create", "orders", "--bootstrap-servers", d.kafka, "--topic", "orders",
		"--target", "http://"+sinkAddr+"/", "--batch-size", "100", "--batching-window", "200ms")
	produce := exec.Command(binary, "produce", "--bootstrap-servers", d.kafka, "--topic", "orders", "--key-separator", ":")
	produce.Stdin = strings.NewReader("alice:{\"total\":12}\nbob:{\"total\":30}\n")
	if out, err := produce.CombinedOutput(); err != nil || !strings.Contains(string(out), "produced 2 records") {
		t.Fatalf("sluice produce: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "the sink to print both records", func() bool {
		out := sinkOut.String()
		return strings.Contains(out, `key alice  value {"total":12}`) && strings.Contains(out, `key bob  value {"total":30}`)
	})
	waitFor(t, 10*time.Second, "the pipe to report OK", func() bool {
		return strings.Contains(d.CLI("pipes", "get", "orders"), "Last processing result:  OK")
	})
}
