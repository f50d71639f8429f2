package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/sluice-dev/sluice/internal/host"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/target"
)

// hosts are the hosted functions this process runs, one host.Function per
// registered handler, made on first use (a pipe's target, an Invoke call)
// and replaced when its handler changes. Safe for concurrent use.
type hosts struct {
	e  *Engine
	mu sync.Mutex
	m  map[string]*hosted
}

type hosted struct {
	key string // the handler's settings it was made with
	fn  *host.Function
}

// handlerKey is what a process of h is made of: a change starts new
// processes.
func handlerKey(h *pipe.Handler) string {
	b, _ := json.Marshal(h)
	return string(b)
}

// get returns f's host, making or replacing it as f says.
func (hs *hosts) get(f pipe.Function) (*host.Function, error) {
	key := handlerKey(f.Handler)
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if h, ok := hs.m[f.Name]; ok {
		if h.key == key {
			return h.fn, nil
		}
		// Invocations in flight on the old processes end with them.
		go h.fn.Close()
		delete(hs.m, f.Name)
	}
	h := f.Handler.Normalized()
	fn, err := host.New(host.Config{
		Name: f.Name, Path: h.Path, Env: h.Env,
		Concurrency: h.Concurrency, Timeout: h.Timeout(), MemoryMB: h.MemoryMB,
		Logger:  hs.e.log,
		Observe: hs.e.obs.m.Functions(),
	})
	if err != nil {
		return nil, err
	}
	if hs.m == nil {
		hs.m = map[string]*hosted{}
	}
	hs.m[f.Name] = &hosted{key: key, fn: fn}
	return fn, nil
}

// lookup is the host of a function as get made it last.
func (hs *hosts) lookup(name string) (*host.Function, bool) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h, ok := hs.m[name]
	if !ok {
		return nil, false
	}
	return h.fn, true
}

// sync makes the hosts of funcs' handlers and stops those of functions
// gone or no longer hosted; it returns the errors of handlers it could
// not host, by function.
func (hs *hosts) sync(funcs []pipe.Function) map[string]error {
	keep := map[string]bool{}
	errs := map[string]error{}
	for _, f := range funcs {
		if f.Handler == nil {
			continue
		}
		keep[f.Name] = true
		if _, err := hs.get(f); err != nil {
			errs[f.Name] = err
		}
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for name, h := range hs.m {
		if !keep[name] {
			go h.fn.Close()
			delete(hs.m, name)
			hs.e.obs.m.Functions().DeleteFunction(name)
		}
	}
	return errs
}

// closeAll stops every process, and waits for them.
func (hs *hosts) closeAll() {
	hs.mu.Lock()
	m := hs.m
	hs.m = nil
	hs.mu.Unlock()
	for _, h := range m {
		h.fn.Close()
	}
}

// hostedEnv is target.Env.Hosted over these hosts: the function as the
// store had it at this reconcile, its processes as they are now.
func (hs *hosts) hostedEnv(funcs map[string]pipe.Function) func(string) (target.Hosted, error) {
	return func(name string) (target.Hosted, error) {
		f, ok := funcs[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("Function %q is not registered: register it with `sluice functions set %s --handler PATH`.", name, name)
		case f.Handler == nil:
			return nil, fmt.Errorf("Function %q is an HTTP endpoint, not a hosted handler: target it with target.http.function, or set it again with --handler.", name)
		}
		if fn, ok := hs.lookup(name); ok {
			return fn, nil
		}
		return hs.get(f)
	}
}

// InvokeFunction runs payload on the named function, synchronously, and
// returns its answer, as the Lambda Invoke API does: a hosted handler on
// one of its processes, an HTTP function by a POST of the payload to its
// URL (a non-2xx answer is a function error).
func (e *Engine) InvokeFunction(ctx context.Context, name string, payload []byte) (target.Invocation, error) {
	f, err := e.store.GetFunction(ctx, name)
	if err != nil {
		return target.Invocation{}, err
	}
	if f.Handler != nil {
		fn, err := e.hosts.get(f)
		if err != nil {
			return target.Invocation{}, err
		}
		return fn.Invoke(ctx, payload)
	}
	return e.invokeURL(ctx, f, payload)
}

// invokeURL posts payload to an HTTP function.
func (e *Engine) invokeURL(ctx context.Context, f pipe.Function, payload []byte) (target.Invocation, error) {
	ctx, cancel := context.WithTimeout(ctx, pipe.DefaultTargetTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL, bytes.NewReader(payload))
	if err != nil {
		return target.Invocation{}, &target.InvokeError{Problem: "function " + f.Name + ": cannot build the request", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	client := e.cfg.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return target.Invocation{}, &target.InvokeError{Problem: fmt.Sprintf("function %s: %s is unreachable", f.Name, target.RedactURL(f.URL)), Err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, host.ResponseLimit+1))
	if err != nil {
		return target.Invocation{}, &target.InvokeError{Problem: fmt.Sprintf("function %s: reading the answer", f.Name), Err: err}
	}
	switch {
	case len(body) > host.ResponseLimit:
		return target.Invocation{FunctionError: "Unhandled", Payload: host.ErrorDoc("Function.ResponseSizeTooLarge", "the answer is over 6 MiB")}, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		return target.Invocation{}, &target.InvokeError{Status: resp.StatusCode, Throttled: true, Problem: fmt.Sprintf("function %s answered 429", f.Name)}
	case resp.StatusCode/100 != 2:
		return target.Invocation{FunctionError: "Unhandled", Payload: host.ErrorDoc("HTTP"+resp.Status[:3], fmt.Sprintf("%s answered %s: %.200s", target.RedactURL(f.URL), resp.Status, body))}, nil
	}
	return target.Invocation{Payload: body}, nil
}

// functionStatus fills in a hosted function's status, if this process
// runs it.
func (e *Engine) functionStatus(f pipe.Function) pipe.Function {
	if f.Handler == nil {
		return f
	}
	st := pipe.FunctionStatus{}
	if fn, ok := e.hosts.lookup(f.Name); ok {
		st = fn.Status()
	}
	f.Status = &st
	return f
}
