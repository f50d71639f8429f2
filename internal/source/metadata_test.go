package source

import (
	"context"
	"github.com/sluice-dev/sluice/internal/batch"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestShortSessionGetsAShorterHeartbeat: franz-go refuses a heartbeat
// interval (3 s by default) longer than the session, so a session of a
// second, which `sluice serve` allows, must bring its own heartbeat.
func TestShortSessionGetsAShorterHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		session, heartbeat, want time.Duration
	}{
		{time.Second, 0, time.Second / 3},
		{6 * time.Second, 0, 2 * time.Second},
		{45 * time.Second, 0, 0}, // franz-go's own 3 s
		{time.Second, 100 * time.Millisecond, 100 * time.Millisecond},
	} {
		cfg := testConfig([]string{"127.0.0.1:1"}, "t", "g")
		cfg.SessionTimeout, cfg.HeartbeatInterval = tc.session, tc.heartbeat
		s, err := New(cfg, deliverAll)
		if err != nil {
			t.Fatalf("session %s, heartbeat %s: %v", tc.session, tc.heartbeat, err)
		}
		s.cl.Close()
		if s.cfg.HeartbeatInterval != tc.want {
			t.Errorf("session %s, heartbeat %s: heartbeat became %s, want %s", tc.session, tc.heartbeat, s.cfg.HeartbeatInterval, tc.want)
		}
	}
	cfg := testConfig([]string{"127.0.0.1:1"}, "t", "g")
	cfg.MetadataMaxAge = 0
	s, err := New(cfg, deliverAll)
	if err != nil {
		t.Fatal(err)
	}
	s.cl.Close()
	if s.cfg.MetadataMaxAge != 30*time.Second {
		t.Fatalf("MetadataMaxAge defaulted to %s, want 30s", s.cfg.MetadataMaxAge)
	}
}

// TestAddedPartitionsAreConsumed: partitions added to the topic while the
// source runs are noticed on the next metadata refresh and read from their
// start. With franz-go's default refresh of 5 minutes they were not read
// for that long (found by test/chaos).
func TestAddedPartitionsAreConsumed(t *testing.T) {
	const topic = "grow"
	addrs := newCluster(t, topic, 2)
	produce(t, addrs, topic, 2, 10, 10, labeled(0))
	cfg := testConfig(addrs, topic, "g")
	cfg.MetadataMaxAge = 500 * time.Millisecond
	var j journal
	start(t, cfg, func(_ context.Context, b *batch.Batch) error {
		j.add(delivery{partition: b.Partition, first: b.FirstOffset(), last: b.LastOffset(), n: len(b.Records), start: j.begin()})
		return nil
	})
	waitFor(t, 30*time.Second, "the first partitions", func() bool {
		got := j.deliveredUpTo()
		return got[0] == 10 && got[1] == 10
	})

	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreatePartitions(context.Background(), 2, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	newProducer(t, addrs).send(topic, []int32{2, 3}, 0, 10, 10, labeled(0))
	waitFor(t, 15*time.Second, "the added partitions' records", func() bool {
		got := j.deliveredUpTo()
		return got[2] == 10 && got[3] == 10
	})
}
