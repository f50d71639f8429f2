package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
)

type describer map[string]observe.Description

func (d describer) Describe(_ context.Context, name string) (observe.Description, error) {
	if v, ok := d[name]; ok {
		return v, nil
	}
	return observe.Description{}, pipe.ErrNotFound
}

func call(t *testing.T, srv *httptest.Server, method, path string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestObserveRoutes: the observability routes answer from their options,
// in the API's JSON error format, and are absent (404) without them.
func TestObserveRoutes(t *testing.T) {
	svc := apitest.NewService(t)
	notReady := errors.New("the engine has not reconciled the stored pipes yet")
	var ready atomic.Bool
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "sluice_x 1\n") })
	d := describer{"a": {Name: "a", State: "Enabled", Lag: &observe.Lag{Total: 3}}}
	srv := httptest.NewServer(api.NewHandler(svc, nil, api.WithMetrics(metrics),
		api.WithReadiness(func(context.Context) error {
			if ready.Load() {
				return nil
			}
			return notReady
		}), api.WithDescriber(d)))
	defer srv.Close()

	code, _, body := call(t, srv, "GET", "/readyz")
	var eb struct{ Code, Message string }
	if err := json.Unmarshal([]byte(body), &eb); code != 503 || err != nil || eb.Code != api.CodeNotReady || eb.Message != notReady.Error() {
		t.Fatalf("/readyz not ready: %d %s", code, body)
	}
	ready.Store(true)
	if code, _, body := call(t, srv, "GET", "/readyz"); code != 200 || body != "ok" {
		t.Fatalf("/readyz ready: %d %q", code, body)
	}
	if code, _, body := call(t, srv, "GET", "/metrics"); code != 200 || body != "sluice_x 1\n" {
		t.Fatalf("/metrics: %d %q", code, body)
	}
	if code, h, _ := call(t, srv, "POST", "/metrics"); code != 405 || h.Get("Allow") != "GET" {
		t.Fatalf("POST /metrics: %d", code)
	}
	c := api.NewClient(srv.URL, nil)
	got, err := c.Describe(context.Background(), "a")
	if err != nil || got.Name != "a" || got.Lag == nil || got.Lag.Total != 3 {
		t.Fatalf("describe: %+v %v", got, err)
	}
	if _, err := c.Describe(context.Background(), "b"); !errors.Is(err, pipe.ErrNotFound) {
		t.Fatalf("describe of an unknown pipe: %v", err)
	}
	if code, h, _ := call(t, srv, "DELETE", "/v1/pipes/a/describe"); code != 405 || h.Get("Allow") != "GET" {
		t.Fatalf("DELETE describe: %d", code)
	}

	bare := httptest.NewServer(api.NewHandler(svc, nil))
	defer bare.Close()
	if code, _, _ := call(t, bare, "GET", "/readyz"); code != 200 {
		t.Fatalf("/readyz without a readiness check: %d", code)
	}
	for _, path := range []string{"/metrics", "/v1/pipes/a/describe"} {
		if code, _, body := call(t, bare, "GET", path); code != 404 || json.Unmarshal([]byte(body), &eb) != nil || eb.Code != api.CodeNotFound {
			t.Fatalf("%s without its option: %d %s", path, code, body)
		}
	}
}
