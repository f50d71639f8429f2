package cli

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/store"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pipes.yaml")
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// revisions maps each pipe on the server to its revision, to check what a
// command changed.
func revisions(t *testing.T, svc *apitest.Service) map[string]int64 {
	t.Helper()
	ps, err := svc.ListPipes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, p := range ps {
		m[p.Name] = p.Revision
	}
	return m
}

func sameRevisions(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// What get -o yaml prints is a file apply takes as is and finds nothing to
// change in, whatever the pipe's settings; list -o yaml likewise for all.
func TestGetYAMLApplyRoundTrip(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	sluice := func(args ...string) result {
		t.Helper()
		return run(t, nil, append([]string{"--api", srv.URL}, args...)...)
	}
	mustOK(t, sluice(createDemo...))
	mustOK(t, sluice("pipes", "create", "full", "--bootstrap-servers", "b-1:9092,b-2:9092", "--topic", "orders", "--target", "https://hooks.example.com/x",
		"--batch-size", "500", "--batching-window", "2500ms", "--starting-position-timestamp", "2025-01-02T04:04:05+01:00",
		"--consumer-group-id", "g1", "--target-timeout", "1m30s", "--payload-limit", "1048576",
		"--maximum-retry-attempts", "3", "--maximum-record-age", "3600", "--disabled"))
	before := revisions(t, svc)

	r := mustOK(t, sluice("pipes", "get", "full", "-o", "yaml"))
	want := `name: full
bootstrapServers:
- b-1:9092
- b-2:9092
topics:
- orders
startingPosition: AT_TIMESTAMP
startingPositionTimestamp: "2025-01-02T04:04:05+01:00"
batchSize: 500
maximumBatchingWindowInSeconds: 2.5
consumerGroupId: g1
enabled: false
target:
  http:
    url: https://hooks.example.com/x
    timeoutSeconds: 90
payloadLimitBytes: 1048576
retry:
  maximumRetryAttempts: 3
  maximumRecordAgeInSeconds: 3600
format: lambda
ordering: PARTITION
minimumConcurrency: 1
maximumConcurrency: 200
`
	if r.stdout != want {
		t.Errorf("get -o yaml:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = mustOK(t, sluice("apply", "-f", writeFile(t, r.stdout)))
	if r.stdout != "pipe/full unchanged\n" {
		t.Errorf("apply of get -o yaml printed %q, want only unchanged", r.stdout)
	}

	// The default consumer group (the UUID) and the UUID are the server's,
	// not the user's: they are left out, so the file also re-creates the
	// pipe elsewhere.
	r = mustOK(t, sluice("pipes", "get", "demo", "-o", "yaml"))
	for _, no := range []string{"uuid", "consumerGroupId", "status", "revision", getPipe(t, svc, "demo").UUID} {
		if strings.Contains(r.stdout, no) {
			t.Errorf("get -o yaml shows %q:\n%s", no, r.stdout)
		}
	}

	r = mustOK(t, sluice("pipes", "list", "-o", "yaml"))
	if !strings.HasPrefix(r.stdout, "pipes:\n- name: demo\n") || !strings.Contains(r.stdout, "\n- name: full\n") {
		t.Errorf("list -o yaml:\n%s", r.stdout)
	}
	// Through standard input, with --prune: the whole state round-trips.
	var out, errOut bytes.Buffer
	code := Run(t.Context(), []string{"--api", srv.URL, "apply", "-f", "-", "--prune"}, Env{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader(r.stdout),
		NewEngine: func(store.Store, *slog.Logger, EngineOptions) (Engine, error) { return nil, nil }})
	if code != 0 || out.String() != "pipe/demo unchanged\npipe/full unchanged\n" {
		t.Errorf("apply -f - of list -o yaml: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	if after := revisions(t, svc); !sameRevisions(before, after) {
		t.Errorf("round trips changed revisions %v -> %v", before, after)
	}

	r = mustOK(t, sluice("pipes", "list", "-o", "yaml"))
	mustOK(t, sluice("pipes", "delete", "demo"))
	mustOK(t, sluice("pipes", "delete", "full"))
	if r := mustOK(t, sluice("pipes", "list", "-o", "yaml")); r.stdout != "pipes: []\n" {
		t.Errorf("empty list -o yaml = %q", r.stdout)
	}
	// A backup re-creates the pipes as they were.
	if r := mustOK(t, sluice("apply", "-f", writeFile(t, r.stdout))); r.stdout != "pipe/demo created\npipe/full created\n" {
		t.Errorf("restore printed %q", r.stdout)
	}
	if got := mustOK(t, sluice("pipes", "get", "full", "-o", "yaml")).stdout; got != want {
		t.Errorf("restored pipe:\n%s\nwant:\n%s", got, want)
	}
}

const (
	pipeA = `
  - name: a
    bootstrapServers: [127.0.0.1:9092]
    topics: [a]
    target: {http: {url: http://127.0.0.1:9000/}}`
	pipeB = `
  - name: b
    bootstrapServers: [127.0.0.1:9092]
    topics: [b]
    batchSize: 100
    target: {http: {url: http://127.0.0.1:9000/}}`
	pipeB500 = `
  - name: b
    bootstrapServers: [127.0.0.1:9092]
    topics: [b]
    batchSize: 500
    maximumBatchingWindowInSeconds: 2
    target: {http: {url: http://127.0.0.1:9001/}}`
	pipeC = `
  - name: c
    bootstrapServers: [127.0.0.1:9092]
    topics: [c]
    enabled: false
    target: {http: {url: http://127.0.0.1:9000/}}`
)

func TestApplyCreatesUpdatesPrunes(t *testing.T) {
	sluice, svc := server(t)

	r := mustOK(t, sluice("apply", "-f", writeFile(t, "pipes:"+pipeA+pipeB)))
	if r.stdout != "pipe/a created\npipe/b created\n" {
		t.Errorf("first apply printed %q", r.stdout)
	}
	r = mustOK(t, sluice("apply", "-f", writeFile(t, "pipes:"+pipeA+pipeB)))
	if r.stdout != "pipe/a unchanged\npipe/b unchanged\n" {
		t.Errorf("second apply printed %q, want only unchanged", r.stdout)
	}
	before := revisions(t, svc)

	// Without --prune, a pipe left out of the file stays.
	r = mustOK(t, sluice("apply", "-f", writeFile(t, "pipes:"+pipeB500+pipeC)))
	if r.stdout != "pipe/b updated (batchSize: 100 -> 500, maximumBatchingWindowInSeconds: 0.5 -> 2, target.http.url: http://127.0.0.1:9000/ -> http://127.0.0.1:9001/)\npipe/c created\n" {
		t.Errorf("update apply printed %q", r.stdout)
	}
	after := revisions(t, svc)
	if after["a"] != before["a"] || after["b"] != before["b"]+1 || after["c"] == 0 {
		t.Errorf("revisions %v -> %v", before, after)
	}
	if p := getPipe(t, svc, "b"); p.BatchSize != 500 || p.Status.State != pipe.StateUpdating {
		t.Errorf("b: batch %d, state %s", p.BatchSize, p.Status.State)
	}

	// A pipe disabled by hand is enabled again by a file that leaves
	// enabled out: the file declares the whole spec, defaults included.
	mustOK(t, sluice("pipes", "disable", "a"))
	r = mustOK(t, sluice("apply", "-f", writeFile(t, "pipes:"+pipeB500+pipeC+pipeA), "--prune"))
	if r.stdout != "pipe/b unchanged\npipe/c unchanged\npipe/a updated (enabled: false -> true)\n" {
		t.Errorf("apply printed %q", r.stdout)
	}

	r = mustOK(t, sluice("apply", "-f", writeFile(t, "pipes:"+pipeC), "--prune"))
	if r.stdout != "pipe/c unchanged\npipe/a deleted\npipe/b deleted\n" {
		t.Errorf("prune printed %q", r.stdout)
	}
	if got := revisions(t, svc); len(got) != 1 || got["c"] == 0 {
		t.Errorf("after prune the server has %v, want only c", got)
	}
	r = mustOK(t, sluice("apply", "-f", writeFile(t, "pipes:"+pipeC), "--prune"))
	if r.stdout != "pipe/c unchanged\n" {
		t.Errorf("second prune printed %q", r.stdout)
	}

	// -o json reports the same, with the changes as fields.
	r = mustOK(t, sluice("-o", "json", "apply", "-f", writeFile(t, "pipes:"+pipeB+pipeC)))
	var res struct {
		DryRun  bool
		Results []applyResult
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res.Results) != 2 || res.Results[0].Action != "created" || res.Results[1].Action != "unchanged" {
		t.Errorf("apply -o json: %v\n%s", err, r.stdout)
	}
}

func TestApplyDryRunChangesNothing(t *testing.T) {
	sluice, svc := server(t)
	mustOK(t, sluice("apply", "-f", writeFile(t, "pipes:"+pipeA+pipeB)))
	before := revisions(t, svc)

	r := mustOK(t, sluice("apply", "--dry-run", "--prune", "-f", writeFile(t, "pipes:"+pipeB500+pipeC)))
	want := "pipe/b updated (batchSize: 100 -> 500, maximumBatchingWindowInSeconds: 0.5 -> 2, target.http.url: http://127.0.0.1:9000/ -> http://127.0.0.1:9001/) (dry run)\n" +
		"pipe/c created (dry run)\n" +
		"pipe/a deleted (dry run)\n"
	if r.stdout != want {
		t.Errorf("dry run printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	if after := revisions(t, svc); !sameRevisions(before, after) {
		t.Errorf("a dry run changed the server: %v -> %v", before, after)
	}
	if p := getPipe(t, svc, "b"); p.BatchSize != 100 {
		t.Errorf("a dry run changed b's batch size to %d", p.BatchSize)
	}
}

// A file with any problem changes nothing, and every problem is reported
// with the pipe and the field.
func TestApplyRefusesBadFiles(t *testing.T) {
	sluice, svc := server(t)
	mustOK(t, sluice("apply", "-f", writeFile(t, "pipes:"+pipeA)))
	before := revisions(t, svc)

	cases := []struct {
		name string
		file string
		args []string
		want []string
	}{
		{"invalid pipe among good ones", "pipes:" + pipeB500 + `
  - name: bad
    bootstrapServers: [localhost]
    topics: [t]
    batchSize: 20000
    target: {http: {url: ftp://x}}` + pipeC,
			nil, []string{"problems, so nothing was changed:",
				`pipe/bad (pipes[1]): bootstrapServers[0]: invalid value "localhost": use host:port`,
				"pipe/bad (pipes[1]): batchSize: invalid value 20000: use 1–10000",
				`pipe/bad (pipes[1]): target.http.url: invalid value "ftp://x"`}},
		{"unknown field", "pipes:" + pipeB + `
  - name: typo
    bootstrapServers: [127.0.0.1:9092]
    topics: [t]
    batchsize: 5
    target: {http: {url: http://x/, timeout: 5}}`, nil,
			[]string{`pipe/typo (pipes[1]): unknown field "batchsize" (did you mean "batchSize"? names are case-sensitive)`, `pipe/typo (pipes[1]): unknown field "target.http.timeout": the fields of target.http are url`}},
		{"unknown top-level field", "pipes: []\nversion: 1\n", nil, []string{`unknown field "version": a document is "pipes:" and "functions:" lists (either or both), or one pipe's fields`}},
		{"duplicate names", "pipes:" + pipeB + pipeC + pipeB500, nil,
			[]string{"pipe/b (pipes[2]): name: declared again, first at pipes[0]: a name declares one pipe; remove or rename one of them"}},
		{"create-only change", "pipes:" + strings.Replace(pipeA, "topics: [a]", "topics: [other]", 1) + pipeB, nil,
			[]string{"pipe/a: topics: invalid value other: can be set only when the pipe is created", "delete and re-create the pipe to change it"}},
		{"uuid", "pipes:" + pipeB + "\n    uuid: 123\n", nil, []string{"pipe/b (pipes[0]): uuid: Sluice assigns it when it creates the pipe: leave it out"}},
		{"wrong type", "name: b\nbootstrapServers: 127.0.0.1:9092\ntopics: [b]\ntarget: {http: {url: http://x/}}\n", nil,
			[]string{"pipe/b: bootstrapServers: got string, want a list"}},
		{"not yaml", "pipes: [\n", nil, []string{"not valid YAML: line 1"}},
		{"key twice", "name: b\nname: c\n", nil, []string{`not valid YAML`, `key "name" already set`}},
		{"not a mapping", "- name: a\n", nil, []string{`want a mapping: "pipes:" and "functions:" lists, or one pipe's fields`}},
		{"prune of nothing", "pipes: []\n", []string{"--prune"}, []string{"declares no pipes, and with --prune applying it would delete every pipe: refusing"}},
		// Functions are never pruned, so a file of them alone would prune
		// every pipe.
		{"prune of functions only", "functions:" + functionWeb, []string{"--prune"}, []string{"declares no pipes, and with --prune applying it would delete every pipe: refusing"}},
		{"invalid functions among good ones", "functions:" + functionWeb + `
  - name: both
    url: http://127.0.0.1:9100/
    handler: {path: /bin/h}
  - name: bad
    urls: http://x/
    handler: {concurrency: 5000, timeout: 5, env: {1X: a}}
  - name: ftp
    url: ftp://x/
  - name: typed
    handler: {path: /bin/h, env: [A=1]}
  - oops
pipes:` + pipeB, nil, []string{"9 problems, so nothing was changed:",
			`function/both (functions[1]): url: invalid value "http://127.0.0.1:9100/": give either url (an HTTP endpoint) or handler (a program Sluice runs), not both`,
			`function/bad (functions[2]): unknown field "handler.timeout": the fields of handler are path, env, concurrency, timeoutSeconds, memoryMB`,
			`function/bad (functions[2]): unknown field "urls": the fields of a function are name, url, handler`,
			`function/bad (functions[2]): handler.path: required: give the path of the handler's executable`,
			`function/bad (functions[2]): handler.concurrency: invalid value 5000: use 1–1000 processes`,
			`function/bad (functions[2]): handler.env.1X: invalid value "1X"`,
			`function/ftp (functions[3]): url: invalid value "ftp://x/": use an absolute http:// or https:// URL`,
			`function/typed (functions[4]): handler.env: got array, want a mapping`,
			`functions[5]: want a function's fields as a mapping, such as "name: enrich"`}},
		{"duplicate function names", "functions:" + functionWeb + functionWeb + "\npipes:" + pipeB, nil,
			[]string{"function/web (functions[1]): name: declared again, first at functions[0]: a name declares one function; remove or rename one of them"}},
		{"functions not a list", "functions: {name: web, url: http://x/}\n", nil, []string{`functions: want a list of functions, each starting with "- name: …"`}},
		{"functions in a pipe's fields", "name: b\nbootstrapServers: [127.0.0.1:9092]\ntopics: [b]\ntarget: {http: {url: http://x/}}\nFunctions: []\n", nil,
			[]string{`pipe/b: unknown field "Functions" (a list of functions goes under "functions:")`}},
		{"no file", "", []string{"-f", "/nonexistent/pipes.yaml"}, []string{"Error: --filename: open /nonexistent/pipes.yaml"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"apply"}, c.args...)
			if c.name != "no file" {
				args = append(args, "-f", writeFile(t, c.file))
			}
			r := sluice(args...)
			if r.code != 1 || r.stdout != "" {
				t.Errorf("exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if after := revisions(t, svc); !sameRevisions(before, after) {
				t.Errorf("a refused file changed the server: %v -> %v", before, after)
			}
			if fs := functionsOn(t, svc); len(fs) != 0 {
				t.Errorf("a refused file created functions %v", fs)
			}
		})
	}
}

// Several documents, each a list or a single pipe, make one declaration.
func TestApplyMultipleDocuments(t *testing.T) {
	sluice, svc := server(t)
	file := "# pipes of the team\n---\npipes:" + pipeA + "\n---\nname: single\nbootstrapServers: [127.0.0.1:9092]\ntopics: [s]\ntarget: {http: {url: http://127.0.0.1:9000/}}\n---\n"
	r := mustOK(t, sluice("apply", "-f", writeFile(t, file)))
	if r.stdout != "pipe/a created\npipe/single created\n" {
		t.Errorf("apply printed %q", r.stdout)
	}
	if got := revisions(t, svc); len(got) != 2 {
		t.Errorf("server has %v", got)
	}
	// JSON is YAML too.
	r = mustOK(t, sluice("apply", "-f", writeFile(t, `{"pipes":[{"name":"a","bootstrapServers":["127.0.0.1:9092"],"topics":["a"],"target":{"http":{"url":"http://127.0.0.1:9000/"}},"batchSize":3}]}`)))
	if r.stdout != "pipe/a updated (batchSize: 100 -> 3)\n" {
		t.Errorf("JSON apply printed %q", r.stdout)
	}
	// Problems say which document they are in.
	r = sluice("apply", "-f", writeFile(t, file+"name: single\nbootstrapServers: [127.0.0.1:9092]\ntopics: [s]\nbatchSize: 0.5\ntarget: {http: {url: http://x/}}\n"))
	if r.code != 1 || !strings.Contains(r.stderr, "pipe/single (document 3): batchSize: got number 0.5, want a whole number") ||
		!strings.Contains(r.stderr, "pipe/single (document 3): name: declared again, first at document 2") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

const (
	functionWeb = `
  - name: web
    url: http://127.0.0.1:9100/`
	// A handler beside the file, as a project keeps its built binary.
	functionLocal = `
  - name: local
    handler: {path: bin/handler, concurrency: 4, env: {MODE: test}}`
	pipeOrders = `
  - name: orders
    bootstrapServers: [127.0.0.1:9092]
    topics: [orders]
    target: {http: {function: web}}`
)

// functionsOn maps each function on the server to what apply compares
// and sets: its URL or handler.
func functionsOn(t *testing.T, svc *apitest.Service) map[string]string {
	t.Helper()
	fs, err := svc.ListFunctions(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, f := range fs {
		b, err := json.Marshal(struct {
			URL     string
			Handler *pipe.Handler
			At      time.Time
		}{f.URL, f.Handler, f.LastModified})
		if err != nil {
			t.Fatal(err)
		}
		m[f.Name] = string(b)
	}
	return m
}

func getFunction(t *testing.T, svc *apitest.Service, name string) pipe.Function {
	t.Helper()
	f, err := svc.GetFunction(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// writeFileIn writes name in dir, so that a test knows what the file's
// relative paths are relative to.
func writeFileIn(t *testing.T, dir, name, content string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// Functions are applied before the pipes that target them, compared on
// url and handler, and a relative handler path is the file's directory's.
func TestApplyFunctions(t *testing.T) {
	sluice, svc := server(t)
	dir := t.TempDir()
	file := writeFileIn(t, dir, "sluice.yaml", "functions:"+functionWeb+functionLocal+"\npipes:"+pipeOrders)

	r := mustOK(t, sluice("apply", "-f", file))
	if r.stdout != "function/web created\nfunction/local created\npipe/orders created\n" {
		t.Errorf("first apply printed %q", r.stdout)
	}
	// The test runs in the package's directory, not dir: the path is the
	// file's, whatever the working directory.
	h := getFunction(t, svc, "local").Handler
	if want := filepath.Join(dir, "bin", "handler"); h == nil || !filepath.IsAbs(h.Path) || h.Path != want || h.Concurrency != 4 || h.Env["MODE"] != "test" {
		t.Errorf("local's handler = %+v, want path %s", h, want)
	}
	if f := getFunction(t, svc, "web"); f.URL != "http://127.0.0.1:9100/" || f.Handler != nil {
		t.Errorf("web = %+v", f)
	}
	if p := getPipe(t, svc, "orders"); p.Target.FunctionName() != "web" {
		t.Errorf("orders targets %+v, want function web", p.Target)
	}
	fnsBefore, pipesBefore := functionsOn(t, svc), revisions(t, svc)

	r = mustOK(t, sluice("apply", "-f", file))
	if r.stdout != "function/web unchanged\nfunction/local unchanged\npipe/orders unchanged\n" {
		t.Errorf("second apply printed %q, want only unchanged", r.stdout)
	}
	// A handler field given as its default is what leaving it out means.
	r = mustOK(t, sluice("apply", "-f", writeFileIn(t, dir, "defaults.yaml", "functions:"+functionLocal[:len(functionLocal)-1]+", timeoutSeconds: 3, memoryMB: 128}")))
	if r.stdout != "function/local unchanged\n" {
		t.Errorf("apply of defaults printed %q", r.stdout)
	}
	if got := functionsOn(t, svc); !maps.Equal(got, fnsBefore) {
		t.Errorf("unchanged applies changed functions:\n%v\n->\n%v", fnsBefore, got)
	}

	// What 'functions list -o json' prints applies as is: its
	// lastModified and status are the server's.
	listed := mustOK(t, sluice("functions", "list", "-o", "json")).stdout
	if !strings.Contains(listed, "lastModified") {
		t.Fatalf("functions list -o json has no lastModified, so this proves nothing:\n%s", listed)
	}
	r = mustOK(t, sluice("apply", "-f", writeFile(t, listed)))
	if r.stdout != "function/local unchanged\nfunction/web unchanged\n" {
		t.Errorf("apply of functions list -o json printed %q", r.stdout)
	}

	changed := strings.Replace("functions:"+functionWeb+functionLocal+"\npipes:"+pipeOrders, ":9100/", ":9101/", 1)
	r = mustOK(t, sluice("apply", "-f", writeFileIn(t, dir, "changed.yaml", changed)))
	if r.stdout != "function/web updated (url: http://127.0.0.1:9100/ -> http://127.0.0.1:9101/)\nfunction/local unchanged\npipe/orders unchanged\n" {
		t.Errorf("update apply printed %q", r.stdout)
	}
	if f := getFunction(t, svc, "web"); f.URL != "http://127.0.0.1:9101/" {
		t.Errorf("web's url = %s after the update", f.URL)
	}
	if got := revisions(t, svc); !sameRevisions(got, pipesBefore) {
		t.Errorf("a function's update changed pipes %v -> %v", pipesBefore, got)
	}

	// -o json names a function's result by a "function" key.
	r = mustOK(t, sluice("-o", "json", "apply", "-f", writeFileIn(t, dir, "handler.yaml", "functions:"+strings.Replace(functionLocal, "concurrency: 4", "concurrency: 8", 1))))
	if want := `{"dryRun":false,"results":[{"function":"local","action":"updated","changes":[{"field":"handler.concurrency","from":"4","to":"8"}]}]}`; strings.Join(strings.Fields(r.stdout), "") != want {
		t.Errorf("apply -o json printed %s, want %s", r.stdout, want)
	}

	// Turning web into a hosted function would leave orders' HTTP target
	// without a URL: the server refuses it, so apply refuses the file.
	before := functionsOn(t, svc)
	r = sluice("apply", "-f", writeFileIn(t, dir, "kind.yaml", "functions:\n  - name: web\n    handler: {path: /bin/web}\n"))
	if r.code != 1 || !strings.Contains(r.stderr, "function/web: handler: would turn a url function into a hosted one, which the server refuses while pipes target it (orders)") {
		t.Errorf("kind change: exit %d, stderr %s", r.code, r.stderr)
	}
	if got := functionsOn(t, svc); !maps.Equal(got, before) {
		t.Errorf("a refused kind change changed functions:\n%v\n->\n%v", before, got)
	}
	// --prune deletes pipes only.
	r = mustOK(t, sluice("apply", "--prune", "-f", writeFileIn(t, dir, "prune.yaml", "pipes:"+pipeA)))
	if r.stdout != "pipe/a created\npipe/orders deleted\n" {
		t.Errorf("prune printed %q", r.stdout)
	}
	if got := functionsOn(t, svc); !maps.Equal(got, before) {
		t.Errorf("--prune changed functions:\n%v\n->\n%v", before, got)
	}
}

// From standard input, a relative handler path is the working
// directory's, as with 'functions set --handler'.
func TestApplyFunctionsFromStdin(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	var out, errOut bytes.Buffer
	code := Run(t.Context(), []string{"--api", srv.URL, "apply", "-f", "-"}, Env{Stdout: &out, Stderr: &errOut, Stdin: strings.NewReader("functions:" + functionLocal),
		NewEngine: func(store.Store, *slog.Logger, EngineOptions) (Engine, error) { return nil, nil }})
	if code != 0 || out.String() != "function/local created\n" {
		t.Fatalf("apply -f -: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if h := getFunction(t, svc, "local").Handler; h.Path != filepath.Join(wd, "bin", "handler") {
		t.Errorf("handler path %s, want it in the working directory %s", h.Path, wd)
	}
}

func TestApplyFunctionsDryRun(t *testing.T) {
	sluice, svc := server(t)
	dir := t.TempDir()
	file := writeFileIn(t, dir, "sluice.yaml", "functions:"+functionWeb+functionLocal+"\npipes:"+pipeOrders)

	r := mustOK(t, sluice("apply", "--dry-run", "-f", file))
	if r.stdout != "function/web created (dry run)\nfunction/local created (dry run)\npipe/orders created (dry run)\n" {
		t.Errorf("dry run printed %q", r.stdout)
	}
	if fs, ps := functionsOn(t, svc), revisions(t, svc); len(fs) != 0 || len(ps) != 0 {
		t.Errorf("a dry run created functions %v and pipes %v", fs, ps)
	}

	mustOK(t, sluice("apply", "-f", file))
	before := functionsOn(t, svc)
	changed := strings.Replace(strings.Replace("functions:"+functionWeb+functionLocal, ":9100/", ":9101/", 1), "MODE: test", "MODE: prod, DEBUG: '1'", 1)
	r = mustOK(t, sluice("apply", "--dry-run", "-f", writeFileIn(t, dir, "changed.yaml", changed)))
	want := "function/web updated (url: http://127.0.0.1:9100/ -> http://127.0.0.1:9101/) (dry run)\n" +
		"function/local updated (handler.env.DEBUG: <none> -> 1, handler.env.MODE: test -> prod) (dry run)\n"
	if r.stdout != want {
		t.Errorf("dry run printed:\n%s\nwant:\n%s", r.stdout, want)
	}
	if got := functionsOn(t, svc); !maps.Equal(got, before) {
		t.Errorf("a dry run changed functions:\n%v\n->\n%v", before, got)
	}
}
