package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/pipe"
)

func spec(name string) pipe.Spec {
	return pipe.Spec{
		Name:             name,
		BootstrapServers: []string{"127.0.0.1:9092"},
		Topics:           []string{"orders"},
		Target:           pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://127.0.0.1:9000/"}},
	}
}

func newClient(t *testing.T) (*api.Client, *httptest.Server) {
	srv, _ := apitest.NewServer(t)
	return api.NewClient(srv.URL, srv.Client()), srv
}

func TestClientRoundTrip(t *testing.T) {
	ctx := t.Context()
	c, _ := newClient(t)

	created, err := c.CreatePipe(ctx, spec("orders"))
	if err != nil {
		t.Fatal(err)
	}
	if created.UUID == "" || created.Revision != 1 || created.BatchSize != pipe.DefaultBatchSize || created.Status.State != pipe.StateCreating {
		t.Errorf("created = %+v; want a UUID, revision 1, defaults and state Creating", created)
	}

	got, err := c.GetPipe(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if got.UUID != created.UUID || got.Target.HTTP.URL != created.Target.HTTP.URL {
		t.Errorf("get = %+v, want %+v", got, created)
	}

	if _, err := c.CreatePipe(ctx, spec("billing")); err != nil {
		t.Fatal(err)
	}
	ps, err := c.ListPipes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 || ps[0].Name != "billing" || ps[1].Name != "orders" {
		t.Errorf("list = %+v, want billing, orders", ps)
	}

	if err := c.DeletePipe(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetPipe(ctx, "orders"); !errors.Is(err, pipe.ErrNotFound) {
		t.Errorf("get after delete: %v, want ErrNotFound", err)
	}
}

func TestClientErrors(t *testing.T) {
	ctx := t.Context()
	c, _ := newClient(t)
	if _, err := c.CreatePipe(ctx, spec("orders")); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name     string
		call     func() error
		is       error
		status   int
		code     string
		contains string
	}{
		{"get missing", func() error { _, err := c.GetPipe(ctx, "nope"); return err }, pipe.ErrNotFound, 404, api.CodeNotFound, `pipe "nope" not found`},
		{"delete missing", func() error { return c.DeletePipe(ctx, "nope") }, pipe.ErrNotFound, 404, api.CodeNotFound, `pipe "nope" not found`},
		{"name with slash is just missing", func() error { _, err := c.GetPipe(ctx, "a/b"); return err }, pipe.ErrNotFound, 404, api.CodeNotFound, `"a/b"`},
		{"duplicate", func() error { _, err := c.CreatePipe(ctx, spec("orders")); return err }, pipe.ErrExists, 409, api.CodeConflict, `pipe "orders" already exists`},
		{"invalid", func() error {
			s := spec("bad name")
			s.BatchSize = 20000
			_, err := c.CreatePipe(ctx, s)
			return err
		}, nil, 400, api.CodeInvalidParameter, "invalid pipe: name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var ae *api.Error
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *api.Error", err, err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", err, tc.is)
			}
			if ae.StatusCode != tc.status || ae.Code != tc.code || !strings.Contains(ae.Message, tc.contains) {
				t.Errorf("got %d %s %q, want %d %s containing %q", ae.StatusCode, ae.Code, ae.Message, tc.status, tc.code, tc.contains)
			}
		})
	}
}

// A rejected spec comes back through the client as the same
// *pipe.ValidationError the service returned, every field included.
func TestClientValidationErrorFields(t *testing.T) {
	c, _ := newClient(t)
	s := spec("orders")
	s.BatchSize = 20000
	s.Target.HTTP.URL = "ftp://x"
	_, err := c.CreatePipe(t.Context(), s)
	var ve *pipe.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("err = %v, want a *pipe.ValidationError", err)
	}
	want := s.Validate(timeNowForTest())
	if err.Error() != want.Error() {
		t.Errorf("message = %q, want %q", err.Error(), want.Error())
	}
	var fields []string
	for _, f := range ve.Fields {
		fields = append(fields, f.Field)
	}
	if strings.Join(fields, ",") != "batchSize,target.http.url" {
		t.Errorf("fields = %v, want batchSize, target.http.url", fields)
	}
}

func TestClientUnreachable(t *testing.T) {
	// A port that was just free and is closed again refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()

	_, err = api.NewClient(url, nil).ListPipes(t.Context())
	var ue *api.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v (%T), want *api.UnreachableError", err, err)
	}
	for _, want := range []string{url, "not reachable", "connection refused", "sluice dev", "--api", "SLUICE_API"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message %q does not mention %q", err.Error(), want)
		}
	}
}

// Another program on the API's port must not make a missing route look
// like a missing pipe.
func TestClientForeignServer(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	_, err := api.NewClient(srv.URL, srv.Client()).GetPipe(t.Context(), "orders")
	if err == nil || errors.Is(err, pipe.ErrNotFound) {
		t.Fatalf("err = %v, want a non-NotFound error", err)
	}
	if !strings.Contains(err.Error(), "not a Sluice API error") {
		t.Errorf("message %q does not say the server is not Sluice", err)
	}
}

type rawResponse struct {
	status int
	header http.Header
	body   string
}

func send(t *testing.T, srv *httptest.Server, method, path, body string) rawResponse {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return rawResponse{resp.StatusCode, resp.Header, string(b)}
}

type errBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Fields  []struct {
		Field, Value, Reason string
	} `json:"fields"`
}

func TestHandlerResponses(t *testing.T) {
	srv, _ := apitest.NewServer(t)
	valid := `{"name":"orders","bootstrapServers":["127.0.0.1:9092"],"topics":["orders"],"target":{"http":{"url":"http://127.0.0.1:9000/"}}}`

	cases := []struct {
		name         string
		method, path string
		body         string
		status       int
		code         string // "" for a non-error response
		contains     string // in the message, or in the body of a success
	}{
		{"healthz", "GET", "/healthz", "", 200, "", "ok"},
		{"create", "POST", "/v1/pipes", valid, 201, "", `"name":"orders"`},
		{"list", "GET", "/v1/pipes", "", 200, "", `{"pipes":[{"name":"orders"`},
		{"get", "GET", "/v1/pipes/orders", "", 200, "", `"batchSize":100`},
		{"duplicate", "POST", "/v1/pipes", valid, 409, api.CodeConflict, `pipe "orders" already exists`},
		{"empty body", "POST", "/v1/pipes", "", 400, api.CodeBadRequest, "body is empty"},
		{"malformed", "POST", "/v1/pipes", `{"name":`, 400, api.CodeBadRequest, "malformed JSON"},
		{"syntax", "POST", "/v1/pipes", `{"name" "x"}`, 400, api.CodeBadRequest, "malformed JSON at byte"},
		{"unknown field", "POST", "/v1/pipes", `{"name":"x","batchSizes":5}`, 400, api.CodeBadRequest, "field batchSizes: unknown field; the fields here are batchSize,"},
		{"wrong type", "POST", "/v1/pipes", `{"name":"x","batchSize":"5"}`, 400, api.CodeBadRequest, "field batchSize: got a JSON string, want an integer"},
		{"bad time", "POST", "/v1/pipes", `{"name":"x","startingPositionTimestamp":"yesterday"}`, 400, api.CodeBadRequest, "RFC 3339"},
		{"array body", "POST", "/v1/pipes", `[]`, 400, api.CodeBadRequest, "JSON array: want an object"},
		{"trailing data", "POST", "/v1/pipes", valid + `{}`, 400, api.CodeBadRequest, "data after its JSON value"},
		{"too large", "POST", "/v1/pipes", `{"name":"` + strings.Repeat("a", api.MaxBodyBytes) + `"}`, 413, api.CodeRequestTooLarge, "larger than"},
		{"invalid", "POST", "/v1/pipes", `{"name":"x"}`, 400, api.CodeInvalidParameter, "invalid pipe: bootstrapServers: required"},
		{"get missing", "GET", "/v1/pipes/nope", "", 404, api.CodeNotFound, `pipe "nope" not found`},
		{"delete missing", "DELETE", "/v1/pipes/nope", "", 404, api.CodeNotFound, `pipe "nope" not found`},
		{"wrong method", "PUT", "/v1/pipes", "", 405, api.CodeMethodNotAllowed, "use GET, POST"},
		{"wrong method on pipe", "POST", "/v1/pipes/orders", "", 405, api.CodeMethodNotAllowed, "use GET, PUT, DELETE"},
		{"unknown route", "GET", "/v2/things", "", 404, api.CodeNotFound, "no route"},
		{"delete", "DELETE", "/v1/pipes/orders", "", 204, "", ""},
		{"list empty", "GET", "/v1/pipes", "", 200, "", `{"pipes":[]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := send(t, srv, tc.method, tc.path, tc.body)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d; body %s", r.status, tc.status, r.body)
			}
			if tc.code == "" {
				if !strings.Contains(r.body, tc.contains) {
					t.Errorf("body %s does not contain %s", r.body, tc.contains)
				}
				return
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			var eb errBody
			if err := json.Unmarshal([]byte(r.body), &eb); err != nil {
				t.Fatalf("error body %q: %v", r.body, err)
			}
			if eb.Code != tc.code || !strings.Contains(eb.Message, tc.contains) {
				t.Errorf("got %s %q, want %s containing %q", eb.Code, eb.Message, tc.code, tc.contains)
			}
		})
	}
}

func TestHandlerValidationFields(t *testing.T) {
	srv, _ := apitest.NewServer(t)
	r := send(t, srv, "POST", "/v1/pipes", `{"name":"a b","bootstrapServers":["localhost"],"topics":["t"],"target":{"http":{"url":"http://x/"}},"batchSize":0}`)
	if r.status != 400 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var eb errBody
	if err := json.Unmarshal([]byte(r.body), &eb); err != nil {
		t.Fatal(err)
	}
	if eb.Code != api.CodeInvalidParameter || len(eb.Fields) != 2 {
		t.Fatalf("body = %+v, want InvalidParameter with 2 fields", eb)
	}
	if f := eb.Fields[0]; f.Field != "name" || f.Value != `"a b"` || !strings.Contains(f.Reason, "letters") {
		t.Errorf("fields[0] = %+v", f)
	}
	if f := eb.Fields[1]; f.Field != "bootstrapServers[0]" || f.Value != `"localhost"` || !strings.Contains(f.Reason, "host:port") {
		t.Errorf("fields[1] = %+v", f)
	}
	if !strings.Contains(r.body, `"field":"name"`) || !strings.Contains(r.body, `"reason":`) {
		t.Errorf("fields not in the documented shape: %s", r.body)
	}
}

func TestCreateSetsLocation(t *testing.T) {
	srv, _ := apitest.NewServer(t)
	b, _ := json.Marshal(spec("orders"))
	r := send(t, srv, "POST", "/v1/pipes", string(b))
	if r.status != 201 || r.header.Get("Location") != "/v1/pipes/orders" {
		t.Errorf("status %d Location %q", r.status, r.header.Get("Location"))
	}
}

// failing is a pipe.Service whose store is broken, to check that internal
// errors reach the log and never the client.
type failing struct{}

var errSecret = errors.New("sqlite: disk I/O error at /var/lib/secret/path")

func (failing) CreatePipe(context.Context, pipe.Spec) (pipe.Pipe, error) {
	return pipe.Pipe{}, errSecret
}
func (failing) GetPipe(context.Context, string) (pipe.Pipe, error) { return pipe.Pipe{}, errSecret }
func (failing) ListPipes(context.Context) ([]pipe.Pipe, error)     { return nil, errSecret }
func (failing) DeletePipe(context.Context, string) error           { panic("boom") }
func (failing) UpdatePipe(context.Context, pipe.Spec, int64) (pipe.Pipe, error) {
	return pipe.Pipe{}, errSecret
}

func TestInternalErrorsAreLoggedNotReturned(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	srv := httptest.NewServer(api.NewHandler(failing{}, log))
	defer srv.Close()
	c := api.NewClient(srv.URL, srv.Client())

	calls := map[string]func() error{
		"list":   func() error { _, err := c.ListPipes(t.Context()); return err },
		"get":    func() error { _, err := c.GetPipe(t.Context(), "x"); return err },
		"create": func() error { _, err := c.CreatePipe(t.Context(), spec("x")); return err },
		"panic":  func() error { return c.DeletePipe(t.Context(), "x") },
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			logs.Reset()
			err := call()
			var ae *api.Error
			if !errors.As(err, &ae) || ae.StatusCode != 500 || ae.Code != api.CodeInternal {
				t.Fatalf("err = %v, want a 500 Internal *api.Error", err)
			}
			if strings.Contains(ae.Message, "secret") || strings.Contains(ae.Message, "boom") {
				t.Errorf("message leaks the cause: %q", ae.Message)
			}
			if !strings.Contains(ae.Message, "request id") {
				t.Errorf("message %q has no request id", ae.Message)
			}
			id := ae.Message[strings.Index(ae.Message, "request id ")+len("request id ") : strings.Index(ae.Message, ")")]
			if !strings.Contains(logs.String(), "request_id="+id) {
				t.Errorf("log does not carry request id %s: %s", id, logs.String())
			}
			if name != "panic" && !strings.Contains(logs.String(), "secret/path") {
				t.Errorf("log does not carry the cause: %s", logs.String())
			}
		})
	}
}

func timeNowForTest() time.Time { return time.Now() }

// TestClientUpdate: an update changes what may change, bumps the revision,
// leaves create-only fields as they were when omitted, refuses changing
// them, and refuses a stale revision.
func TestClientUpdate(t *testing.T) {
	c, _ := newClient(t)
	ctx := context.Background()
	created, err := c.CreatePipe(ctx, spec("orders"))
	if err != nil {
		t.Fatal(err)
	}
	upd := pipe.Spec{Name: "orders", BatchSize: 500, Target: pipe.Target{HTTP: &pipe.HTTPTarget{URL: "http://127.0.0.1:9001/"}}}
	got, err := c.UpdatePipe(ctx, upd, created.Revision)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != created.Revision+1 || got.BatchSize != 500 || got.Target.HTTP.URL != "http://127.0.0.1:9001/" ||
		got.Topics[0] != "orders" || got.UUID != created.UUID || got.Status.State != pipe.StateUpdating {
		t.Fatalf("updated pipe %+v", got)
	}
	again, err := c.UpdatePipe(ctx, upd, 0)
	if err != nil || again.Revision != got.Revision {
		t.Fatalf("re-applying the same spec: revision %d, err %v; want the unchanged revision %d", again.Revision, err, got.Revision)
	}
	if _, err := c.UpdatePipe(ctx, pipe.Spec{Name: "orders", BatchSize: 7, Target: upd.Target}, created.Revision); !errors.Is(err, pipe.ErrConflict) {
		t.Fatalf("stale revision: %v, want ErrConflict", err)
	}
	_, err = c.UpdatePipe(ctx, pipe.Spec{Name: "orders", Topics: []string{"payments"}, Target: upd.Target}, 0)
	var ve *pipe.ValidationError
	if !errors.As(err, &ve) || ve.Fields[0].Field != "topics" || !strings.Contains(ve.Fields[0].Reason, "only when the pipe is created") {
		t.Fatalf("changing topics: %v", err)
	}
	disabled := false
	got, err = c.UpdatePipe(ctx, pipe.Spec{Name: "orders", Enabled: &disabled, Target: upd.Target}, 0)
	if err != nil || got.Status.State != pipe.StateDisabling {
		t.Fatalf("disable: state %s, err %v", got.Status.State, err)
	}
	if _, err := c.UpdatePipe(ctx, pipe.Spec{Name: "nope", Target: upd.Target}, 0); !errors.Is(err, pipe.ErrNotFound) {
		t.Fatalf("missing pipe: %v", err)
	}
}

func TestHandlerUpdateResponses(t *testing.T) {
	srv, _ := apitest.NewServer(t)
	body := `{"name":"orders","bootstrapServers":["127.0.0.1:9092"],"topics":["orders"],"target":{"http":{"url":"http://127.0.0.1:9000/"}}}`
	if r := send(t, srv, "POST", "/v1/pipes", body); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	get, err := http.Get(srv.URL + "/v1/pipes/orders")
	if err != nil {
		t.Fatal(err)
	}
	get.Body.Close()
	if tag := get.Header.Get("ETag"); tag != `"1"` {
		t.Fatalf("ETag %q, want \"1\"", tag)
	}
	put := func(path, body, ifMatch string) (int, string) {
		req, _ := http.NewRequest("PUT", srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b) + " etag=" + resp.Header.Get("ETag")
	}
	for _, c := range []struct {
		path, body, ifMatch string
		status              int
		want                string
	}{
		{"/v1/pipes/orders", `{"batchSize":50,"target":{"http":{"url":"http://127.0.0.1:9000/"}}}`, `"1"`, 200, `etag="2"`},
		{"/v1/pipes/orders", `{"batchSize":60,"target":{"http":{"url":"http://127.0.0.1:9000/"}}}`, `"1"`, 412, api.CodePrecondition},
		{"/v1/pipes/orders", `{"batchSize":60,"target":{"http":{"url":"http://127.0.0.1:9000/"}}}`, `soon`, 400, "If-Match soon"},
		{"/v1/pipes/orders", `{"name":"other","target":{"http":{"url":"http://127.0.0.1:9000/"}}}`, "", 400, "cannot be renamed"},
		{"/v1/pipes/orders", `{"batchSize":0.5}`, "", 400, "batchSize"},
		{"/v1/pipes/orders", `{"consumerGroupId":"g2","target":{"http":{"url":"http://127.0.0.1:9000/"}}}`, "", 400, "consumerGroupId"},
	} {
		status, got := put(c.path, c.body, c.ifMatch)
		if status != c.status || !strings.Contains(got, c.want) {
			t.Errorf("PUT %s If-Match %s: %d %s, want %d containing %q", c.body, c.ifMatch, status, got, c.status, c.want)
		}
	}
}
