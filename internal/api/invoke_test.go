package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// TestInvokeAPI: POST /2015-03-31/functions/NAME/invocations runs a
// registered function and answers as the Lambda Invoke API does.
func TestInvokeAPI(t *testing.T) {
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte("boom")) {
			http.Error(w, "the endpoint failed", http.StatusInternalServerError)
			return
		}
		w.Write(append([]byte(`{"echo":`), append(body, '}')...))
	}))
	defer endpoint.Close()
	srv, svc := apitest.NewServer(t)
	if _, err := svc.PutFunction(context.Background(), pipe.Function{Name: "echo", URL: endpoint.URL}); err != nil {
		t.Fatal(err)
	}
	invoke := func(name, contentType, typ string, body []byte) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/2015-03-31/functions/"+name+"/invocations", bytes.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if typ != "" {
			req.Header.Set("X-Amz-Invocation-Type", typ)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, body := invoke("echo", "application/octet-stream", "", []byte(`{"a":1}`))
	if resp.StatusCode != 200 || body != `{"echo":{"a":1}}` || resp.Header.Get("X-Amz-Function-Error") != "" || resp.Header.Get("X-Amz-Executed-Version") != "$LATEST" {
		t.Fatalf("invoke: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	// By ARN, and without a Content-Type, as the AWS CLI sends it.
	if resp, body := invoke("arn:aws:lambda:sluice:000000000000:function:echo", "", "RequestResponse", []byte(`{}`)); resp.StatusCode != 200 || body != `{"echo":{}}` {
		t.Fatalf("invoke by ARN: %d %q", resp.StatusCode, body)
	}
	// A failing endpoint is a function error, as a failed handler is.
	resp, body = invoke("echo", "application/json", "", []byte(`"boom"`))
	if resp.StatusCode != 200 || resp.Header.Get("X-Amz-Function-Error") != "Unhandled" || !strings.Contains(body, `"errorType":"HTTP500"`) {
		t.Fatalf("function error: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, _ := invoke("echo", "", "DryRun", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DryRun: %d", resp.StatusCode)
	}
	for _, c := range []struct {
		name, ct, typ string
		body          []byte
		status        int
		errType, want string
	}{
		{"nope", "", "", []byte(`{}`), 404, "ResourceNotFoundException", "sluice functions set nope"},
		{"nope", "", "DryRun", nil, 404, "ResourceNotFoundException", "Function not found"},
		{"echo", "", "Event", []byte(`{}`), 400, "InvalidParameterValueException", "synchronously only"},
		{"echo", "", "", bytes.Repeat([]byte("x"), pipe.LambdaRequestLimitBytes+1), 413, "RequestTooLargeException", "smaller than"},
	} {
		resp, body := invoke(c.name, c.ct, c.typ, c.body)
		if resp.StatusCode != c.status || resp.Header.Get("x-amzn-errortype") != c.errType || !strings.Contains(body, c.want) {
			t.Errorf("%s %s: %d %s %q, want %d %s %q", c.name, c.typ, resp.StatusCode, resp.Header.Get("x-amzn-errortype"), body, c.status, c.errType, c.want)
		}
	}
	// A form a page of another site could post is refused.
	if resp, _ := invoke("echo", "text/plain", "", []byte(`{}`)); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: %d", resp.StatusCode)
	}
}
