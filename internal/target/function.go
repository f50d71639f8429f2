package target

import (
	"context"
	"errors"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// The function kind: the pipe's target.function section, a handler Sluice
// hosts. Each batch is one invocation through the same core as the lambda
// kind (invoke.go).
func init() {
	Register(Kind{Name: pipe.KindFunction, Key: functionKey, Describe: describeFunction, Open: openFunction})
}

func describeFunction(spec pipe.Spec, _ Env) string {
	return "hosted function " + spec.Target.Function.Name
}

// functionKey is empty: the target looks the function up at each
// invocation, so a changed handler takes the next batch without a
// restart of the pipe.
func functionKey(pipe.Spec, Env) string { return "" }

func openFunction(_ context.Context, spec pipe.Spec, env Env) (Target, error) {
	t := spec.Target.Function
	if env.Hosted == nil || env.Encoder == nil {
		return nil, errors.New("target: Hosted and Encoder are required")
	}
	if _, err := env.Hosted(t.Name); err != nil {
		return nil, err
	}
	var timeout time.Duration
	if t.TimeoutSeconds > 0 {
		timeout = time.Duration(t.TimeoutSeconds * float64(time.Second))
	}
	return &invokeTarget{
		name:    t.Name,
		inv:     hostedInvoker{name: t.Name, lookup: env.Hosted, timeout: timeout},
		enc:     env.Encoder,
		limit:   min(spec.PayloadLimitBytes, pipe.LambdaRequestLimitBytes),
		partial: t.ReportBatchItemFailures,
	}, nil
}

// hostedInvoker invokes the function the name has at each call.
type hostedInvoker struct {
	name    string
	lookup  func(string) (Hosted, error)
	timeout time.Duration // the section's; 0 is the function's own
}

func (h hostedInvoker) Invoke(ctx context.Context, payload []byte) (Invocation, error) {
	f, err := h.lookup(h.name)
	if err != nil {
		return Invocation{}, &InvokeError{Problem: err.Error()}
	}
	// The function's timeout bounds the run; a shorter one of the
	// section's bounds the whole call, waiting for a process included.
	if h.timeout > 0 && h.timeout < f.Timeout() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.timeout)
		defer cancel()
	}
	return f.Invoke(ctx, payload)
}
