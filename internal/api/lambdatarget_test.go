package api_test

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/secret"
)

const awsOrdersARN = "arn:aws:lambda:us-east-1:123456789012:function:orders"

// TestLambdaAWSFunctionARNDisabled: a server that does not invoke AWS
// Lambda answers an AWS function ARN naming no Sluice function as the
// Lambda API answers an unknown function, saying how to enable it; an ARN
// naming a Sluice function still targets it.
func TestLambdaAWSFunctionARNDisabled(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	body := strings.Replace(esmCreate, "http://127.0.0.1:9000/", awsOrdersARN, 1)
	status, hdr, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body)
	msg, _ := c["message"].(string)
	if status != 404 || hdr.Get("X-Amzn-Errortype") != "ResourceNotFoundException" ||
		!strings.Contains(msg, "Function not found: "+awsOrdersARN) || !strings.Contains(msg, "--aws-lambda") ||
		!strings.Contains(msg, "sluice functions set orders") {
		t.Fatalf("create with an AWS ARN: %d %v", status, c)
	}
	ps, err := svc.ListPipes(t.Context())
	if err != nil || len(ps) != 0 {
		t.Fatalf("a refused create left %d pipes (%v)", len(ps), err)
	}

	if _, err := svc.PutFunction(t.Context(), pipe.Function{Name: "orders", URL: "http://127.0.0.1:9100/"}); err != nil {
		t.Fatal(err)
	}
	status, _, c = lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body)
	if status != 202 || c["FunctionArn"] != "arn:aws:lambda:sluice:000000000000:function:orders" {
		t.Fatalf("create with an AWS ARN naming a Sluice function: %d %v", status, c)
	}
}

// TestLambdaAWSFunctionMappingShape: a mapping whose target is an AWS
// function (made here through the native API, as an enabled server's
// create makes it) shows the bare ARN as FunctionArn, its partial batch
// responses as FunctionResponseTypes, is found by its ARN, and changes
// to a URL keeping its settings.
func TestLambdaAWSFunctionMappingShape(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	p, err := svc.CreatePipe(t.Context(), pipe.Spec{Name: "aws-orders", BootstrapServers: []string{"127.0.0.1:9092"}, Topics: []string{"orders"},
		Target: pipe.Target{Lambda: &pipe.LambdaTarget{FunctionName: awsOrdersARN, TimeoutSeconds: 12, ReportBatchItemFailures: true}}})
	if err != nil {
		t.Fatal(err)
	}
	// A mapping of another function, which the filter leaves out.
	if status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", esmCreate); status != 202 {
		t.Fatalf("create: %d %v", status, c)
	}

	status, _, c := lambdaCall(t, srv.URL, "GET", "/2015-03-31/event-source-mappings/"+p.UUID, "")
	if status != 200 || c["FunctionArn"] != awsOrdersARN {
		t.Fatalf("get: %d FunctionArn %v, want the bare ARN", status, c["FunctionArn"])
	}
	if frt, _ := c["FunctionResponseTypes"].([]any); len(frt) != 1 || frt[0] != "ReportBatchItemFailures" {
		t.Fatalf("FunctionResponseTypes %v", c["FunctionResponseTypes"])
	}

	list := func(filter string) []string {
		t.Helper()
		status, _, body := lambdaCall(t, srv.URL, "GET", "/2015-03-31/event-source-mappings/?FunctionName="+url.QueryEscape(filter), "")
		if status != 200 {
			t.Fatalf("list %s: %d %v", filter, status, body)
		}
		var arns []string
		for _, m := range body["EventSourceMappings"].([]any) {
			arns = append(arns, m.(map[string]any)["FunctionArn"].(string))
		}
		return arns
	}
	if got := list(awsOrdersARN); len(got) != 1 || got[0] != awsOrdersARN {
		t.Fatalf("list by the ARN: %v", got)
	}
	if got := list("arn:aws:lambda:eu-west-1:123456789012:function:orders"); len(got) != 0 {
		t.Fatalf("list by another region's ARN: %v", got)
	}

	// FunctionResponseTypes [] turns partial responses off on the
	// section; the mapping stays an AWS function's.
	status, _, c = lambdaCall(t, srv.URL, "PUT", "/2015-03-31/event-source-mappings/"+p.UUID, `{"FunctionResponseTypes":[]}`)
	if got, _ := svc.GetPipe(t.Context(), "aws-orders"); status != 202 || got.Target.Lambda == nil || got.Target.Lambda.ReportBatchItemFailures {
		t.Fatalf("update FunctionResponseTypes: %d %v; target %+v", status, c, got.Target)
	}
	lambdaCall(t, srv.URL, "PUT", "/2015-03-31/event-source-mappings/"+p.UUID, `{"FunctionResponseTypes":["ReportBatchItemFailures"]}`)

	// A new FunctionName keeps the timeout and partial responses; the AWS
	// ARN cannot come back on a server that does not invoke AWS Lambda.
	status, _, c = lambdaCall(t, srv.URL, "PUT", "/2015-03-31/event-source-mappings/"+p.UUID, `{"FunctionName":"http://127.0.0.1:9200/"}`)
	got, _ := svc.GetPipe(t.Context(), "aws-orders")
	if h := got.Target.HTTP; status != 202 || got.Target.Lambda != nil || h == nil || h.URL != "http://127.0.0.1:9200/" || h.TimeoutSeconds != 12 || !h.ReportBatchItemFailures {
		t.Fatalf("update to a URL: %d %v; target %+v", status, c, got.Target)
	}
	status, _, c = lambdaCall(t, srv.URL, "PUT", "/2015-03-31/event-source-mappings/"+p.UUID, `{"FunctionName":"`+awsOrdersARN+`"}`)
	if msg, _ := c["message"].(string); status != 404 || !strings.Contains(msg, "--aws-lambda") {
		t.Fatalf("update back to the AWS ARN: %d %v", status, c)
	}
}

// TestLambdaSluiceARNIsNotAWS: Sluice's own function ARNs, and ARNs not of
// AWS's shape, keep naming Sluice functions.
func TestLambdaSluiceARNIsNotAWS(t *testing.T) {
	srv, _ := apitest.NewServer(t)
	for _, arn := range []string{
		"arn:aws:lambda:sluice:000000000000:function:billing",
		"arn:aws:lambda:x:1:function:billing",
	} {
		status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", strings.Replace(esmCreate, "http://127.0.0.1:9000/", arn, 1))
		if msg, _ := c["message"].(string); status != 404 || strings.Contains(msg, "--aws-lambda") || !strings.Contains(msg, "sluice functions set billing") {
			t.Fatalf("%s: %d %v", arn, status, c)
		}
	}
}

// TestLambdaAWSFunctionARNEnabled: on a server started with --aws-lambda
// (api.WithAWSLambda), an AWS function ARN as FunctionName makes a lambda
// target, FunctionResponseTypes included, echoed as the bare ARN; and a
// hosted Sluice function's name makes a function target.
func TestLambdaAWSFunctionARNEnabled(t *testing.T) {
	svc := apitest.NewService(t)
	srv := httptest.NewServer(api.NewHandler(svc, nil, append(svc.API(), api.WithAWSLambda())...))
	defer srv.Close()
	body := strings.Replace(esmCreate, "http://127.0.0.1:9000/", awsOrdersARN, 1)
	body = strings.Replace(body, `"FunctionName"`, `"FunctionResponseTypes":["ReportBatchItemFailures"],"FunctionName"`, 1)
	status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body)
	if status != 202 || c["FunctionArn"] != awsOrdersARN {
		t.Fatalf("create with an AWS ARN: %d %v", status, c)
	}
	p := pipeOf(t, svc, c)
	if l := p.Target.Lambda; l == nil || l.FunctionName != awsOrdersARN || !l.ReportBatchItemFailures || p.Target.HTTP != nil {
		t.Fatalf("target %+v, want the lambda section with partial responses", p.Target)
	}

	if _, err := svc.PutFunction(t.Context(), pipe.Function{Name: "hosted", Handler: &pipe.Handler{Path: "/usr/local/bin/hosted-handler"}}); err != nil {
		t.Fatal(err)
	}
	body = strings.Replace(esmCreate, "http://127.0.0.1:9000/", "hosted", 1)
	status, _, c = lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body)
	if status != 202 || c["FunctionArn"] != "arn:aws:lambda:sluice:000000000000:function:hosted" {
		t.Fatalf("create with a hosted function: %d %v", status, c)
	}
	if p = pipeOf(t, svc, c); p.Target.Function == nil || p.Target.Function.Name != "hosted" {
		t.Fatalf("target %+v, want the function section", p.Target)
	}
}

// pipeOf is the pipe of the mapping a Lambda API answer describes.
func pipeOf(t *testing.T, svc *apitest.Service, mapping map[string]any) pipe.Pipe {
	t.Helper()
	ps, err := svc.ListPipes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.UUID == mapping["UUID"] {
			return p
		}
	}
	t.Fatalf("no pipe has the mapping's UUID %v", mapping["UUID"])
	return pipe.Pipe{}
}

// TestLambdaMappingAndItsClusterAreOneWrite: a mapping whose
// SourceAccessConfigurations make a cluster, but whose pipe is refused,
// leaves no cluster behind: both are one transaction.
func TestLambdaMappingAndItsClusterAreOneWrite(t *testing.T) {
	srv, svc := apitest.NewServer(t)
	if _, err := svc.PutSecret(t.Context(), secret.Secret{Name: "kafka-creds", Type: secret.Generic,
		Data: map[string][]byte{"username": []byte("alice"), "password": []byte("pw")}}); err != nil {
		t.Fatal(err)
	}
	body := `{"FunctionName":"http://127.0.0.1:9000/","Topics":["orders"],"BatchSize":20000,
		"SelfManagedEventSource":{"Endpoints":{"KAFKA_BOOTSTRAP_SERVERS":["b-1:9096"]}},
		"SourceAccessConfigurations":[{"Type":"SASL_SCRAM_512_AUTH","URI":"kafka-creds"}]}`
	status, _, c := lambdaCall(t, srv.URL, "POST", "/2015-03-31/event-source-mappings/", body)
	if status != 400 {
		t.Fatalf("create with a batch size out of range: %d %v", status, c)
	}
	if cs, err := svc.ListClusters(t.Context()); err != nil || len(cs) != 0 {
		t.Fatalf("a refused mapping left clusters %+v (%v)", cs, err)
	}
	if ps, err := svc.ListPipes(t.Context()); err != nil || len(ps) != 0 {
		t.Fatalf("a refused mapping left pipes %+v (%v)", ps, err)
	}
}
