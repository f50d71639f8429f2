package devkafka

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func start(t *testing.T, cfg Config) *Broker {
	t.Helper()
	b, err := Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func newClient(t *testing.T, b *Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// consume reads until it has n records or the deadline passes.
func consume(ctx context.Context, t *testing.T, cl *kgo.Client, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records before the deadline", len(recs), n)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		recs = append(recs, fs.Records()...)
	}
	return recs
}

func TestPersistsAcrossRestart(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	const topic, group, n = "demo", "sluice-test", 20

	b := start(t, Config{DataDir: dir, Addr: "127.0.0.1:0"})
	addr := b.Addrs()[0]

	prod := newClient(t, b, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	for i := range n {
		r := &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}
		if err := prod.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	cons := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	recs := consume(ctx, t, cons, n)
	if err := cons.CommitRecords(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	var vals []kgo.Record
	for _, r := range recs {
		vals = append(vals, *r)
	}
	committed := kadm.OffsetsFromRecords(vals...)

	topics, err := kadm.NewClient(prod).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(topics[topic].Partitions); got != DefaultPartitions {
		t.Errorf("auto-created topic has %d partitions, want %d", got, DefaultPartitions)
	}

	prod.Close()
	cons.Close()
	b.Close()

	// Same directory, same port: what a developer gets after Ctrl-C and
	// `sluice dev` again.
	b2 := start(t, Config{DataDir: dir, Addr: addr})
	if got := b2.Addrs(); len(got) != 1 || got[0] != addr {
		t.Fatalf("restarted on %v, want %s", got, addr)
	}

	adm := kadm.NewClient(newClient(t, b2))
	fetched, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	committed.Each(func(o kadm.Offset) {
		checked++
		got, ok := fetched.Lookup(o.Topic, o.Partition)
		if !ok || got.Err != nil || got.At != o.At {
			t.Errorf("committed offset of %s/%d after restart = %+v, want %d", o.Topic, o.Partition, got, o.At)
		}
	})

	if checked == 0 {
		t.Fatal("no committed offsets were checked")
	}

	reader := newClient(t, b2, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	again := consume(ctx, t, reader, n)
	seen := map[string]bool{}
	for _, r := range again {
		seen[string(r.Key)+"="+string(r.Value)] = true
	}
	for i := range n {
		if k := fmt.Sprintf("k%d=v%d", i, i); !seen[k] {
			t.Errorf("record %s missing after restart", k)
		}
	}
}

func TestStartRejects(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no data dir", Config{Addr: "127.0.0.1:0"}, "no data directory"},
		{"no port", Config{DataDir: t.TempDir(), Addr: "127.0.0.1"}, "host:port"},
		{"bad port", Config{DataDir: t.TempDir(), Addr: "127.0.0.1:http"}, "port must be a number"},
		{"unspecified host", Config{DataDir: t.TempDir(), Addr: "0.0.0.0:9092"}, "not an unspecified one"},
		{"empty host", Config{DataDir: t.TempDir(), Addr: ":9092"}, "not an unspecified one"},
		{"partitions", Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", DefaultPartitions: -1}, "use 1 or more"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Start(t.Context(), c.cfg)
			if err == nil {
				b.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestPortInUse(t *testing.T) {
	b := start(t, Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0"})
	_, err := Start(t.Context(), Config{DataDir: t.TempDir(), Addr: b.Addrs()[0]})
	if err == nil || !strings.Contains(err.Error(), b.Addrs()[0]) {
		t.Fatalf("err = %v, want an error naming %s", err, b.Addrs()[0])
	}
}
