package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/bench"
)

func (a *app) benchCmd() *cobra.Command {
	var o bench.Options
	var brokers string
	cmd := &cobra.Command{
		Use:   "bench [throughput]",
		Short: "Measure a pipe's throughput against a bare consumer on the same records",
		Long: `Produce --records records of --size bytes over --partitions partitions to an
embedded broker (or --brokers), then read them twice: with a bare franz-go
consumer that does nothing else (the baseline), and with a Sluice pipe that
delivers them in batches of --batch-size to a local HTTP endpoint answering
200 at once. Prints both rates and their ratio: the machine's noise cancels
out of the ratio, not out of the absolute figures.`,
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: []string{"throughput"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] != "throughput" {
				return fmt.Errorf("scenario %q: the scenario is throughput", args[0])
			}
			if brokers != "" {
				o.Brokers = strings.Split(brokers, ",")
			}
			for _, c := range []struct {
				flag string
				v    int
			}{{"--records", o.Records}, {"--size", o.Size}, {"--partitions", o.Partitions}, {"--batch-size", o.BatchSize}} {
				if c.v < 1 {
					return fmt.Errorf("%s %d: use 1 or more", c.flag, c.v)
				}
			}
			fmt.Fprintf(a.env.Stderr, "producing %d records of %d bytes over %d partitions, then measuring...\n", o.Records, o.Size, o.Partitions)
			r, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if a.output == outputJSON {
				return writeJSON(a.env.Stdout, r)
			}
			w := a.env.Stdout
			fmt.Fprintf(w, "records %d × %d B, %d partitions, batch size %d\n", o.Records, o.Size, o.Partitions, o.BatchSize)
			fmt.Fprintf(w, "%-16s %12s %14s %10s\n", "", "seconds", "records/s", "MB/s")
			fmt.Fprintf(w, "%-16s %12.2f %14.0f %10.1f\n", "bare consumer", r.BareConsumerSeconds, r.BareConsumerPerSec, r.BareConsumerPerSec*float64(o.Size)/1e6)
			fmt.Fprintf(w, "%-16s %12.2f %14.0f %10.1f\n", "pipe", r.PipeSeconds, r.PipePerSec, r.PipeMBPerSec)
			fmt.Fprintf(w, "pipe / bare consumer: %.2f   batches: %d (%.1f records each)\n", r.PipeToBareConsumer, r.Batches, r.MeanRecordsPerBatch)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Records, "records", 500000, "records to produce")
	f.IntVar(&o.Size, "size", 1024, "bytes per record value")
	f.IntVar(&o.Partitions, "partitions", 8, "partitions of the benchmark topic")
	f.IntVar(&o.BatchSize, "batch-size", 100, "the pipe's batch size")
	f.StringVar(&brokers, "brokers", "", "HOST:PORT[,...] of a cluster to use instead of an embedded broker")
	return cmd
}
