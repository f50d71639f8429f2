package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestPipesAPIFilterEnrichTransform: `aws pipes create-pipe` with a filter,
// an enrichment endpoint and a target input template delivers exactly the
// transformed records of the matching ones, in order. The enrichment gets
// the matching records as the Pipes event and answers them with a field
// added; the target template renders each element of that answer.
func TestPipesAPIFilterEnrichTransform(t *testing.T) {
	bin := awsForFailures(t)
	d := startDev(t, t.TempDir(), freeAddr(t), freeAddr(t))
	aws := newPipesCLI(t, bin, d.API)
	const n = 40
	createTopics(t, d.kafka, map[string]int32{"orders": 1})
	special := map[int]*kgo.Record{}
	var want []string
	for i := range n {
		status := "pending"
		if i%3 == 0 {
			status = "shipped"
			want = append(want, fmt.Sprintf(`{"order":"o-%d","status":"shipped","grade":"A"}`, i))
		}
		special[i] = &kgo.Record{Value: []byte(fmt.Sprintf(`{"id":"o-%d","status":%q}`, i, status))}
	}
	produceOrders(t, d.kafka, "orders", 1, n, map[int32]map[int]*kgo.Record{0: special})

	// The enrichment decodes the Pipes event and answers, per record, its
	// decoded value with "grade" added.
	enrich := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var recs []pipesRecord
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &recs); err != nil {
			http.Error(w, "not the Pipes event: "+err.Error(), http.StatusBadRequest)
			return
		}
		var out []map[string]any
		for _, rec := range recs {
			var v map[string]any
			raw, _ := base64.StdEncoding.DecodeString(*rec.Value)
			_ = json.Unmarshal(raw, &v)
			v["grade"] = "A"
			out = append(out, v)
		}
		_ = json.NewEncoder(w).Encode(out)
	}))
	defer enrich.Close()
	var mu sync.Mutex
	var got []string
	tgt := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var items []json.RawMessage
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &items); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, it := range items {
			got = append(got, string(it))
		}
	}))
	defer tgt.Close()

	params := `{"SelfManagedKafkaParameters":{"TopicName":"orders","StartingPosition":"TRIM_HORIZON","MaximumBatchingWindowInSeconds":0},` +
		`"FilterCriteria":{"Filters":[{"Pattern":"{\"value\":{\"status\":[\"shipped\"]}}"}]}}`
	aws.ok("create-pipe", "--name", "chain", "--source", "smk://"+d.kafka, "--source-parameters", params,
		"--enrichment", enrich.URL+"/", "--target", tgt.URL+"/",
		"--target-parameters", `{"InputTemplate":"{\"order\": <$.id>, \"status\": <$.status>, \"grade\": <$.grade>}"}`,
		"--role-arn", "arn:aws:iam::000000000000:role/unused")
	deadline := time.Now().Add(45 * time.Second)
	for {
		mu.Lock()
		done := len(got) >= len(want)
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("the target got\n  %s\nwant exactly the transformed matching records\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	d.Signal(syscall.SIGTERM)
}
