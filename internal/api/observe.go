package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
)

// Observability routes:
//
//	GET /metrics                    Prometheus text format, with WithMetrics (404 without)
//	GET /readyz                     200 "ok" when ready; 503 {"code":"NotReady","message":<reason>} otherwise.
//	                                Without WithReadiness, serving is being ready.
//	GET /v1/pipes/{name}/describe   200 observe.Description, with WithDescriber (404 without)
//
// /healthz stays liveness only: a process whose store is briefly
// unreachable must not be restarted for it, only taken out of rotation.

// CodeNotReady is the error code of a 503 from /readyz.
const CodeNotReady = "NotReady"

// Describer describes pipes; the engine is one.
type Describer interface {
	// Describe returns pipe.ErrNotFound (wrapped) for an unknown pipe.
	Describe(ctx context.Context, name string) (observe.Description, error)
}

// Option configures NewHandler.
type Option func(*observeOptions)

type observeOptions struct {
	// The services besides pipes, each adding its routes when set:
	// what a server offers is declared where it is built (WithFunctions,
	// WithClusters, WithRedriver), never guessed from the pipe service.
	functions pipe.FunctionService
	clusters  cluster.Service
	secrets   secret.Service
	redriver  Redriver
	invoker   FunctionInvoker // WithInvoker (invoke.go)
	awsLambda bool            // WithAWSLambda (awslambda.go)
	atomic    Atomic          // WithAtomic
	// The console's sources (console.go).
	history Historian
	peeker  FailurePeeker
	console http.Handler

	metrics   http.Handler
	ready     func(context.Context) error
	describer Describer
	// loopbackHosts is set by WithLoopbackHosts (browser.go).
	loopbackHosts bool
	// auth is set by WithAuth (auth.go); it lives here because Option
	// configures this struct. nil: no authentication.
	auth *authenticator
}

// Atomic runs fn with pipe and cluster services whose writes commit
// together or not at all (the engine, over a store transaction).
type Atomic interface {
	Atomic(ctx context.Context, fn func(pipes pipe.Service, clusters cluster.Service) error) error
}

// WithAtomic makes writes that touch several objects (a Lambda mapping
// and the cluster it owns) one transaction; without it they are made one
// by one, and undone by hand on failure.
func WithAtomic(a Atomic) Option { return func(o *observeOptions) { o.atomic = a } }

// WithFunctions serves the function routes (functions.go) from f, and lets
// the Lambda API resolve FunctionName to registered functions.
func WithFunctions(f pipe.FunctionService) Option { return func(o *observeOptions) { o.functions = f } }

// WithClusters serves the cluster and secret routes (clusters.go), and
// lets the Lambda API take EventSourceArn and SourceAccessConfigurations.
func WithClusters(c cluster.Service, s secret.Service) Option {
	return func(o *observeOptions) { o.clusters, o.secrets = c, s }
}

// WithRedriver serves POST /v1/pipes/{name}/redrive from r (redrive.go).
func WithRedriver(r Redriver) Option { return func(o *observeOptions) { o.redriver = r } }

// WithMetrics serves h at GET /metrics.
func WithMetrics(h http.Handler) Option { return func(o *observeOptions) { o.metrics = h } }

// WithReadiness makes GET /readyz answer 503 with ready's error while it
// returns one. The error's message is the reason shown, so it should say
// what is missing rather than how it failed internally.
func WithReadiness(ready func(context.Context) error) Option {
	return func(o *observeOptions) { o.ready = ready }
}

// WithDescriber serves GET /v1/pipes/{name}/describe from d.
func WithDescriber(d Describer) Option { return func(o *observeOptions) { o.describer = d } }

func (h *handler) registerObserve(mux *http.ServeMux) {
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("/readyz", methodNotAllowed("GET"))
	if h.obs.metrics != nil {
		mux.Handle("GET /metrics", h.obs.metrics)
		mux.HandleFunc("/metrics", methodNotAllowed("GET"))
	}
	if h.obs.describer != nil {
		mux.HandleFunc("GET /v1/pipes/{name}/describe", h.describePipe)
		mux.HandleFunc("/v1/pipes/{name}/describe", methodNotAllowed("GET"))
	}
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	if h.obs.ready != nil {
		if err := h.obs.ready(r.Context()); err != nil {
			h.log.DebugContext(r.Context(), "not ready", "err", err)
			writeError(w, http.StatusServiceUnavailable, errorBody{Code: CodeNotReady, Message: err.Error()})
			return
		}
	}
	h.healthz(w, r)
}

func (h *handler) describePipe(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d, err := h.obs.describer.Describe(r.Context(), name)
	if err != nil {
		h.serviceError(w, r, err, name)
		return
	}
	h.writeJSON(w, r, http.StatusOK, d)
}

// Describe returns the named pipe's description: its status, the latest
// problem, per-partition offsets and lag, and recent throughput.
func (c *Client) Describe(ctx context.Context, name string) (observe.Description, error) {
	if name == "" {
		return observe.Description{}, errors.New("describe pipe: empty name")
	}
	var d observe.Description
	err := c.do(ctx, http.MethodGet, "/v1/pipes/"+url.PathEscape(name)+"/describe", nil, http.StatusOK, &d)
	return d, err
}

var _ Describer = (*Client)(nil)
