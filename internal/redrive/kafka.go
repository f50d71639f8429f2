package redrive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/destination"
)

// Kafka reads a kafka:// destination from where the group last committed
// to the end offsets it had when the redrive began. The group is the
// redrive's own ("sluice-redrive-<pipe UUID>"), never the pipe's: the
// committed offsets are how far the destination was redriven.
type Kafka struct {
	topic, group string
	cl           *kgo.Client
	adm          *kadm.Client
	end          map[int32]int64 // where to stop, per destination partition
	next         map[int32]int64 // the next offset to read, per partition
}

// Group is the consumer group a pipe's redrives commit in.
func Group(pipeUUID string) string { return "sluice-redrive-" + pipeUUID }

// NewKafka opens topic through opts (seed brokers, TLS, SASL) and reads
// the group's progress and the topic's end.
func NewKafka(ctx context.Context, topic, group string, opts []kgo.Opt) (*Kafka, error) {
	meta, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	adm := kadm.NewClient(meta)
	fail := func(err error) (*Kafka, error) { meta.Close(); return nil, err }
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return fail(fmt.Errorf("end offsets of %q: %w", topic, err))
	}
	if err := ends.Error(); err != nil {
		return fail(fmt.Errorf("end offsets of %q: %w", topic, err))
	}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil || starts.Error() != nil {
		return fail(fmt.Errorf("start offsets of %q: %w", topic, errors.Join(err, starts.Error())))
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // never redriven: from the start
	}
	if err != nil {
		return fail(fmt.Errorf("offsets of group %q: %w", group, err))
	}
	k := &Kafka{topic: topic, group: group, adm: adm, end: map[int32]int64{}, next: map[int32]int64{}}
	from := map[string]map[int32]kgo.Offset{topic: {}}
	ends.Each(func(o kadm.ListedOffset) {
		next := starts[topic][o.Partition].Offset
		if c, ok := committed.Lookup(topic, o.Partition); ok && c.At > next {
			next = c.At
		}
		if next < o.Offset {
			k.end[o.Partition], k.next[o.Partition] = o.Offset, next
			from[topic][o.Partition] = kgo.NewOffset().At(next)
		}
	})
	k.cl = meta
	if len(k.end) > 0 {
		cl, err := kgo.NewClient(append(opts, kgo.ConsumePartitions(from), kgo.FetchIsolationLevel(kgo.ReadCommitted()))...)
		if err != nil {
			return fail(err)
		}
		meta.Close()
		k.cl, k.adm = cl, kadm.NewClient(cl)
	}
	return k, nil
}

// Where is the destination's URI.
func (k *Kafka) Where() string { return "kafka://" + k.topic }

// Next polls until it has max entries or every partition reached its end.
func (k *Kafka) Next(ctx context.Context, max int) ([]destination.Entry, func(context.Context) error, error) {
	var out []destination.Entry
	read := map[int32]int64{}
	for len(out) < max && len(k.end) > 0 {
		pctx, cancel := context.WithTimeout(ctx, keepFor)
		fs := k.cl.PollRecords(pctx, max-len(out))
		cancel()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if fs.IsClientClosed() {
			return nil, nil, errors.New("client closed")
		}
		var ferr error
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				ferr = errors.Join(ferr, fmt.Errorf("partition %d: %w", p, err))
			}
		})
		if ferr != nil {
			return nil, nil, ferr
		}
		if fs.NumRecords() == 0 {
			return nil, nil, fmt.Errorf("no records arrived for %s in %s although the topic has more: is the broker reachable?", keepFor, k.Where())
		}
		var derr error
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := k.end[r.Partition]
			if !ok || r.Offset >= end {
				return // written after the redrive began: the next one takes it
			}
			es, err := destination.DecodeKafka(r)
			if err != nil {
				derr = errors.Join(derr, err)
				return
			}
			out = append(out, es...)
			read[r.Partition] = r.Offset + 1
			k.next[r.Partition] = r.Offset + 1
			if r.Offset+1 >= end {
				delete(k.end, r.Partition)
			}
		})
		if derr != nil {
			return nil, nil, fmt.Errorf("%s holds a message that is not a failure record: %w", k.Where(), derr)
		}
	}
	commit := func(ctx context.Context) error {
		if len(read) == 0 {
			return nil
		}
		offs := kadm.Offsets{}
		for p, o := range read {
			offs.Add(kadm.Offset{Topic: k.topic, Partition: p, At: o, LeaderEpoch: -1})
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := k.adm.CommitOffsets(cctx, k.group, offs)
		if err != nil {
			return err
		}
		return resp.Error()
	}
	return out, commit, nil
}

// Close closes the client.
func (k *Kafka) Close() error {
	k.cl.Close()
	return nil
}
