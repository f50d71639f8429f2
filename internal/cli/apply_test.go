package cli

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
		{"unknown top-level field", "pipes: []\nversion: 1\n", nil, []string{`unknown field "version": a document is either "pipes:" with a list of pipes, or one pipe's fields`}},
		{"duplicate names", "pipes:" + pipeB + pipeC + pipeB500, nil,
			[]string{"pipe/b (pipes[2]): name: declared again, first at pipes[0]: a name declares one pipe; remove or rename one of them"}},
		{"create-only change", "pipes:" + strings.Replace(pipeA, "topics: [a]", "topics: [other]", 1) + pipeB, nil,
			[]string{"pipe/a: topics: invalid value other: can be set only when the pipe is created", "delete and re-create the pipe to change it"}},
		{"uuid", "pipes:" + pipeB + "\n    uuid: 123\n", nil, []string{"pipe/b (pipes[0]): uuid: Sluice assigns it when it creates the pipe: leave it out"}},
		{"wrong type", "name: b\nbootstrapServers: 127.0.0.1:9092\ntopics: [b]\ntarget: {http: {url: http://x/}}\n", nil,
			[]string{"pipe/b: bootstrapServers: got string, want a list"}},
		{"not yaml", "pipes: [\n", nil, []string{"not valid YAML: line 1"}},
		{"key twice", "name: b\nname: c\n", nil, []string{`not valid YAML`, `key "name" already set`}},
		{"not a mapping", "- name: a\n", nil, []string{`want a mapping: "pipes:" with a list of pipes, or one pipe's fields`}},
		{"prune of nothing", "pipes: []\n", []string{"--prune"}, []string{"declares no pipes, and with --prune applying it would delete every pipe: refusing"}},
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
