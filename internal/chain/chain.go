// Package chain builds a pipe's data path from its spec: the target of its
// kind, the failure destination, and the stages between them, in the one
// order they run in. The engine asks for a Pipeline and runs it; it does
// not know how one is made.
//
//	source ─► Filter ─► OnFailure ─► Retry ─► Bisect ─► [Transform] Enrich ─► Transform ─► Observe ─► target
//	          (optional) (destination  (limits,  (optional)   (optional, each)       (optional) (metrics)
//	                      or discard)   backoff)
package chain

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/destination"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/filter"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/stage"
	"github.com/sluice-dev/sluice/internal/target"
	"github.com/sluice-dev/sluice/internal/transform"
)

// DefaultRetriesWithDestination is the retry limit of a pipe that has a
// failure destination but no limits, as the reference applies: with
// unlimited retries the destination would never be used.
const DefaultRetriesWithDestination = 10

// Env is what a pipeline may use of the process it runs in.
type Env struct {
	// Target is the targets' environment (encoder, secrets, functions,
	// Kafka clusters); kafka:// destinations reach their cluster through
	// its Kafka too.
	Target target.Env
	// Observer is told what the stages do; nil ignores it.
	Observer stage.Observer
	// InitialBackoff and MaxBackoff shape the retries of the target and
	// of the destination (0 takes the stages' defaults).
	InitialBackoff, MaxBackoff time.Duration
	// Meta describes the pipe in failure records.
	Meta destination.Meta
}

// Pipeline is a pipe's handler with what it holds open.
type Pipeline struct {
	Handler batch.Handler
	target  target.Target
	dest    stage.Destination
}

// Open builds spec's pipeline. Its errors are the pipe's PROBLEM, so they
// name the fix.
func Open(ctx context.Context, spec pipe.Spec, env Env) (*Pipeline, error) {
	tgt, obs, err := openTarget(ctx, spec, env)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{target: tgt}
	if d := spec.OnFailure.Destination; d != "" {
		if p.dest, err = openDestination(d, spec, env); err != nil {
			tgt.Close()
			return nil, err
		}
	}
	giveUp := p.dest != nil || spec.OnFailure.Discard
	retries := spec.MaxRetries()
	if p.dest != nil && retries < 0 && spec.MaxRecordAge() == 0 {
		retries = DefaultRetriesWithDestination
	}
	var stages []batch.Stage
	if pats := spec.FilterCriteria.Patterns(); len(pats) > 0 {
		set, err := filter.CompileAll(pats)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("filterCriteria: %w", err)
		}
		stages = append(stages, stage.Filter(matcher(set), obs))
	}
	if giveUp {
		stages = append(stages, stage.OnFailure(p.dest, stage.DestinationPolicy{InitialBackoff: env.InitialBackoff, MaxBackoff: env.MaxBackoff}, obs))
	}
	stages = append(stages, stage.Retry(stage.RetryPolicy{
		MaxRetries: retries, MaxRecordAge: spec.MaxRecordAge(),
		InitialBackoff: env.InitialBackoff, MaxBackoff: env.MaxBackoff,
		GiveUp: giveUp,
	}, obs))
	if spec.Retry.BisectBatchOnError {
		stages = append(stages, stage.Bisect())
	}
	if en := spec.Enrichment; en != nil {
		e, err := openEnrichment(en, spec, env)
		if err != nil {
			p.Close()
			return nil, err
		}
		if en.InputTemplate != "" {
			r, err := newRenderer(en.InputTemplate, spec, env)
			if err != nil {
				p.Close()
				return nil, fmt.Errorf("enrichment.inputTemplate: %w", err)
			}
			stages = append(stages, stage.Transform(r))
		}
		stages = append(stages, stage.Enrich(e, obs))
	}
	if spec.InputTemplate != "" {
		r, err := newRenderer(spec.InputTemplate, spec, env)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("inputTemplate: %w", err)
		}
		stages = append(stages, stage.Transform(r))
	}
	stages = append(stages, stage.Observe(obs))
	p.Handler = batch.Chain(tgt.Deliver, stages...)
	return p, nil
}

// Close closes the target and the destination.
func (p *Pipeline) Close() error {
	err := p.target.Close()
	if p.dest != nil {
		err = errors.Join(err, p.dest.Close())
	}
	return err
}

// destinationTimeout bounds one hand-off to an HTTP destination.
const destinationTimeout = 30 * time.Second

func openDestination(raw string, spec pipe.Spec, env Env) (stage.Destination, error) {
	d, err := pipe.ParseDestination(raw)
	if err != nil {
		return nil, fmt.Errorf("onFailure.destination %q: %w", raw, err)
	}
	switch d.Scheme {
	case pipe.DestinationFile:
		return destination.NewFile(d.Path, env.Meta)
	case pipe.DestinationHTTP:
		client := env.Target.HTTPClient
		if client == nil {
			client = &http.Client{Transport: target.DefaultTransport}
		}
		return destination.NewHTTP(d.URL, client, env.Meta, destinationTimeout)
	case pipe.DestinationKafka:
		cluster := d.Cluster
		if cluster == spec.Cluster {
			cluster = ""
		}
		if env.Target.Kafka == nil {
			return nil, errors.New("this process cannot reach Kafka for a kafka:// failure destination")
		}
		brokers, opts, err := env.Target.Kafka(cluster)
		if err != nil {
			return nil, fmt.Errorf("failure destination %s: %w", raw, err)
		}
		return destination.NewKafka(d.Topic, append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...), env.Meta)
	}
	return nil, fmt.Errorf("onFailure.destination %q: unknown scheme", raw)
}

// RedriveRetries is how often a redrive retries a delivery before it
// stops: a redrive runs while someone waits for it.
const RedriveRetries = 2

// OpenRedrive builds what a redrive delivers through: the pipe's target
// with a few retries, and no destination (a record that fails again stays
// where it is, and the redrive stops to say so).
func OpenRedrive(ctx context.Context, spec pipe.Spec, env Env) (*Pipeline, error) {
	if k := spec.Target.Kafka; k != nil && k.Delivery == pipe.ExactlyOnce {
		// A redrive reads a failure destination, not the pipe's source:
		// there are no source offsets to commit with the records, so it
		// produces at least once.
		at := *k
		at.Delivery = pipe.AtLeastOnce
		spec.Target.Kafka = &at
	}
	tgt, obs, err := openTarget(ctx, spec, env)
	if err != nil {
		return nil, err
	}
	h := batch.Chain(tgt.Deliver,
		stage.Retry(stage.RetryPolicy{MaxRetries: RedriveRetries, InitialBackoff: env.InitialBackoff, MaxBackoff: env.MaxBackoff, GiveUp: true}, obs),
		stage.Observe(obs))
	return &Pipeline{Handler: h, target: tgt}, nil
}

// openTarget opens spec's target, with the observer the stages report to.
func openTarget(ctx context.Context, spec pipe.Spec, env Env) (target.Target, stage.Observer, error) {
	obs := env.Observer
	if obs == nil {
		obs = stage.Nop{}
	}
	tgt, err := target.Open(ctx, spec, env.Target)
	return tgt, obs, err
}

// matcher matches a Kafka record against set as package filter sees one.
// The record's header slice is rebuilt per call only when the record has
// headers; the rest is read in place.
func matcher(set *filter.Set) func(*kgo.Record) bool {
	return func(r *kgo.Record) bool {
		fr := filter.Record{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset, Timestamp: r.Timestamp.UnixMilli(),
			TimestampType: "CREATE_TIME", Key: r.Key, Value: r.Value}
		if r.Attrs.TimestampType() == 1 {
			fr.TimestampType = "LOG_APPEND_TIME"
		}
		if len(r.Headers) > 0 {
			fr.Headers = make([]filter.Header, len(r.Headers))
			for i, h := range r.Headers {
				fr.Headers[i] = filter.Header{Key: h.Key, Value: h.Value}
			}
		}
		return set.Match(&fr)
	}
}

// openEnrichment resolves the enrichment's endpoint.
func openEnrichment(en *pipe.Enrichment, spec pipe.Spec, env Env) (*target.Enrichment, error) {
	u := en.URL
	if en.Function != "" {
		if env.Target.FunctionURL == nil {
			return nil, fmt.Errorf("enrichment.function %q: this process has no function registry", en.Function)
		}
		var err error
		if u, err = env.Target.FunctionURL(en.Function); err != nil {
			return nil, fmt.Errorf("enrichment: %w", err)
		}
	}
	timeout := pipe.DefaultTargetTimeout
	if en.TimeoutSeconds > 0 {
		timeout = time.Duration(en.TimeoutSeconds * float64(time.Second))
	}
	return target.NewEnrichment(target.EnrichmentConfig{URL: u, Timeout: timeout, PayloadLimit: spec.PayloadLimitBytes,
		Source: env.Target.Source, Client: env.Target.HTTPClient})
}

// renderer renders a pipe's records, or an enrichment's answer, through
// an input template, with the pipe's reserved variables.
type renderer struct {
	t    *transform.Template
	vars transform.Vars
	src  event.Source
}

func newRenderer(tmpl string, spec pipe.Spec, env Env) (*renderer, error) {
	t, err := transform.Compile(tmpl)
	if err != nil {
		return nil, err
	}
	return &renderer{t: t, src: env.Target.Source, vars: transform.Vars{
		PipeName: spec.Name, PipeARN: pipe.ARN(spec.Name), SourceARN: env.Target.Source.EventSourceARN,
		TargetARN: target.Describe(spec, env.Target), IngestionTime: time.Now(),
	}}, nil
}

func (r *renderer) Apply(dst, ev []byte) ([]byte, error) {
	v := r.vars
	v.IngestionTime = time.Now()
	return r.t.Apply(dst, ev, v)
}

func (r *renderer) IsJSON() bool { return r.t.IsJSON() }

func (r *renderer) RecordEvent(dst []byte, b *batch.Batch, i int) []byte {
	rec := b.Records[i]
	tr := transform.Record{EventSource: r.src.EventSource, EventSourceARN: r.src.EventSourceARN, BootstrapServers: r.src.BootstrapServers,
		Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: rec.Timestamp.UnixMilli(), TimestampType: "CREATE_TIME",
		Key: rec.Key, Value: rec.Value}
	if rec.Attrs.TimestampType() == 1 {
		tr.TimestampType = "LOG_APPEND_TIME"
	}
	for _, h := range rec.Headers {
		tr.Headers = append(tr.Headers, transform.Header{Key: h.Key, Value: h.Value})
	}
	return transform.RecordEvent(dst, tr)
}
