// Command sluice turns Kafka topics into batched calls to HTTP endpoints.
// See internal/cli for the commands.
package main

import (
	"log/slog"
	"os"
	"path/filepath"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/bench"
	"github.com/sluice-dev/sluice/internal/cli"
	"github.com/sluice-dev/sluice/internal/console"
	"github.com/sluice-dev/sluice/internal/engine"
	"github.com/sluice-dev/sluice/internal/store"
)

func main() {
	// `sluice bench hosted-function` runs this binary, linked under that
	// name, as its no-op Lambda handler.
	if filepath.Base(os.Args[0]) == bench.NoopHandlerName {
		bench.RunNoopHandler()
		return
	}
	os.Exit(cli.Main(os.Args[1:], newEngine))
}

// newEngine is the one place that names the engine, so that the CLI
// package builds and tests without the data plane.
func newEngine(st store.Store, log *slog.Logger, o cli.EngineOptions) (cli.Engine, error) {
	e, err := engine.New(engine.Config{Store: st, Logger: log, Tuning: engine.Tuning{SessionTimeout: o.SessionTimeout, SleepAfter: o.SleepAfter}, Keyring: o.Keyring,
		Member: o.Member, MemberSetting: o.MemberSetting, Changes: o.Changes})
	if err != nil {
		return nil, err
	}
	return served{e}, nil
}

// served is the engine with what its API serves besides pipes.
type served struct{ *engine.Engine }

func (s served) API() []api.Option {
	return []api.Option{
		api.WithFunctions(s.Engine), api.WithClusters(s.Engine, s.Engine), api.WithRedriver(s.Engine), api.WithInvoker(s.Engine), api.WithAtomic(s.Engine),
		api.WithMetrics(s.MetricsHandler()), api.WithReadiness(s.Ready), api.WithDescriber(s.Engine),
		api.WithHistory(s.Engine), api.WithFailurePeek(s.Engine), api.WithConsole(console.Handler()),
	}
}
