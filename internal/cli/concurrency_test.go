package cli

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// tableRow is one "Key: value" line of a get or describe table, aligned
// as their longest keys align them.
func tableRow(key, value string) string {
	return fmt.Sprintf("%-25s%s\n", key+":", value)
}

// --ordering, --min-concurrency and --max-concurrency on create: only the
// flags given are sent (the server's defaults fill the rest), the ordering
// is upper-cased, get shows them, and get -o yaml round-trips through
// apply, which also changes them.
func TestConcurrencyFlagsCreateAndYAML(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	sluice := func(args ...string) result {
		t.Helper()
		return run(t, nil, append([]string{"--api", srv.URL}, args...)...)
	}
	mustOK(t, sluice(createDemo...))
	if s := getPipe(t, svc, "demo").Spec; s.Ordering != pipe.OrderingPartition || s.MinimumConcurrency != 1 || s.MaximumConcurrency != 200 {
		t.Errorf("defaults: ordering %q, concurrency %d–%d; want PARTITION, 1–200", s.Ordering, s.MinimumConcurrency, s.MaximumConcurrency)
	}
	out := mustOK(t, sluice("pipes", "get", "demo")).stdout
	for _, want := range []string{tableRow("Ordering", "PARTITION"), tableRow("Concurrency", "1–200")} {
		if !strings.Contains(out, want) {
			t.Errorf("get lacks %q:\n%s", want, out)
		}
	}

	r := mustOK(t, sluice("pipes", "create", "keyed", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "orders", "--target", "http://127.0.0.1:9000/",
		"--ordering", " key", "--min-concurrency", "2", "--max-concurrency", "50"))
	for _, want := range []string{tableRow("Ordering", "KEY"), tableRow("Concurrency", "2–50")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("create lacks %q:\n%s", want, r.stdout)
		}
	}
	if s := getPipe(t, svc, "keyed").Spec; s.Ordering != pipe.OrderingKey || s.MinimumConcurrency != 2 || s.MaximumConcurrency != 50 {
		t.Fatalf("created: ordering %q, concurrency %d–%d", s.Ordering, s.MinimumConcurrency, s.MaximumConcurrency)
	}
	// Only a minimum: the maximum is the server's default, or the minimum
	// when that is higher.
	mustOK(t, sluice("pipes", "create", "wide", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "orders", "--target", "http://127.0.0.1:9000/",
		"--ordering", "none", "--min-concurrency", "300"))
	if s := getPipe(t, svc, "wide").Spec; s.Ordering != pipe.OrderingNone || s.MinimumConcurrency != 300 || s.MaximumConcurrency != 300 {
		t.Errorf("--min-concurrency 300 alone: ordering %q, concurrency %d–%d; want NONE, 300–300", s.Ordering, s.MinimumConcurrency, s.MaximumConcurrency)
	}

	yaml := mustOK(t, sluice("pipes", "get", "keyed", "-o", "yaml")).stdout
	if !strings.Contains(yaml, "\nordering: KEY\nminimumConcurrency: 2\nmaximumConcurrency: 50\n") {
		t.Fatalf("get -o yaml:\n%s", yaml)
	}
	rev := getPipe(t, svc, "keyed").Revision
	if r := mustOK(t, sluice("apply", "-f", writeFile(t, yaml))); r.stdout != "pipe/keyed unchanged\n" {
		t.Fatalf("apply of get -o yaml printed %q", r.stdout)
	}
	if got := getPipe(t, svc, "keyed").Revision; got != rev {
		t.Errorf("an unchanged apply moved the revision %d -> %d", rev, got)
	}
	edited := strings.Replace(strings.Replace(yaml, "ordering: KEY", "ordering: NONE", 1), "maximumConcurrency: 50", "maximumConcurrency: 80", 1)
	r = mustOK(t, sluice("apply", "-f", writeFile(t, edited)))
	if !strings.Contains(r.stdout, "pipe/keyed updated") || !strings.Contains(r.stdout, "ordering: KEY -> NONE") || !strings.Contains(r.stdout, "maximumConcurrency: 50 -> 80") {
		t.Errorf("apply of the edited file printed %q", r.stdout)
	}
	if s := getPipe(t, svc, "keyed").Spec; s.Ordering != pipe.OrderingNone || s.MinimumConcurrency != 2 || s.MaximumConcurrency != 80 {
		t.Errorf("after apply: ordering %q, concurrency %d–%d; want NONE, 2–80", s.Ordering, s.MinimumConcurrency, s.MaximumConcurrency)
	}
	// A file without the fields means the defaults, as on create.
	bare := "pipes:\n- name: keyed\n  bootstrapServers: [127.0.0.1:9092]\n  topics: [orders]\n  target: {http: {url: http://127.0.0.1:9000/}}\n"
	r = mustOK(t, sluice("apply", "-f", writeFile(t, bare)))
	if !strings.Contains(r.stdout, "ordering: NONE -> PARTITION") || !strings.Contains(r.stdout, "minimumConcurrency: 2 -> 1") || !strings.Contains(r.stdout, "maximumConcurrency: 80 -> 200") {
		t.Errorf("apply without the fields printed %q", r.stdout)
	}
}

// update changes only the concurrency flags given; 0, "" and values the
// server refuses name their flag, and nothing changes.
func TestConcurrencyFlagsUpdate(t *testing.T) {
	sluice, svc := server(t)
	mustOK(t, sluice(createDemo...))

	r := mustOK(t, sluice("pipes", "update", "demo", "--ordering", "Key"))
	if !strings.Contains(r.stdout, `Updated pipe "demo" (ordering: PARTITION -> KEY).`) || !strings.Contains(r.stdout, tableRow("Ordering", "KEY")) {
		t.Errorf("update --ordering printed:\n%s", r.stdout)
	}
	r = mustOK(t, sluice("pipes", "update", "demo", "--max-concurrency", "20"))
	if !strings.Contains(r.stdout, `(maximumConcurrency: 200 -> 20)`) || !strings.Contains(r.stdout, tableRow("Concurrency", "1–20")) {
		t.Errorf("update --max-concurrency printed:\n%s", r.stdout)
	}
	r = mustOK(t, sluice("pipes", "update", "demo", "--min-concurrency", "4", "--max-concurrency", "400"))
	if !strings.Contains(r.stdout, `(minimumConcurrency: 1 -> 4, maximumConcurrency: 20 -> 400)`) {
		t.Errorf("update of both printed:\n%s", r.stdout)
	}
	s := getPipe(t, svc, "demo").Spec
	if s.Ordering != pipe.OrderingKey || s.MinimumConcurrency != 4 || s.MaximumConcurrency != 400 || s.BatchSize != pipe.DefaultBatchSize {
		t.Fatalf("after the updates: ordering %q, concurrency %d–%d, batch size %d", s.Ordering, s.MinimumConcurrency, s.MaximumConcurrency, s.BatchSize)
	}
	rev := getPipe(t, svc, "demo").Revision

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--min-concurrency", "0"}, "Error: --min-concurrency 0: use 1–1000"},
		{[]string{"--max-concurrency", "0"}, "Error: --max-concurrency 0: use 1–1000"},
		{[]string{"--ordering", ""}, `Error: --ordering "": use PARTITION, KEY or NONE`},
		{[]string{"--ordering", "sideways"}, `--ordering: invalid value "SIDEWAYS"`},
		{[]string{"--max-concurrency", "1001"}, "--max-concurrency: invalid value 1001: use 1–1000"},
		{[]string{"--min-concurrency", "-1"}, "--min-concurrency: invalid value -1: use 1–1000"},
		{[]string{"--min-concurrency", "500"}, "--min-concurrency: invalid value 500: use at most --max-concurrency (400)"},
		{nil, "--payload-limit, --ordering, --min-concurrency, --max-concurrency, --maximum-retry-attempts"},
	} {
		r := sluice(append([]string{"pipes", "update", "demo"}, c.args...)...)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, c.want) {
			t.Errorf("update %q: exit %d, stdout %q, stderr %q; want 1 and %q", c.args, r.code, r.stdout, r.stderr, c.want)
		}
	}
	if got := getPipe(t, svc, "demo").Revision; got != rev {
		t.Errorf("refused updates moved the revision %d -> %d", rev, got)
	}

	// Create refuses the same, naming the flag.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--min-concurrency", "0"}, "Error: --min-concurrency 0: use 1–1000"},
		{[]string{"--min-concurrency", "9", "--max-concurrency", "3"}, "--min-concurrency: invalid value 9: use at most --max-concurrency (3)"},
		{[]string{"--target", "kafka://out", "--delivery", "EXACTLY_ONCE", "--ordering", "KEY"}, "--ordering: invalid value KEY: EXACTLY_ONCE delivers a poll per transaction"},
	} {
		args := append([]string{"pipes", "create", "bad", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "in", "--target", "http://127.0.0.1:9000/"}, c.args...)
		if r := sluice(args...); r.code != 1 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("create %q: exit %d, stderr %q; want %q", c.args, r.code, r.stderr, c.want)
		}
	}

	r = mustOK(t, sluice("pipes", "update", "--help"))
	for _, flag := range []string{"--ordering", "--min-concurrency", "--max-concurrency"} {
		if !strings.Contains(r.stdout, flag) {
			t.Errorf("update --help lacks %s", flag)
		}
	}
}

// describe shows the controller of a pipe this server runs: its limit
// within its bounds, the batches in flight, the ordering and the last
// change, told as how long ago.
func TestDescribeConcurrency(t *testing.T) {
	now := time.Now()
	d := observe.Description{Name: "orders", UUID: "u", Topics: []string{"orders"}, State: "Enabled", Running: true,
		Concurrency: &observe.Concurrency{Ordering: pipe.OrderingKey, Current: 8, Minimum: 1, Maximum: 200, InFlight: 3,
			LastChange: &observe.ConcurrencyChange{From: 4, To: 8, Reason: "backlog", At: now.Add(-3 * time.Hour)}}}
	srv := httptest.NewServer(api.NewHandler(apitest.NewService(t), nil, api.WithDescriber(fixedDescriber(d))))
	defer srv.Close()
	out := mustOK(t, run(t, nil, "--api", srv.URL, "pipes", "describe", "orders")).stdout
	for _, want := range []string{
		tableRow("Concurrency", "limit 8 of 1–200, 3 in flight, ordering KEY"),
		tableRow("Concurrency change", "raised 4→8 (backlog) 3h00m ago"),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}

	// Not run here: no concurrency to show.
	var b strings.Builder
	if err := writeDescription(&b, observe.Description{Name: "orders", State: "Enabled"}, now); err != nil || strings.Contains(b.String(), "Concurrency") {
		t.Errorf("a pipe not run here: %v\n%s", err, b.String())
	}

	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		ch   *observe.ConcurrencyChange
		now  time.Time
		want string
	}{
		{nil, at, "none yet"},
		{&observe.ConcurrencyChange{From: 4, To: 8, Reason: "backlog", At: at}, at.Add(3 * time.Second), "raised 4→8 (backlog) 3s ago"},
		{&observe.ConcurrencyChange{From: 40, To: 20, Reason: "throttled", At: at}, at.Add(65 * time.Second), "halved 40→20 (throttled) 1m05s ago"},
		{&observe.ConcurrencyChange{From: 3, To: 2, Reason: "throttled", At: at}, at.Add(-time.Second), "lowered 3→2 (throttled) just now"},
		{&observe.ConcurrencyChange{From: 40, To: 20, Reason: "throttled"}, at, "halved 40→20 (throttled)"},
	} {
		if got := concurrencyChange(c.ch, c.now); got != c.want {
			t.Errorf("concurrencyChange(%+v) = %q, want %q", c.ch, got, c.want)
		}
	}
}
