package target

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// invokeRequest is one Invoke call as the fake Lambda endpoint saw it.
type invokeRequest struct {
	function, qualifier, invocationType, auth string
	body                                      []byte
}

// fakeLambda is a real HTTP server speaking the Lambda Invoke REST
// protocol (POST /2015-03-31/functions/{FunctionName}/invocations):
// fail, when set, may write another answer for a request once it is
// recorded.
type fakeLambda struct {
	*httptest.Server
	mu   sync.Mutex
	got  []invokeRequest
	fail func(w http.ResponseWriter, body []byte) bool // nil: answer 200 with payload
	// payload is the function's answer on success.
	payload string
}

func newFakeLambda(t *testing.T) *fakeLambda {
	f := &fakeLambda{payload: "null"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2015-03-31/functions/{name}/invocations", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req := invokeRequest{
			function: r.PathValue("name"), qualifier: r.URL.Query().Get("Qualifier"),
			invocationType: r.Header.Get("X-Amz-Invocation-Type"), auth: r.Header.Get("Authorization"), body: body,
		}
		f.mu.Lock()
		f.got = append(f.got, req)
		fail, payload := f.fail, f.payload
		f.mu.Unlock()
		if !strings.HasPrefix(req.auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") {
			lambdaAPIError(w, http.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid.")
			return
		}
		if fail != nil && fail(w, body) {
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		_, _ = io.WriteString(w, payload)
	})
	f.Server = httptest.NewServer(mux)
	t.Cleanup(f.Close)
	return f
}

func (f *fakeLambda) requests() []invokeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]invokeRequest(nil), f.got...)
}

func (f *fakeLambda) set(fail func(w http.ResponseWriter, body []byte) bool, payload string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail, f.payload = fail, payload
}

// lambdaAPIError answers as the Lambda service does: the error's type in
// x-amzn-ErrorType and a JSON body with its message.
func lambdaAPIError(w http.ResponseWriter, status int, typ, body string) {
	w.Header().Set("X-Amzn-Errortype", typ)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if !strings.HasPrefix(body, "{") {
		b, _ := json.Marshal(map[string]string{"message": body, "Type": "User"})
		body = string(b)
	}
	_, _ = io.WriteString(w, body)
}

// awsTestEnv gives the SDK static credentials and a region through the
// environment, and keeps the machine's AWS files and instance metadata
// out of the test.
func awsTestEnv(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-test-key")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func lambdaSpec(endpoint string, mutate func(*pipe.LambdaTarget)) pipe.Spec {
	l := &pipe.LambdaTarget{FunctionName: "orders", EndpointURL: endpoint, TimeoutSeconds: 5}
	if mutate != nil {
		mutate(l)
	}
	return pipe.Spec{Name: "p", PayloadLimitBytes: pipe.DefaultPayloadLimitBytes, Target: pipe.Target{Lambda: l}}
}

func openLambdaTest(t *testing.T, spec pipe.Spec) Target {
	t.Helper()
	tg, err := Open(context.Background(), spec, Env{Pipe: "p", Encoder: testEncoder})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = tg.Close() })
	return tg
}

// TestLambdaInvokesWithTheKafkaEvent: one signed, synchronous Invoke per
// batch, its body the Lambda Kafka event of the batch, the qualifier in
// the URL.
func TestLambdaInvokesWithTheKafkaEvent(t *testing.T) {
	awsTestEnv(t)
	f := newFakeLambda(t)
	tg := openLambdaTest(t, lambdaSpec(f.URL, func(l *pipe.LambdaTarget) { l.Qualifier = "live" }))

	b := batchOf(records("orders", 3, 40, 4, 16))
	if r := tg.Deliver(context.Background(), b); r.Count(batch.Delivered) != 4 {
		t.Fatalf("Deliver: %d delivered, err %v", r.Count(batch.Delivered), r.Err())
	}
	got := f.requests()
	if len(got) != 1 {
		t.Fatalf("%d invocations, want 1", len(got))
	}
	req := got[0]
	if req.function != "orders" || req.qualifier != "live" || req.invocationType != "RequestResponse" {
		t.Fatalf("invoked %q qualifier %q type %q; want orders, live, RequestResponse", req.function, req.qualifier, req.invocationType)
	}
	if !strings.Contains(req.auth, "/eu-west-1/lambda/aws4_request") {
		t.Fatalf("Authorization %q is not a SigV4 signature for lambda in eu-west-1", req.auth)
	}
	var ev decodedEvent
	if err := json.Unmarshal(req.body, &ev); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	recs := ev.Records["orders-3"]
	if ev.EventSource != "SelfManagedKafka" || len(ev.Records) != 1 || len(recs) != 4 {
		t.Fatalf("event %+v: want the 4 records of orders-3", ev)
	}
	for i, r := range recs {
		v, _ := base64.StdEncoding.DecodeString(*r.Value)
		if r.Offset != 40+int64(i) || string(v) != string(b.Records[i].Value) {
			t.Fatalf("record %d: offset %d value %q; want the batch's, in order", i, r.Offset, v)
		}
	}
	if want := string(testEncoder.Append(nil, b.Records)); string(req.body) != want {
		t.Fatalf("body differs from the encoder's event")
	}
}

// TestLambdaRegionFromTheARN: an ARN's region is where the call is signed
// for, over the chain's.
func TestLambdaRegionFromTheARN(t *testing.T) {
	awsTestEnv(t)
	f := newFakeLambda(t)
	arn := "arn:aws:lambda:ap-southeast-2:123456789012:function:orders"
	spec := lambdaSpec(f.URL, func(l *pipe.LambdaTarget) { l.FunctionName = arn })
	tg := openLambdaTest(t, spec)
	if r := tg.Deliver(context.Background(), batchOf(records("t", 0, 0, 1, 4))); r.Count(batch.Delivered) != 1 {
		t.Fatalf("Deliver: %v", r.Err())
	}
	req := f.requests()[0]
	if req.function != arn || !strings.Contains(req.auth, "/ap-southeast-2/lambda/") {
		t.Fatalf("invoked %q signed %q; want the ARN, in its region", req.function, req.auth)
	}
	if d := Describe(spec, Env{}); !strings.Contains(d, arn) || !strings.Contains(d, "(region ap-southeast-2)") {
		t.Fatalf("Describe = %q", d)
	}
}

// TestLambdaFunctionError: a function that failed fails the batch, its
// PROBLEM the handler's error type and message.
func TestLambdaFunctionError(t *testing.T) {
	awsTestEnv(t)
	f := newFakeLambda(t)
	f.set(func(w http.ResponseWriter, _ []byte) bool {
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		_, _ = io.WriteString(w, `{"errorType":"MyError","errorMessage":"boom","trace":[]}`)
		return true
	}, "")
	tg := openLambdaTest(t, lambdaSpec(f.URL, nil))
	r := tg.Deliver(context.Background(), batchOf(records("t", 0, 0, 3, 4)))
	if r.Count(batch.Failed) != 3 || r.Err() == nil {
		t.Fatalf("Deliver = %d failed, err %v; want all 3 failed", r.Count(batch.Failed), r.Err())
	}
	var fe *FunctionError
	if msg := r.Err().Error(); !errors.As(r.Err(), &fe) || !strings.Contains(msg, "MyError") || !strings.Contains(msg, "boom") || !strings.Contains(msg, "orders") {
		t.Fatalf("error %q: want the function, MyError and boom", msg)
	}
	if batch.TargetUnavailable(r.Err()) {
		t.Fatal("a function error blames the target: bisecting could not find a bad record")
	}
}

// TestLambdaThrottled: TooManyRequestsException is a throttle the engine's
// concurrency controller and the retry stage act on, and reaches them at
// the first 429 (the SDK does not retry it).
func TestLambdaThrottled(t *testing.T) {
	awsTestEnv(t)
	f := newFakeLambda(t)
	f.set(func(w http.ResponseWriter, _ []byte) bool {
		w.Header().Set("Retry-After", "3")
		lambdaAPIError(w, http.StatusTooManyRequests, "TooManyRequestsException",
			`{"message":"Rate exceeded","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User"}`)
		return true
	}, "")
	tg := openLambdaTest(t, lambdaSpec(f.URL, nil))
	start := time.Now()
	r := tg.Deliver(context.Background(), batchOf(records("t", 0, 0, 2, 4)))
	if n := len(f.requests()); n != 1 {
		t.Fatalf("%d invocations for one Deliver: the SDK retried the throttle", n)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("Deliver took %s: the SDK backed off", time.Since(start))
	}
	err := r.Err()
	if r.Final() != 0 || err == nil {
		t.Fatalf("throttled Deliver = %d final, err %v", r.Final(), err)
	}
	var st interface{ HTTPStatus() int }
	if !errors.As(err, &st) || st.HTTPStatus() != 429 || !batch.TargetUnavailable(err) {
		t.Fatalf("error %v: want HTTPStatus 429 and TargetUnavailable, which the engine's throttling rule reads", err)
	}
	if d := batch.RetryAfter(err); d != 3*time.Second {
		t.Fatalf("RetryAfter = %s, want the 3s asked for", d)
	}
	if !strings.Contains(err.Error(), "ReservedFunctionConcurrentInvocationLimitExceeded") || !strings.Contains(err.Error(), "reserved concurrency") {
		t.Fatalf("problem %q: want the reason and the fix", err)
	}

	// Without Retry-After the throttle still backs off.
	f.set(func(w http.ResponseWriter, _ []byte) bool {
		lambdaAPIError(w, http.StatusTooManyRequests, "TooManyRequestsException", `{"message":"Rate exceeded"}`)
		return true
	}, "")
	if d := batch.RetryAfter(tg.Deliver(context.Background(), batchOf(records("t", 0, 0, 1, 4))).Err()); d <= 0 {
		t.Fatalf("RetryAfter = %s without Retry-After, want a back-off", d)
	}
}

// TestLambdaPartialBatchResponse: with reportBatchItemFailures the records
// before the named offset are delivered, it fails, and those after it are
// delivered again.
func TestLambdaPartialBatchResponse(t *testing.T) {
	awsTestEnv(t)
	f := newFakeLambda(t)
	f.set(nil, `{"batchItemFailures":[{"itemIdentifier":{"partition":"t-0","offset":12}}]}`)
	tg := openLambdaTest(t, lambdaSpec(f.URL, func(l *pipe.LambdaTarget) { l.ReportBatchItemFailures = true }))
	r := tg.Deliver(context.Background(), batchOf(records("t", 0, 10, 4, 4)))
	for i, want := range []batch.Status{batch.Delivered, batch.Delivered, batch.Failed, batch.Pending} {
		if got := r.At(i).Status; got != want {
			t.Fatalf("offset %d: %v, want %v (%v)", 10+i, got, want, r.Err())
		}
	}

	// Without the setting the answer is not read.
	tg = openLambdaTest(t, lambdaSpec(f.URL, nil))
	if r := tg.Deliver(context.Background(), batchOf(records("t", 0, 10, 4, 4))); r.Count(batch.Delivered) != 4 {
		t.Fatalf("without reportBatchItemFailures: %d delivered", r.Count(batch.Delivered))
	}
}

// TestLambdaErrorsNameTheFix: the service's refusals say which setting to
// change, and blame the target (a split batch would fail the same way).
func TestLambdaErrorsNameTheFix(t *testing.T) {
	awsTestEnv(t)
	f := newFakeLambda(t)
	tg := openLambdaTest(t, lambdaSpec(f.URL, nil))
	for _, tc := range []struct {
		name, typ string
		status    int
		want      []string
	}{
		{"not found", "ResourceNotFoundException", 404, []string{"function orders not found in region eu-west-1", "target.lambda.functionName"}},
		{"access denied", "AccessDeniedException", 403, []string{"lambda:InvokeFunction", "orders"}},
		{"service", "ServiceException", 500, []string{"ServiceException", "HTTP 500", "Sluice retries"}},
		{"bad key", "UnrecognizedClientException", 403, []string{"credentials were refused", "AWS_ACCESS_KEY_ID"}},
		{"other", "KMSAccessDeniedException", 502, []string{"KMSAccessDeniedException", "HTTP 502"}},
		{"conflict", "ResourceConflictException", 409, []string{"not ready"}},
		{"invalid", "InvalidRequestContentException", 400, []string{"invalid JSON", "inputTemplate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.set(func(w http.ResponseWriter, _ []byte) bool {
				lambdaAPIError(w, tc.status, tc.typ, "something went wrong")
				return true
			}, "")
			r := tg.Deliver(context.Background(), batchOf(records("t", 0, 0, 2, 4)))
			err := r.Err()
			if r.Final() != 0 || err == nil {
				t.Fatalf("Deliver = %d final, err %v", r.Final(), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("problem %q lacks %q", err, w)
				}
			}
			var st interface{ HTTPStatus() int }
			if !errors.As(err, &st) || st.HTTPStatus() != tc.status || !batch.TargetUnavailable(err) {
				t.Fatalf("error %v: want HTTPStatus %d and TargetUnavailable", err, tc.status)
			}
			if strings.Contains(err.Error(), "secret-test-key") {
				t.Fatal("the problem shows the secret key")
			}
		})
	}
}

// TestLambdaUnreachableAndCredentials: no answer at all, and no
// credentials, are the target's fault and say what to check.
func TestLambdaUnreachableAndCredentials(t *testing.T) {
	awsTestEnv(t)
	f := newFakeLambda(t)
	url := f.URL
	f.Close()
	tg := openLambdaTest(t, lambdaSpec(url, nil))
	err := tg.Deliver(context.Background(), batchOf(records("t", 0, 0, 1, 4))).Err()
	if err == nil || !batch.TargetUnavailable(err) || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), "endpointUrl") {
		t.Fatalf("unreachable: %v", err)
	}

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	f = newFakeLambda(t)
	tg = openLambdaTest(t, lambdaSpec(f.URL, nil))
	err = tg.Deliver(context.Background(), batchOf(records("t", 0, 0, 1, 4))).Err()
	if err == nil || !strings.Contains(err.Error(), "no AWS credentials") || len(f.requests()) != 0 {
		t.Fatalf("no credentials: %v (%d requests sent)", err, len(f.requests()))
	}
}

// TestLambdaLimitsAndTimeout: the request limit is the smaller of the
// Invoke API's and the pipe's, and a slow function times out at the
// section's timeout.
func TestLambdaLimitsAndTimeout(t *testing.T) {
	awsTestEnv(t)
	f := newFakeLambda(t)
	spec := lambdaSpec(f.URL, nil)
	spec.PayloadLimitBytes = 2048
	tg := openLambdaTest(t, spec)
	r := tg.Deliver(context.Background(), batchOf(records("t", 0, 0, 10, 400)))
	if r.Final() != 0 || !errors.Is(r.Err(), ErrOversized) || len(f.requests()) != 0 {
		t.Fatalf("over the pipe's limit: %v (%d requests)", r.Err(), len(f.requests()))
	}
	if it := tg.(*invokeTarget); it.limit != 2048 {
		t.Fatalf("limit %d, want the pipe's 2048", it.limit)
	}
	spec.PayloadLimitBytes = 0
	if it := openLambdaTest(t, spec).(*invokeTarget); it.limit != pipe.LambdaRequestLimitBytes {
		t.Fatalf("limit %d, want the Invoke API's", it.limit)
	}

	release := make(chan struct{})
	defer close(release)
	f.set(func(w http.ResponseWriter, _ []byte) bool { <-release; return false }, "null")
	spec = lambdaSpec(f.URL, func(l *pipe.LambdaTarget) { l.TimeoutSeconds = 0.2 })
	err := openLambdaTest(t, spec).Deliver(context.Background(), batchOf(records("t", 0, 0, 1, 4))).Err()
	if err == nil || !strings.Contains(err.Error(), "did not answer within 200ms") || !strings.Contains(err.Error(), "target.lambda.timeoutSeconds") {
		t.Fatalf("slow function: %v", err)
	}
}

// TestLambdaKeyAndOpenErrors: the key changes with every field, and Open
// says what is missing.
func TestLambdaKeyAndOpenErrors(t *testing.T) {
	base := lambdaSpec("http://127.0.0.1:1", nil)
	seen := map[string]bool{KeyOf(base, Env{}): true}
	for _, m := range []func(*pipe.LambdaTarget){
		func(l *pipe.LambdaTarget) { l.FunctionName = "other" },
		func(l *pipe.LambdaTarget) { l.Qualifier = "2" },
		func(l *pipe.LambdaTarget) { l.Region = "us-east-1" },
		func(l *pipe.LambdaTarget) { l.EndpointURL = "http://127.0.0.1:2" },
		func(l *pipe.LambdaTarget) { l.TimeoutSeconds = 9 },
		func(l *pipe.LambdaTarget) { l.ReportBatchItemFailures = true },
	} {
		k := KeyOf(lambdaSpec("http://127.0.0.1:1", m), Env{})
		if seen[k] {
			t.Fatalf("key %q did not change", k)
		}
		seen[k] = true
	}

	awsTestEnv(t)
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	_, err := Open(context.Background(), lambdaSpec("", nil), Env{Encoder: testEncoder})
	if err == nil || !strings.Contains(err.Error(), "target.lambda.region") {
		t.Fatalf("Open without a region: %v", err)
	}
}

// lambdaReceiver is the lambda kind's conformance case: the fake Invoke
// endpoint, recording each record it was invoked with and failing the
// function while rcv.refuse is set.
func lambdaReceiver(t *testing.T, rcv *receiver) (pipe.Spec, Env) {
	awsTestEnv(t)
	f := newFakeLambda(t)
	f.set(func(w http.ResponseWriter, body []byte) bool {
		if rcv.refuse.Load() {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			_, _ = io.WriteString(w, `{"errorType":"Refused","errorMessage":"the receiver refused the batch"}`)
			return true
		}
		var ev decodedEvent
		if err := json.Unmarshal(body, &ev); err != nil {
			lambdaAPIError(w, http.StatusBadRequest, "InvalidRequestContentException", err.Error())
			return true
		}
		for key, recs := range ev.Records {
			for _, r := range recs {
				v, _ := base64.StdEncoding.DecodeString(*r.Value)
				rcv.add(key, string(v))
			}
		}
		return false
	}, "null")
	return lambdaSpec(f.URL, nil), Env{Pipe: "conf", Encoder: testEncoder}
}
