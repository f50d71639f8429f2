// Package devkafka runs the embedded Kafka-compatible broker of `sluice
// dev`: franz-go's kfake, one broker, persisted under a data directory so
// topics, records and committed group offsets survive a restart. It speaks
// the real Kafka protocol, so kcat, kafka-python and Sluice's own consumer
// use it like any cluster. It has no authentication: it is for one
// developer's machine.
package devkafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultPartitions is the partition count of auto-created topics: more
// than one, so per-partition ordering and batching show up in development
// as they will in production, and few enough to read in a listing.
const DefaultPartitions = 3

// DefaultAddr is where the broker listens by default: Kafka's usual port,
// on loopback only.
const DefaultAddr = "127.0.0.1:9092"

// Config configures Start.
type Config struct {
	// DataDir holds the broker's state; it is created if missing. Required.
	DataDir string
	// Addr is the host:port to listen on and to advertise to clients;
	// default DefaultAddr. Port 0 picks a free port (see Broker.Addrs).
	Addr string
	// DefaultPartitions is the partition count of topics created on first
	// use; default DefaultPartitions.
	DefaultPartitions int
	// Logger receives the broker's logs; nil discards them.
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
}

// Start starts the broker and returns once it accepts connections. ctx
// bounds only the start; stop the broker with Close.
func Start(ctx context.Context, cfg Config) (*Broker, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start dev broker: %w", err)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("start dev broker: no data directory given")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.DefaultPartitions == 0 {
		cfg.DefaultPartitions = DefaultPartitions
	}
	if cfg.DefaultPartitions < 1 {
		return nil, fmt.Errorf("start dev broker: %d default partitions: use 1 or more", cfg.DefaultPartitions)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, port, err := splitAddr(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("start dev broker: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("start dev broker: %w", err)
	}
	if err := recoverTopics(cfg.DataDir, log); err != nil {
		return nil, fmt.Errorf("start dev broker: recover the topics of %s: %w", cfg.DataDir, err)
	}

	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		// kfake always listens on 127.0.0.1; this keeps its choice of
		// port but binds the host the user asked for. The broker
		// advertises whatever address it is bound to.
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, p, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			ln, err := net.Listen(network, net.JoinHostPort(host, p))
			if err != nil {
				return nil, err
			}
			return &patientListener{Listener: ln, log: log, sleep: time.Sleep}, nil
		}),
		kfake.DataDir(cfg.DataDir),
		// Producing to a new topic just works, as with a default Kafka
		// install; a developer should not need an admin step first.
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.DefaultPartitions),
		kfake.WithLogger(logger{log}),
	)
	if err != nil {
		return nil, fmt.Errorf("start dev broker on %s with data in %s: %w", cfg.Addr, cfg.DataDir, err)
	}
	return &Broker{cluster: c, addrs: c.ListenAddrs()}, nil
}

// splitAddr checks addr and returns its host and port. The host must be
// concrete: the broker tells clients to reconnect to the address it listens
// on, and "0.0.0.0" or "::" is not an address a client can connect to.
func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: use host:port, e.g. %s", addr, DefaultAddr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("address %q: the port must be a number 0–65535", addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "", 0, fmt.Errorf("address %q: give the host clients connect to (e.g. 127.0.0.1), not an unspecified one: the broker advertises the address it listens on", addr)
	}
	return host, port, nil
}

// Addrs returns the host:port of the broker, for clients' bootstrap
// servers. With port 0 in Config.Addr it shows the port chosen.
func (b *Broker) Addrs() []string { return append([]string(nil), b.addrs...) }

// Close stops the broker, waiting for it to write its state to the data
// directory. It is safe to call more than once.
func (b *Broker) Close() { b.cluster.Close() }

// logger adapts slog to kfake's printf logger. kfake logs every request at
// info, which is debugging detail for Sluice's users, so it is lowered.
type logger struct{ l *slog.Logger }

func (l logger) Logf(level kfake.LogLevel, format string, args ...any) {
	lvl := slog.LevelDebug
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	}
	if !l.l.Enabled(context.Background(), lvl) {
		return
	}
	l.l.Log(context.Background(), lvl, fmt.Sprintf(format, args...), "component", "devkafka")
}
