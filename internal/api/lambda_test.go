package api_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
)

func lambdaCall(t *testing.T, base, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json") // as the AWS CLI sends
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header, out
}

const esmCreate = `{"FunctionName":"http://127.0.0.1:9000/","Topics":["orders"],"StartingPosition":"TRIM_HORIZON",
"SelfManagedEventSource":{"Endpoints":{"KAFKA_BOOTSTRAP_SERVERS":["127.0.0.1:9092"]}},"BatchSize":50}`

// TestLambdaShapes checks the event source mapping API's status codes,
// field names and error shapes against the lambda 2015-03-31 model.
func TestLambdaShapes(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", esmCreate)
	if status != 202 {
		t.Fatalf("create: %d %v", status, c)
	}
	id, _ := c["UUID"].(string)
	if len(id) != 36 || c["State"] != "Creating" || c["BatchSize"] != 50.0 || c["FunctionArn"] != "http://127.0.0.1:9000/" ||
		c["LastProcessingResult"] != pipe.ResultNoRecords || c["MaximumBatchingWindowInSeconds"] != 1.0 {
		t.Fatalf("create answered %v", c)
	}
	if _, ok := c["LastModified"].(float64); !ok {
		t.Fatalf("LastModified %v is not epoch seconds", c["LastModified"])
	}
	if g := c["SelfManagedKafkaEventSourceConfig"].(map[string]any)["ConsumerGroupId"]; g != id {
		t.Fatalf("ConsumerGroupId %v, want the UUID", g)
	}

	status, _, c = lambdaCall(t, srv.URL, "GET", "/2015-03-31/event-source-mappings/"+id, "")
	if status != 200 || c["UUID"] != id {
		t.Fatalf("get: %d %v", status, c)
	}
	status, _, c = lambdaCall(t, srv.URL, "PUT", "/2015-03-31/event-source-mappings/"+id, `{"BatchSize":500,"Enabled":false}`)
	if status != 202 || c["BatchSize"] != 500.0 || c["State"] != "Disabling" {
		t.Fatalf("update: %d %v", status, c)
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
		typ, msg           string
	}{
		{"GET", "/2015-03-31/event-source-mappings/00000000-0000-0000-0000-000000000000", "", 404, "ResourceNotFoundException", "does not exist"},
		{"POST", "/2015-03-31/event-source-mappings/", `{"Topics":["t"]}`, 400, "InvalidParameterValueException", "FunctionName is required"},
		{"POST", "/2015-03-31/event-source-mappings/", `{"FunctionName":"f","Colour":"blue"}`, 400, "InvalidParameterValueException", `Unknown parameter "Colour"`},
		{"POST", "/2015-03-31/event-source-mappings/", strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":50,"ScalingConfig":{"MaximumConcurrency":2}`, 1), 400, "InvalidParameterValueException", "ScalingConfig is not supported"},
		{"POST", "/2015-03-31/event-source-mappings/", strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":50000`, 1), 400, "InvalidParameterValueException", "BatchSize"},
		{"POST", "/2015-03-31/event-source-mappings/", strings.Replace(esmCreate, "http://127.0.0.1:9000/", "billing", 1), 404, "ResourceNotFoundException", "Function not found: billing"},
		{"POST", "/2015-03-31/event-source-mappings/", `{"FunctionName":"http://x/","EventSourceArn":"arn:aws:kafka:us-east-1:123456789012:cluster/c/1","Topics":["t"]}`, 400, "InvalidParameterValueException", "no MSK cluster is registered in Sluice with this ARN"},
		{"POST", "/2015-03-31/event-source-mappings/", `{"FunctionName":"http://x/","EventSourceArn":"arn:aws:sqs:us-east-1:123456789012:q","Topics":["t"]}`, 400, "InvalidParameterValueException", "MSK cluster ARN"},
		{"PUT", "/2015-03-31/event-source-mappings/" + id, `{"Topics":["other"]}`, 400, "InvalidParameterValueException", "Topics can be set only when"},
		// Strict bodies: exact names, no duplicates, nothing after, numbers
		// that fit, and a size limit answered as Lambda does.
		{"POST", "/2015-03-31/event-source-mappings/", `{"functionName":"f"}`, 400, "InvalidParameterValueException", `Unknown parameter "functionName"`},
		{"POST", "/2015-03-31/event-source-mappings/", `{"FunctionName":"a","FunctionName":"b"}`, 400, "InvalidParameterValueException", "field FunctionName: appears twice"},
		{"POST", "/2015-03-31/event-source-mappings/", esmCreate + `{}`, 400, "InvalidParameterValueException", "data after its JSON value"},
		{"POST", "/2015-03-31/event-source-mappings/", strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":50,"StartingPositionTimestamp":1e300`, 1), 400, "InvalidParameterValueException", "StartingPositionTimestamp 1e+300: give Unix seconds"},
		{"POST", "/2015-03-31/event-source-mappings/", strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":1e20`, 1), 400, "InvalidParameterValueException", "field BatchSize: number 1e20 does not fit: want an integer"},
		{"POST", "/2015-03-31/event-source-mappings/", `{"FunctionName":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "RequestTooLargeException", "larger than"},
	} {
		status, hdr, body := lambdaCall(t, srv.URL, tc.method, tc.path, tc.body)
		msg, _ := body["message"].(string)
		if status != tc.status || hdr.Get("x-amzn-errortype") != tc.typ || !strings.Contains(msg, tc.msg) || body["Type"] != "User" {
			t.Errorf("%s %s %s: %d %s %v; want %d %s containing %q", tc.method, tc.path, tc.body, status, hdr.Get("x-amzn-errortype"), body, tc.status, tc.typ, tc.msg)
		}
	}

	// A registered function is a target by name or ARN.
	if _, err := svc.PutFunction(t.Context(), pipe.Function{Name: "billing", URL: "http://127.0.0.1:9100/"}); err != nil {
		t.Fatal(err)
	}
	status, _, c = lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", strings.Replace(esmCreate, "http://127.0.0.1:9000/", "arn:aws:lambda:us-east-1:123456789012:function:billing", 1))
	if status != 202 || c["FunctionArn"] != "arn:aws:lambda:sluice:000000000000:function:billing" {
		t.Fatalf("create with a function ARN: %d %v", status, c)
	}

	status, _, c = lambdaCall(t, srv.URL, "DELETE", "/2015-03-31/event-source-mappings/"+id, "")
	if status != 202 || c["State"] != "Deleting" {
		t.Fatalf("delete: %d %v", status, c)
	}
}

// TestLambdaListPages: at most MaxItems and never more than 100 a page,
// NextMarker until the last page, every mapping exactly once, and the
// FunctionName filter.
func TestLambdaListPages(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	if _, err := svc.PutFunction(t.Context(), pipe.Function{Name: "billing", URL: "http://127.0.0.1:9100/"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 130; i++ {
		fn := "http://127.0.0.1:9000/"
		if i%10 == 0 {
			fn = "billing"
		}
		body := strings.Replace(esmCreate, "http://127.0.0.1:9000/", fn, 1)
		if status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body); status != 202 {
			t.Fatalf("create %d: %d %v", i, status, c)
		}
	}
	seen := map[string]bool{}
	marker := ""
	pages := 0
	for {
		path := "/2015-03-31/event-source-mappings/?MaxItems=1000"
		if marker != "" {
			path += "&Marker=" + marker
		}
		status, _, body := lambdaCall(t, srv.URL, "GET", path, "")
		if status != 200 {
			t.Fatalf("list: %d %v", status, body)
		}
		page := body["EventSourceMappings"].([]any)
		if len(page) > 100 {
			t.Fatalf("a page of %d", len(page))
		}
		for _, m := range page {
			id := m.(map[string]any)["UUID"].(string)
			if seen[id] {
				t.Fatalf("%s listed twice", id)
			}
			seen[id] = true
		}
		pages++
		next, _ := body["NextMarker"].(string)
		if next == "" {
			break
		}
		marker = next
	}
	if len(seen) != 130 || pages != 2 {
		t.Fatalf("%d mappings over %d pages, want 130 over 2", len(seen), pages)
	}
	status, _, body := lambdaCall(t, srv.URL, "GET", "/2015-03-31/event-source-mappings/?FunctionName=billing&MaxItems=5", "")
	if n := len(body["EventSourceMappings"].([]any)); status != 200 || n != 5 || body["NextMarker"] == nil {
		t.Fatalf("filtered page: %d, %d items, marker %v", status, n, body["NextMarker"])
	}
	status, _, body = lambdaCall(t, srv.URL, "GET", fmt.Sprintf("/2015-03-31/event-source-mappings/?FunctionName=%s", "arn:aws:lambda:x:1:function:billing"), "")
	if n := len(body["EventSourceMappings"].([]any)); status != 200 || n != 13 {
		t.Fatalf("filter by ARN: %d, %d items, want 13", status, n)
	}
}

// TestLambdaEventSourceArn creates a mapping on an MSK cluster registered
// in Sluice by its ARN, and lists mappings by that ARN.
func TestLambdaEventSourceArn(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	const arn = "arn:aws:kafka:eu-west-1:123456789012:cluster/prod/6f1c2b3a-1"
	if _, err := svc.PutCluster(t.Context(), cluster.Cluster{Name: "prod", MSK: true, ARN: arn, Auth: cluster.AuthNone,
		BootstrapServers: []string{"b-1.prod.kafka.eu-west-1.amazonaws.com:9092"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutCluster(t.Context(), cluster.Cluster{Name: "onprem", BootstrapServers: []string{"kafka:9092"}}); err != nil {
		t.Fatal(err)
	}
	status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", `{"FunctionName":"http://127.0.0.1:9000/",
		"EventSourceArn":"`+arn+`","Topics":["orders"],"AmazonManagedKafkaEventSourceConfig":{"ConsumerGroupId":"billing"}}`)
	if status != 202 || c["EventSourceArn"] != arn || c["SelfManagedEventSource"] != nil {
		t.Fatalf("create: %d %v", status, c)
	}
	if g := c["AmazonManagedKafkaEventSourceConfig"].(map[string]any)["ConsumerGroupId"]; g != "billing" {
		t.Fatalf("ConsumerGroupId %v", g)
	}
	id := c["UUID"].(string)
	p, err := svc.ListPipes(t.Context())
	if err != nil || len(p) != 1 || p[0].Cluster != "prod" || len(p[0].BootstrapServers) != 0 {
		t.Fatalf("stored as %+v, %v", p, err)
	}
	// Another mapping on brokers given inline.
	if status, _, c = lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", esmCreate); status != 202 {
		t.Fatalf("create inline: %d %v", status, c)
	}
	for filter, want := range map[string]int{arn: 1, "arn:aws:kafka:eu-west-1:123456789012:cluster/other/1": 0, "": 2} {
		status, _, c = lambdaCall(t, srv.URL, "GET", "/2015-03-31/event-source-mappings/?EventSourceArn="+filter, "")
		if got := c["EventSourceMappings"].([]any); status != 200 || len(got) != want {
			t.Fatalf("list EventSourceArn=%q: %d %v", filter, status, c)
		}
	}
	for _, body := range []string{
		`{"FunctionName":"http://x/","EventSourceArn":"arn:aws:kafka:eu-west-1:123456789012:cluster/prod/other-id","Topics":["t"]}`,
		`{"FunctionName":"http://x/","EventSourceArn":"arn:aws:kafka:eu-west-1:123456789012:cluster/onprem/1","Topics":["t"]}`,
		`{"FunctionName":"http://x/","EventSourceArn":"` + arn + `","Topics":["t"],"SelfManagedEventSource":{"Endpoints":{"KAFKA_BOOTSTRAP_SERVERS":["a:1"]}}}`,
		`{"FunctionName":"http://x/","EventSourceArn":"` + arn + `","Topics":["t"],"SelfManagedKafkaEventSourceConfig":{"ConsumerGroupId":"g"}}`,
	} {
		if status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body); status != 400 || c["Type"] != "User" {
			t.Errorf("%s: %d %v, want 400 InvalidParameterValueException", body, status, c)
		}
	}
	if status, _, c := lambdaCall(t, srv.URL, "PUT", "/2015-03-31/event-source-mappings/"+id, `{"EventSourceArn":"`+arn+`"}`); status != 400 ||
		!strings.Contains(fmt.Sprint(c["message"]), "only when the event source mapping is created") {
		t.Fatalf("update of EventSourceArn: %d %v", status, c)
	}
	// A cluster in use cannot be deleted.
	if err := svc.DeleteCluster(t.Context(), "prod"); !errors.Is(err, cluster.ErrInUse) {
		t.Fatalf("delete cluster in use: %v", err)
	}

	// The README's walkthrough: the cluster is registered under a name of
	// its own with --arn; the ARN, not the name inside it, finds it.
	const walkthrough = "arn:aws:kafka:us-east-1:123456789012:cluster/prod/abcd-1234"
	if _, err := svc.PutCluster(t.Context(), cluster.Cluster{Name: "msk", MSK: true, ARN: walkthrough, Auth: cluster.AuthNone,
		BootstrapServers: []string{"b-1.msk.example.com:9092"}}); err != nil {
		t.Fatal(err)
	}
	status, _, c = lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", `{"FunctionName":"http://127.0.0.1:9000/",
		"EventSourceArn":"`+walkthrough+`","Topics":["orders"]}`)
	if status != 202 || c["EventSourceArn"] != walkthrough {
		t.Fatalf("create by the registered ARN of cluster msk: %d %v", status, c)
	}
	status, _, c = lambdaCall(t, srv.URL, "GET", "/2015-03-31/event-source-mappings/?EventSourceArn="+walkthrough, "")
	if got := c["EventSourceMappings"].([]any); status != 200 || len(got) != 1 {
		t.Fatalf("list by the registered ARN: %d %v", status, c)
	}
}

// TestLambdaSourceAccessConfigurations creates a mapping whose brokers'
// auth comes from SourceAccessConfigurations naming Sluice secrets in the
// reference's formats, changes it, and deletes it with its cluster.
func TestLambdaSourceAccessConfigurations(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	ctx := t.Context()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("..", "certs", "testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, s := range []secret.Secret{
		{Name: "kafka-creds", Type: secret.Generic, Data: map[string][]byte{"username": []byte("alice"), "password": []byte("pw")}},
		{Name: "kafka-ca", Type: secret.TLSCA, Data: map[string][]byte{"certificate": read("ca.pem")}},
		{Name: "kafka-client", Type: secret.TLSClient, Data: map[string][]byte{"certificate": read("rsa-chain.pem"), "privateKey": read("rsa-key-pkcs8.pem")}},
		{Name: "no-user", Type: secret.Generic, Data: map[string][]byte{"password": []byte("pw")}},
	} {
		if _, err := svc.PutSecret(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	body := func(access string) string {
		return `{"FunctionName":"http://127.0.0.1:9000/","Topics":["orders"],
		"SelfManagedEventSource":{"Endpoints":{"KAFKA_BOOTSTRAP_SERVERS":["b-1:9096"]}},"SourceAccessConfigurations":` + access + `}`
	}
	status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body(`[
		{"Type":"SASL_SCRAM_512_AUTH","URI":"arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-creds"},
		{"Type":"SERVER_ROOT_CA_CERTIFICATE","URI":"kafka-ca"}]`))
	if status != 202 {
		t.Fatalf("create: %d %v", status, c)
	}
	id := c["UUID"].(string)
	if got := fmt.Sprint(c["SourceAccessConfigurations"]); !strings.Contains(got, "SASL_SCRAM_512_AUTH") || !strings.Contains(got, "SERVER_ROOT_CA_CERTIFICATE") {
		t.Fatalf("create echoed SourceAccessConfigurations %v", got)
	}
	ps, _ := svc.ListPipes(ctx)
	cl, err := svc.GetCluster(ctx, ps[0].Cluster)
	if err != nil || cl.Owner != ps[0].Name || cl.EffectiveAuth() != cluster.AuthScramSHA512 || cl.CACertSecret != "kafka-ca" || cl.BootstrapServers[0] != "b-1:9096" {
		t.Fatalf("the mapping's cluster: %+v %v", cl, err)
	}

	status, _, c = lambdaCall(t, srv.URL, "PUT", "/2015-03-31/event-source-mappings/"+id, `{"SourceAccessConfigurations":[
		{"Type":"CLIENT_CERTIFICATE_TLS_AUTH","URI":"kafka-client"},{"Type":"SERVER_ROOT_CA_CERTIFICATE","URI":"kafka-ca"}]}`)
	if status != 202 || !strings.Contains(fmt.Sprint(c["SourceAccessConfigurations"]), "CLIENT_CERTIFICATE_TLS_AUTH") {
		t.Fatalf("update: %d %v", status, c)
	}
	if cl, _ = svc.GetCluster(ctx, ps[0].Cluster); cl.EffectiveAuth() != cluster.AuthMTLS {
		t.Fatalf("after the update the cluster uses %s", cl.EffectiveAuth())
	}

	for access, want := range map[string]string{
		`[{"Type":"BASIC_AUTH","URI":"missing"}]`:                                                        "does not exist",
		`[{"Type":"BASIC_AUTH","URI":"no-user"}]`:                                                        `no key "username"`,
		`[{"Type":"VPC_SUBNET","URI":"subnet:subnet-1"}]`:                                                "VPC",
		`[{"Type":"BASIC_AUTH","URI":"kafka-creds"},{"Type":"SASL_SCRAM_256_AUTH","URI":"kafka-creds"}]`: "one of",
		`[{"Type":"KERBEROS","URI":"x"}]`:                                                                "KERBEROS",
	} {
		status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body(access))
		if status != 400 || !strings.Contains(fmt.Sprint(c["message"]), want) {
			t.Errorf("%s: %d %v, want 400 saying %q", access, status, c, want)
		}
	}
	// kafka-creds is now bound to b-1:9096 (the first mapping's
	// brokers): a mapping that would send it elsewhere is refused.
	evil := strings.Replace(body(`[{"Type":"SASL_SCRAM_512_AUTH","URI":"kafka-creds"}]`), "b-1:9096", "attacker.example:9092", 1)
	if status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", evil); status != 400 ||
		!strings.Contains(fmt.Sprint(c["message"]), `secret "kafka-creds" may be sent only to the hosts it is bound to (b-1:9096)`) ||
		!strings.Contains(fmt.Sprint(c["message"]), "attacker.example:9092") {
		t.Errorf("mapping sending a bound secret elsewhere: %d %v", status, c)
	}
	if all, _ := svc.ListClusters(ctx); len(all) != 1 {
		t.Fatalf("refused mappings left clusters behind: %+v", all)
	}

	if status, _, c := lambdaCall(t, srv.URL, "DELETE", "/2015-03-31/event-source-mappings/"+id, ""); status != 202 {
		t.Fatalf("delete: %d %v", status, c)
	}
	if all, _ := svc.ListClusters(ctx); len(all) != 0 {
		t.Fatalf("the mapping's cluster outlived it: %+v", all)
	}
}

// TestLambdaFailureHandling: DestinationConfig, FunctionResponseTypes,
// BisectBatchOnFunctionError and the limits are taken, stored and echoed;
// limits without a destination discard, as the reference drops; values
// Sluice cannot honour are refused naming the field.
func TestLambdaFailureHandling(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	body := strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":50,"DestinationConfig":{"OnFailure":{"Destination":"kafka://dlq"}},`+
		`"MaximumRetryAttempts":2,"BisectBatchOnFunctionError":true,"FunctionResponseTypes":["ReportBatchItemFailures"]`, 1)
	status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body)
	if status != 202 {
		t.Fatalf("create: %d %v", status, c)
	}
	id, _ := c["UUID"].(string)
	_, _, c = lambdaCall(t, srv.URL, "GET", "/2015-03-31/event-source-mappings/"+id, "")
	dc, _ := json.Marshal(c["DestinationConfig"])
	rt, _ := json.Marshal(c["FunctionResponseTypes"])
	if string(dc) != `{"OnFailure":{"Destination":"kafka://dlq"}}` || string(rt) != `["ReportBatchItemFailures"]` ||
		c["BisectBatchOnFunctionError"] != true || c["MaximumRetryAttempts"] != 2.0 {
		t.Fatalf("get echoed %s, %s, %v, %v", dc, rt, c["BisectBatchOnFunctionError"], c["MaximumRetryAttempts"])
	}
	ps, _ := svc.ListPipes(t.Context())
	if len(ps) != 1 || ps[0].OnFailure.Destination != "kafka://dlq" || ps[0].OnFailure.Discard || !ps[0].Target.HTTP.ReportBatchItemFailures {
		t.Fatalf("stored %+v", ps)
	}

	// An update that clears the destination but keeps the limit discards.
	status, _, c = lambdaCall(t, srv.URL, "PUT", "/2015-03-31/event-source-mappings/"+id, `{"DestinationConfig":{"OnFailure":{}},"FunctionResponseTypes":[]}`)
	if status != 202 {
		t.Fatalf("update: %d %v", status, c)
	}
	ps, _ = svc.ListPipes(t.Context())
	if ps[0].OnFailure.Destination != "" || !ps[0].OnFailure.Discard || ps[0].Target.HTTP.ReportBatchItemFailures {
		t.Fatalf("after clearing the destination: %+v, partial responses %v", ps[0].OnFailure, ps[0].Target.HTTP.ReportBatchItemFailures)
	}

	for _, c := range []struct{ name, body, say string }{
		{"sqs", `"DestinationConfig":{"OnFailure":{"Destination":"arn:aws:sqs:us-east-1:123456789012:q"}}`, "Sluice has no SQS, SNS or S3"},
		{"on success", `"DestinationConfig":{"OnSuccess":{"Destination":"kafka://ok"}}`, "OnSuccess is not supported"},
		{"response type", `"FunctionResponseTypes":["Everything"]`, "FunctionResponseTypes"},
		{"source topic", `"DestinationConfig":{"OnFailure":{"Destination":"kafka://orders"}}`, "DestinationConfig.OnFailure.Destination"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, _, out := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":50,`+c.body, 1))
			msg, _ := out["message"].(string)
			if status != 400 || !strings.Contains(msg, c.say) {
				t.Fatalf("%d %v, want 400 saying %q", status, out, c.say)
			}
		})
	}
}

// FilterCriteria is taken, stored, echoed and removed by an empty list;
// an invalid pattern is InvalidParameterValueException naming the pattern
// and the position.
func TestLambdaFilterCriteria(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	body := strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":50,"FilterCriteria":{"Filters":[{"Pattern":"{\"value\":{\"status\":[\"shipped\"]}}"}]}`, 1)
	status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body)
	if status != 202 {
		t.Fatalf("create: %d %v", status, c)
	}
	id, _ := c["UUID"].(string)
	_, _, c = lambdaCall(t, srv.URL, "GET", "/2015-03-31/event-source-mappings/"+id, "")
	if fc, _ := json.Marshal(c["FilterCriteria"]); string(fc) != `{"Filters":[{"Pattern":"{\"value\":{\"status\":[\"shipped\"]}}"}]}` {
		t.Fatalf("get echoed FilterCriteria %s", fc)
	}
	status, _, c = lambdaCall(t, srv.URL, "PUT", "/2015-03-31/event-source-mappings/"+id, `{"FilterCriteria":{"Filters":[]}}`)
	if ps, _ := svc.ListPipes(t.Context()); status != 202 || ps[0].FilterCriteria != nil {
		t.Fatalf("update with no filters: %d %v, stored %+v", status, c, ps[0].FilterCriteria)
	}
	bad := strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":50,"FilterCriteria":{"Filters":[{"Pattern":"{\"value\":{\"n\":[{\"numeric\":[\">\",\"x\"]}]}}"}]}`, 1)
	status, h, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", bad)
	msg, _ := c["message"].(string)
	if status != 400 || h.Get("x-amzn-errortype") != "InvalidParameterValueException" || !strings.Contains(msg, "FilterCriteria.Filters[0].Pattern") || !strings.Contains(msg, "byte") {
		t.Fatalf("invalid pattern: %d %s %v", status, h.Get("x-amzn-errortype"), c)
	}
}
