package e2e

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAWSCLIFilterCriteria: a mapping created with the AWS CLI's
// --filter-criteria, with patterns written as the reference's
// documentation writes them, delivers exactly the matching records, in
// order; the others are committed; the pattern is echoed; an invalid
// pattern prints the reference's error type.
func TestAWSCLIFilterCriteria(t *testing.T) {
	bin := awsForFailures(t)
	d := startDev(t, t.TempDir(), freeAddr(t), freeAddr(t))
	aws := awsCLI{t: t, bin: bin, api: d.API}
	const perPartition = 60
	createTopics(t, d.kafka, map[string]int32{"orders": 1})
	// Every fourth record is a shipped order over 100; every seventh a
	// shipped one of 10; the rest are not JSON at all.
	special := map[int]*kgo.Record{}
	var want []int64
	for i := 0; i < perPartition; i++ {
		switch {
		case i%4 == 0:
			special[i] = &kgo.Record{Value: []byte(fmt.Sprintf(`{"status":"shipped","amount":%d,"region":"us-east-1"}`, 150+i))}
			want = append(want, int64(i))
		case i%7 == 0:
			special[i] = &kgo.Record{Value: []byte(`{"status":"shipped","amount":10,"region":"us-east-1"}`)}
		}
	}
	produceOrders(t, d.kafka, "orders", 1, perPartition, map[int32]map[int]*kgo.Record{0: special})

	tgt := &failTarget{topic: "orders", answer: func(recs []delivered) (int, []map[string]any, int) { return 200, nil, len(recs) }}
	srv := httptest.NewServer(tgt)
	defer srv.Close()
	source := fmt.Sprintf(`{"Endpoints":{"KAFKA_BOOTSTRAP_SERVERS":["%s"]}}`, d.kafka)
	pattern := `{\"value\":{\"status\":[\"shipped\"],\"amount\":[{\"numeric\":[\">\",100]}],\"region\":[{\"prefix\":\"us-\"}]}}`
	if _, stderr, err := aws.run("create-event-source-mapping", "--function-name", srv.URL+"/", "--topics", "orders",
		"--self-managed-event-source", source, "--starting-position", "TRIM_HORIZON",
		"--filter-criteria", `{"Filters":[{"Pattern":"{\"value\":{\"amount\":[{\"numeric\":[\">\",\"x\"]}]}}"}]}`); err == nil ||
		!strings.Contains(stderr, "InvalidParameterValueException") || !strings.Contains(stderr, "FilterCriteria.Filters[0].Pattern") {
		t.Fatalf("an invalid pattern: %v\n%s", err, stderr)
	}
	created := aws.ok("create-event-source-mapping", "--function-name", srv.URL+"/", "--topics", "orders",
		"--self-managed-event-source", source, "--starting-position", "TRIM_HORIZON", "--maximum-batching-window-in-seconds", "0",
		"--filter-criteria", `{"Filters":[{"Pattern":"`+pattern+`"}]}`)
	id, _ := created["UUID"].(string)
	got := aws.ok("get-event-source-mapping", "--uuid", id)
	fc, _ := got["FilterCriteria"].(map[string]any)
	if fs, _ := fc["Filters"].([]any); len(fs) != 1 || !strings.Contains(fmt.Sprint(fs[0]), `"numeric":[">",100]`) {
		t.Fatalf("get-event-source-mapping printed FilterCriteria %v", got["FilterCriteria"])
	}
	group := got["SelfManagedKafkaEventSourceConfig"].(map[string]any)["ConsumerGroupId"].(string)
	settled := poll(45*time.Second, func() bool {
		_, accepted, _ := tgt.snapshot()
		return len(accepted) >= len(want) && committedAtEnd(t, d.kafka, "orders", group, 1)
	})
	_, accepted, malformed := tgt.snapshot()
	var offs []int64
	for _, r := range accepted {
		offs = append(offs, r.Offset)
	}
	if !settled || len(malformed) > 0 || fmt.Sprint(offs) != fmt.Sprint(want) {
		t.Fatalf("settled %v; the target got offsets %v, want exactly the matching %v (malformed %q)", settled, offs, want, malformed)
	}
	aws.ok("delete-event-source-mapping", "--uuid", id)
	d.Signal(syscall.SIGTERM)
}
