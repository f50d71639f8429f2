package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/event"
)

// bareConsumer is the first baseline: a group consumer that polls every
// record and does nothing else. onRecord, when set, sees each record as it
// is polled (the latency scenario times them).
func bareConsumer(ctx context.Context, brokers []string, topic, group string, want int64, onRecord func(*kgo.Record, time.Time)) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	var n int64
	for n < want {
		fs := cl.PollRecords(ctx, 10000)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bare consumer: %d of %d records: %w", n, want, err)
		}
		now := time.Now()
		fs.EachRecord(func(r *kgo.Record) {
			if onRecord != nil {
				onRecord(r, now)
			}
			n++
		})
	}
	return nil
}

// barePipeline is the second baseline: what a person would write without a
// framework. Poll; split what came by partition into batches of at most
// batchSize; post each partition's batches in order from a goroutine of its
// own (the pipe's concurrency: one batch in flight per partition); wait for
// all; commit what was polled; poll again. It retries a failed post at once
// and has no backpressure, windows, status or rebalance handling: the pipe's
// cost over it is the price of those.
func barePipeline(ctx context.Context, brokers []string, topic, group, url string, batchSize int, want int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	enc := event.NewEncoder(event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: brokers})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	defer hc.CloseIdleConnections()
	post := func(body []byte) error {
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					return nil
				}
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
	var n int64
	for n < want {
		fs := cl.PollRecords(ctx, 0)
		if err := ctx.Err(); err != nil {
			cl.AllowRebalance()
			return fmt.Errorf("bare pipeline: %d of %d records: %w", n, want, err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			n += int64(len(p.Records))
			wg.Add(1)
			go func(recs []*kgo.Record) {
				defer wg.Done()
				var body []byte
				for len(recs) > 0 {
					k := min(batchSize, len(recs))
					body = enc.Append(body[:0], recs[:k])
					if err := post(body); err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
					recs = recs[k:]
				}
			}(p.Records)
		})
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			cl.AllowRebalance()
			return fmt.Errorf("bare pipeline: %w", err)
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			cl.AllowRebalance()
			return fmt.Errorf("bare pipeline: commit: %w", err)
		}
		cl.AllowRebalance()
	}
	return nil
}
