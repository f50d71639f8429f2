package host

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/target"
)

// handlerPath is the aws-lambda-go test handler, built once.
var handlerPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "host-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	handlerPath = filepath.Join(dir, "handler")
	if out, err := exec.Command("go", "build", "-o", handlerPath, "./testhandler").CombinedOutput(); err != nil {
		// hosttest.Build needs a testing.TB, which TestMain has not.
		fmt.Fprintf(os.Stderr, "build the test handler: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// kafkaEvent is a reference Kafka event of one partition's records with
// the given values (offsets from 0), keys "k<offset>" and a header.
func kafkaEvent(values ...string) []byte {
	var recs []map[string]any
	for i, v := range values {
		recs = append(recs, map[string]any{
			"topic": "orders", "partition": 0, "offset": i, "timestamp": 1700000000000, "timestampType": "CREATE_TIME",
			"key":     base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("k%d", i))),
			"value":   base64.StdEncoding.EncodeToString([]byte(v)),
			"headers": []map[string][]int{{"trace": {104, -61, -85}}}, // "hë" as signed bytes
		})
	}
	b, _ := json.Marshal(map[string]any{"eventSource": "SelfManagedKafka", "records": map[string]any{"orders-0": recs}})
	return b
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type counts struct {
	mu                                  sync.Mutex
	invoked, failed, cold, restartCount int
}

func (c *counts) Invoked(_ string, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invoked++
	if failed {
		c.failed++
	}
}
func (c *counts) ColdStart(string) { c.mu.Lock(); c.cold++; c.mu.Unlock() }
func (c *counts) Restarted(string) { c.mu.Lock(); c.restartCount++; c.mu.Unlock() }

func newFunction(t *testing.T, cfg Config) (*Function, *logBuffer, *counts) {
	t.Helper()
	logs := &logBuffer{}
	obs := &counts{}
	cfg.Name = "orders-handler"
	cfg.Path = handlerPath
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	cfg.Observe = obs
	f, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, logs, obs
}

func invoke(t *testing.T, f *Function, payload []byte) target.Invocation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inv, err := f.Invoke(ctx, payload)
	if err != nil {
		t.Fatalf("invoke: %v", err)
	}
	return inv
}

func errorOf(t *testing.T, f *Function, inv target.Invocation) *target.FunctionError {
	t.Helper()
	if inv.FunctionError == "" {
		t.Fatalf("the invocation succeeded (%s), want a function error", inv.Payload)
	}
	return target.NewFunctionError(f.Name(), inv)
}

func TestHostedHandlerDecodesTheEventAndAnswers(t *testing.T) {
	out := filepath.Join(t.TempDir(), "seen.jsonl")
	f, logs, obs := newFunction(t, Config{Env: map[string]string{"TESTHANDLER_OUT": out}})
	inv := invoke(t, f, kafkaEvent("a", "fail", "c"))
	if inv.FunctionError != "" {
		t.Fatalf("function error %s: %s", inv.FunctionError, inv.Payload)
	}
	var resp target.PartialResponse
	if err := json.Unmarshal(inv.Payload, &resp); err != nil {
		t.Fatalf("answer %s: %v", inv.Payload, err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier.Partition != "orders-0" || resp.BatchItemFailures[0].ItemIdentifier.Offset != "1" {
		t.Fatalf("batchItemFailures %+v, want orders-0 offset 1", resp.BatchItemFailures)
	}

	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 {
		t.Fatalf("the handler saw %d records, want 3:\n%s", len(lines), data)
	}
	var first struct {
		RequestID, Function, Key, Value string
		Deadline                        bool
		Headers                         map[string]string
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if first.Function != "orders-handler" || first.Key != "k0" || first.Value != "a" || first.Headers["trace"] != "hë" || !first.Deadline || len(first.RequestID) != 36 {
		t.Fatalf("the handler saw %+v", first)
	}
	// Output comes through a pipe: it may reach the log after the answer.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "request_id="+first.RequestID) ||
		!strings.Contains(logs.String(), `record orders-0 offset 0`); {
		if time.Now().After(deadline) {
			t.Fatalf("the handler's output is not in the log with its request id:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The process stays warm: a second invocation is no cold start.
	invoke(t, f, kafkaEvent("b"))
	if st := f.Status(); st.ColdStarts != 1 || st.Processes != 1 || st.Invocations != 2 || st.Errors != 0 {
		t.Fatalf("status %+v, want one warm process, 2 invocations", st)
	}
	if obs.cold != 1 || obs.invoked != 2 {
		t.Fatalf("observer: %+v", obs)
	}
}

func TestHostedHandlerErrorIsAFunctionError(t *testing.T) {
	f, _, _ := newFunction(t, Config{})
	fe := errorOf(t, f, invoke(t, f, kafkaEvent("error")))
	if fe.Type != "errorString" || fe.Message != "asked to fail" {
		t.Fatalf("function error %+v, want errorString: asked to fail", fe)
	}
	if st := f.Status(); st.Errors != 1 || st.Restarts != 0 || !strings.Contains(st.LastError, "asked to fail") {
		t.Fatalf("status %+v", st)
	}
	// An error does not cost the process.
	invoke(t, f, kafkaEvent("ok"))
	if st := f.Status(); st.ColdStarts != 1 {
		t.Fatalf("status %+v, want the same process", st)
	}
}

func TestHostedHandlerPanicRestartsTheProcess(t *testing.T) {
	f, _, obs := newFunction(t, Config{})
	fe := errorOf(t, f, invoke(t, f, kafkaEvent("panic")))
	if !strings.Contains(fe.Message, "asked to panic") {
		t.Fatalf("function error %+v, want the panic's message", fe)
	}
	if inv := invoke(t, f, kafkaEvent("ok")); inv.FunctionError != "" {
		t.Fatalf("after the panic: %s", inv.Payload)
	}
	if st := f.Status(); st.ColdStarts != 2 || st.Restarts != 1 {
		t.Fatalf("status %+v, want a second process started as a restart", st)
	}
	if obs.restartCount != 1 {
		t.Fatalf("observer: %+v", obs)
	}
}

func TestHostedHandlerCrashIsARuntimeExitError(t *testing.T) {
	f, _, _ := newFunction(t, Config{})
	fe := errorOf(t, f, invoke(t, f, kafkaEvent("exit")))
	if fe.Type != "Runtime.ExitError" || !strings.Contains(fe.Message, "exit status 3") {
		t.Fatalf("function error %+v, want Runtime.ExitError with the exit status", fe)
	}
	if inv := invoke(t, f, kafkaEvent("ok")); inv.FunctionError != "" {
		t.Fatalf("after the crash: %s", inv.Payload)
	}
}

func TestHostedHandlerTimeoutKillsIt(t *testing.T) {
	f, _, _ := newFunction(t, Config{Timeout: 500 * time.Millisecond})
	start := time.Now()
	fe := errorOf(t, f, invoke(t, f, kafkaEvent("sleep:20s")))
	if fe.Type != "Sandbox.Timedout" || !strings.Contains(fe.Message, "Task timed out after 0.50 seconds") {
		t.Fatalf("function error %+v", fe)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("the timed-out invocation took %s", d)
	}
	if inv := invoke(t, f, kafkaEvent("ok")); inv.FunctionError != "" {
		t.Fatalf("after the timeout: %s", inv.Payload)
	}
	if st := f.Status(); st.Restarts != 1 {
		t.Fatalf("status %+v, want one restart", st)
	}
}

func TestHostedHandlerInitErrorIsShown(t *testing.T) {
	f, _, _ := newFunction(t, Config{Env: map[string]string{"TESTHANDLER_INIT_ERROR": "1"}})
	fe := errorOf(t, f, invoke(t, f, kafkaEvent("a")))
	if fe.Type != "ConfigError" || !strings.Contains(fe.Message, "init failed: TESTHANDLER_INIT_ERROR is set") {
		t.Fatalf("function error %+v", fe)
	}
	if st := f.Status(); !strings.Contains(st.LastError, "init failed") {
		t.Fatalf("status %+v, want the init error as the last error", st)
	}
}

func TestHostedFunctionConcurrencyIsItsProcesses(t *testing.T) {
	f, _, _ := newFunction(t, Config{Concurrency: 2})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			invoke(t, f, kafkaEvent("sleep:1500ms"))
		}()
	}
	// Both processes busy: a third invocation that cannot wait is
	// throttled, and says so.
	deadline := time.Now().Add(10 * time.Second)
	for f.Status().Busy < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := f.Invoke(ctx, kafkaEvent("a"))
	var ie *target.InvokeError
	if !errors.As(err, &ie) || !ie.Throttled || ie.HTTPStatus() != 429 || !strings.Contains(ie.Problem, "--concurrency") {
		t.Fatalf("third invocation: %v, want a throttle naming --concurrency", err)
	}
	wg.Wait()
	if st := f.Status(); st.Processes != 2 || st.ColdStarts != 2 {
		t.Fatalf("status %+v, want two warm processes", st)
	}
}

func TestHostedHandlerMissingIsAStartError(t *testing.T) {
	f, err := New(Config{Name: "gone", Path: filepath.Join(t.TempDir(), "nope")})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = f.Invoke(context.Background(), kafkaEvent("a"))
	var ie *target.InvokeError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "does not exist") || !ie.TargetUnavailable() {
		t.Fatalf("invoke: %v, want a start error saying the handler does not exist", err)
	}
	if _, err := New(Config{Name: "rel", Path: "handler"}); err == nil {
		t.Fatal("a relative handler path was taken")
	}
}
