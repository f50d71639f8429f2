package wake

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func cluster(t *testing.T, partitions int32, topics ...string) (*kgo.Client, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic(topics[0]), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, c.ListenAddrs()
}

func produce(t *testing.T, cl *kgo.Client, topic string, p int32, n int) {
	t.Helper()
	for range n {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: p, Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

func watcher(t *testing.T, addrs []string, check time.Duration) *Watcher {
	t.Helper()
	w, err := New([]kgo.Opt{kgo.SeedBrokers(addrs...)}, nil, check)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// woken returns a wake func and a channel of its reasons.
func woken() (func(string), chan string) {
	ch := make(chan string, 4)
	return func(r string) { ch <- r }, ch
}

func expectWake(t *testing.T, ch chan string, within time.Duration, contains string) {
	t.Helper()
	select {
	case r := <-ch:
		if !strings.Contains(r, contains) {
			t.Fatalf("woken because %q, want it to say %q", r, contains)
		}
	case <-time.After(within):
		t.Fatalf("not woken within %s", within)
	}
}

func expectSleep(t *testing.T, ch chan string, for_ time.Duration) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("woken (%s), want no wake", r)
	case <-time.After(for_):
	}
}

// TestRecordWakes: a watch at the end of its partitions is woken by the
// first record produced to any of them, once, and the watcher stops
// reading partitions nobody watches.
func TestRecordWakes(t *testing.T) {
	cl, addrs := cluster(t, 2, "t")
	produce(t, cl, "t", 0, 3)
	w := watcher(t, addrs, 0)
	wake, ch := woken()
	w.Watch(Offsets{"t": {0: 3, 1: 0}}, map[string]int{"t": 2}, wake)
	expectSleep(t, ch, 1500*time.Millisecond) // records 0..2 are before its offset
	produce(t, cl, "t", 1, 1)
	expectWake(t, ch, 5*time.Second, "t-1 offset 0")
	produce(t, cl, "t", 0, 1)
	expectSleep(t, ch, time.Second)
	if n := w.Watching(); n != 0 {
		t.Fatalf("%d watches open after the wake, want 0", n)
	}
}

// TestEarlierOffsetRewinds: a second watch on a partition already read
// past its offset makes the watcher read it again, so the records it has
// not delivered wake it at once; the first watch sleeps on until a record
// reaches its own offset.
func TestEarlierOffsetRewinds(t *testing.T) {
	cl, addrs := cluster(t, 1, "t")
	produce(t, cl, "t", 0, 5)
	w := watcher(t, addrs, 0)
	wakeA, a := woken()
	w.Watch(Offsets{"t": {0: 5}}, map[string]int{"t": 1}, wakeA)
	time.Sleep(time.Second) // the watcher reads t-0 from 5
	wakeB, b := woken()
	w.Watch(Offsets{"t": {0: 3}}, map[string]int{"t": 1}, wakeB)
	expectWake(t, b, 5*time.Second, "offset 4")
	expectSleep(t, a, time.Second)
	produce(t, cl, "t", 0, 1)
	expectWake(t, a, 5*time.Second, "offset 5")
}

// TestStopDoesNotWake: a stopped watch is not woken, and stopping twice or
// after a wake is harmless.
func TestStopDoesNotWake(t *testing.T) {
	cl, addrs := cluster(t, 1, "t")
	w := watcher(t, addrs, 0)
	wake, ch := woken()
	stop := w.Watch(Offsets{"t": {0: 0}}, map[string]int{"t": 1}, wake)
	stop()
	stop()
	produce(t, cl, "t", 0, 1)
	expectSleep(t, ch, 1500*time.Millisecond)
	if n := w.Watching(); n != 0 {
		t.Fatalf("%d watches open, want 0", n)
	}
}

// TestAddedPartitionWakes: records in a partition added after the pipe fell
// asleep are not in any watched offset, so the partition check wakes it.
func TestAddedPartitionWakes(t *testing.T) {
	cl, addrs := cluster(t, 1, "t")
	w := watcher(t, addrs, 300*time.Millisecond)
	wake, ch := woken()
	w.Watch(Offsets{"t": {0: 0}}, map[string]int{"t": 1}, wake)
	expectSleep(t, ch, time.Second)
	if _, err := kadm.NewClient(cl).CreatePartitions(context.Background(), 1, "t"); err != nil {
		t.Fatal(err)
	}
	expectWake(t, ch, 5*time.Second, "has 2 partitions now")
}

// TestDeletedTopicWakes: a pipe whose topic is gone is woken, so that it
// shows the problem itself.
func TestDeletedTopicWakes(t *testing.T) {
	cl, addrs := cluster(t, 1, "t", "u")
	w := watcher(t, addrs, 300*time.Millisecond)
	wake, ch := woken()
	w.Watch(Offsets{"u": {0: 0}}, map[string]int{"u": 1}, wake)
	expectSleep(t, ch, time.Second)
	if _, err := kadm.NewClient(cl).DeleteTopics(context.Background(), "u"); err != nil {
		t.Fatal(err)
	}
	expectWake(t, ch, 5*time.Second, "u")
}
