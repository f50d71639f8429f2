package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/store"
	"github.com/sluice-dev/sluice/internal/store/sqlite"
)

// ScaleOut is the scale-out scenario's figures: the same records read by
// a pipe on one Sluice process, then by the same pipe (a group of its own)
// on two processes sharing one store, each bringing Concurrency batches
// in flight, as every process brings its maximumConcurrency.
type ScaleOut struct {
	Concurrency int     `json:"concurrency_per_process"`
	One         Phase   `json:"one_process"`
	Two         Phase   `json:"two_processes"`
	TwoToOne    float64 `json:"two_to_one_ratio"`
}

// scaleOut runs the scale-out scenario. The processes are engines in this
// process over one store, as `sluice serve` processes on one PostgreSQL
// store are: each reconciles the stored pipe and joins its consumer group,
// and Kafka splits the partitions between them.
func (b *bench) scaleOut(ctx context.Context) error {
	o := b.o
	n := int64(o.Records)
	topic := b.id
	if err := b.createTopic(ctx, topic, o.Partitions); err != nil {
		return err
	}
	if err := b.produceAll(ctx, topic, o.Records); err != nil {
		return err
	}
	sink := &countSink{delay: o.TargetDelay}
	url, stopSink, err := serve(sink)
	if err != nil {
		return err
	}
	defer stopSink()
	dir, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := sqlite.Open(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	res := &ScaleOut{Concurrency: o.Concurrency}
	b.res.ScaleOut = res
	var stops []func()
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	first, stop, err := startMember(ctx, st, "bench-a")
	if err != nil {
		return err
	}
	stops = append(stops, stop)

	pctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	for i, p := range []*Phase{&res.One, &res.Two} {
		if i == 1 {
			_, stop, err := startMember(ctx, st, "bench-b")
			if err != nil {
				return err
			}
			stops = append(stops, stop)
		}
		*p = Phase{Name: fmt.Sprintf("%d process(es)", i+1), BatchSize: o.BatchSizes[0]}
		spec := b.spec(fmt.Sprintf("bench-scale-%d", i+1), topic, url, o.BatchSizes[0])
		spec.MaximumConcurrency = o.Concurrency
		spec.MinimumConcurrency = o.Concurrency
		if err := b.pipePhase(pctx, first, p, spec, sink, n); err != nil {
			return err
		}
	}
	res.TwoToOne = ratio(res.Two.RecordsPerSec, res.One.RecordsPerSec)
	return nil
}

// startMember runs an engine named member over st until the returned stop.
func startMember(ctx context.Context, st store.Store, member string) (*engine.Engine, func(), error) {
	eng, err := engine.New(engine.Config{Store: st, ReconcileInterval: 100 * time.Millisecond, Member: member, MemberSetting: "the bench"})
	if err != nil {
		return nil, nil, err
	}
	ectx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = eng.Run(ectx)
	}()
	return eng, func() {
		cancel()
		wg.Wait()
	}, nil
}
