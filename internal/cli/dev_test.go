package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/store"
)

// syncBuffer is written by the command's goroutine while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stopCheckEngine stands in for the engine: the real control plane over
// the store, and a Run that, once told to stop, checks what a real engine
// relies on while it finishes: the API no longer takes requests, and the
// store and the broker still work for its final commits and status.
type stopCheckEngine struct {
	*apitest.Service
	apiURL, kafkaAddr string // set by the test before it cancels
	stopErr           error  // what Run found; read after Run returned
	ran               chan struct{}

	stopping    chan struct{} // closed when Run is told to stop
	slowEntered chan struct{} // closed when a GET of pipe "slow" is in flight
	slowErr     error         // what that request found
}

func newStopCheckEngine(st store.Store) *stopCheckEngine {
	return &stopCheckEngine{
		Service:     &apitest.Service{Store: st},
		ran:         make(chan struct{}),
		stopping:    make(chan struct{}),
		slowEntered: make(chan struct{}),
	}
}

// slowRequestGrace is how long the in-flight request lasts. The check is
// that the engine is not stopped during it; a wrong order stops it at once.
const slowRequestGrace = 300 * time.Millisecond

// GetPipe of "slow" stays in flight for a while, to check that the engine
// is not stopped while the API still serves requests.
func (e *stopCheckEngine) GetPipe(ctx context.Context, name string) (pipe.Pipe, error) {
	if name != "slow" {
		return e.Service.GetPipe(ctx, name)
	}
	close(e.slowEntered)
	select {
	case <-e.stopping:
		e.slowErr = errors.New("the engine was stopped while an API request was in flight")
	case <-time.After(slowRequestGrace):
	}
	return pipe.Pipe{}, fmt.Errorf("slow: %w", pipe.ErrNotFound)
}

func (e *stopCheckEngine) Run(ctx context.Context) error {
	defer close(e.ran)
	<-ctx.Done()
	close(e.stopping)
	var errs []error
	if e.apiURL != "" {
		if resp, err := http.Get(e.apiURL + "/healthz"); err == nil {
			resp.Body.Close()
			errs = append(errs, errors.New("the API still answers while the engine stops"))
		}
	}
	if _, err := e.Store.ListPipes(context.Background()); err != nil {
		errs = append(errs, fmt.Errorf("store closed before the engine stopped: %w", err))
	}
	if e.kafkaAddr != "" {
		c, err := net.DialTimeout("tcp", e.kafkaAddr, 5*time.Second)
		if err != nil {
			errs = append(errs, fmt.Errorf("broker closed before the engine stopped: %w", err))
		} else {
			c.Close()
		}
	}
	e.stopErr = errors.Join(errs...)
	return nil
}

type started struct {
	engine *stopCheckEngine
	token  string // sent by inFlight; `serve` needs one
	cancel context.CancelFunc
	done   chan int
	stdout *syncBuffer
	stderr *syncBuffer
}

// startCmd runs a long-running command (dev or serve) until the test
// cancels it, as a signal would.
func startCmd(t *testing.T, args ...string) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	s := &started{cancel: cancel, done: make(chan int, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	engines := make(chan *stopCheckEngine, 1)
	env := Env{
		Stdout: s.stdout,
		Stderr: s.stderr,
		NewEngine: func(st store.Store, _ *slog.Logger, _ EngineOptions) (Engine, error) {
			e := newStopCheckEngine(st)
			engines <- e
			return e, nil
		},
	}
	go func() { s.done <- Run(ctx, args, env) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	select {
	case s.engine = <-engines:
	case code := <-s.done:
		t.Fatalf("%v exited %d before starting the engine: %s", args, code, s.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("%v did not start the engine", args)
	}
	return s
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop cancels the command and returns its exit code.
func (s *started) stop(t *testing.T) int {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("command did not stop")
		return -1
	}
}

// inFlight starts an API request that is still running when the test
// stops the command; the returned channel yields its error.
func (s *started) inFlight(t *testing.T, apiURL string) chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := api.NewClient(apiURL, nil).WithToken(s.token).GetPipe(context.Background(), "slow")
		done <- err
	}()
	select {
	case <-s.engine.slowEntered:
	case <-time.After(30 * time.Second):
		t.Fatal("the slow request never reached the engine")
	}
	return done
}

// checkStopOrder checks that the in-flight request was answered (the API
// drained before stopping) and what the engine found while stopping.
func (s *started) checkStopOrder(t *testing.T, slow chan error) {
	t.Helper()
	if err := <-slow; !errors.Is(err, pipe.ErrNotFound) {
		t.Errorf("in-flight request: %v, want its answer (not found)", err)
	}
	<-s.engine.ran
	if s.engine.slowErr != nil {
		t.Errorf("shutdown order: %v", s.engine.slowErr)
	}
	if s.engine.stopErr != nil {
		t.Errorf("shutdown order: %v", s.engine.stopErr)
	}
}

var (
	apiLine   = regexp.MustCompile(`API:\s+(http://\S+)`)
	kafkaLine = regexp.MustCompile(`Kafka broker:\s+(\S+)`)
)

func TestDevRunsAndStopsInOrder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	args := []string{"dev", "--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"}
	s := startCmd(t, args...)
	waitFor(t, "the banner", func() bool { return strings.Contains(s.stdout.String(), "Ctrl-C") })

	out := s.stdout.String()
	apiURL := apiLine.FindStringSubmatch(out)[1]
	kafka := kafkaLine.FindStringSubmatch(out)[1]
	for _, want := range []string{
		"export SLUICE_API=" + apiURL,
		"sluice sink --addr 127.0.0.1:9000",
		"sluice pipes create orders --bootstrap-servers " + kafka + " --topic orders --target http://127.0.0.1:9000/",
		"sluice produce --bootstrap-servers " + kafka + " --topic orders",
		"kcat -P -b " + kafka + " -t orders",
		dir,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}

	// A first start says it made a master key, as a note, not a warning.
	if logs := s.stderr.String(); !strings.Contains(logs, "created a new master key") || strings.Contains(logs, "level=WARN") {
		t.Errorf("a first dev start logs:\n%s\nwant the new master key at INFO and no warning", logs)
	}

	// A second dev on the same data dir is refused, saying who holds it.
	if r := run(t, nil, "dev", "--data-dir", dir, "--kafka-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0"); r.code != 1 ||
		!strings.Contains(r.stderr, "is in use by another sluice dev: held by another process (pid ") || !strings.Contains(r.stderr, "another --data-dir") {
		t.Errorf("second dev on %s: exit %d, stderr %q", dir, r.code, r.stderr)
	}

	// The pasted next step works against the running API.
	r := mustOK(t, run(t, map[string]string{"SLUICE_API": apiURL}, "pipes", "create", "demo", "--bootstrap-servers", kafka, "--topic", "demo", "--target", "http://127.0.0.1:9000/"))
	if !strings.Contains(r.stdout, `Created pipe "demo"`) {
		t.Errorf("create: %s", r.stdout)
	}
	if c, err := net.Dial("tcp", kafka); err != nil {
		t.Errorf("broker not reachable at %s: %v", kafka, err)
	} else {
		c.Close()
	}

	s.engine.apiURL, s.engine.kafkaAddr = apiURL, kafka
	slow := s.inFlight(t, apiURL)
	if code := s.stop(t); code != 0 {
		t.Fatalf("exit %d after stop: %s", code, s.stderr)
	}
	s.checkStopOrder(t, slow)
	if c, err := net.Dial("tcp", kafka); err == nil {
		c.Close()
		t.Errorf("broker still listening after exit")
	}

	// Restart on the same directory: the pipe is still there.
	s2 := startCmd(t, args...)
	waitFor(t, "the banner", func() bool { return strings.Contains(s2.stdout.String(), "Ctrl-C") })
	apiURL = apiLine.FindStringSubmatch(s2.stdout.String())[1]
	got, err := api.NewClient(apiURL, nil).GetPipe(t.Context(), "demo")
	if err != nil || got.Name != "demo" {
		t.Errorf("after restart: %+v, %v", got, err)
	}
	if code := s2.stop(t); code != 0 {
		t.Errorf("exit %d after second stop", code)
	}
}

func TestDevRefusesRemoteWithoutFlag(t *testing.T) {
	for _, args := range [][]string{
		{"dev", "--api-addr", "0.0.0.0:0", "--kafka-addr", "127.0.0.1:0"},
		{"dev", "--api-addr", "127.0.0.1:0", "--kafka-addr", "192.0.2.1:9092"},
	} {
		dir := filepath.Join(t.TempDir(), "dev")
		r := run(t, nil, append(args, "--data-dir", dir)...)
		if r.code != 1 || !strings.Contains(r.stderr, "not a loopback address") || !strings.Contains(r.stderr, "--allow-remote") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%v: created the data dir before refusing", args)
		}
	}
}

func TestDevBadFlags(t *testing.T) {
	cases := map[string][]string{
		`--api-addr "8080": use host:port`:         {"dev", "--api-addr", "8080"},
		`--kafka-addr "localhost:kafka": the port`: {"dev", "--kafka-addr", "localhost:kafka"},
		`--partitions 0: use 1 or more`:            {"dev", "--partitions", "0"},
	}
	for want, args := range cases {
		r := run(t, nil, args...)
		if r.code != 1 || !strings.Contains(r.stderr, "Error: "+want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", args, r.code, r.stderr, want)
		}
	}
}

func TestDevPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := run(t, nil, "dev", "--data-dir", t.TempDir(), "--api-addr", ln.Addr().String(), "--kafka-addr", "127.0.0.1:0")
	if r.code != 1 || !strings.Contains(r.stderr, "address already in use") || !strings.Contains(r.stderr, "--api-addr") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestServeConfigErrors(t *testing.T) {
	cases := []struct {
		body string
		want string
	}{
		{"apiAdr: 127.0.0.1:8080\n", `unknown field "apiAdr": the fields are apiAddr, dataDir, logFormat`},
		{"apiAddr: 8080\n", `apiAddr: "8080": use host:port`},
		{"apiAddr: [a, b]\n", "apiAddr: got a YAML array, want a string"},
		{"logFormat: xml\n", `logFormat: "xml": use text or json`},
		{"store: mysql://db/sluice\n", `store: "mysql://db/sluice": use a postgres:// URL`},
		{"apiAddr: nope\nlogFormat: xml\n", "apiAddr"},
		{"- a\n", "the file must be a YAML mapping"},
		{"apiAddr: [\n", "yaml: line"},
	}
	for _, c := range cases {
		path := writeConfig(t, c.body)
		r := run(t, nil, "serve", "--config", path)
		if r.code != 1 || !strings.Contains(r.stderr, "Error: config "+path+": ") || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", c.body, r.code, r.stderr, c.want)
		}
	}
	r := run(t, nil, "serve", "--config", filepath.Join(t.TempDir(), "missing.yaml"))
	if r.code != 1 || !strings.Contains(r.stderr, "Error: --config: open ") {
		t.Errorf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestServeRunsAndStops(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	path := writeConfig(t, fmt.Sprintf("apiAddr: 127.0.0.1:0\ndataDir: %s\nlogFormat: json\n", dataDir))
	token := createToken(t, "ci", "--config", path)
	s := startCmd(t, "serve", "--config", path)
	s.token = token
	re := regexp.MustCompile(`Serving the Sluice API at (http://\S+) `)
	waitFor(t, "the serving line", func() bool { return re.MatchString(s.stdout.String()) })
	apiURL := re.FindStringSubmatch(s.stdout.String())[1]

	c := api.NewClient(apiURL, nil).WithToken(token)
	if _, err := c.CreatePipe(t.Context(), pipe.Spec{Name: "p", BootstrapServers: []string{"127.0.0.1:9092"}, Topics: []string{"t"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://127.0.0.1:9000/"}}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s.stderr.String(), `"msg":"serving the Sluice API"`) {
		t.Errorf("logFormat json not applied: %s", s.stderr)
	}

	s.engine.apiURL = apiURL
	slow := s.inFlight(t, apiURL)
	if code := s.stop(t); code != 0 {
		t.Fatalf("exit %d: %s", code, s.stderr)
	}
	s.checkStopOrder(t, slow)
	if _, err := os.Stat(filepath.Join(dataDir, "sluice.db")); err != nil {
		t.Errorf("store not in dataDir: %v", err)
	}
}

// failingEngine's Run fails at once, as an engine that cannot start would.
type failingEngine struct{ *apitest.Service }

func (failingEngine) Run(context.Context) error { return errors.New("cannot reach the store") }

func TestServeEngineFailureExitsNonZero(t *testing.T) {
	path := writeConfig(t, fmt.Sprintf("apiAddr: 127.0.0.1:0\ndataDir: %s\n", t.TempDir()))
	var out, errOut bytes.Buffer
	code := Run(t.Context(), []string{"serve", "--config", path}, Env{
		Stdout: &out, Stderr: &errOut,
		NewEngine: func(st store.Store, _ *slog.Logger, _ EngineOptions) (Engine, error) {
			return failingEngine{&apitest.Service{Store: st}}, nil
		},
	})
	if code != 1 || !strings.Contains(errOut.String(), "Error: engine stopped unexpectedly: cannot reach the store") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}
