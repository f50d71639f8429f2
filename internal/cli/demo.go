package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/sink"
)

// demo is what `sluice dev --demo` adds: an HTTP endpoint that prints every
// batch it receives, a pipe "demo" from topic "demo" to it, and a producer
// writing one record a second, so the whole data path shows on one screen.
type demo struct {
	out    io.Writer
	srv    *http.Server
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const (
	demoPipe  = "demo"
	demoTopic = "demo"
	// demoGroup stays the same across runs, so a restarted demo resumes
	// where the last one committed instead of starting over.
	demoGroup = "sluice-demo"
)

// startDemo starts the endpoint, (re)creates the demo pipe pointing at it,
// and starts producing. Stop it with stop after the engine has stopped.
func startDemo(ctx context.Context, out io.Writer, svc pipe.Service, broker string) (*demo, error) {
	d := &demo{out: &syncWriter{w: out}}
	s := sink.New()
	s.Keep = false
	s.OnBatch = d.printBatch
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo endpoint: %w", err)
	}
	d.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		_ = d.srv.Serve(ln)
	}()

	// The endpoint's port is new each run: an earlier run's pipe is aimed
	// here instead. The consumer group holds the progress, so it resumes.
	window := 0.2
	spec := pipe.Spec{
		Name: demoPipe, BootstrapServers: []string{broker}, Topics: []string{demoTopic},
		ConsumerGroupID: demoGroup, BatchSize: 10, MaximumBatchingWindowInSeconds: &window,
		Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://" + ln.Addr().String() + "/"}},
	}
	if err := ensureDemoPipe(ctx, svc, spec); err != nil {
		d.srv.Close()
		return nil, fmt.Errorf("demo pipe: %w", err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.DefaultProduceTopic(demoTopic), kgo.AllowAutoTopicCreation())
	if err != nil {
		d.srv.Close()
		return nil, fmt.Errorf("demo producer: %w", err)
	}
	pctx, cancel := context.WithCancel(ctx)
	d.cancel = cancel
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer cl.Close()
		d.produce(pctx, cl)
	}()
	fmt.Fprintf(d.out, `
Demo: pipe %q delivers topic %q to %s, and a record is produced every second.
Batches the endpoint receives are printed below.

`, demoPipe, demoTopic, "http://"+ln.Addr().String()+"/")
	return d, nil
}

func (d *demo) produce(ctx context.Context, cl *kgo.Client) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for n := 1; ; n++ {
		r := &kgo.Record{
			Key:     []byte(fmt.Sprintf("customer-%d", n%5)),
			Value:   []byte(fmt.Sprintf(`{"order":%d,"placed":%q}`, n, time.Now().UTC().Format(time.RFC3339))),
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("sluice-demo")}},
		}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil && ctx.Err() == nil {
			fmt.Fprintf(d.out, "demo producer: %v\n", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (d *demo) printBatch(recs []sink.Record) {
	if len(recs) == 0 {
		return
	}
	var b strings.Builder
	first, last := recs[0], recs[len(recs)-1]
	fmt.Fprintf(&b, "received %s-%d offsets %d–%d (%s)\n", first.Topic, first.Partition, first.Offset, last.Offset, plural(len(recs), "record"))
	for _, r := range recs {
		fmt.Fprintf(&b, "  offset %d  key %s  value %s\n", r.Offset, clean(string(r.Key)), clean(string(r.Value)))
	}
	fmt.Fprint(d.out, b.String())
}

// stop stops producing and closes the endpoint; call it after the engine
// stopped, so no delivery is cut off by the endpoint going away.
func (d *demo) stop() {
	d.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
	d.wg.Wait()
}

// syncWriter serializes writes from the producer and the endpoint.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// parkDemoPipe disables the demo pipe an earlier --demo run left: its
// endpoint lived in that run and is gone, so it would only fail. A pipe
// named demo that is not the demo's (another consumer group) is the
// user's, and left alone.
func parkDemoPipe(ctx context.Context, out io.Writer, svc pipe.Service) error {
	p, err := svc.GetPipe(ctx, demoPipe)
	if errors.Is(err, pipe.ErrNotFound) || (err == nil && (p.ConsumerGroupID != demoGroup || !p.IsEnabled() || p.Status.State == pipe.StateDeleting)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("demo pipe: %w", err)
	}
	off := false
	spec := p.Spec
	spec.Enabled = &off
	if _, err := svc.UpdatePipe(ctx, spec, 0); err != nil {
		return fmt.Errorf("demo pipe: %w", err)
	}
	fmt.Fprintln(out, "The demo pipe of an earlier 'sluice dev --demo' is disabled: its endpoint was that run's. 'sluice dev --demo' runs it again.")
	return nil
}

// ensureDemoPipe creates the demo pipe, or aims the one an earlier run
// left at this run's endpoint (waiting out a delete still in progress).
func ensureDemoPipe(ctx context.Context, svc pipe.Service, spec pipe.Spec) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cur, err := svc.GetPipe(ctx, spec.Name)
		switch {
		case errors.Is(err, pipe.ErrNotFound):
			_, err = svc.CreatePipe(ctx, spec)
			return err
		case err != nil:
			return err
		case cur.Status.State != pipe.StateDeleting:
			enabled := true
			update := spec
			update.Enabled = &enabled
			update.BootstrapServers, update.ConsumerGroupID = nil, "" // create-only: kept
			_, err = svc.UpdatePipe(ctx, update, 0)
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pipe %q is still being deleted: try again in a moment", spec.Name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
