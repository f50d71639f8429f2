package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/chain"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/redrive"
)

// ErrNothingToRedrive is what Redrive returns for a pipe whose failure
// destination cannot be read back (none, or an HTTP endpoint).
var ErrNothingToRedrive = errors.New("nothing to redrive")

// Redrive replays what the pipe's kafka:// or file destination holds into
// its target (see package redrive), telling report of its progress.
func (e *Engine) Redrive(ctx context.Context, name string, dryRun bool, report func(redrive.Progress)) (redrive.Progress, error) {
	p, err := e.GetPipe(ctx, name)
	if err != nil {
		return redrive.Progress{}, err
	}
	src, conns, conn, err := e.openFailures(ctx, p)
	if err != nil {
		return redrive.Progress{}, err
	}
	defer src.Close()
	funcs, err := e.store.ListFunctions(ctx)
	if err != nil {
		return redrive.Progress{}, err
	}
	env := chain.Env{Target: conns.targetEnv(funcs), InitialBackoff: e.cfg.Tuning.InitialBackoff, MaxBackoff: e.cfg.Tuning.MaxBackoff}
	if env.Target.Encoder, err = event.NewFormatEncoder(conn.source, event.Format(p.Format)); err != nil {
		return redrive.Progress{}, err
	}
	if p.BatchSize == 1 {
		env.Target.Encoder.UseBinaryMode() // as the pipe sends it
	}
	env.Target.Pipe = p.Name
	env.Target.Kafka = conns.kafkaFor(ctx, p.Spec, conn)
	pl, err := chain.OpenRedrive(ctx, p.Spec, env)
	if err != nil {
		return redrive.Progress{}, err
	}
	defer pl.Close()
	e.log.Info("redrive started", "pipe", name, "from", src.Where(), "dry_run", dryRun)
	prog, err := redrive.Run(ctx, src, pl.Handler, redrive.Options{BatchSize: p.BatchSize, DryRun: dryRun, Report: report})
	if err != nil {
		e.log.Warn("redrive stopped", "pipe", name, "from", src.Where(), "delivered", prog.Delivered, "err", err)
	} else {
		e.log.Info("redrive done", "pipe", name, "from", src.Where(), "read", prog.Read, "delivered", prog.Delivered, "dry_run", dryRun)
	}
	return prog, err
}

// openFailures opens the pipe's failure destination for reading from where
// redrives left it, with the connections it was resolved through.
func (e *Engine) openFailures(ctx context.Context, p pipe.Pipe) (redrive.Source, *connections, connection, error) {
	name := p.Name
	raw := p.OnFailure.Destination
	if raw == "" {
		return nil, nil, connection{}, fmt.Errorf("%w: pipe %q has no failure destination (onFailure.destination)", ErrNothingToRedrive, name)
	}
	d, err := pipe.ParseDestination(raw)
	if err != nil {
		return nil, nil, connection{}, err
	}
	conns, err := e.loadConnections(ctx)
	if err != nil {
		return nil, nil, connection{}, err
	}
	conn, err := conns.resolve(ctx, p.Spec)
	if err != nil {
		return nil, nil, connection{}, err
	}
	var src redrive.Source
	switch d.Scheme {
	case pipe.DestinationFile:
		src, err = redrive.NewFile(d.Path)
	case pipe.DestinationKafka:
		cluster := d.Cluster
		if cluster == p.Cluster {
			cluster = ""
		}
		brokers, opts, kerr := conns.kafkaFor(ctx, p.Spec, conn)(cluster)
		if kerr != nil {
			return nil, nil, connection{}, kerr
		}
		src, err = redrive.NewKafka(ctx, d.Topic, redrive.Group(p.UUID), append(opts, kgo.SeedBrokers(brokers...)))
	default:
		return nil, nil, connection{}, fmt.Errorf("%w: pipe %q's destination %s cannot be read back; only kafka:// and file:// destinations can be redriven", ErrNothingToRedrive, name, raw)
	}
	if err != nil {
		return nil, nil, connection{}, fmt.Errorf("open %s: %w", raw, err)
	}
	return src, conns, conn, nil
}
