package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/store"
)

type result struct {
	stdout, stderr string
	code           int
}

// run executes the command in-process with the given environment.
func run(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(t.Context(), args, Env{
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(k string) string { return env[k] },
		NewEngine: func(st store.Store, _ *slog.Logger, _ EngineOptions) (Engine, error) {
			return newStopCheckEngine(st), nil
		},
	})
	return result{out.String(), errOut.String(), code}
}

// server starts the API over a real sqlite-backed service and returns a
// function running the CLI against it.
func server(t *testing.T) (func(args ...string) result, *apitest.Service) {
	srv, svc := apitest.NewServer(t)
	return func(args ...string) result {
		t.Helper()
		return run(t, nil, append([]string{"--api", srv.URL}, args...)...)
	}, svc
}

var createDemo = []string{"pipes", "create", "demo", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "demo", "--target", "http://127.0.0.1:9000/"}

func mustOK(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return r
}

func TestPipesTableOutput(t *testing.T) {
	sluice, svc := server(t)

	r := mustOK(t, sluice(createDemo...))
	for _, want := range []string{`Created pipe "demo".`, "State:", "Creating", "Batch size:", "100", "Batching window:", "500ms", "Target:", "http://127.0.0.1:9000/", "Revision:", "Starting position:", "TRIM_HORIZON"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("create output lacks %q:\n%s", want, r.stdout)
		}
	}

	mustOK(t, sluice("pipes", "create", "alpha", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "a", "--target", "http://127.0.0.1:9001/", "--batch-size", "7", "--batching-window", "2s"))
	p, err := svc.GetPipe(t.Context(), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Store.SetStatus(t.Context(), "demo", p.UUID, 0, pipe.Status{State: pipe.StateEnabled, LastProcessingResult: "PROBLEM: target\nanswered 500\x1b[31m", StateTransitionReason: "USER_INITIATED"}); err != nil {
		t.Fatal(err)
	}

	r = mustOK(t, sluice("pipes", "list"))
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("list has %d lines, want header and 2 rows:\n%s", len(lines), r.stdout)
	}
	if f := strings.Fields(lines[0]); strings.Join(f, " ") != "NAME STATE TOPICS TARGET BATCH LAST RESULT" {
		t.Errorf("header = %q", lines[0])
	}
	if f := strings.Fields(lines[1]); len(f) < 6 || f[0] != "alpha" || f[2] != "a" || f[3] != "http://127.0.0.1:9001/" || f[4] != "7/2s" {
		t.Errorf("row 1 = %q", lines[1])
	}
	if !strings.HasPrefix(lines[2], "demo") || !strings.Contains(lines[2], "Enabled") || !strings.Contains(lines[2], "PROBLEM: target answered 500[31m") {
		t.Errorf("row 2 = %q (want state, and the result on one line without control characters)", lines[2])
	}

	r = mustOK(t, sluice("pipes", "get", "demo"))
	for _, want := range []string{"UUID:", p.UUID, "Enabled", "State reason:", "USER_INITIATED", "Last processing result:", "PROBLEM: target answered 500", "Consumer group:", "Bootstrap servers:", "127.0.0.1:9092", "Topic:", "Target timeout:", "30s", "Payload limit:", "6 MiB", "Maximum retry attempts:", "unlimited"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("get output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = mustOK(t, sluice("pipes", "delete", "demo"))
	if r.stdout != "Deleted pipe \"demo\".\n" {
		t.Errorf("delete output = %q", r.stdout)
	}
	mustOK(t, sluice("pipes", "delete", "alpha"))
	r = mustOK(t, sluice("pipes", "list"))
	if r.stdout != "" || !strings.Contains(r.stderr, "No pipes yet") {
		t.Errorf("empty list: stdout %q stderr %q", r.stdout, r.stderr)
	}
}

func TestPipesJSONOutput(t *testing.T) {
	sluice, _ := server(t)

	r := mustOK(t, sluice(append([]string{"-o", "json"}, createDemo...)...))
	var created pipe.Pipe
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatalf("create -o json: %v\n%s", err, r.stdout)
	}
	if created.Name != "demo" || created.UUID == "" || created.Revision != 1 {
		t.Errorf("created = %+v", created)
	}
	if !strings.Contains(r.stdout, "\n  \"name\": \"demo\"") {
		t.Errorf("JSON is not indented:\n%s", r.stdout)
	}

	r = mustOK(t, sluice("pipes", "get", "demo", "--output", "json"))
	var got pipe.Pipe
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.UUID != created.UUID {
		t.Errorf("get -o json = %+v, %v", got, err)
	}

	r = mustOK(t, sluice("pipes", "list", "-o", "json"))
	var list struct{ Pipes []pipe.Pipe }
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil || len(list.Pipes) != 1 || list.Pipes[0].UUID != created.UUID {
		t.Errorf("list -o json = %+v, %v\n%s", list, err, r.stdout)
	}

	r = mustOK(t, sluice("pipes", "delete", "demo", "-o", "json"))
	var deleted struct{ Deleted struct{ Kind, Name string } }
	if err := json.Unmarshal([]byte(r.stdout), &deleted); err != nil || deleted.Deleted.Kind != "pipe" || deleted.Deleted.Name != "demo" {
		t.Errorf("delete -o json printed %q", r.stdout)
	}
	// Errors, too, are JSON on stdout with -o json; the exit code says so.
	r = sluice("pipes", "get", "nope", "-o", "json")
	var failed struct{ Error struct{ Message string } }
	if err := json.Unmarshal([]byte(r.stdout), &failed); r.code != 1 || err != nil || !strings.Contains(failed.Error.Message, `pipe "nope" not found`) {
		t.Errorf("get of a missing pipe -o json: exit %d, stdout %q", r.code, r.stdout)
	}
	r = sluice("pipes", "create", "bad", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "t", "--target", "ftp://x", "-o", "json")
	var invalid struct {
		Error struct {
			Fields []struct{ Field, Reason string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &invalid); r.code != 1 || err != nil || len(invalid.Error.Fields) == 0 {
		t.Errorf("an invalid create -o json: exit %d, stdout %q", r.code, r.stdout)
	}
	r = mustOK(t, sluice("pipes", "list", "-o", "json"))
	if strings.TrimSpace(r.stdout) != "{\n  \"pipes\": []\n}" {
		t.Errorf("empty list -o json = %q", r.stdout)
	}
}

// Flags not given must not reach the spec, so that the server's defaults
// apply; flags given must land in their fields, converted.
func TestCreateFlagsToSpec(t *testing.T) {
	sluice, _ := server(t)

	r := mustOK(t, sluice(append([]string{"-o", "json"}, createDemo...)...))
	var def pipe.Pipe
	if err := json.Unmarshal([]byte(r.stdout), &def); err != nil {
		t.Fatal(err)
	}
	want := pipe.Spec{Name: "demo", UUID: def.UUID, BootstrapServers: []string{"127.0.0.1:9092"}, Topics: []string{"demo"}, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://127.0.0.1:9000/"}}}.Normalize()
	if got, _ := json.Marshal(def.Spec); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("defaults:\n got %s\nwant %s", got, must(json.Marshal(want)))
	}

	r = mustOK(t, sluice("-o", "json", "pipes", "create", "full",
		"--bootstrap-servers", "b-1:9092, b-2:9092", "--topic", "orders", "--target", "https://hooks.example.com/x",
		"--batch-size", "500", "--batching-window", "2500ms", "--starting-position-timestamp", "2025-01-02T03:04:05Z",
		"--consumer-group-id", "g1", "--target-timeout", "1m30s", "--payload-limit", "1048576",
		"--maximum-retry-attempts", "3", "--maximum-record-age", "3600", "--disabled"))
	var full pipe.Pipe
	if err := json.Unmarshal([]byte(r.stdout), &full); err != nil {
		t.Fatal(err)
	}
	s := full.Spec
	checks := []struct {
		name      string
		got, want any
	}{
		{"bootstrap", strings.Join(s.BootstrapServers, ","), "b-1:9092,b-2:9092"},
		{"batch", s.BatchSize, 500},
		{"window", *s.MaximumBatchingWindowInSeconds, 2.5},
		{"position", s.StartingPosition, pipe.AtTimestamp},
		{"timestamp", s.StartingPositionTimestamp.Format(time.RFC3339), "2025-01-02T03:04:05Z"},
		{"group", s.ConsumerGroupID, "g1"},
		{"timeout", s.Target.HTTP.TimeoutSeconds, 90.0},
		{"payload", s.PayloadLimitBytes, 1 << 20},
		{"retries", *s.Retry.MaximumRetryAttempts, 3},
		{"age", *s.Retry.MaximumRecordAgeInSeconds, 3600},
		{"enabled", s.IsEnabled(), false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestErrors(t *testing.T) {
	sluice, _ := server(t)
	mustOK(t, sluice(createDemo...))

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + closed.Addr().String()
	closed.Close()

	cases := []struct {
		name string
		res  result
		want []string
	}{
		{"not found", sluice("pipes", "get", "nope"), []string{`Error: pipe "nope" not found`}},
		{"delete not found", sluice("pipes", "delete", "nope"), []string{`Error: pipe "nope" not found`}},
		{"exists", sluice(createDemo...), []string{`Error: pipe "demo" already exists`}},
		{"invalid, as flags", sluice("pipes", "create", "bad name", "--batch-size", "20000", "--batching-window", "6m", "--bootstrap-servers", "localhost"),
			[]string{"Error: invalid pipe:", `  NAME: invalid value "bad name"`, `  --bootstrap-servers: invalid value "localhost": use host:port`, "  --topic: required", "  --batch-size: invalid value 20000: use 1–10000", "  --batching-window: invalid value 6m0s: use 0–300 seconds", "  --target: required"}},
		{"missing name", sluice("pipes", "create", "--topic", "x"), []string{"Error: missing the pipe's NAME: sluice pipes create NAME"}},
		{"two names", sluice("pipes", "get", "a", "b"), []string{"Error: want one pipe NAME, got 2 arguments"}},
		{"window without unit", sluice(append(createDemo[:3:3], "--batching-window", "5")...), []string{`Error: --batching-window "5": give a unit, e.g. 500ms or 2s`}},
		{"bad window", sluice(append(createDemo[:3:3], "--batching-window", "soon")...), []string{`Error: --batching-window "soon": not a duration`}},
		{"bad timeout", sluice(append(createDemo[:3:3], "--target-timeout", "x")...), []string{`Error: --target-timeout "x": not a duration`}},
		{"bad timestamp", sluice(append(createDemo[:3:3], "--starting-position-timestamp", "yesterday")...), []string{`Error: --starting-position-timestamp "yesterday": not an RFC 3339 time`}},
		{"zero batch", sluice(append(createDemo[:3:3], "--batch-size", "0")...), []string{"Error: --batch-size 0: use 1–10000"}},
		{"bad int", sluice(append(createDemo[:3:3], "--batch-size", "many")...), []string{`Error: --batch-size "many": want a whole number`, "Run 'sluice pipes create --help' for usage"}},
		{"bad output", sluice("-o", "xml", "pipes", "list"), []string{`Error: --output "xml": use table, json or yaml`}},
		{"yaml output of a write", sluice("-o", "yaml", "pipes", "delete", "demo"), []string{"Error: --output yaml: only 'sluice pipes get' and 'sluice pipes list' print YAML", "use table or json with 'sluice pipes delete'"}},
		{"bad log level", sluice("--log-level", "loud", "pipes", "list"), []string{`Error: --log-level "loud": use debug, info, warn or error`}},
		{"bad api", run(t, nil, "--api", "127.0.0.1:8080", "pipes", "list"), []string{`Error: --api "127.0.0.1:8080": use an http:// or https:// URL`}},
		{"bad env api", run(t, map[string]string{"SLUICE_API": "localhost"}, "pipes", "list"), []string{`Error: SLUICE_API "localhost": use an http:// or https:// URL`}},
		{"unreachable", run(t, nil, "--api", deadURL, "pipes", "list"), []string{"Error: the Sluice API at " + deadURL + " is not reachable (connection refused)", "sluice dev", "--api", "SLUICE_API"}},
		{"unknown command", sluice("pipes", "frobnicate"), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.res.code != 1 {
				t.Errorf("exit code %d, want 1", c.res.code)
			}
			if c.res.stdout != "" && c.name != "unknown command" {
				t.Errorf("stdout = %q, want nothing", c.res.stdout)
			}
			for _, w := range c.want {
				if !strings.Contains(c.res.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, c.res.stderr)
				}
			}
		})
	}
}

func TestAPIFromEnv(t *testing.T) {
	srv, _ := apitest.NewServer(t)
	r := mustOK(t, run(t, map[string]string{"SLUICE_API": srv.URL}, "pipes", "list", "-o", "json"))
	if !strings.Contains(r.stdout, `"pipes"`) {
		t.Errorf("stdout = %q", r.stdout)
	}
	// The flag wins over the environment.
	r = run(t, map[string]string{"SLUICE_API": "http://127.0.0.1:1"}, "--api", srv.URL, "pipes", "list")
	mustOK(t, r)
}

func TestVersion(t *testing.T) {
	r := mustOK(t, run(t, nil, "version"))
	if !strings.HasPrefix(r.stdout, "sluice dev (go") {
		t.Errorf("version = %q", r.stdout)
	}
	old := Version
	Version = "v1.2.3"
	defer func() { Version = old }()
	r = mustOK(t, run(t, nil, "version", "-o", "json"))
	var v struct{ Version string }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Version != "v1.2.3" {
		t.Errorf("version -o json = %q", r.stdout)
	}
}

// A canceled context must not leave anything behind for client commands.
func TestClientCommandHonoursContext(t *testing.T) {
	srv, _ := apitest.NewServer(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errOut bytes.Buffer
	code := Run(ctx, []string{"--api", srv.URL, "pipes", "list"}, Env{Stdout: &out, Stderr: &errOut})
	if code != 1 || !strings.Contains(errOut.String(), "context canceled") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}

func TestFunctions(t *testing.T) {
	sluice, _ := server(t)
	mustOK(t, sluice("functions", "set", "billing", "--url", "http://127.0.0.1:9100/"))
	if r := mustOK(t, sluice("functions", "list")); !strings.Contains(r.stdout, "billing") || !strings.Contains(r.stdout, "http://127.0.0.1:9100/") {
		t.Fatalf("list printed %q", r.stdout)
	}
	mustOK(t, sluice("pipes", "create", "p", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "t", "--target", "http://127.0.0.1:9000/"))
	if r := sluice("functions", "set", "bad", "--url", "ftp://x"); r.code == 0 || !strings.Contains(r.stderr, "url") {
		t.Fatalf("bad url: %d %q", r.code, r.stderr)
	}
	if r := sluice("functions", "get", "nope"); r.code == 0 || !strings.Contains(r.stderr, "sluice functions set nope") {
		t.Fatalf("missing: %d %q", r.code, r.stderr)
	}
	mustOK(t, sluice("functions", "delete", "billing"))
}

func TestPipesTargetAFunction(t *testing.T) {
	sluice, _ := server(t)
	mustOK(t, sluice("functions", "set", "billing", "--url", "http://127.0.0.1:9100/"))
	r := mustOK(t, sluice("pipes", "create", "p", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "t", "--function", "billing"))
	if !strings.Contains(r.stdout, "function billing") {
		t.Fatalf("create printed %q", r.stdout)
	}
	if r := sluice("functions", "delete", "billing"); r.code == 0 || !strings.Contains(r.stderr, `"p"`) && !strings.Contains(r.stderr, "[p]") {
		t.Fatalf("deleting a function in use: %d %q", r.code, r.stderr)
	}
	r = mustOK(t, sluice("pipes", "update", "p", "--target", "http://127.0.0.1:9000/", "-o", "json"))
	var p pipe.Pipe
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.Target.HTTP.URL != "http://127.0.0.1:9000/" || p.Target.HTTP.Function != "" {
		t.Fatalf("after --target: %+v %v", p.Target, err)
	}
	r = mustOK(t, sluice("pipes", "update", "p", "--function", "billing", "-o", "json"))
	p = pipe.Pipe{}
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || p.Target.HTTP.URL != "" || p.Target.HTTP.Function != "billing" {
		t.Fatalf("after --function: %+v %v", p.Target, err)
	}
	if r := sluice("pipes", "create", "q", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "t", "--function", "billing", "--target", "http://x/"); r.code == 0 || !strings.Contains(r.stderr, "--function") {
		t.Fatalf("both --target and --function: %d %q", r.code, r.stderr)
	}
}
