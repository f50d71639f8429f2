package cli

import (
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// The kafka and exec kinds from the CLI: --target kafka://…, --key,
// --acks, --delivery, --command; get -o yaml round-trips through apply;
// update changes a kind's settings or the kind itself; bad values name
// their flag.
func TestKafkaAndExecTargetsFromFlags(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	sluice := func(args ...string) result {
		t.Helper()
		return run(t, nil, append([]string{"--api", srv.URL}, args...)...)
	}
	mustOK(t, sluice("pipes", "create", "copy", "--bootstrap-servers", "b:9092", "--topic", "in", "--target", "kafka://other/out",
		"--key", "header:ce-subject", "--delivery", "at_most_once", "--acks", "1", "--target-timeout", "10s"))
	k := getPipe(t, svc, "copy").Target.Kafka
	if k == nil || k.Cluster != "other" || k.Topic != "out" || k.Key != "header:ce-subject" || k.Delivery != pipe.AtMostOnce ||
		k.Acks != "1" || *k.Idempotence || k.DeliveryTimeoutSeconds != 10 {
		t.Fatalf("kafka section %+v", k)
	}
	yaml := mustOK(t, sluice("pipes", "get", "copy", "-o", "yaml")).stdout
	if !strings.Contains(yaml, "  kafka:\n    cluster: other\n    topic: out\n") {
		t.Fatalf("get -o yaml:\n%s", yaml)
	}
	if r := mustOK(t, sluice("apply", "-f", writeFile(t, yaml))); r.stdout != "pipe/copy unchanged\n" {
		t.Fatalf("apply of get -o yaml printed %q", r.stdout)
	}
	if out := mustOK(t, sluice("pipes", "get", "copy")).stdout; !strings.Contains(out, "kafka://other/out (AT_MOST_ONCE, acks 1, idempotent no, key header:ce-subject") {
		t.Fatalf("get:\n%s", out)
	}

	// acks back to all: idempotence follows again.
	mustOK(t, sluice("pipes", "update", "copy", "--acks", "all", "--delivery", "AT_LEAST_ONCE"))
	if k := getPipe(t, svc, "copy").Target.Kafka; k.Acks != "all" || !*k.Idempotence || k.Key != "header:ce-subject" || k.Topic != "out" {
		t.Fatalf("after update %+v", k)
	}
	r := sluice("pipes", "update", "copy", "--acks", "1")
	if r.code == 0 || !strings.Contains(r.stderr, "--acks") || !strings.Contains(r.stderr, "all in-sync replicas") {
		t.Fatalf("acks 1 with AT_LEAST_ONCE: exit %d, %s", r.code, r.stderr)
	}

	// The kind changes with --command, and back with --target URL.
	mustOK(t, sluice("pipes", "update", "copy", "--command", "./handle.sh --fast", "--target-timeout", "5s"))
	if tg := getPipe(t, svc, "copy").Target; tg.Exec == nil || tg.Kafka != nil || tg.HTTP != nil || strings.Join(tg.Exec.Command, "|") != "./handle.sh|--fast" || tg.Exec.TimeoutSeconds != 5 {
		t.Fatalf("after --command: %+v", tg)
	}
	mustOK(t, sluice("pipes", "update", "copy", "--target", "http://127.0.0.1:9000/"))
	if tg := getPipe(t, svc, "copy").Target; tg.HTTP == nil || tg.Exec != nil || tg.HTTP.URL != "http://127.0.0.1:9000/" {
		t.Fatalf("after --target URL: %+v", tg)
	}
	mustOK(t, sluice("pipes", "create", "cmd", "--bootstrap-servers", "b:9092", "--topic", "in", "--target", "exec:/bin/cat -u"))
	if e := getPipe(t, svc, "cmd").Target.Exec; e == nil || strings.Join(e.Command, " ") != "/bin/cat -u" {
		t.Fatalf("exec section %+v", e)
	}

	for _, bad := range [][]string{
		{"--target", "kafka://in", "--delivery", "EXACTLY_ONCE"}, // the topic it reads
		{"--target", "kafka://out", "--key", "value"},            // no such key
		{"--target", "kafka://out", "--delivery", "ALWAYS"},      // no such guarantee
	} {
		r := sluice(append([]string{"pipes", "create", "bad", "--bootstrap-servers", "b:9092", "--topic", "in"}, bad...)...)
		if r.code == 0 || !strings.Contains(r.stderr, "--") {
			t.Errorf("%v: exit %d, stderr %s", bad, r.code, r.stderr)
		}
	}
}

// The lambda kind from the CLI: --target lambda:FUNCTION (a name with its
// qualifier, or an ARN), --region, --endpoint-url, the timeout and partial
// responses following the target into its section; get shows it and
// get -o yaml round-trips through apply; bad values name their flag.
func TestLambdaTargetFromFlags(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	sluice := func(args ...string) result {
		t.Helper()
		return run(t, nil, append([]string{"--api", srv.URL}, args...)...)
	}
	mustOK(t, sluice("pipes", "create", "fn", "--bootstrap-servers", "b:9092", "--topic", "in", "--target", "lambda:orders:live",
		"--region", "eu-west-1", "--endpoint-url", "http://127.0.0.1:9001", "--target-timeout", "20s", "--report-batch-item-failures"))
	tg := getPipe(t, svc, "fn").Target
	if l := tg.Lambda; l == nil || tg.HTTP != nil || l.FunctionName != "orders:live" || l.Region != "eu-west-1" ||
		l.EndpointURL != "http://127.0.0.1:9001" || l.TimeoutSeconds != 20 || !l.ReportBatchItemFailures {
		t.Fatalf("target %+v (lambda %+v)", tg, tg.Lambda)
	}
	out := mustOK(t, sluice("pipes", "get", "fn")).stdout
	for _, want := range []string{"lambda:orders:live (region eu-west-1, endpoint http://127.0.0.1:9001)", "Target timeout:          20s", "Partial responses:       yes"} {
		if !strings.Contains(out, want) {
			t.Fatalf("get lacks %q:\n%s", want, out)
		}
	}
	yaml := mustOK(t, sluice("pipes", "get", "fn", "-o", "yaml")).stdout
	if !strings.Contains(yaml, "  lambda:\n    functionName: orders:live\n    region: eu-west-1\n    endpointUrl: http://127.0.0.1:9001\n") {
		t.Fatalf("get -o yaml:\n%s", yaml)
	}
	if r := mustOK(t, sluice("apply", "-f", writeFile(t, yaml))); r.stdout != "pipe/fn unchanged\n" {
		t.Fatalf("apply of get -o yaml printed %q", r.stdout)
	}

	arn := "arn:aws:lambda:us-east-2:123456789012:function:orders"
	mustOK(t, sluice("pipes", "create", "arn", "--bootstrap-servers", "b:9092", "--topic", "in", "--target", "lambda:"+arn))
	if l := getPipe(t, svc, "arn").Target.Lambda; l == nil || l.FunctionName != arn || l.Region != "" {
		t.Fatalf("lambda section %+v", l)
	}
	if out := mustOK(t, sluice("pipes", "get", "arn")).stdout; !strings.Contains(out, "lambda:"+arn+" (region us-east-2)") {
		t.Fatalf("get:\n%s", out)
	}
	if out := mustOK(t, sluice("pipes", "list")).stdout; !strings.Contains(out, "lambda:"+arn) {
		t.Fatalf("list:\n%s", out)
	}

	for _, bad := range []struct {
		args []string
		flag string
	}{
		{[]string{"--target", "lambda:"}, "--target"},
		{[]string{"--target", "lambda:my function"}, "--target"},
		{[]string{"--target", "lambda:orders", "--region", "Frankfurt"}, "--region"},
		{[]string{"--target", "lambda:" + arn, "--region", "eu-west-1"}, "--region"},
		{[]string{"--target", "lambda:orders", "--endpoint-url", "lambda.local"}, "--endpoint-url"},
		{[]string{"--target", "lambda:orders", "--payload-limit", "7000000"}, "--payload-limit"},
		{[]string{"--region", "eu-west-1"}, "--target"}, // no function
	} {
		r := sluice(append([]string{"pipes", "create", "bad", "--bootstrap-servers", "b:9092", "--topic", "in"}, bad.args...)...)
		if r.code == 0 || !strings.Contains(r.stderr, bad.flag) {
			t.Errorf("%v: exit %d, stderr %s; want it to name %s", bad.args, r.code, r.stderr, bad.flag)
		}
	}
}
