package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/sink"
	"github.com/sluice-dev/sluice/test/testproc"
)

// describe is `sluice pipes describe NAME -o json` on p.
func describe(t *testing.T, p *testproc.Proc, name string) observe.Description {
	t.Helper()
	var d observe.Description
	out := p.CLI("pipes", "describe", name, "-o", "json")
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("pipes describe -o json printed %q: %v", out, err)
	}
	return d
}

// heldBy counts the partitions each live member of the description holds.
func heldBy(d observe.Description) map[string]int {
	out := map[string]int{}
	for _, m := range d.Members {
		for _, ps := range m.Partitions {
			out[m.Name] += len(ps)
		}
	}
	return out
}

// TestThreeServersShareOnePostgreSQLStore is the scale-out check: three
// `sluice serve` processes on one PostgreSQL store; a pipe created
// through one process's API runs in all three and Kafka splits its
// partitions; SIGKILL one while records flow: the others take its
// partitions over within 10 s, nothing is lost, the commits reach the
// end, and describe shows the members.
func TestThreeServersShareOnePostgreSQLStore(t *testing.T) {
	dsn := testproc.PostgresDSN(t)
	dir := t.TempDir()
	kafka, devAPI := testproc.FreeAddr(t), testproc.FreeAddr(t)
	startSluice(t, devAPI, "dev", "--data-dir", filepath.Join(dir, "dev"), "--kafka-addr", kafka, "--api-addr", devAPI, "--partitions", "6")

	var key [32]byte
	_, _ = rand.Read(key[:])
	t.Setenv("SLUICE_MASTER_KEY", base64.StdEncoding.EncodeToString(key[:]))
	procs := make([]*testproc.Proc, 3)
	for i := range procs {
		api := testproc.FreeAddr(t)
		cfg := filepath.Join(dir, fmt.Sprintf("serve-%d.yaml", i))
		body := fmt.Sprintf("apiAddr: %s\ndataDir: %s\nstore: %s\nmemberName: worker-%d\ngroupSessionTimeout: 6s\n",
			api, filepath.Join(dir, fmt.Sprintf("data-%d", i)), dsn, i)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		procs[i] = testproc.Start(t, binary, fmt.Sprintf("sluice serve %d", i), api, "serve", "--config", cfg)
	}

	s := sink.New()
	endpoint := httptest.NewServer(s)
	defer endpoint.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(from, n int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < from+n; i++ {
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: int32(i % 6), Value: fmt.Appendf(nil, "order-%d", i)})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 600)

	// Created through one process; within moments all three run it.
	created := time.Now()
	procs[0].CLI("pipes", "create", "orders", "--bootstrap-servers", kafka, "--topic", "orders", "--target", endpoint.URL,
		"--batch-size", "20", "--batching-window", "0s")
	waitFor(t, 30*time.Second, "the pipe on all three members, its 6 partitions split", func() bool {
		held := heldBy(describe(t, procs[2], "orders"))
		total := 0
		for _, n := range held {
			total += n
		}
		return len(held) == 3 && total == 6
	})
	t.Logf("all three members held partitions %.1f s after the create", time.Since(created).Seconds())

	// Records flow while one process is killed.
	produce(600, 600)
	procs[1].Signal(syscall.SIGKILL)
	killed := time.Now()
	produce(1200, 600)
	waitFor(t, 20*time.Second, "the two others holding all 6 partitions", func() bool {
		held := heldBy(describe(t, procs[0], "orders"))
		return held["worker-0"]+held["worker-2"] == 6
	})
	took := time.Since(killed)
	t.Logf("the others held every partition %.1f s after the SIGKILL", took.Seconds())
	if took > 10*time.Second+2*time.Second {
		// The session timeout is 6 s; the heartbeat and describe add a
		// few; past that the takeover is broken, not slow.
		t.Errorf("the takeover took %s, want within 10 s", took)
	}

	want := map[int32]int64{}
	for q := int32(0); q < 6; q++ {
		want[q] = 300
	}
	waitFor(t, 60*time.Second, "every record at the endpoint", func() bool {
		_, err := sink.Check(s.Records(), "orders", want)
		return err == nil
	})
	dups, _ := sink.Check(s.Records(), "orders", want)
	t.Logf("1,800 records delivered, %d duplicates (redelivered after the kill)", dups)
	p := getPipe(t, &devProc{Proc: procs[0]}, "orders")
	waitFor(t, 30*time.Second, "the commits at the end of every partition", func() bool {
		end, committed := offsets(t, kafka, "orders", p.UUID)
		for q, e := range end {
			if committed[q] != e {
				return false
			}
		}
		return len(end) == 6
	})
	// A member drops out of describe once it has missed its heartbeats
	// (6 s) and the describing process has looked again (every 2 s).
	waitFor(t, 15*time.Second, "describe showing the two live members", func() bool {
		return len(describe(t, procs[0], "orders").Members) == 2
	})
}
