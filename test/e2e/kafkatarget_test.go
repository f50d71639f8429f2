package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// The tests here pipe Kafka into Kafka as a user would: the CLI creates a
// pipe with a kafka:// target on `sluice dev`, kafka-python produces and
// reads back, and kcat (librdkafka, read_committed by default) reads what
// an EXACTLY_ONCE pipe wrote through SIGKILLs.

// TestKafkaTargetWithKafkaPython: records produced by kafka-python flow
// through a pipe to an output topic that kafka-python reads back with
// their keys, headers and per-key order, each in the partition Kafka's
// Java default partitioner (which kafka-python's reproduces) picks for its
// key.
func TestKafkaTargetWithKafkaPython(t *testing.T) {
	python := needKafkaPython(t)
	d := startDev(t, t.TempDir(), freeAddr(t), freeAddr(t))
	createTopics(t, d.kafka, map[string]int32{"in": 3, "out": 5})
	d.CLI("pipes", "create", "copy", "--bootstrap-servers", d.kafka, "--topic", "in", "--target", "kafka://out",
		"--batch-size", "7", "--batching-window", "10ms")

	const perKey, keys = 20, 9
	script := fmt.Sprintf(`
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=%q, acks="all")
for i in range(%d):
    for k in range(%d):
        p.send("in", key=("key-%%d" %% k).encode(), value=("v-%%d-%%d" %% (k, i)).encode(),
               headers=[("trace", ("t-%%d-%%d" %% (k, i)).encode())])
p.send("in", key=None, value=b"no-key", headers=[])
p.flush()
`, d.kafka, perKey, keys)
	if out, err := exec.Command(python, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("kafka-python producer: %v\n%s", err, out)
	}
	total := int64(perKey*keys + 1)
	waitFor(t, 60*time.Second, "the pipe to copy every record", func() bool {
		end, _ := offsets(t, d.kafka, "out", "")
		var n int64
		for _, e := range end {
			n += e
		}
		return n >= total
	})

	msgs := readTopicWithKafkaPython(t, python, d.kafka, "out")
	expected := javaPartitions(t, python, 5, keys)
	next := map[string]int{}
	for _, m := range msgs {
		if m.Key == nil {
			if m.Value != "no-key" || len(m.Headers) != 0 {
				t.Fatalf("the unkeyed record arrived as %+v", m)
			}
			continue
		}
		kb, _ := base64.StdEncoding.DecodeString(*m.Key)
		key := string(kb)
		var k, i int
		if _, err := fmt.Sscanf(m.Value, "v-%d-%d", &k, &i); err != nil || key != fmt.Sprintf("key-%d", k) {
			t.Fatalf("record %q with key %q", m.Value, key)
		}
		if i != next[key] {
			t.Fatalf("key %s: record %d arrived when %d was next (out of order, or lost)", key, i, next[key])
		}
		next[key]++
		if want := fmt.Sprintf("t-%d-%d", k, i); len(m.Headers) != 1 || m.Headers[0][0] != "trace" || b64(m.Headers[0][1]) != want {
			t.Fatalf("record %s: headers %v, want trace=%s", m.Value, m.Headers, want)
		}
		if m.Partition != expected[key] {
			t.Fatalf("key %s in partition %d; kafka-python's default (Java-compatible) partitioner puts it in %d", key, m.Partition, expected[key])
		}
	}
	for k := range keys {
		if n := next[fmt.Sprintf("key-%d", k)]; n != perKey {
			t.Fatalf("key-%d: %d records arrived, want %d", k, n, perKey)
		}
	}
	out := d.CLI("pipes", "get", "copy")
	if !strings.Contains(out, "kafka://out (AT_LEAST_ONCE, acks all, idempotent yes, key key, partitioner murmur2)") {
		t.Fatalf("pipes get shows:\n%s", out)
	}
}

func b64(s string) string {
	b, _ := base64.StdEncoding.DecodeString(s)
	return string(b)
}

// javaPartitions asks kafka-python which of n partitions its default
// partitioner (murmur2, as Kafka's Java client) picks for each key.
func javaPartitions(t *testing.T, python string, n, keys int) map[string]int32 {
	t.Helper()
	script := fmt.Sprintf(`
import json
from kafka.partitioner.default import murmur2
print(json.dumps({"key-%%d" %% k: (murmur2(("key-%%d" %% k).encode()) & 0x7fffffff) %% %d for k in range(%d)}))
`, n, keys)
	out, err := exec.Command(python, "-c", script).Output()
	if err != nil {
		t.Fatalf("kafka-python partitioner: %v", err)
	}
	var m map[string]int32
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("kafka-python partitioner printed %q: %v", out, err)
	}
	return m
}

// TestKafkaTargetExactlyOnceThroughSIGKILL: an EXACTLY_ONCE pipe on
// `sluice serve` is SIGKILLed repeatedly while it copies what kafka-python
// produced; afterwards kcat, reading read_committed (librdkafka's
// default, which kafka-python 2.0 lacks), sees every source record exactly
// once and each key's records in order.
func TestKafkaTargetExactlyOnceThroughSIGKILL(t *testing.T) {
	python := needKafkaPython(t)
	kcat := need(t, "kcat")
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(2, "in"), kfake.SeedTopics(3, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]

	const n = 6000
	script := fmt.Sprintf(`
from kafka import KafkaProducer
p = KafkaProducer(bootstrap_servers=%q, acks="all")
for i in range(%d):
    p.send("in", key=("k-%%d" %% (i %% 13)).encode(), value=("r-%%d" %% i).encode())
p.flush()
`, broker, n)
	if out, err := exec.Command(python, "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("kafka-python producer: %v\n%s", err, out)
	}

	dataDir := t.TempDir()
	api := freeAddr(t)
	config := filepath.Join(dataDir, "sluice.yaml")
	// The member name keeps the transactional id across restarts, so a
	// restarted process aborts its predecessor's open transaction at once.
	body := fmt.Sprintf("apiAddr: %s\ndataDir: %s\ngroupSessionTimeout: 6s\nmemberName: eos-1\n", api, dataDir)
	if err := os.WriteFile(config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startSluice(t, api, "serve", "--config", config)
	d.CLI("pipes", "create", "eos", "--bootstrap-servers", strings.Join(c.ListenAddrs(), ","), "--topic", "in",
		"--target", "kafka://out", "--delivery", "EXACTLY_ONCE", "--batch-size", "5", "--batching-window", "5ms")
	group := getPipe(t, d, "eos").GroupID()
	for range 4 {
		_, before := offsets(t, broker, "in", group)
		waitFor(t, 60*time.Second, "progress before the kill", func() bool {
			_, now := offsets(t, broker, "in", group)
			return total(now) > total(before)+300 || total(now) == n
		})
		d.Signal(syscall.SIGKILL)
		d = startSluice(t, api, "serve", "--config", config)
	}
	d.kafka = broker
	waitFor(t, 90*time.Second, "the pipe's group to commit every record", func() bool {
		end, committed := offsets(t, broker, "in", group)
		return total(end) == n && total(committed) == n
	})
	cmd := exec.Command(kcat, "-C", "-b", broker, "-t", "out", "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%p\t%k\t%s\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat: %v", err)
	}
	seen := map[string]int{}
	last := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		if len(f) != 3 {
			t.Fatalf("kcat printed %q", sc.Text())
		}
		seen[f[2]]++
		i, _ := strconv.Atoi(strings.TrimPrefix(f[2], "r-"))
		if prev, ok := last[f[1]]; ok && i < prev {
			t.Fatalf("key %s: %s after r-%d", f[1], f[2], prev)
		}
		last[f[1]] = i
	}
	var lost, dup []string
	for i := range n {
		switch c := seen[fmt.Sprintf("r-%d", i)]; {
		case c == 0:
			lost = append(lost, strconv.Itoa(i))
		case c > 1:
			dup = append(dup, fmt.Sprintf("%d×%d", i, c))
		}
	}
	if len(lost) > 0 || len(dup) > 0 || len(seen) != n {
		t.Fatalf("read_committed: %d distinct of %d; lost %d %v; duplicated %d %v", len(seen), n, len(lost), head(lost), len(dup), head(dup))
	}
}

func head(s []string) []string { return s[:min(len(s), 10)] }
