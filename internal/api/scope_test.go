package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/store"
)

// TestTokenScopes: read reads, operate runs pipes, functions and mappings,
// admin alone touches clusters, secrets, and mappings that bring their own
// credentials; a refusal says what is needed.
func TestTokenScopes(t *testing.T) {
	svc := apitest.NewService(t)
	srv := httptest.NewServer(api.NewHandler(svc, nil, append(svc.API(), api.WithAuth(svc.Store, 0))...))
	t.Cleanup(srv.Close)
	tokens := map[string]string{}
	for _, scope := range api.Scopes {
		tok := api.NewToken()
		if _, err := svc.Store.CreateToken(t.Context(), store.Token{Name: scope + "-token", Hash: api.HashToken(tok), Scope: scope}); err != nil {
			t.Fatal(err)
		}
		tokens[scope] = tok
	}
	call := func(scope, method, path, body string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if strings.HasPrefix(path, "/2015-03-31/") {
			req.Header.Set("Authorization", sigV4(tokens[scope]))
		} else {
			req.Header.Set("Authorization", "Bearer "+tokens[scope])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		_, _ = io.Copy(b, resp.Body)
		return resp.StatusCode, resp.Header.Get("x-amzn-errortype"), b.String()
	}
	pipeBody := func(name string) string {
		return `{"name":"` + name + `","bootstrapServers":["127.0.0.1:9092"],"topics":["t"],"target":{"http":{"url":"http://127.0.0.1:9000/"}}}`
	}
	const cluster = `{"bootstrapServers":["127.0.0.1:9092"]}`
	const secretBody = `{"type":"generic","data":{"password":"p"}}`
	sac := strings.Replace(esmCreate, `"BatchSize":50`, `"BatchSize":50,"SourceAccessConfigurations":[{"Type":"SASL_SCRAM_512_AUTH","URI":"creds"}]`, 1)

	for _, c := range []struct {
		scope, method, path, body string
		refused                   bool
		needs                     string
	}{
		{"read", "GET", "/v1/pipes", "", false, ""},
		{"read", "GET", "/v1/clusters", "", false, ""},
		{"read", "POST", "/v1/pipes", pipeBody("r"), true, "needs operate"},
		{"read", "POST", "/2015-03-31/event-source-mappings/", esmCreate, true, "needs operate"},
		{"operate", "POST", "/v1/pipes", pipeBody("o"), false, ""},
		{"operate", "PUT", "/v1/functions/f", `{"url":"http://127.0.0.1:9100/"}`, false, ""},
		{"operate", "POST", "/2015-03-31/event-source-mappings/", esmCreate, false, ""},
		{"operate", "PUT", "/v1/clusters/c", cluster, true, "needs admin"},
		{"operate", "PUT", "/v1/secrets/creds", secretBody, true, "needs admin"},
		{"operate", "DELETE", "/v1/secrets/creds", "", true, "needs admin"},
		{"operate", "POST", "/2015-03-31/event-source-mappings/", sac, true, "SourceAccessConfigurations, which register credentials, needs admin"},
		{"admin", "PUT", "/v1/secrets/creds", secretBody, false, ""},
		{"admin", "PUT", "/v1/clusters/c", cluster, false, ""},
		{"admin", "POST", "/2015-03-31/event-source-mappings/", sac, false, ""},
	} {
		status, awsType, body := call(c.scope, c.method, c.path, c.body)
		if c.refused {
			lambda := strings.HasPrefix(c.path, "/2015-03-31/")
			if status != http.StatusForbidden || !strings.Contains(body, c.needs) || !strings.Contains(body, c.scope+"-token") ||
				(lambda && awsType != "AccessDeniedException") {
				t.Errorf("%s %s %s: %d %s %s; want 403 saying %q", c.scope, c.method, c.path, status, awsType, body, c.needs)
			}
			continue
		}
		if status == http.StatusForbidden || status == http.StatusUnauthorized || status >= 500 {
			t.Errorf("%s %s %s: %d %s", c.scope, c.method, c.path, status, body)
		}
	}
}
