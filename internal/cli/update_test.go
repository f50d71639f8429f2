package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/pipe"
)

func getPipe(t *testing.T, svc pipe.Service, name string) pipe.Pipe {
	t.Helper()
	p, err := svc.GetPipe(context.Background(), name)
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return p
}

// Only the flags given change; the rest of the spec, create-only fields
// included, stays as it was, and the revision moves on by one.
func TestPipesUpdate(t *testing.T) {
	sluice, svc := server(t)
	mustOK(t, sluice("pipes", "create", "demo", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "demo", "--target", "http://127.0.0.1:9000/",
		"--batch-size", "7", "--consumer-group-id", "g1", "--starting-position", "LATEST", "--maximum-retry-attempts", "3"))
	before := getPipe(t, svc, "demo")

	r := mustOK(t, sluice("pipes", "update", "demo", "--batch-size", "500", "--target-timeout", "10s", "--batching-window", "2s"))
	for _, want := range []string{`Updated pipe "demo" (batchSize: 7 -> 500, maximumBatchingWindowInSeconds: 0.5 -> 2, target.http.timeoutSeconds: 30 -> 10).`,
		"It is Updating: it restarts with the new settings in a moment", "Batch size:              500", "Revision:                2"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("update output lacks %q:\n%s", want, r.stdout)
		}
	}
	after := getPipe(t, svc, "demo")
	if after.Revision != before.Revision+1 || after.Status.State != pipe.StateUpdating {
		t.Errorf("revision %d -> %d, state %s; want +1 and Updating", before.Revision, after.Revision, after.Status.State)
	}
	want := before.Spec
	want.BatchSize = 500
	w, to := 2.0, 10.0
	want.MaximumBatchingWindowInSeconds, want.Target.HTTP.TimeoutSeconds = &w, to
	if cs := specDiff(want, after.Spec); len(cs) != 0 {
		t.Errorf("the spec differs from the old one plus the flags: %s", formatChanges(cs))
	}

	// -o json prints the updated pipe; --enabled=false disables.
	r = mustOK(t, sluice("-o", "json", "pipes", "update", "demo", "--target", "http://127.0.0.1:9001/", "--enabled=false", "--maximum-record-age", "-1"))
	var p pipe.Pipe
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("update -o json: %v\n%s", err, r.stdout)
	}
	if p.Target.HTTP.URL != "http://127.0.0.1:9001/" || p.IsEnabled() || p.Status.State != pipe.StateDisabling || p.Revision != 3 || p.BatchSize != 500 {
		t.Errorf("after the second update: %+v", p)
	}

	// The same values again change nothing and say so.
	r = mustOK(t, sluice("pipes", "update", "demo", "--batch-size", "500"))
	if r.stdout != "Pipe \"demo\" unchanged: it already has these settings.\n" {
		t.Errorf("no-op update printed %q", r.stdout)
	}
	if got := getPipe(t, svc, "demo").Revision; got != 3 {
		t.Errorf("a no-op update moved the revision to %d", got)
	}

	// The server's validation names the flag, as for create.
	r = sluice("pipes", "update", "demo", "--batch-size", "20000", "--target", "ftp://x")
	if r.code != 1 || !strings.Contains(r.stderr, "--batch-size: invalid value 20000") || !strings.Contains(r.stderr, `--target: invalid value "ftp://x"`) {
		t.Errorf("invalid update: exit %d, stderr %q", r.code, r.stderr)
	}
	r = sluice("pipes", "update", "nope", "--batch-size", "5")
	if r.code != 1 || !strings.Contains(r.stderr, `pipe "nope" not found`) {
		t.Errorf("update of a missing pipe: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestPipesUpdateRefusesCreateOnlyFlags(t *testing.T) {
	sluice, svc := server(t)
	mustOK(t, sluice(createDemo...))
	rev := getPipe(t, svc, "demo").Revision

	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--topic", "other"}, []string{"Error: --topic can be set only when the pipe is created", "delete the pipe and create it again"}},
		{[]string{"--batch-size", "5", "--bootstrap-servers", "b:9092", "--consumer-group-id", "g"},
			[]string{"--bootstrap-servers can be set only when the pipe is created", "--consumer-group-id can be set only when the pipe is created"}},
		{[]string{"--starting-position", "LATEST"}, []string{"--starting-position can be set only when the pipe is created"}},
		{[]string{"--starting-position-timestamp", "2025-01-02T03:04:05Z"}, []string{"--starting-position-timestamp can be set only when the pipe is created"}},
		{nil, []string{"Error: nothing to update: give at least one of --target, --function, --command, --key, --acks, --delivery, --batch-size"}},
		{[]string{"--batch-size", "0"}, []string{"Error: --batch-size 0: use 1–10000"}},
	}
	for _, c := range cases {
		r := sluice(append([]string{"pipes", "update", "demo"}, c.args...)...)
		if r.code != 1 || r.stdout != "" {
			t.Errorf("update %v: exit %d, stdout %q; want 1 and nothing", c.args, r.code, r.stdout)
		}
		for _, w := range c.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("update %v: stderr lacks %q:\n%s", c.args, w, r.stderr)
			}
		}
	}
	if got := getPipe(t, svc, "demo").Revision; got != rev {
		t.Errorf("refused updates moved the revision %d -> %d", rev, got)
	}
	// Hidden: the help lists only what update can change.
	r := mustOK(t, sluice("pipes", "update", "--help"))
	if strings.Contains(r.stdout, "--topic") || !strings.Contains(r.stdout, "--batch-size") {
		t.Errorf("update --help:\n%s", r.stdout)
	}
}

// racingService changes a pipe right after every read, as another user
// would between this CLI's read and its write.
type racingService struct{ *apitest.Service }

func (s racingService) bump(ctx context.Context, p pipe.Pipe) {
	spec := p.Spec
	spec.BatchSize = p.BatchSize%pipe.MaxBatchSize + 1
	if _, err := s.Service.UpdatePipe(ctx, spec, 0); err != nil {
		panic(err)
	}
}

func (s racingService) GetPipe(ctx context.Context, name string) (pipe.Pipe, error) {
	p, err := s.Service.GetPipe(ctx, name)
	if err == nil {
		s.bump(ctx, p)
	}
	return p, err
}

func (s racingService) ListPipes(ctx context.Context) ([]pipe.Pipe, error) {
	ps, err := s.Service.ListPipes(ctx)
	for _, p := range ps {
		s.bump(ctx, p)
	}
	return ps, err
}

// A write based on a read that someone else's change overtook fails,
// changes nothing, and tells the user to run the command again.
func TestPipesUpdateConflict(t *testing.T) {
	svc := apitest.NewService(t)
	srv := httptest.NewServer(api.NewHandler(racingService{svc}, nil))
	t.Cleanup(srv.Close)
	sluice := func(args ...string) result {
		return run(t, nil, append([]string{"--api", srv.URL}, args...)...)
	}
	mustOK(t, sluice(createDemo...))

	for _, args := range [][]string{{"pipes", "update", "demo", "--target-timeout", "5s"}, {"pipes", "disable", "demo"}} {
		r := sluice(args...)
		if r.code != 1 || !strings.Contains(r.stderr, `pipe "demo" was changed by someone else after it was read`) || !strings.Contains(r.stderr, "run the command again") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
	p := getPipe(t, svc, "demo")
	if p.Target.HTTP.TimeoutSeconds != 30 || !p.IsEnabled() {
		t.Errorf("a conflicting update landed: %+v", p.Spec)
	}

	f := writeFile(t, "pipes:\n- name: demo\n  bootstrapServers: [127.0.0.1:9092]\n  topics: [demo]\n  batchSize: 9999\n  target: {http: {url: http://127.0.0.1:9000/}}\n")
	r := sluice("apply", "-f", f)
	if r.code != 1 || !strings.Contains(r.stderr, "pipe/demo failed: it was changed by someone else while apply ran, so it was not updated: apply again") ||
		!strings.Contains(r.stderr, "1 of 1 pipes failed to apply") {
		t.Errorf("apply over a racing change: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestPipesEnableDisable(t *testing.T) {
	sluice, svc := server(t)
	mustOK(t, sluice(createDemo...))

	r := mustOK(t, sluice("pipes", "disable", "demo"))
	if want := `Pipe "demo" is Disabling: it stops consuming in a moment, after its in-flight batches; its consumer group keeps its committed offsets.`; !strings.Contains(r.stdout, want) {
		t.Errorf("disable printed %q, want %q", r.stdout, want)
	}
	p := getPipe(t, svc, "demo")
	if p.IsEnabled() || p.Status.State != pipe.StateDisabling || p.Revision != 2 {
		t.Errorf("after disable: enabled %v, state %s, revision %d", p.IsEnabled(), p.Status.State, p.Revision)
	}
	r = mustOK(t, sluice("pipes", "disable", "demo"))
	if r.stdout != "Pipe \"demo\" is already disabled (state Disabling).\n" {
		t.Errorf("second disable printed %q", r.stdout)
	}
	if got := getPipe(t, svc, "demo").Revision; got != 2 {
		t.Errorf("a second disable moved the revision to %d", got)
	}

	r = mustOK(t, sluice("-o", "json", "pipes", "enable", "demo"))
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil || !p.IsEnabled() || p.Status.State != pipe.StateEnabling {
		t.Errorf("enable -o json: %v %+v", err, p)
	}
	r = mustOK(t, sluice("pipes", "enable", "demo"))
	if !strings.Contains(r.stdout, `Pipe "demo" is already enabled`) {
		t.Errorf("second enable printed %q", r.stdout)
	}

	r = mustOK(t, sluice("pipes", "disable", "--help"))
	if !strings.Contains(r.stdout, "keeps its committed offsets") {
		t.Errorf("disable --help does not say the offsets are kept:\n%s", r.stdout)
	}
	if r := sluice("pipes", "enable", "nope"); r.code != 1 || !strings.Contains(r.stderr, `pipe "nope" not found`) {
		t.Errorf("enable of a missing pipe: exit %d, stderr %q", r.code, r.stderr)
	}
}
