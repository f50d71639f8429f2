package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/sink"
)

// awsCLI runs the AWS CLI v2 (Debian's awscli; the first `aws` on PATH may
// be another) against the Sluice API with dummy credentials.
type awsCLI struct {
	t        *testing.T
	bin, api string
	// service is the CLI's command group: "lambda" when empty, "pipes".
	service string
}

func (a awsCLI) run(args ...string) (map[string]any, string, error) {
	a.t.Helper()
	service := a.service
	if service == "" {
		service = "lambda"
	}
	cmd := exec.Command(a.bin, append([]string{service, "--endpoint-url", "http://" + a.api, "--output", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=sluice", "AWS_SECRET_ACCESS_KEY=sluice", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var out map[string]any
	if err == nil && stdout.Len() > 0 {
		if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil {
			a.t.Fatalf("aws %s printed %q: %v", strings.Join(args, " "), stdout.String(), jerr)
		}
	}
	return out, stderr.String(), err
}

func (a awsCLI) ok(args ...string) map[string]any {
	a.t.Helper()
	out, stderr, err := a.run(args...)
	if err != nil {
		a.t.Fatalf("aws %s %s: %v\n%s", cmp.Or(a.service, "lambda"), strings.Join(args, " "), err, stderr)
	}
	return out
}

// TestAWSCLIManagesEventSourceMappings drives the Lambda-compatible API
// with the AWS CLI v2 as a user would: create, get, list with paging,
// update, disable and enable, delete, and the error types it prints; and
// records produced meanwhile reach the target.
func TestAWSCLIManagesEventSourceMappings(t *testing.T) {
	bin := need(t, "/usr/bin/aws")
	if v, err := exec.Command(bin, "--version").CombinedOutput(); err != nil || !strings.HasPrefix(string(v), "aws-cli/2.") {
		t.Fatalf("/usr/bin/aws is not the AWS CLI v2 (Debian's awscli): %q %v", v, err)
	}
	d := startDev(t, t.TempDir(), freeAddr(t), freeAddr(t))
	aws := awsCLI{t: t, bin: bin, api: d.API}
	s := sink.New()
	srv := httptest.NewServer(s)
	defer srv.Close()
	source := fmt.Sprintf(`{"Endpoints":{"KAFKA_BOOTSTRAP_SERVERS":["%s"]}}`, d.kafka)

	created := aws.ok("create-event-source-mapping", "--function-name", srv.URL+"/", "--topics", "orders",
		"--starting-position", "TRIM_HORIZON", "--self-managed-event-source", source, "--batch-size", "10",
		"--maximum-batching-window-in-seconds", "0")
	id, _ := created["UUID"].(string)
	if len(id) != 36 || created["State"] != "Creating" || created["BatchSize"] != 10.0 {
		t.Fatalf("create printed %v", created)
	}
	waitFor(t, 30*time.Second, "the mapping to be Enabled", func() bool {
		return aws.ok("get-event-source-mapping", "--uuid", id)["State"] == "Enabled"
	})

	cl, err := kgo.NewClient(kgo.SeedBrokers(d.kafka), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produceN := func(n int) {
		for i := 0; i < n; i++ {
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "orders", Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produceN(20)
	waitFor(t, 30*time.Second, "20 records at the target", func() bool { return s.Stats().Accepted >= 20 })

	// Two more mappings, then list one per page: the CLI follows NextMarker.
	for i := 0; i < 2; i++ {
		aws.ok("create-event-source-mapping", "--function-name", srv.URL+"/", "--topics", fmt.Sprintf("other-%d", i),
			"--starting-position", "LATEST", "--self-managed-event-source", source, "--no-enabled")
	}
	list := aws.ok("list-event-source-mappings", "--page-size", "1")
	if n := len(list["EventSourceMappings"].([]any)); n != 3 {
		t.Fatalf("list printed %d mappings, want 3: %v", n, list)
	}
	page := aws.ok("list-event-source-mappings", "--max-items", "2")
	if n := len(page["EventSourceMappings"].([]any)); n != 2 || page["NextToken"] == nil {
		t.Fatalf("--max-items 2 printed %d mappings and NextToken %v", n, page["NextToken"])
	}

	updated := aws.ok("update-event-source-mapping", "--uuid", id, "--batch-size", "50")
	if updated["BatchSize"] != 50.0 || updated["State"] != "Updating" {
		t.Fatalf("update printed %v", updated)
	}
	if got := aws.ok("update-event-source-mapping", "--uuid", id, "--no-enabled"); got["State"] != "Disabling" {
		t.Fatalf("disable printed %v", got)
	}
	waitFor(t, 30*time.Second, "Disabled", func() bool {
		return aws.ok("get-event-source-mapping", "--uuid", id)["State"] == "Disabled"
	})
	before := s.Stats().Accepted
	produceN(10)
	if got := aws.ok("update-event-source-mapping", "--uuid", id, "--enabled"); got["State"] != "Enabling" {
		t.Fatalf("enable printed %v", got)
	}
	waitFor(t, 30*time.Second, "the 10 records produced while disabled", func() bool { return s.Stats().Accepted >= before+10 })
	end, _ := offsets(t, d.kafka, "orders", "")
	if _, err := sink.Check(s.Records(), "orders", end); err != nil {
		t.Fatal(err)
	}

	// Errors print as the AWS CLI prints Lambda's.
	_, stderr, err := aws.run("update-event-source-mapping", "--uuid", id, "--function-name", "billing")
	if err == nil || !strings.Contains(stderr, "(ResourceNotFoundException)") || !strings.Contains(stderr, "sluice functions set billing") {
		t.Fatalf("an unknown function: %v\n%s", err, stderr)
	}
	_, stderr, err = aws.run("create-event-source-mapping", "--function-name", srv.URL+"/", "--topics", "x",
		"--self-managed-event-source", source, "--filter-criteria", `{"Filters":[{"Pattern":"{}"}]}`)
	if err == nil || !strings.Contains(stderr, "(InvalidParameterValueException)") || !strings.Contains(stderr, "FilterCriteria") {
		t.Fatalf("an unsupported field: %v\n%s", err, stderr)
	}

	// A mapping on an MSK cluster registered in Sluice, named by its ARN.
	const arn = "arn:aws:kafka:us-east-1:123456789012:cluster/local-msk/0b1c2d3e-4"
	d.CLI("clusters", "set", "local-msk", "--msk", "--arn", arn, "--auth", "none", "--bootstrap-servers", d.kafka)
	msk := sink.New()
	var sawARN atomic.Bool
	msk.Decide = func(ev *sink.Event) sink.Decision {
		if ev.EventSource == "aws:kafka" && ev.EventSourceArn == arn {
			sawARN.Store(true)
		}
		return sink.Decision{}
	}
	mskSrv := httptest.NewServer(msk)
	defer mskSrv.Close()
	onMSK := aws.ok("create-event-source-mapping", "--function-name", mskSrv.URL+"/", "--topics", "msk-orders",
		"--event-source-arn", arn, "--starting-position", "TRIM_HORIZON",
		"--amazon-managed-kafka-event-source-config", `{"ConsumerGroupId":"msk-billing"}`, "--maximum-batching-window-in-seconds", "0")
	if onMSK["EventSourceArn"] != arn || onMSK["SelfManagedEventSource"] != nil {
		t.Fatalf("create on an MSK ARN printed %v", onMSK)
	}
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "msk-orders", Value: []byte(fmt.Sprint(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "5 records from the MSK mapping", func() bool { return msk.Stats().Accepted >= 5 })
	if !sawARN.Load() {
		t.Fatal(`events of the MSK mapping lack "eventSource":"aws:kafka" with the cluster's ARN`)
	}
	byARN := aws.ok("list-event-source-mappings", "--event-source-arn", arn)
	if got := byARN["EventSourceMappings"].([]any); len(got) != 1 || got[0].(map[string]any)["UUID"] != onMSK["UUID"] {
		t.Fatalf("list --event-source-arn printed %v", byARN)
	}
	_, stderr, err = aws.run("create-event-source-mapping", "--function-name", mskSrv.URL+"/", "--topics", "x",
		"--event-source-arn", "arn:aws:kafka:us-east-1:123456789012:cluster/unknown/1")
	if err == nil || !strings.Contains(stderr, "(InvalidParameterValueException)") || !strings.Contains(stderr, "sluice clusters set unknown") {
		t.Fatalf("an unknown cluster ARN: %v\n%s", err, stderr)
	}

	// Auth from SourceAccessConfigurations naming a Sluice secret in the
	// reference's format. The dev broker has no SASL, so the mapping shows
	// the reference's problem.
	d.CLI("secrets", "create", "generic", "kafka-creds", "--literal", "username=alice", "--literal", "password=not-used-9a")
	withAuth := aws.ok("create-event-source-mapping", "--function-name", srv.URL+"/", "--topics", "orders",
		"--self-managed-event-source", source, "--source-access-configurations", "Type=SASL_SCRAM_512_AUTH,URI=kafka-creds")
	if got := fmt.Sprint(withAuth["SourceAccessConfigurations"]); !strings.Contains(got, "SASL_SCRAM_512_AUTH") || !strings.Contains(got, "kafka-creds") {
		t.Fatalf("create with SourceAccessConfigurations printed %v", withAuth)
	}
	waitFor(t, 30*time.Second, "a SASL problem on the mapping with SCRAM against a broker without SASL", func() bool {
		r, _ := aws.ok("get-event-source-mapping", "--uuid", withAuth["UUID"].(string))["LastProcessingResult"].(string)
		if strings.HasPrefix(r, "PROBLEM: ") {
			t.Logf("SCRAM against a broker without SASL: %s", r)
			return true
		}
		return false
	})
	aws.ok("delete-event-source-mapping", "--uuid", withAuth["UUID"].(string))

	deleted := aws.ok("delete-event-source-mapping", "--uuid", id)
	if deleted["State"] != "Deleting" {
		t.Fatalf("delete printed %v", deleted)
	}
	waitFor(t, 30*time.Second, "the mapping to be gone", func() bool {
		_, stderr, err := aws.run("get-event-source-mapping", "--uuid", id)
		return err != nil && strings.Contains(stderr, "(ResourceNotFoundException)")
	})
	d.Signal(syscall.SIGTERM)
}
