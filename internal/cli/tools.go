package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/sink"
)

// sinkCmd runs an endpoint that prints what a pipe delivers: a target to
// try pipes with, without writing one.
func (a *app) sinkCmd() *cobra.Command {
	var addr string
	var status int
	cmd := &cobra.Command{
		Use:   "sink [--addr 127.0.0.1:9000]",
		Short: "Run an HTTP endpoint that prints every batch a pipe delivers to it",
		Long: `Run an HTTP endpoint that decodes the Kafka events pipes POST to it and
prints each record. Point a pipe's --target at it. With --status it answers
every delivery with that HTTP status instead of 200, to watch retries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status < 100 || status > 599 {
				return fmt.Errorf("--status %d: use an HTTP status 100–599", status)
			}
			ctx, stop := signalContext(cmd.Context())
			defer stop()
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("--addr %s: %w%s", addr, err, addrInUseHint(err, "--addr"))
			}
			out := &syncWriter{w: a.env.Stdout}
			d := &demo{out: out}
			s := sink.New()
			s.Keep = false
			s.OnBatch = d.printBatch
			if status != http.StatusOK {
				s.Decide = func(*sink.Event) sink.Decision {
					fmt.Fprintf(out, "answered %d to a delivery\n", status)
					return sink.Decision{Status: status}
				}
			}
			srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
			fmt.Fprintf(out, "Printing deliveries to http://%s/ (Ctrl-C stops)\n", ln.Addr())
			errc := make(chan error, 1)
			go func() { errc <- srv.Serve(ln) }()
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil {
				return err
			}
			if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:9000", "host:port to listen on")
	cmd.Flags().IntVar(&status, "status", http.StatusOK, "HTTP status to answer deliveries with")
	return cmd
}

// produceCmd writes stdin's lines to a topic: a producer for trying pipes
// on a machine with nothing but sluice.
func (a *app) produceCmd() *cobra.Command {
	var brokers, topic, keySep string
	var partition int32
	cmd := &cobra.Command{
		Use:   "produce --topic TOPIC [--bootstrap-servers HOST:PORT]",
		Short: "Produce each line of standard input as a record",
		Long: `Produce each line of standard input to --topic, waiting for the broker's
acknowledgement of all of them. With --key-separator, the text before the
first separator is the record's key (like kcat -K).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if topic == "" {
				return errors.New("--topic is required")
			}
			opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(brokers, ",")...), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation()}
			if partition >= 0 {
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				return fmt.Errorf("--bootstrap-servers: %w", err)
			}
			defer cl.Close()
			// A broker that is not there should say so at once, not after
			// the produce timeout: ask it for metadata first.
			pctx, pcancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			err = cl.Ping(pctx)
			pcancel()
			if err != nil {
				return fmt.Errorf("--bootstrap-servers %s: no broker answered within 5s (%v): check the address, and that the broker runs (sluice dev starts one on 127.0.0.1:9092)", brokers, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			var recs []*kgo.Record
			sc := bufio.NewScanner(cmd.InOrStdin())
			sc.Buffer(make([]byte, 64<<10), 16<<20)
			for sc.Scan() {
				line := sc.Text()
				r := &kgo.Record{Value: []byte(line), Partition: max(partition, 0)}
				if keySep != "" {
					if k, v, ok := strings.Cut(line, keySep); ok {
						r.Key, r.Value = []byte(k), []byte(v)
					}
				}
				recs = append(recs, r)
			}
			if err := sc.Err(); err != nil {
				return fmt.Errorf("reading standard input: %w", err)
			}
			if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				return fmt.Errorf("produce to %s at %s: %w", topic, brokers, err)
			}
			fmt.Fprintf(a.env.Stderr, "produced %d records to %s\n", len(recs), topic)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&brokers, "bootstrap-servers", "127.0.0.1:9092", "HOST:PORT[,...] of the cluster")
	f.StringVar(&topic, "topic", "", "topic to produce to (created on first use where the broker allows it)")
	f.StringVar(&keySep, "key-separator", "", "split each line into key and value at the first occurrence of this")
	f.Int32Var(&partition, "partition", -1, "partition to produce to (default: by key, or spread)")
	return cmd
}
