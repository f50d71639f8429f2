package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// pipesCLI runs `aws pipes` against the Sluice API.
type pipesCLI struct{ awsCLI }

func newPipesCLI(t *testing.T, bin, api string) pipesCLI {
	return pipesCLI{awsCLI{t: t, bin: bin, api: api, service: "pipes"}}
}

func (a pipesCLI) state(name string) string {
	a.t.Helper()
	s, _ := a.ok("describe-pipe", "--name", name)["CurrentState"].(string)
	return s
}

// pipesRecord is one record of the EventBridge Pipes event with a Kafka
// source, as a handler written from its documentation decodes it.
type pipesRecord struct {
	EventSource      string  `json:"eventSource"`
	EventSourceKey   string  `json:"eventSourceKey"`
	BootstrapServers string  `json:"bootstrapServers"`
	Topic            string  `json:"topic"`
	Partition        int32   `json:"partition"`
	Offset           int64   `json:"offset"`
	Value            *string `json:"value"`
}

// pipesTarget keeps, in order, the values of the records it got, and
// every body that was not the Pipes event.
type pipesTarget struct {
	broker string

	mu        sync.Mutex
	values    []string
	offsets   []int64
	malformed []string
}

func (p *pipesTarget) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var recs []pipesRecord
	problem := ""
	if err := json.Unmarshal(body, &recs); err != nil || len(recs) == 0 {
		problem = fmt.Sprintf("not the Pipes event (a flat array of records): %v: %s", err, body)
	}
	var vals []string
	for _, rec := range recs {
		v := ""
		if rec.Value != nil {
			b, err := base64.StdEncoding.DecodeString(*rec.Value)
			if err != nil {
				problem = fmt.Sprintf("value not base64: %q", *rec.Value)
			}
			v = string(b)
		}
		if rec.EventSource != "SelfManagedKafka" || rec.EventSourceKey != fmt.Sprintf("%s-%d", rec.Topic, rec.Partition) ||
			rec.Topic != "orders" || rec.BootstrapServers != p.broker {
			problem = fmt.Sprintf("a record without the Pipes event's source fields: %+v", rec)
		}
		vals = append(vals, v)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if problem != "" {
		p.malformed = append(p.malformed, problem)
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	p.values = append(p.values, vals...)
	for _, rec := range recs {
		p.offsets = append(p.offsets, rec.Offset)
	}
	w.WriteHeader(http.StatusOK)
}

func (p *pipesTarget) snapshot() (values []string, offsets []int64, malformed []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.values...), append([]int64(nil), p.offsets...), append([]string(nil), p.malformed...)
}

// TestPipesAPIWithAWSCLI drives the EventBridge Pipes API with `aws pipes`
// as a user would: create a pipe on self-managed Kafka with a filter,
// describe and list it, stop and start it, see only the matching records
// reach the target as the Pipes event, delete it; an invalid pattern
// prints ValidationException.
func TestPipesAPIWithAWSCLI(t *testing.T) {
	bin := awsForFailures(t)
	d := startDev(t, t.TempDir(), freeAddr(t), freeAddr(t))
	aws := newPipesCLI(t, bin, d.API)
	createTopics(t, d.kafka, map[string]int32{"orders": 1})
	tgt := &pipesTarget{broker: d.kafka}
	srv := httptest.NewServer(tgt)
	defer srv.Close()

	cl, err := kgo.NewClient(kgo.SeedBrokers(d.kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// produce writes n orders, every third one shipped, and returns the
	// values of the shipped ones.
	produce := func(from, n int) []string {
		var shipped []string
		for i := from; i < from+n; i++ {
			status := "pending"
			if i%3 == 0 {
				status = "shipped"
			}
			v := fmt.Sprintf(`{"id":%d,"status":%q}`, i, status)
			if status == "shipped" {
				shipped = append(shipped, v)
			}
			if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: "orders", Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		return shipped
	}
	want := produce(0, 12)

	const role = "arn:aws:iam::000000000000:role/x"
	source := "smk://" + d.kafka
	_, stderr, err := aws.run("create-pipe", "--name", "bad", "--source", source, "--target", srv.URL+"/", "--role-arn", role,
		"--source-parameters", `{"SelfManagedKafkaParameters":{"TopicName":"orders"},"FilterCriteria":{"Filters":[{"Pattern":"{\"value\":{\"amount\":[{\"numeric\":[\">\",\"x\"]}]}}"}]}}`)
	if err == nil || !strings.Contains(stderr, "(ValidationException)") || !strings.Contains(stderr, "SourceParameters.FilterCriteria.Filters[0].Pattern") {
		t.Fatalf("an invalid pattern: %v\n%s", err, stderr)
	}
	t.Logf("an invalid pattern: %s", strings.TrimSpace(stderr))

	created := aws.ok("create-pipe", "--name", "p", "--source", source, "--target", srv.URL+"/", "--role-arn", role,
		"--source-parameters", `{"SelfManagedKafkaParameters":{"TopicName":"orders","StartingPosition":"TRIM_HORIZON","MaximumBatchingWindowInSeconds":0},"FilterCriteria":{"Filters":[{"Pattern":"{\"value\":{\"status\":[\"shipped\"]}}"}]}}`)
	if created["Arn"] != "arn:aws:pipes:sluice:000000000000:pipe/p" || created["CurrentState"] != "CREATING" || created["DesiredState"] != "RUNNING" {
		t.Fatalf("create-pipe printed %v", created)
	}
	if _, stderr, err := aws.run("create-pipe", "--name", "p", "--source", source, "--target", srv.URL+"/", "--role-arn", role,
		"--source-parameters", `{"SelfManagedKafkaParameters":{"TopicName":"orders"}}`); err == nil || !strings.Contains(stderr, "(ConflictException)") {
		t.Fatalf("create-pipe of an existing name: %v\n%s", err, stderr)
	}
	waitFor(t, 30*time.Second, "the pipe to be RUNNING", func() bool { return aws.state("p") == "RUNNING" })
	desc := aws.ok("describe-pipe", "--name", "p")
	smk, _ := desc["SourceParameters"].(map[string]any)["SelfManagedKafkaParameters"].(map[string]any)
	if desc["Source"] != source || desc["Target"] != srv.URL+"/" || smk["TopicName"] != "orders" ||
		!strings.Contains(fmt.Sprint(desc["SourceParameters"]), `shipped`) {
		t.Fatalf("describe-pipe printed %v", desc)
	}
	list := aws.ok("list-pipes", "--name-prefix", "p")
	if ps, _ := list["Pipes"].([]any); len(ps) != 1 || ps[0].(map[string]any)["Name"] != "p" || ps[0].(map[string]any)["CurrentState"] != "RUNNING" {
		t.Fatalf("list-pipes printed %v", list)
	}

	// A second pipe, stopped; the CLI follows NextToken page by page.
	aws.ok("create-pipe", "--name", "p2", "--source", source, "--target", srv.URL+"/other", "--role-arn", role, "--desired-state", "STOPPED",
		"--source-parameters", `{"SelfManagedKafkaParameters":{"TopicName":"other"}}`)
	if l := aws.ok("list-pipes", "--page-size", "1"); len(l["Pipes"].([]any)) != 2 {
		t.Fatalf("list-pipes --page-size 1 printed %v", l)
	}
	if l := aws.ok("list-pipes", "--max-items", "1"); len(l["Pipes"].([]any)) != 1 || l["NextToken"] == nil {
		t.Fatalf("list-pipes --max-items 1 printed %v", l)
	}
	if l := aws.ok("list-pipes", "--desired-state", "STOPPED"); len(l["Pipes"].([]any)) != 1 || l["Pipes"].([]any)[0].(map[string]any)["Name"] != "p2" {
		t.Fatalf("list-pipes --desired-state STOPPED printed %v", l)
	}
	aws.ok("delete-pipe", "--name", "p2")

	waitFor(t, 30*time.Second, "the shipped orders at the target", func() bool {
		v, _, _ := tgt.snapshot()
		return len(v) >= len(want)
	})

	if s := aws.ok("stop-pipe", "--name", "p"); s["CurrentState"] != "STOPPING" || s["DesiredState"] != "STOPPED" {
		t.Fatalf("stop-pipe printed %v", s)
	}
	waitFor(t, 30*time.Second, "the pipe to be STOPPED", func() bool { return aws.state("p") == "STOPPED" })
	if l := aws.ok("list-pipes", "--current-state", "STOPPED"); len(l["Pipes"].([]any)) != 1 || l["Pipes"].([]any)[0].(map[string]any)["Name"] != "p" {
		t.Fatalf("list-pipes --current-state STOPPED printed %v", l)
	}
	want = append(want, produce(12, 9)...)
	time.Sleep(2 * time.Second)
	if v, _, _ := tgt.snapshot(); len(v) != 4 {
		t.Fatalf("a stopped pipe delivered: %d records, want the 4 of before", len(v))
	}
	if s := aws.ok("start-pipe", "--name", "p"); s["CurrentState"] != "STARTING" || s["DesiredState"] != "RUNNING" {
		t.Fatalf("start-pipe printed %v", s)
	}
	waitFor(t, 30*time.Second, "the pipe to be RUNNING again", func() bool { return aws.state("p") == "RUNNING" })
	waitFor(t, 30*time.Second, "the orders shipped while stopped", func() bool {
		v, _, _ := tgt.snapshot()
		return len(v) >= len(want)
	})
	time.Sleep(time.Second)
	values, offs, malformed := tgt.snapshot()
	if len(malformed) > 0 || strings.Join(values, "\n") != strings.Join(want, "\n") {
		t.Fatalf("the target got %q (offsets %v), want exactly the shipped %q; malformed %q", values, offs, want, malformed)
	}

	deleted := aws.ok("delete-pipe", "--name", "p")
	if deleted["CurrentState"] != "DELETING" || deleted["DesiredState"] != "DELETED" {
		t.Fatalf("delete-pipe printed %v", deleted)
	}
	waitFor(t, 30*time.Second, "the pipe to be gone", func() bool {
		_, stderr, err := aws.run("describe-pipe", "--name", "p")
		return err != nil && strings.Contains(stderr, "(NotFoundException)")
	})
	d.Signal(syscall.SIGTERM)
}
