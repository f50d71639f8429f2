package target

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// Kind is one kind of target: the spec section it reads (pipe.Target's
// field of the same name) and how to open it. A kind registers itself from
// its own file's init, so adding one is that file, its spec section and
// its validation in package pipe, and the conformance test (see
// conformance_test.go).
type Kind struct {
	// Name is the spec section, e.g. pipe.KindHTTP.
	Name string
	// Key identifies everything the target is made of besides the spec
	// (a function's URL, the versions of the secrets it uses), without
	// opening a secret: the engine restarts a pipe whose key changed.
	Key func(spec pipe.Spec, env Env) string
	// Describe names where the target delivers, fit for logs and
	// failure records (no secrets: URLs redacted).
	Describe func(spec pipe.Spec, env Env) string
	// Open builds the target. Its error is shown as the pipe's PROBLEM,
	// so it names the fix.
	Open func(ctx context.Context, spec pipe.Spec, env Env) (Target, error)
}

// Env is what targets may use of the process they run in.
type Env struct {
	// Pipe is the pipe's name, for headers and logs.
	Pipe string
	// Encoder makes the body of a batch in the pipe's format; the source
	// cuts batches by its sizes.
	Encoder *event.Encoder
	// Source is where the pipe's records come from, for bodies in other
	// formats (an enrichment gets the Pipes event).
	Source event.Source
	// HTTPClient, when set, replaces the shared transport (tests).
	HTTPClient *http.Client
	// Secret returns the value a reference names, or an error that says
	// how to fix the reference.
	Secret func(ref pipe.SecretRef) ([]byte, error)
	// SecretVersion is a stamp that changes when the named secret does.
	SecretVersion func(name string) string
	// FunctionURL resolves a registered function's current URL, or says
	// how to register it.
	FunctionURL func(name string) (string, error)
	// Kafka is how to reach a cluster: "" is the pipe's own, any other
	// name a registered cluster (seed brokers, then auth and TLS options).
	Kafka func(cluster string) (brokers []string, opts []kgo.Opt, err error)
	// Produced is told of each Kafka produce's outcome: records
	// acknowledged and records failed; nil ignores it.
	Produced func(ok, failed int)
	// Hosted returns the named hosted function as it is now (a changed
	// function is a new one), or says how to register it.
	Hosted func(name string) (Hosted, error)
}

// Hosted is a function Sluice runs (package host): an Invoker with a
// timeout of its own.
type Hosted interface {
	Invoker
	Timeout() time.Duration
}

var (
	kindsMu sync.RWMutex
	kinds   = map[string]Kind{}
)

// Register adds a kind; a second kind of one name is a programming error.
func Register(k Kind) {
	kindsMu.Lock()
	defer kindsMu.Unlock()
	if _, dup := kinds[k.Name]; dup {
		panic("target: kind " + k.Name + " registered twice")
	}
	kinds[k.Name] = k
}

// Kinds lists the registered kinds' names, sorted.
func Kinds() []string {
	kindsMu.RLock()
	defer kindsMu.RUnlock()
	var out []string
	for n := range kinds {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func lookup(spec pipe.Spec) (Kind, error) {
	name := spec.Target.Kind()
	kindsMu.RLock()
	k, ok := kinds[name]
	kindsMu.RUnlock()
	if !ok {
		return Kind{}, fmt.Errorf("this build has no %q target kind; it has %v", name, Kinds())
	}
	return k, nil
}

// Open builds the target of spec by its kind.
func Open(ctx context.Context, spec pipe.Spec, env Env) (Target, error) {
	k, err := lookup(spec)
	if err != nil {
		return nil, err
	}
	return k.Open(ctx, spec, env)
}

// KeyOf is the kind's Key for spec, or "" for a kind this build lacks.
func KeyOf(spec pipe.Spec, env Env) string {
	k, err := lookup(spec)
	if err != nil || k.Key == nil {
		return ""
	}
	return k.Key(spec, env)
}

// Describe is the kind's Describe for spec.
func Describe(spec pipe.Spec, env Env) string {
	k, err := lookup(spec)
	if err != nil || k.Describe == nil {
		return spec.Target.Kind()
	}
	return k.Describe(spec, env)
}
