package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/host/hosttest"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/test/testproc"
)

// TestHostedLambdaHandler is the acceptance check: an unchanged
// aws-lambda-go handler runs as a Sluice function; it decodes the batches
// with events.KafkaEvent (keys, values, signed-byte headers), returns
// batchItemFailures for chosen offsets, which are delivered again; a
// panic shows as the pipe's PROBLEM and the handler recovers; nothing is
// lost and the commits reach the end; `aws lambda invoke` against Sluice
// returns the handler's answer; and a second Sluice's lambda target
// invokes the function through the first one's Invoke API.
func TestHostedLambdaHandler(t *testing.T) {
	aws := need(t, "/usr/bin/aws")
	handler := hosttest.Build(t, t.TempDir())
	dir := t.TempDir()
	out, state := filepath.Join(dir, "seen.jsonl"), filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o755); err != nil {
		t.Fatal(err)
	}
	kafka, api := testproc.FreeAddr(t), testproc.FreeAddr(t)
	d := startDev(t, filepath.Join(dir, "a"), kafka, api)

	set := d.CLI("functions", "set", "orders", "--handler", handler, "--concurrency", "2", "--timeout", "10s",
		"--env", "TESTHANDLER_OUT="+out, "--env", "TESTHANDLER_STATE="+state)
	if !strings.Contains(set, "runs "+handler) {
		t.Fatalf("functions set printed %q", set)
	}

	// 2 partitions × 60 records; three of them fail once (two through
	// batchItemFailures, one by a returned error), one panics for 2 s.
	const parts, n = 2, 60
	special := map[[2]int64]string{{0, 7}: "once:fail", {1, 33}: "once:fail", {1, 12}: "once:error", {0, 40}: "for:2s:panic"}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafka), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	d.CLI("pipes", "create", "orders", "--bootstrap-servers", kafka, "--topic", "orders", "--function", "orders",
		"--report-batch-item-failures", "--batch-size", "10", "--batching-window", "0s")
	if p := getPipe(t, d, "orders"); p.Target.Function == nil || p.Target.Function.Name != "orders" || !p.Target.Function.ReportBatchItemFailures {
		t.Fatalf("--function of a hosted function made target %+v", p.Target)
	}
	var recs []*kgo.Record
	for p := int32(0); p < parts; p++ {
		for i := range n {
			v := fmt.Sprintf("order-%d-%d", p, i)
			if s, ok := special[[2]int64{int64(p), int64(i)}]; ok {
				v = s
			}
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: p, Key: fmt.Appendf(nil, "customer-%d", i%5), Value: []byte(v),
				Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("café")}}})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	waitFor(t, 60*time.Second, "the panic as the pipe's PROBLEM", func() bool {
		r := getPipe(t, d, "orders").Status.LastProcessingResult
		return strings.HasPrefix(r, pipe.ProblemPrefix) && strings.Contains(r, "asked to panic")
	})
	p := getPipe(t, d, "orders")
	waitFor(t, 90*time.Second, "the commits at the end of both partitions", func() bool {
		end, committed := offsets(t, kafka, "orders", p.UUID)
		for q, e := range end {
			if committed[q] != e {
				return false
			}
		}
		return end[0] == n && end[1] == n
	})

	seen := hosttest.Read(t, out)
	times := map[[2]int64]int{}
	for _, h := range seen {
		times[[2]int64{h.Partition, h.Offset}]++
		if h.Headers["source"] != "café" || !strings.HasPrefix(h.Key, "customer-") || len(h.RequestID) != 36 {
			t.Fatalf("the handler decoded %+v", h)
		}
	}
	for q := int64(0); q < parts; q++ {
		for i := int64(0); i < n; i++ {
			if times[[2]int64{q, i}] == 0 {
				t.Fatalf("partition %d offset %d never reached the handler", q, i)
			}
		}
	}
	for k, v := range special {
		if times[k] < 2 {
			t.Errorf("record %v (%s) reached the handler %d time(s), want it again after its failure", k, v, times[k])
		}
	}
	waitFor(t, 20*time.Second, "the pipe OK again", func() bool {
		return getPipe(t, d, "orders").Status.LastProcessingResult == pipe.ResultOK
	})
	got := d.CLI("functions", "get", "orders")
	for _, want := range []string{"Kind:           hosted", "Processes:      ", "restarts)", "Last error:     function orders failed"} {
		if !strings.Contains(got, want) {
			t.Fatalf("functions get lacks %q:\n%s", want, got)
		}
	}

	// The AWS CLI invokes the function through Sluice's Invoke API.
	event := map[string]any{"eventSource": "SelfManagedKafka", "records": map[string]any{"orders-0": []map[string]any{
		{"topic": "orders", "partition": 0, "offset": 500, "timestamp": 1, "timestampType": "CREATE_TIME",
			"key": base64.StdEncoding.EncodeToString([]byte("k")), "value": base64.StdEncoding.EncodeToString([]byte("fail")), "headers": []any{}},
	}}}
	evFile, respFile := filepath.Join(dir, "event.json"), filepath.Join(dir, "response.json")
	b, _ := json.Marshal(event)
	if err := os.WriteFile(evFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cli := awsCLI{t: t, bin: aws, api: api}
	res := cli.ok("invoke", "--function-name", "orders", "--payload", "fileb://"+evFile, respFile)
	if res["StatusCode"] != float64(200) || res["FunctionError"] != nil {
		t.Fatalf("aws lambda invoke printed %v", res)
	}
	answer, err := os.ReadFile(respFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(answer), `"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":500}}]`) {
		t.Fatalf("the handler's answer through aws lambda invoke: %s", answer)
	}
	if _, stderr, err := cli.run("invoke", "--function-name", "nope", "--payload", "fileb://"+evFile, respFile); err == nil || !strings.Contains(stderr, "ResourceNotFoundException") {
		t.Fatalf("invoking a missing function: %v\n%s", err, stderr)
	}

	// A second Sluice delivers to the function with a lambda target aimed
	// at the first one's Invoke API, signing with dummy AWS credentials.
	t.Setenv("AWS_ACCESS_KEY_ID", "sluice")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "sluice")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	kafkaB, apiB := testproc.FreeAddr(t), testproc.FreeAddr(t)
	db := startDev(t, filepath.Join(dir, "b"), kafkaB, apiB)
	db.CLI("pipes", "create", "relay", "--bootstrap-servers", kafkaB, "--topic", "relay", "--target", "lambda:orders",
		"--region", "us-east-1", "--endpoint-url", "http://"+api, "--batch-size", "5", "--batching-window", "0s")
	clB, err := kgo.NewClient(kgo.SeedBrokers(kafkaB), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer clB.Close()
	var relay []*kgo.Record
	for i := range 10 {
		relay = append(relay, &kgo.Record{Topic: "relay", Value: fmt.Appendf(nil, "relayed-%d", i)})
	}
	if err := clB.ProduceSync(ctx, relay...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the relayed records at the handler", func() bool {
		c := 0
		for _, h := range hosttest.Read(t, out) {
			if strings.HasPrefix(h.Value, "relayed-") {
				c++
			}
		}
		return c >= 10
	})
}
