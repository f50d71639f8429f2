package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/devkafka"
	"github.com/sluice-dev/sluice/internal/lockfile"
)

const (
	defaultAPIAddr    = "127.0.0.1:8080"
	defaultDevDataDir = ".sluice-dev"
)

type devOptions struct {
	dataDir     string
	kafkaAddr   string
	apiAddr     string
	partitions  int
	allowRemote bool
	demo        bool
	awsLambda   bool
	sleepAfter  time.Duration
}

// devSessionTimeout lets a restarted `sluice dev` reclaim its partitions
// soon after a crash: the dead process's group members hold them until
// their session times out.
const devSessionTimeout = 10 * time.Second

func (a *app) devCmd() *cobra.Command {
	var o devOptions
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run an embedded Kafka broker, the API and a store in one process",
		Long: `Run everything Sluice needs on this machine: an embedded Kafka-compatible
broker, the store and the API, with pipes running in the same process.
State (topics, records, committed offsets, pipes) is kept in --data-dir and
survives a restart. Stop with Ctrl-C: the API stops first, then pipes finish
their in-flight batches and commit.

Neither the broker nor the API authenticates anyone, so both listen on
loopback addresses only unless --allow-remote is given.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDev(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", defaultDevDataDir, "directory for the broker's data and the store")
	f.StringVar(&o.kafkaAddr, "kafka-addr", devkafka.DefaultAddr, "host:port of the embedded Kafka broker")
	f.StringVar(&o.apiAddr, "api-addr", defaultAPIAddr, "host:port of the API")
	f.IntVar(&o.partitions, "partitions", devkafka.DefaultPartitions, "partitions of topics created on first use")
	f.BoolVar(&o.demo, "demo", false, "also run a demo: a pipe from topic demo to a built-in endpoint that prints what it receives, and a record produced every second")
	f.BoolVar(&o.allowRemote, "allow-remote", false, "allow non-loopback --api-addr and --kafka-addr, though neither has authentication")
	f.BoolVar(&o.awsLambda, "aws-lambda", false, awsLambdaHelp)
	f.DurationVar(&o.sleepAfter, "sleep-after", 0, "a pipe that sees no record this long sleeps: it leaves its consumer group and one shared fetch watches for its next record (default 1m; negative never)")
	return cmd
}

func (a *app) runDev(ctx context.Context, o devOptions) (err error) {
	kafkaHost, err := checkHostPort("--kafka-addr", o.kafkaAddr, devkafka.DefaultAddr)
	if err != nil {
		return err
	}
	apiHost, err := checkHostPort("--api-addr", o.apiAddr, defaultAPIAddr)
	if err != nil {
		return err
	}
	if !o.allowRemote {
		for _, c := range []struct{ flag, addr, host string }{{"--api-addr", o.apiAddr, apiHost}, {"--kafka-addr", o.kafkaAddr, kafkaHost}} {
			if !isLoopback(c.host) {
				return fmt.Errorf("%s %s is not a loopback address, and sluice dev has no authentication: anyone who can reach it could read your topics or create pipes. Use 127.0.0.1, or pass --allow-remote if the network is trusted", c.flag, c.addr)
			}
		}
	}
	if o.partitions < 1 {
		return fmt.Errorf("--partitions %d: use 1 or more", o.partitions)
	}
	if o.dataDir == "" {
		return errors.New("--data-dir is empty: give a directory for the broker's data and the store")
	}

	if a.env.NewEngine == nil {
		return errors.New("this build of sluice has no engine to run pipes with")
	}

	ctx, stop := signalContext(ctx)
	defer stop()
	a.devMode = true

	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	// One dev per data dir: a second would run every stored pipe against
	// the first's broker and write into the same partition files.
	lock, err := lockfile.Acquire(filepath.Join(o.dataDir, "dev.lock"))
	if errors.Is(err, lockfile.ErrHeld) {
		return fmt.Errorf("--data-dir %s is in use by another sluice dev: %w; stop that one, or give this one another --data-dir", o.dataDir, err)
	} else if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	defer lock.Release()
	// Bind the API before starting anything else: a port already taken
	// is the likeliest failure, and it should cost nothing to report.
	ln, err := net.Listen("tcp", o.apiAddr)
	if err != nil {
		return fmt.Errorf("--api-addr %s: %w%s", o.apiAddr, err, addrInUseHint(err, "--api-addr"))
	}
	defer ln.Close() // after a failed start; runServer closes it otherwise

	// Deferred closes run last-first: store, then broker, as the engine's
	// final commits and status writes need both until runServer returns.
	broker, err := devkafka.Start(ctx, devkafka.Config{
		DataDir:           filepath.Join(o.dataDir, "kafka"),
		Addr:              o.kafkaAddr,
		DefaultPartitions: o.partitions,
		Logger:            a.log.With("component", "devkafka"),
	})
	if err != nil {
		return fmt.Errorf("%w%s", err, addrInUseHint(err, "--kafka-addr"))
	}
	defer broker.Close()

	eng, st, closeStore, err := a.openEngine(ctx, o.dataDir, "", EngineOptions{SessionTimeout: devSessionTimeout, SleepAfter: o.sleepAfter}, memberSetting{})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := closeStore(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	a.printDevBanner(a.env.Stdout, broker.Addrs()[0], "http://"+ln.Addr().String(), o.dataDir, st.where)
	if o.demo {
		d, err := startDemo(ctx, a.env.Stdout, eng, broker.Addrs()[0])
		if err != nil {
			return err
		}
		defer d.stop() // after runServer: the engine has stopped delivering
	} else if err := parkDemoPipe(ctx, a.env.Stdout, eng); err != nil {
		return err
	}
	var opts []serverOption
	if !o.allowRemote {
		// No tokens in dev: a page of another site that rebinds its name
		// to 127.0.0.1 must not reach the API under that name.
		opts = append(opts, withAPIOptions(api.WithLoopbackHosts()))
	}
	if o.awsLambda {
		opts = append(opts, withAPIOptions(api.WithAWSLambda()))
	}
	return runServer(ctx, a.log, eng, ln, opts...)
}

func addrInUseHint(err error, flag string) string {
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Sprintf(" (is another sluice dev or Kafka running? stop it or pick another address with %s)", flag)
	}
	return ""
}

// printDevBanner tells a person what runs where and what to paste next.
func (a *app) printDevBanner(w io.Writer, kafkaAddr, apiURL, dataDir, storePath string) {
	if abs, err := filepath.Abs(dataDir); err == nil {
		dataDir = abs
	}
	fmt.Fprintf(w, `Sluice dev is running.
  Kafka broker:  %s (no authentication; topics are created on first use)
  API:           %s
  Data:          %s (broker in kafka/, store in %s)

Next, in other terminals (the sink keeps one busy):
`, kafkaAddr, apiURL, dataDir, filepath.Base(storePath))
	if apiURL != DefaultAPIURL {
		fmt.Fprintf(w, "  export SLUICE_API=%s\n", apiURL)
	}
	fmt.Fprintf(w, `  sluice sink --addr 127.0.0.1:9000      # an endpoint that prints what it receives
  sluice pipes create orders --bootstrap-servers %s --topic orders --target http://127.0.0.1:9000/
  echo '{"hello":"world"}' | sluice produce --bootstrap-servers %s --topic orders
  sluice pipes get orders
Any Kafka client works too, e.g. kcat -P -b %s -t orders.

Ctrl-C stops; state is kept in the data directory.
`, kafkaAddr, kafkaAddr, kafkaAddr)
}
