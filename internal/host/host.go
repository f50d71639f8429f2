// Package host runs Lambda handlers as child processes and serves each the
// Lambda Runtime API (2018-06-01), so a handler built for the reference's
// runtime (aws-lambda-go's lambda.Start, a custom runtime's bootstrap)
// runs unchanged next to Sluice. A hosted function is a pool of process
// slots, as many as its concurrency: each slot owns one process and the
// loopback listener that process polls, and runs one invocation at a
// time, as a Lambda execution environment does. A process that crashes,
// times out or fails its init is killed and started again on the slot's
// next invocation.
package host

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/target"
)

// Defaults of a hosted function, the reference's.
const (
	DefaultConcurrency = 10
	DefaultTimeout     = 3 * time.Second
	DefaultMemoryMB    = 128
	// ResponseLimit is the largest answer a handler may give, as the
	// reference's synchronous invocations.
	ResponseLimit = 6 * 1024 * 1024
)

// FunctionARNPrefix names hosted functions in the runtime's
// Invoked-Function-Arn: a fixed region and account, as Sluice's Lambda
// API names its functions.
const FunctionARNPrefix = "arn:aws:lambda:sluice:000000000000:function:"

// Config is one hosted function.
type Config struct {
	Name string
	// Path is the handler's executable.
	Path string
	// Env is added to the handler's environment, over Sluice's own
	// (without Sluice's SLUICE_ settings).
	Env         map[string]string
	Concurrency int
	Timeout     time.Duration
	MemoryMB    int
	Logger      *slog.Logger
	// Observe, when set, is told of what the function does (metrics).
	Observe Observer
}

// Observer is told of a hosted function's events.
type Observer interface {
	Invoked(function string, failed bool)
	ColdStart(function string)
	Restarted(function string)
}

// Function is a hosted function: Invoke runs one payload on a free
// process. Safe for concurrent use.
type Function struct {
	cfg Config
	log *slog.Logger
	env []string // the handler's environment, but for the runtime API
	// free holds a token per slot not in use; idle is those slots, the
	// last used on top, so a warm process takes the next invocation
	// rather than a cold slot.
	free  chan struct{}
	slots []*slot

	invocations, errs, coldStarts, restarts atomic.Int64
	busy                                    atomic.Int32
	mu                                      sync.Mutex
	lastError                               string
	closed                                  bool
	idle                                    []*slot
}

// ErrClosed is an invocation of a function that was removed or changed.
var ErrClosed = errors.New("the function was removed or changed")

// New makes a hosted function; its processes start on first use.
func New(cfg Config) (*Function, error) {
	if !filepath.IsAbs(cfg.Path) {
		return nil, fmt.Errorf("function %s: handler %q: use an absolute path", cfg.Name, cfg.Path)
	}
	cfg.Concurrency = cmpOr(cfg.Concurrency, DefaultConcurrency)
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	cfg.MemoryMB = cmpOr(cfg.MemoryMB, DefaultMemoryMB)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Function{cfg: cfg, log: cfg.Logger.With("function", cfg.Name), free: make(chan struct{}, cfg.Concurrency)}
	f.env = handlerEnv(cfg)
	for i := range cfg.Concurrency {
		s := &slot{f: f, n: i}
		f.slots = append(f.slots, s)
		f.free <- struct{}{}
	}
	// Slot 0 on top.
	f.idle = slices.Clone(f.slots)
	slices.Reverse(f.idle)
	return f, nil
}

func cmpOr(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// handlerEnv is the environment every process of cfg gets, as the
// reference sets it, but for AWS_LAMBDA_RUNTIME_API (the slot's).
func handlerEnv(cfg Config) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		// Sluice's own settings (SLUICE_MASTER_KEY, SLUICE_TOKEN) are
		// credentials a handler has no business seeing; and the
		// reference's names are set below, not inherited.
		return strings.HasPrefix(kv, "SLUICE_") || strings.HasPrefix(kv, "AWS_LAMBDA_") || strings.HasPrefix(kv, "_HANDLER=") ||
			strings.HasPrefix(kv, "_LAMBDA_SERVER_PORT=")
	})
	env = append(env,
		"AWS_LAMBDA_FUNCTION_NAME="+cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(cfg.MemoryMB),
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/"+cfg.Name,
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"_HANDLER="+filepath.Base(cfg.Path),
		"LAMBDA_TASK_ROOT="+filepath.Dir(cfg.Path),
	)
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		env = append(env, k+"="+cfg.Env[k])
	}
	return env
}

// Name is the function's.
func (f *Function) Name() string { return f.cfg.Name }

// Timeout is the function's own bound on one invocation.
func (f *Function) Timeout() time.Duration { return f.cfg.Timeout }

// Invoke runs payload on a free process and returns the handler's answer.
// A handler's error, crash or timeout is an Invocation with FunctionError,
// as the reference answers; an error means no process could take it
// (every one busy until ctx ended, or the function closed).
func (f *Function) Invoke(ctx context.Context, payload []byte) (target.Invocation, error) {
	select {
	case <-f.free:
	case <-ctx.Done():
		return target.Invocation{}, &target.InvokeError{Throttled: true, Err: ctx.Err(),
			Problem: fmt.Sprintf("every one of function %s's %d processes was busy: raise its --concurrency or lower the pipe's", f.cfg.Name, f.cfg.Concurrency)}
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		f.free <- struct{}{}
		return target.Invocation{}, &target.InvokeError{Problem: "function " + f.cfg.Name, Err: ErrClosed}
	}
	s := f.idle[len(f.idle)-1]
	f.idle = f.idle[:len(f.idle)-1]
	f.mu.Unlock()
	f.busy.Add(1)
	inv, err := s.invoke(ctx, payload)
	f.busy.Add(-1)
	f.mu.Lock()
	f.idle = append(f.idle, s)
	f.mu.Unlock()
	f.free <- struct{}{}
	if err == nil {
		f.invocations.Add(1)
		if inv.FunctionError != "" {
			f.errs.Add(1)
			f.setLastError(target.NewFunctionError(f.cfg.Name, inv).Error())
		}
		if o := f.cfg.Observe; o != nil {
			o.Invoked(f.cfg.Name, inv.FunctionError != "")
		}
	}
	return inv, err
}

func (f *Function) setLastError(msg string) {
	f.mu.Lock()
	f.lastError = msg
	f.mu.Unlock()
}

// Status is what the function's processes are doing.
func (f *Function) Status() pipe.FunctionStatus {
	st := pipe.FunctionStatus{Busy: int(f.busy.Load()), Invocations: f.invocations.Load(), Errors: f.errs.Load(),
		ColdStarts: f.coldStarts.Load(), Restarts: f.restarts.Load()}
	for _, s := range f.slots {
		if s.running() {
			st.Processes++
		}
	}
	f.mu.Lock()
	st.LastError = f.lastError
	f.mu.Unlock()
	return st
}

// Close stops every process (an invocation in flight ends with the
// process) and their listeners, and waits for them.
func (f *Function) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	for _, s := range f.slots {
		s.stop()
	}
	return nil
}

// requestID is a fresh invocation id, shaped as the reference's (a UUID).
func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// traceID is an X-Ray style trace header for one invocation.
func traceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), h[:24], h[16:])
}

// ErrorDoc is the reference's error document: what a failed invocation
// answers and a runtime posts.
func ErrorDoc(typ, msg string) []byte {
	b, _ := json.Marshal(struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	}{typ, msg})
	return b
}
