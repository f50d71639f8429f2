package cli

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
)

type fixedDescriber observe.Description

func (f fixedDescriber) Describe(_ context.Context, name string) (observe.Description, error) {
	if name != f.Name {
		return observe.Description{}, pipe.ErrNotFound
	}
	return observe.Description(f), nil
}

// TestDescribeOutput: the table shows the summary and one row per
// partition ("-" for no commit); -o json prints the API's document. The
// engine's tests run the same command against real Kafka.
func TestDescribeOutput(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := int64(7)
	d := observe.Description{Name: "orders", UUID: "u", ConsumerGroupID: "g", Topics: []string{"orders"}, State: "Enabled",
		LastProcessingResult: "OK", Running: true, GroupInstanceID: "worker-0-u",
		Group:          &observe.Group{State: "PreparingRebalance", Members: 3, CheckedAt: at},
		HeldPartitions: map[string][]int32{"orders": {2, 0}, "audit": {1}},
		Retrying: []observe.Retry{{Topic: "orders", Partition: 2, FirstOffset: 40, NextAttempt: 6, NextAttemptAt: at, FailingSince: at,
			Problem: "target answered 503 Service Unavailable"}},
		LastError:  &observe.Problem{Message: "PROBLEM: target answered 503\nService Unavailable", At: at},
		Throughput: observe.Throughput{WindowSeconds: 60, Records: 90, RecordsPerSecond: 1.5},
		Lag: &observe.Lag{MeasuredAt: at, Total: 15, Max: 10, Partitions: []observe.Partition{
			{Topic: "orders", Partition: 0, CommittedOffset: &c, EndOffset: 12, Lag: 5},
			{Topic: "orders", Partition: 1, EndOffset: 10, Lag: 10},
		}}}
	srv := httptest.NewServer(api.NewHandler(apitest.NewService(t), nil, api.WithDescriber(fixedDescriber(d))))
	defer srv.Close()

	out := mustOK(t, run(t, nil, "--api", srv.URL, "pipes", "describe", "orders")).stdout
	for _, want := range []string{
		"Running on this server:  yes",
		"Group state:             PreparingRebalance, 3 members (at 2026-01-02T03:04:05Z)",
		"Group instance id:       worker-0-u",
		"Partitions held here:    audit 1; orders 0,2",
		"Retrying:                orders-2 from offset 40: attempt 6 at 2026-01-02T03:04:05Z (failing since 2026-01-02T03:04:05Z): target answered 503 Service Unavailable",
		"Last error:              PROBLEM: target answered 503 Service Unavailable (at 2026-01-02T03:04:05Z)",
		"Throughput:              1.5 records/s over the last 60s (90 records)",
		"Lag:                     15 total, 10 max",
		"TOPIC   PARTITION  COMMITTED  END  LAG",
		"orders  0          7          12   5",
		"orders  1          -          10   10",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out = mustOK(t, run(t, nil, "--api", srv.URL, "-o", "json", "pipes", "describe", "orders")).stdout
	var got observe.Description
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Lag.Partitions[1].CommittedOffset != nil || *got.Lag.Partitions[0].CommittedOffset != 7 {
		t.Fatalf("json: %v\n%s", err, out)
	}

	r := run(t, nil, "--api", srv.URL, "pipes", "describe", "nope")
	if r.code != 1 || !strings.Contains(r.stderr, `pipe "nope" not found`) {
		t.Fatalf("unknown pipe: %+v", r)
	}
}
