package cli

import (
	"strings"
	"testing"
)

// The failure-handling flags set their fields on create and update, show
// in get, and an invalid destination is named by its flag.
func TestFailureFlags(t *testing.T) {
	sluice, svc := server(t)
	mustOK(t, sluice("pipes", "create", "orders", "--bootstrap-servers", "127.0.0.1:9092", "--topic", "orders", "--target", "http://127.0.0.1:9000/",
		"--on-failure", "kafka://dlq", "--maximum-retry-attempts", "2", "--bisect-on-error", "--report-batch-item-failures"))
	p := getPipe(t, svc, "orders")
	if p.OnFailure.Destination != "kafka://dlq" || !p.Retry.BisectBatchOnError || !p.Target.HTTP.ReportBatchItemFailures || *p.Retry.MaximumRetryAttempts != 2 {
		t.Fatalf("created %+v, %+v, %+v", p.OnFailure, p.Retry, p.Target.HTTP)
	}
	out := mustOK(t, sluice("pipes", "get", "orders")).stdout
	for _, want := range []string{"On failure:              kafka://dlq", "Bisect on error:         yes", "Partial responses:       yes"} {
		if !strings.Contains(out, want) {
			t.Errorf("get lacks %q:\n%s", want, out)
		}
	}
	// Discard replaces the destination; the other settings stay.
	mustOK(t, sluice("pipes", "update", "orders", "--discard-on-failure"))
	p = getPipe(t, svc, "orders")
	if p.OnFailure.Destination != "" || !p.OnFailure.Discard || !p.Retry.BisectBatchOnError || !p.Target.HTTP.ReportBatchItemFailures {
		t.Fatalf("after --discard-on-failure: %+v, %+v", p.OnFailure, p.Retry)
	}
	r := sluice("pipes", "update", "orders", "--on-failure", "kafka://orders")
	if r.code == 0 || !strings.Contains(r.stderr, "--on-failure: invalid value \"kafka://orders\": the failure destination must differ from the topic the pipe reads") {
		t.Fatalf("a destination equal to the source topic: exit %d, stderr %s", r.code, r.stderr)
	}
}
