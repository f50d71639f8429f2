package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
	"github.com/sluice-dev/sluice/internal/store"
)

// pipesSigV4 is an Authorization header as the AWS CLI signs a Pipes API
// request: the credential scope's service is pipes.
func pipesSigV4(accessKeyID string) string {
	return "AWS4-HMAC-SHA256 Credential=" + accessKeyID + "/20260101/us-east-1/pipes/aws4_request, " +
		"SignedHeaders=content-type;host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
}

// pipesCall sends a request signed for the Pipes API, as the AWS CLI does.
func pipesCall(t *testing.T, base, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	return pipesCallAuth(t, base, method, path, body, pipesSigV4("AKIDEXAMPLE"))
}

func pipesCallAuth(t *testing.T, base, method, path, body, authz string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, resp.Header, out
}

const pipesCreate = `{"Source":"smk://127.0.0.1:9092","RoleArn":"arn:aws:iam::000000000000:role/x",
"SourceParameters":{"SelfManagedKafkaParameters":{"TopicName":"orders","StartingPosition":"TRIM_HORIZON","BatchSize":50},
 "FilterCriteria":{"Filters":[{"Pattern":"{\"value\":{\"status\":[\"shipped\"]}}"}]}},
"Target":"http://127.0.0.1:9000/","Description":"orders to billing"}`

// path reads a value of a decoded JSON object by its dotted path.
func path(m map[string]any, p string) any {
	var v any = m
	for _, k := range strings.Split(p, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// TestPipesAPIShapes checks the Pipes API's operations, status codes and
// field names against the pipes 2015-10-07 model, and the routing by the
// SigV4 credential scope.
func TestPipesAPIShapes(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	status, _, c := pipesCall(t, srv.URL, "POST", "/v1/pipes/orders", pipesCreate)
	if status != 200 || c["Arn"] != "arn:aws:pipes:sluice:000000000000:pipe/orders" || c["Name"] != "orders" ||
		c["CurrentState"] != "CREATING" || c["DesiredState"] != "RUNNING" {
		t.Fatalf("create: %d %v", status, c)
	}
	for _, f := range []string{"CreationTime", "LastModifiedTime"} {
		if v, ok := c[f].(float64); !ok || v < 1e9 {
			t.Fatalf("%s %v is not epoch seconds", f, c[f])
		}
	}
	p, err := svc.GetPipe(t.Context(), "orders")
	if err != nil || p.Format != pipe.FormatPipes || p.Topics[0] != "orders" || p.BatchSize != 50 || p.BootstrapServers[0] != "127.0.0.1:9092" ||
		p.Target.HTTP.URL != "http://127.0.0.1:9000/" || p.Description != "orders to billing" || len(p.FilterCriteria.Patterns()) != 1 {
		t.Fatalf("the stored pipe: %+v %v", p, err)
	}

	status, _, d := pipesCall(t, srv.URL, "GET", "/v1/pipes/orders", "")
	if status != 200 || d["Source"] != "smk://127.0.0.1:9092" || d["Target"] != "http://127.0.0.1:9000/" || d["Description"] != "orders to billing" ||
		path(d, "SourceParameters.SelfManagedKafkaParameters.TopicName") != "orders" ||
		path(d, "SourceParameters.SelfManagedKafkaParameters.BatchSize") != 50.0 ||
		path(d, "SourceParameters.SelfManagedKafkaParameters.StartingPosition") != "TRIM_HORIZON" ||
		path(d, "SourceParameters.SelfManagedKafkaParameters.ConsumerGroupID") != p.UUID ||
		!strings.Contains(fmt.Sprint(path(d, "SourceParameters.FilterCriteria")), `shipped`) {
		t.Fatalf("describe: %d %v", status, d)
	}

	// The same path without the pipes scope is the native API's; signed
	// for another service too.
	for _, authz := range []string{"", "Bearer x", sigV4("AKIDEXAMPLE")} {
		status, _, n := pipesCallAuth(t, srv.URL, "GET", "/v1/pipes/orders", "", authz)
		if status != 200 || n["name"] != "orders" || n["Name"] != nil {
			t.Fatalf("native describe with Authorization %q: %d %v", authz, status, n)
		}
	}

	status, _, u := pipesCall(t, srv.URL, "PUT", "/v1/pipes/orders", `{"RoleArn":"arn:aws:iam::000000000000:role/x",
		"SourceParameters":{"SelfManagedKafkaParameters":{"BatchSize":10}},"DesiredState":"STOPPED",
		"TargetParameters":{"InputTemplate":"{\"id\": <$.offset>}","HttpParameters":{"HeaderParameters":{"X-Api-Key":"k1"}}},
		"Enrichment":"http://127.0.0.1:9001/enrich","EnrichmentParameters":{"InputTemplate":"<$.value>"}}`)
	if status != 200 || u["CurrentState"] != "STOPPING" || u["DesiredState"] != "STOPPED" {
		t.Fatalf("update: %d %v", status, u)
	}
	p, _ = svc.GetPipe(t.Context(), "orders")
	if p.BatchSize != 10 || p.IsEnabled() || p.InputTemplate != `{"id": <$.offset>}` || p.Target.HTTP.Headers["X-Api-Key"] != "k1" ||
		p.Enrichment == nil || p.Enrichment.URL != "http://127.0.0.1:9001/enrich" || p.Enrichment.InputTemplate != "<$.value>" ||
		len(p.FilterCriteria.Patterns()) != 1 || p.Description != "orders to billing" || p.BatchingWindow().Seconds() != pipe.DefaultBatchingWindowSeconds {
		t.Fatalf("after the update: %+v", p)
	}
	_, _, d = pipesCall(t, srv.URL, "GET", "/v1/pipes/orders", "")
	if d["Enrichment"] != "http://127.0.0.1:9001/enrich" || path(d, "EnrichmentParameters.InputTemplate") != "<$.value>" ||
		path(d, "TargetParameters.InputTemplate") != `{"id": <$.offset>}` || path(d, "TargetParameters.HttpParameters.HeaderParameters.X-Api-Key") != "k1" {
		t.Fatalf("describe after the update: %v", d)
	}
	// An empty filter list removes the filter; an empty Enrichment the
	// enrichment.
	status, _, u = pipesCall(t, srv.URL, "PUT", "/v1/pipes/orders", `{"RoleArn":"arn:aws:iam::000000000000:role/x",
		"SourceParameters":{"FilterCriteria":{"Filters":[]}},"Enrichment":""}`)
	if p, _ = svc.GetPipe(t.Context(), "orders"); status != 200 || p.FilterCriteria != nil || p.Enrichment != nil {
		t.Fatalf("update removing the filter and enrichment: %d %v %+v", status, u, p)
	}

	status, _, s := pipesCall(t, srv.URL, "POST", "/v1/pipes/orders/start", "")
	if status != 200 || s["CurrentState"] != "STARTING" || s["DesiredState"] != "RUNNING" {
		t.Fatalf("start: %d %v", status, s)
	}
	status, _, s = pipesCall(t, srv.URL, "POST", "/v1/pipes/orders/stop", "{}")
	if status != 200 || s["CurrentState"] != "STOPPING" || s["DesiredState"] != "STOPPED" {
		t.Fatalf("stop: %d %v", status, s)
	}

	status, _, tags := pipesCall(t, srv.URL, "GET", "/tags/"+strings.ReplaceAll("arn:aws:pipes:sluice:000000000000:pipe/orders", "/", "%2F"), "")
	if status != 200 || fmt.Sprint(tags["tags"]) != "map[]" {
		t.Fatalf("list-tags-for-resource: %d %v", status, tags)
	}

	status, _, del := pipesCall(t, srv.URL, "DELETE", "/v1/pipes/orders", "")
	if status != 200 || del["CurrentState"] != "DELETING" || del["DesiredState"] != "DELETED" || del["Name"] != "orders" {
		t.Fatalf("delete: %d %v", status, del)
	}
	status, h, nf := pipesCall(t, srv.URL, "GET", "/v1/pipes/orders", "")
	if status != 404 || h.Get("x-amzn-errortype") != "NotFoundException" || !strings.Contains(fmt.Sprint(nf["message"]), "orders") {
		t.Fatalf("describe after delete: %d %v %v", status, h, nf)
	}
}

// TestPipesAPIList checks ListPipes' filters and paging.
func TestPipesAPIList(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	if _, err := svc.PutFunction(t.Context(), pipe.Function{Name: "billing", URL: "http://127.0.0.1:9100/"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, source, target, state string }{
		{"a1", "smk://127.0.0.1:9092", "http://127.0.0.1:9000/", "RUNNING"},
		{"a2", "smk://127.0.0.1:9092", "arn:aws:lambda:us-east-1:123456789012:function:billing", "STOPPED"},
		{"a3", "smk://10.0.0.1:9092", "arn:aws:events:us-east-1:123456789012:api-destination/billing/0a1b", "RUNNING"},
		{"b1", "smk://127.0.0.1:9092", "http://127.0.0.1:9000/", "STOPPED"},
	} {
		body := fmt.Sprintf(`{"Source":%q,"Target":%q,"RoleArn":"arn:aws:iam::000000000000:role/x","DesiredState":%q,
			"SourceParameters":{"SelfManagedKafkaParameters":{"TopicName":"t-%s"}}}`, c.source, c.target, c.state, c.name)
		if status, _, out := pipesCall(t, srv.URL, "POST", "/v1/pipes/"+c.name, body); status != 200 {
			t.Fatalf("create %s: %d %v", c.name, status, out)
		}
	}
	names := func(out map[string]any) string {
		var ns []string
		for _, p := range out["Pipes"].([]any) {
			ns = append(ns, p.(map[string]any)["Name"].(string))
		}
		return strings.Join(ns, ",")
	}
	for _, tc := range []struct{ query, want string }{
		{"", "a1,a2,a3,b1"},
		{"?NamePrefix=a", "a1,a2,a3"},
		{"?DesiredState=STOPPED", "a2,b1"},
		{"?CurrentState=STOPPED", "a2,b1"},
		{"?CurrentState=CREATING", "a1,a3"},
		{"?SourcePrefix=smk://10.", "a3"},
		{"?TargetPrefix=arn:aws:lambda:sluice:000000000000:function:billing", "a2,a3"},
		{"?TargetPrefix=http&NamePrefix=b", "b1"},
	} {
		status, _, out := pipesCall(t, srv.URL, "GET", "/v1/pipes"+tc.query, "")
		if status != 200 || names(out) != tc.want || out["NextToken"] != nil {
			t.Errorf("list%s: %d %v, want %s", tc.query, status, out, tc.want)
		}
	}
	_, _, out := pipesCall(t, srv.URL, "GET", "/v1/pipes?Limit=1", "")
	if p := out["Pipes"].([]any)[0].(map[string]any); p["Source"] != "smk://127.0.0.1:9092" || p["Target"] != "http://127.0.0.1:9000/" ||
		p["Arn"] != "arn:aws:pipes:sluice:000000000000:pipe/a1" || p["CurrentState"] != "CREATING" || p["DesiredState"] != "RUNNING" {
		t.Fatalf("a list entry: %v", p)
	}
	var all []string
	tok := ""
	for i := 0; ; i++ {
		q := "?Limit=3&NamePrefix=a"
		if tok != "" {
			q += "&NextToken=" + tok
		}
		status, _, out := pipesCall(t, srv.URL, "GET", "/v1/pipes"+q, "")
		if status != 200 || i > 3 {
			t.Fatalf("page %d: %d %v", i, status, out)
		}
		all = append(all, names(out))
		next, _ := out["NextToken"].(string)
		if next == "" {
			break
		}
		tok = next
	}
	if got := strings.Join(all, "|"); got != "a1,a2,a3" {
		t.Fatalf("pages of 3 of a*: %s", got)
	}
	_, _, out = pipesCall(t, srv.URL, "GET", "/v1/pipes?Limit=2", "")
	if names(out) != "a1,a2" || out["NextToken"] == nil {
		t.Fatalf("Limit=2: %v", out)
	}
	_, _, out = pipesCall(t, srv.URL, "GET", "/v1/pipes?Limit=2&NextToken="+out["NextToken"].(string), "")
	if names(out) != "a3,b1" || out["NextToken"] != nil {
		t.Fatalf("Limit=2, second page: %v", out)
	}
	for _, q := range []string{"?Limit=0", "?Limit=101", "?DesiredState=DELETED", "?CurrentState=running", "?NextToken=%21%21"} {
		status, h, out := pipesCall(t, srv.URL, "GET", "/v1/pipes"+q, "")
		if status != 400 || h.Get("x-amzn-errortype") != "ValidationException" {
			t.Errorf("list%s: %d %v %v", q, status, h.Get("x-amzn-errortype"), out)
		}
	}
}

// TestPipesAPIErrors checks the error types and the fieldList of
// ValidationException, each naming the Pipes field.
func TestPipesAPIErrors(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	if status, _, out := pipesCall(t, srv.URL, "POST", "/v1/pipes/orders", pipesCreate); status != 200 {
		t.Fatalf("create: %d %v", status, out)
	}
	if _, err := svc.PutCluster(t.Context(), cluster.Cluster{Name: "plain", BootstrapServers: []string{"127.0.0.1:9092"}, Auth: cluster.AuthNone}); err != nil {
		t.Fatal(err)
	}
	with := func(old, new string) string {
		if !strings.Contains(pipesCreate, old) {
			t.Fatalf("%q is not in the create body", old)
		}
		return strings.Replace(pipesCreate, old, new, 1)
	}
	const smk = "SourceParameters.SelfManagedKafkaParameters"
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		typ, field, msg          string
	}{
		{"unknown pipe", "GET", "/v1/pipes/nope", "", 404, "NotFoundException", "", "Pipe nope does not exist"},
		{"update unknown", "PUT", "/v1/pipes/nope", `{"RoleArn":"arn:aws:iam::000000000000:role/x"}`, 404, "NotFoundException", "", "nope"},
		{"start unknown", "POST", "/v1/pipes/nope/start", "", 404, "NotFoundException", "", "nope"},
		{"delete unknown", "DELETE", "/v1/pipes/nope", "", 404, "NotFoundException", "", "nope"},
		{"existing name", "POST", "/v1/pipes/orders", pipesCreate, 409, "ConflictException", "", "already exists"},
		{"batch size", "POST", "/v1/pipes/p2", with(`"BatchSize":50`, `"BatchSize":20000`), 400, "ValidationException", smk + ".BatchSize", "1–10000"},
		{"pattern", "POST", "/v1/pipes/p2", with(`[\"shipped\"]`, `[{\"numeric\":[\">\",\"x\"]}]`), 400, "ValidationException", "SourceParameters.FilterCriteria.Filters[0].Pattern", ""},
		{"name", "POST", "/v1/pipes/a.b", pipesCreate, 400, "ValidationException", "Name", ""},
		{"broker", "POST", "/v1/pipes/p2", with(`smk://127.0.0.1:9092`, `smk://127.0.0.1:99999`), 400, "ValidationException", "Source", "port"},
		{"target URL", "POST", "/v1/pipes/p2", with(`http://127.0.0.1:9000/`, `http://u:pw@127.0.0.1:9000/`), 400, "ValidationException", "Target", "credentials"},
		{"no role", "POST", "/v1/pipes/p2", with(`"RoleArn":"arn:aws:iam::000000000000:role/x",`, ``), 400, "ValidationException", "RoleArn", "required"},
		{"no topic", "POST", "/v1/pipes/p2", with(`"TopicName":"orders",`, ``), 400, "ValidationException", smk + ".TopicName", "required"},
		{"AT_TIMESTAMP", "POST", "/v1/pipes/p2", with(`"TRIM_HORIZON"`, `"AT_TIMESTAMP"`), 400, "ValidationException", smk + ".StartingPosition", "TRIM_HORIZON or LATEST"},
		{"unknown parameter", "POST", "/v1/pipes/p2", with(`"Description"`, `"Colour":"blue","Description"`), 400, "ValidationException", "Colour", "not a parameter"},
		{"tags", "POST", "/v1/pipes/p2", with(`"Description"`, `"Tags":{"team":"a"},"Description"`), 400, "ValidationException", "Tags", "tags"},
		{"log configuration", "POST", "/v1/pipes/p2", with(`"Description"`, `"LogConfiguration":{"Level":"INFO"},"Description"`), 400, "ValidationException", "LogConfiguration", ""},
		{"kms", "POST", "/v1/pipes/p2", with(`"Description"`, `"KmsKeyIdentifier":"k","Description"`), 400, "ValidationException", "KmsKeyIdentifier", ""},
		{"vpc", "POST", "/v1/pipes/p2", with(`"BatchSize":50`, `"BatchSize":50,"Vpc":{"Subnets":["s"]}`), 400, "ValidationException", smk + ".Vpc", "network"},
		{"sqs source", "POST", "/v1/pipes/p2", with(`"smk://127.0.0.1:9092"`, `"arn:aws:sqs:us-east-1:123456789012:q"`), 400, "ValidationException", "Source", "Kafka only"},
		{"sqs source params", "POST", "/v1/pipes/p2", with(`"FilterCriteria"`, `"SqsQueueParameters":{"BatchSize":1},"FilterCriteria"`), 400, "ValidationException", "SourceParameters.SqsQueueParameters", "Kafka only"},
		{"unknown MSK", "POST", "/v1/pipes/p2", strings.Replace(with(`"smk://127.0.0.1:9092"`, `"arn:aws:kafka:us-east-1:123456789012:cluster/unknown/1"`), "SelfManagedKafkaParameters", "ManagedStreamingKafkaParameters", 1),
			400, "ValidationException", "Source", "sluice clusters set unknown"},
		{"not MSK", "POST", "/v1/pipes/p2", strings.Replace(with(`"smk://127.0.0.1:9092"`, `"arn:aws:kafka:us-east-1:123456789012:cluster/plain/1"`), "SelfManagedKafkaParameters", "ManagedStreamingKafkaParameters", 1),
			400, "ValidationException", "Source", "not marked as MSK"},
		{"MSK params on smk", "POST", "/v1/pipes/p2", strings.Replace(pipesCreate, "SelfManagedKafkaParameters", "ManagedStreamingKafkaParameters", 1), 400, "ValidationException", "SourceParameters.ManagedStreamingKafkaParameters", "smk://"},
		{"sqs target", "POST", "/v1/pipes/p2", with(`"http://127.0.0.1:9000/"`, `"arn:aws:sqs:us-east-1:123456789012:q"`), 400, "ValidationException", "Target", "over HTTP"},
		{"unregistered function", "POST", "/v1/pipes/p2", with(`"http://127.0.0.1:9000/"`, `"arn:aws:lambda:us-east-1:123456789012:function:billing"`), 400, "ValidationException", "Target", "sluice functions set billing"},
		{"sqs target params", "POST", "/v1/pipes/p2", with(`"Description"`, `"TargetParameters":{"SqsQueueParameters":{"MessageGroupId":"g"}},"Description"`), 400, "ValidationException", "TargetParameters.SqsQueueParameters", ""},
		{"fire and forget", "POST", "/v1/pipes/p2", with(`"Description"`, `"TargetParameters":{"LambdaFunctionParameters":{"InvocationType":"FIRE_AND_FORGET"}},"Description"`), 400, "ValidationException", "TargetParameters.LambdaFunctionParameters.InvocationType", "REQUEST_RESPONSE"},
		{"dynamic query parameter", "POST", "/v1/pipes/p2", with(`"Description"`, `"TargetParameters":{"HttpParameters":{"QueryStringParameters":{"a":"$.value.x"}}},"Description"`), 400, "ValidationException", "TargetParameters.HttpParameters.QueryStringParameters.a", ""},
		{"dynamic header", "POST", "/v1/pipes/p2", with(`"Description"`, `"TargetParameters":{"HttpParameters":{"HeaderParameters":{"X-Id":"$.offset"}}},"Description"`), 400, "ValidationException", "TargetParameters.HttpParameters.HeaderParameters.X-Id", "dynamic"},
		{"reserved header", "POST", "/v1/pipes/p2", with(`"Description"`, `"TargetParameters":{"HttpParameters":{"HeaderParameters":{"Content-Type":"text/plain"}}},"Description"`), 400, "ValidationException", "TargetParameters.HttpParameters.HeaderParameters.Content-Type", ""},
		{"enrichment headers", "POST", "/v1/pipes/p2", with(`"Description"`, `"Enrichment":"http://e/","EnrichmentParameters":{"HttpParameters":{"HeaderParameters":{"a":"b"}}},"Description"`), 400, "ValidationException", "EnrichmentParameters.HttpParameters", ""},
		{"desired state", "POST", "/v1/pipes/p2", with(`"Description"`, `"DesiredState":"PAUSED","Description"`), 400, "ValidationException", "DesiredState", "RUNNING or STOPPED"},
		{"credentials secret missing", "POST", "/v1/pipes/p2", with(`"BatchSize":50`, `"BatchSize":50,"Credentials":{"SaslScram512Auth":"s"}`), 400, "ValidationException", smk + ".Credentials.SaslScram512Auth", "does not exist"},
		{"update source", "PUT", "/v1/pipes/orders", `{"RoleArn":"arn:aws:iam::000000000000:role/x","Source":"smk://other:9092"}`, 400, "ValidationException", "Source", "created"},
		{"update topic", "PUT", "/v1/pipes/orders", `{"RoleArn":"arn:aws:iam::000000000000:role/x","SourceParameters":{"SelfManagedKafkaParameters":{"TopicName":"x"}}}`, 400, "ValidationException", smk + ".TopicName", "created"},
		{"update without role", "PUT", "/v1/pipes/orders", `{"DesiredState":"STOPPED"}`, 400, "ValidationException", "RoleArn", "required"},
		{"update credentials", "PUT", "/v1/pipes/orders", `{"RoleArn":"arn:aws:iam::000000000000:role/x","SourceParameters":{"SelfManagedKafkaParameters":{"Credentials":{"BasicAuth":"s"}}}}`, 400, "ValidationException", smk + ".Credentials", "created with"},
		{"update window", "PUT", "/v1/pipes/orders", `{"RoleArn":"arn:aws:iam::000000000000:role/x","SourceParameters":{"SelfManagedKafkaParameters":{"MaximumBatchingWindowInSeconds":301}}}`, 400, "ValidationException", smk + ".MaximumBatchingWindowInSeconds", ""},
		{"tag resource", "POST", "/tags/arn:aws:pipes:sluice:000000000000:pipe%2Forders", `{"tags":{"a":"b"}}`, 400, "ValidationException", "tags", ""},
		{"unknown operation", "GET", "/v1/other", "", 404, "UnknownOperationException", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, h, out := pipesCall(t, srv.URL, tc.method, tc.path, tc.body)
			msg, _ := out["message"].(string)
			if status != tc.status || h.Get("x-amzn-errortype") != tc.typ || !strings.Contains(msg, tc.msg) {
				t.Fatalf("%d %s %v, want %d %s with %q", status, h.Get("x-amzn-errortype"), out, tc.status, tc.typ, tc.msg)
			}
			if tc.typ == "ValidationException" {
				fl, _ := out["fieldList"].([]any)
				found := false
				for _, f := range fl {
					if f.(map[string]any)["name"] == tc.field && f.(map[string]any)["message"] != "" {
						found = true
					}
				}
				if !found || !strings.Contains(msg, tc.field) {
					t.Fatalf("fieldList %v (message %q) does not name %s", fl, msg, tc.field)
				}
			}
			if tc.typ == "ConflictException" && (out["resourceId"] != "orders" || out["resourceType"] != "pipe") {
				t.Fatalf("ConflictException without resourceId and resourceType: %v", out)
			}
		})
	}
}

// TestPipesAPISources creates pipes on an MSK cluster registered in Sluice,
// on a registered function, and with Credentials naming Sluice secrets.
func TestPipesAPISources(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	ctx := t.Context()
	const arn = "arn:aws:kafka:us-east-1:123456789012:cluster/local-msk/0b1c"
	if _, err := svc.PutCluster(ctx, cluster.Cluster{Name: "local-msk", MSK: true, ARN: arn, BootstrapServers: []string{"127.0.0.1:9092"}, Auth: cluster.AuthNone}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutFunction(ctx, pipe.Function{Name: "billing", URL: "http://127.0.0.1:9100/"}); err != nil {
		t.Fatal(err)
	}
	status, _, c := pipesCall(t, srv.URL, "POST", "/v1/pipes/msk", `{"Source":"`+arn+`","RoleArn":"arn:aws:iam::000000000000:role/x",
		"SourceParameters":{"ManagedStreamingKafkaParameters":{"TopicName":"orders","ConsumerGroupID":"billing-group","MaximumBatchingWindowInSeconds":0}},
		"Target":"arn:aws:lambda:us-east-1:123456789012:function:billing","Enrichment":"arn:aws:events:us-east-1:123456789012:api-destination/billing/x"}`)
	if status != 200 {
		t.Fatalf("create on MSK: %d %v", status, c)
	}
	p, _ := svc.GetPipe(ctx, "msk")
	if p.Cluster != "local-msk" || p.ConsumerGroupID != "billing-group" || p.Target.HTTP.Function != "billing" || p.Enrichment.Function != "billing" || p.BatchingWindow() != 0 {
		t.Fatalf("the MSK pipe: %+v", p)
	}
	_, _, d := pipesCall(t, srv.URL, "GET", "/v1/pipes/msk", "")
	if d["Source"] != arn || d["Target"] != "arn:aws:lambda:sluice:000000000000:function:billing" || d["Enrichment"] != "arn:aws:lambda:sluice:000000000000:function:billing" ||
		path(d, "SourceParameters.ManagedStreamingKafkaParameters.ConsumerGroupID") != "billing-group" ||
		path(d, "SourceParameters.SelfManagedKafkaParameters") != nil {
		t.Fatalf("describe the MSK pipe: %v", d)
	}
	status, _, u := pipesCall(t, srv.URL, "PUT", "/v1/pipes/msk", `{"RoleArn":"arn:aws:iam::000000000000:role/x",
		"SourceParameters":{"ManagedStreamingKafkaParameters":{"BatchSize":7}}}`)
	if p, _ = svc.GetPipe(ctx, "msk"); status != 200 || p.BatchSize != 7 {
		t.Fatalf("update the MSK pipe: %d %v %+v", status, u, p)
	}
	status, h, _ := pipesCall(t, srv.URL, "PUT", "/v1/pipes/msk", `{"RoleArn":"arn:aws:iam::000000000000:role/x",
		"SourceParameters":{"SelfManagedKafkaParameters":{"BatchSize":7}}}`)
	if status != 400 || h.Get("x-amzn-errortype") != "ValidationException" {
		t.Fatalf("SelfManagedKafkaParameters on an MSK pipe: %d", status)
	}

	// Credentials: the brokers and their auth become a cluster owned by
	// the pipe, deleted with it.
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
	} {
		if _, err := svc.PutSecret(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	status, _, c = pipesCall(t, srv.URL, "POST", "/v1/pipes/secured", `{"Source":"smk://b-1:9096","RoleArn":"arn:aws:iam::000000000000:role/x",
		"SourceParameters":{"SelfManagedKafkaParameters":{"TopicName":"orders","AdditionalBootstrapServers":["b-2:9096"],
		  "Credentials":{"SaslScram512Auth":"arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-creds"},"ServerRootCaCertificate":"kafka-ca"}},
		"Target":"http://127.0.0.1:9000/"}`)
	if status != 200 {
		t.Fatalf("create with Credentials: %d %v", status, c)
	}
	cl, err := svc.GetCluster(ctx, "secured")
	if err != nil || cl.Owner != "secured" || cl.EffectiveAuth() != cluster.AuthScramSHA512 || cl.CACertSecret != "kafka-ca" || strings.Join(cl.BootstrapServers, ",") != "b-1:9096,b-2:9096" {
		t.Fatalf("the pipe's cluster: %+v %v", cl, err)
	}
	_, _, d = pipesCall(t, srv.URL, "GET", "/v1/pipes/secured", "")
	if d["Source"] != "smk://b-1:9096" || path(d, "SourceParameters.SelfManagedKafkaParameters.Credentials.SaslScram512Auth") != "kafka-creds" ||
		path(d, "SourceParameters.SelfManagedKafkaParameters.ServerRootCaCertificate") != "kafka-ca" ||
		fmt.Sprint(path(d, "SourceParameters.SelfManagedKafkaParameters.AdditionalBootstrapServers")) != "[b-2:9096]" {
		t.Fatalf("describe the pipe with Credentials: %v", d)
	}
	status, _, u = pipesCall(t, srv.URL, "PUT", "/v1/pipes/secured", `{"RoleArn":"arn:aws:iam::000000000000:role/x",
		"SourceParameters":{"SelfManagedKafkaParameters":{"Credentials":{"BasicAuth":"kafka-creds"}}}}`)
	if cl, _ = svc.GetCluster(ctx, "secured"); status != 200 || cl.EffectiveAuth() != cluster.AuthPlain || cl.CACertSecret != "kafka-ca" {
		t.Fatalf("update the Credentials: %d %v %+v", status, u, cl)
	}
	if status, _, _ := pipesCall(t, srv.URL, "DELETE", "/v1/pipes/secured", ""); status != 200 {
		t.Fatalf("delete: %d", status)
	}
	if _, err := svc.GetCluster(ctx, "secured"); err == nil {
		t.Fatal("the pipe's cluster outlived it")
	}
}

// TestPipesAPIAuth: with WithAuth, the Pipes API takes the token as the
// access key id of the SigV4 header, as the Lambda-compatible routes do,
// and refuses as AWS does.
func TestPipesAPIAuth(t *testing.T) {
	svc := apitest.NewService(t)
	srv := httptest.NewServer(api.NewHandler(svc, nil, append(svc.API(), api.WithAuth(svc.Store, 0))...))
	t.Cleanup(srv.Close)
	tokens := map[string]string{}
	for _, scope := range []string{api.ScopeRead, api.ScopeOperate} {
		tokens[scope] = api.NewToken()
		if _, err := svc.Store.CreateToken(t.Context(), store.Token{Name: scope, Hash: api.HashToken(tokens[scope]), Scope: scope}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, method, key string
		status            int
		typ               string
	}{
		{"unknown key", "GET", "AKIDEXAMPLE", 403, "UnrecognizedClientException"},
		{"read token lists", "GET", tokens[api.ScopeRead], 200, ""},
		{"read token cannot create", "POST", tokens[api.ScopeRead], 403, "AccessDeniedException"},
		{"operate token creates", "POST", tokens[api.ScopeOperate], 200, ""},
	} {
		path := "/v1/pipes"
		body := ""
		if tc.method == "POST" {
			path, body = "/v1/pipes/orders", pipesCreate
		}
		status, h, out := pipesCallAuth(t, srv.URL, tc.method, path, body, pipesSigV4(tc.key))
		if status != tc.status || h.Get("x-amzn-errortype") != tc.typ {
			t.Errorf("%s: %d %s %v", tc.name, status, h.Get("x-amzn-errortype"), out)
		}
	}
	// Without a SigV4 header for pipes the request is native, with its
	// 401.
	if status, _, out := pipesCallAuth(t, srv.URL, "GET", "/v1/pipes", "", ""); status != 401 || out["code"] != api.CodeUnauthorized {
		t.Fatalf("native without token: %d %v", status, out)
	}
}

// HttpParameters' path and query values are stored beside the URL, fill
// it when the pipe delivers, and are echoed as given.
func TestPipesAPIHttpParameters(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	body := strings.Replace(pipesCreate, `"Target":"http://127.0.0.1:9000/"`, `"Target":"http://127.0.0.1:9000/regions/*/orders",`+
		`"TargetParameters":{"HttpParameters":{"PathParameterValues":["eu"],"QueryStringParameters":{"team":"pay"},"HeaderParameters":{"X-A":"1"}}}`, 1)
	if status, _, out := pipesCall(t, srv.URL, "POST", "/v1/pipes/hp", body); status != 200 {
		t.Fatalf("create: %d %v", status, out)
	}
	p, err := svc.GetPipe(t.Context(), "hp")
	if err != nil {
		t.Fatal(err)
	}
	if u, ok := p.Target.HTTP.ResolvedURL(p.Target.HTTP.URL); !ok || u != "http://127.0.0.1:9000/regions/eu/orders?team=pay" {
		t.Fatalf("the pipe delivers to %q (%v)", u, ok)
	}
	_, _, d := pipesCall(t, srv.URL, "GET", "/v1/pipes/hp", "")
	hp, _ := json.Marshal(path(d, "TargetParameters.HttpParameters"))
	if string(hp) != `{"HeaderParameters":{"X-A":"1"},"PathParameterValues":["eu"],"QueryStringParameters":{"team":"pay"}}` {
		t.Fatalf("describe echoed HttpParameters %s", hp)
	}
	bad := strings.Replace(body, `["eu"]`, `["eu","extra"]`, 1)
	if status, _, out := pipesCall(t, srv.URL, "POST", "/v1/pipes/hp2", bad); status != 400 || !strings.Contains(fmt.Sprint(out), "PathParameterValues") {
		t.Fatalf("a value without a * segment: %d %v", status, out)
	}
}
