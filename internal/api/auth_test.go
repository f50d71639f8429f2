package api_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/store"
)

// authServer serves the API with WithAuth(cacheTTL) over a real sqlite
// store holding one token, which it returns.
func authServer(t *testing.T, cacheTTL time.Duration) (*httptest.Server, *apitest.Service, string) {
	t.Helper()
	svc := apitest.NewService(t)
	srv := httptest.NewServer(api.NewHandler(svc, nil, append(svc.API(), api.WithAuth(svc.Store, cacheTTL))...))
	t.Cleanup(srv.Close)
	token := api.NewToken()
	if _, err := svc.Store.CreateToken(t.Context(), store.Token{Name: "ci", Hash: api.HashToken(token), Scope: api.ScopeAdmin}); err != nil {
		t.Fatal(err)
	}
	return srv, svc, token
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func authCall(t *testing.T, method, url, authorization string) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body) // "ok" of the probes is not JSON
	return answer{resp.StatusCode, resp.Header, body}
}

func sigV4(accessKeyID string) string {
	return "AWS4-HMAC-SHA256 Credential=" + accessKeyID + "/20260101/us-east-1/lambda/aws4_request, " +
		"SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
}

func TestTokenFormat(t *testing.T) {
	a, b := api.NewToken(), api.NewToken()
	if a == b || !strings.HasPrefix(a, "sluice_") || len(a) != len("sluice_")+43 || strings.ContainsAny(a, "/+=") {
		t.Errorf("tokens %q, %q: want distinct sluice_ + 43 base64url characters", a, b)
	}
	if h := api.HashToken(a); len(h) != 64 || h == api.HashToken(b) || strings.Contains(h, a) {
		t.Errorf("hash %q", h)
	}
}

func TestAuthNativeRoutes(t *testing.T) {
	srv, _, token := authServer(t, time.Hour)
	pipes := srv.URL + "/v1/pipes"

	a := authCall(t, "GET", pipes, "")
	msg, _ := a.body["message"].(string)
	if a.status != 401 || a.body["code"] != "Unauthorized" || a.header.Get("WWW-Authenticate") != `Bearer realm="sluice"` ||
		!strings.Contains(msg, "sluice tokens create NAME") || !strings.Contains(msg, "--token") || !strings.Contains(msg, "SLUICE_TOKEN") {
		t.Errorf("no token: %d %v %v", a.status, a.header, a.body)
	}

	for _, bad := range []string{
		"Bearer " + api.NewToken(),               // well formed, unknown
		"Bearer " + token[:len(token)-1] + "x",   // one character off
		"Bearer " + strings.ToUpper(token),       // tokens are case-sensitive
		"Bearer not-a-token",                     // refused before any lookup
		"Basic " + token,                         // not a bearer token
		sigV4(token),                             // SigV4 is only for the Lambda routes
		"Bearer " + api.HashToken(token),         // the stored hash is not a token
		"Bearer " + token + " " + api.NewToken(), // junk after the token
	} {
		a := authCall(t, "GET", pipes, bad)
		if a.status != 401 || a.body["code"] != "Unauthorized" || !strings.HasPrefix(a.header.Get("WWW-Authenticate"), `Bearer realm="sluice"`) {
			t.Errorf("%.20s…: %d %v %v", bad, a.status, a.header, a.body)
		}
	}

	for _, ok := range []string{"Bearer " + token, "bearer " + token} {
		if a := authCall(t, "GET", pipes, ok); a.status != 200 {
			t.Errorf("valid token (%.7s…): %d %v", ok, a.status, a.body)
		}
	}
	// Unknown routes are behind the check too: their 404 would tell an
	// anonymous client which routes exist.
	if a := authCall(t, "GET", srv.URL+"/nope", ""); a.status != 401 {
		t.Errorf("unknown route without a token: %d", a.status)
	}
	if a := authCall(t, "GET", srv.URL+"/metrics", ""); a.status != 401 {
		t.Errorf("/metrics without a token: %d", a.status)
	}
}

func TestAuthProbesOpen(t *testing.T) {
	srv, _, _ := authServer(t, time.Hour)
	for _, p := range []string{"/healthz", "/readyz"} {
		for _, m := range []string{"GET", "HEAD"} {
			if a := authCall(t, m, srv.URL+p, ""); a.status != 200 {
				t.Errorf("%s %s without a token: %d", m, p, a.status)
			}
		}
		// Only reading them is open.
		if a := authCall(t, "POST", srv.URL+p, ""); a.status != 401 {
			t.Errorf("POST %s without a token: %d", p, a.status)
		}
	}
}

func TestAuthLambdaRoutes(t *testing.T) {
	srv, _, token := authServer(t, time.Hour)
	esm := srv.URL + "/2015-03-31/event-source-mappings/"
	for name, authz := range map[string]string{
		"no header":         "",
		"unknown key id":    sigV4("AKIAIOSFODNN7EXAMPLE"),
		"unknown token":     sigV4(api.NewToken()),
		"unknown bearer":    "Bearer " + api.NewToken(),
		"no Credential":     "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00",
		"empty key id":      sigV4(""),
		"other sig version": "AWS4-ECDSA-P256-SHA256 Credential=" + token + "/20260101/lambda/aws4_request, Signature=00",
	} {
		a := authCall(t, "GET", esm, authz)
		if a.status != 403 || a.header.Get("x-amzn-errortype") != "UnrecognizedClientException" ||
			a.body["Type"] != "User" || a.body["message"] != "The security token included in the request is invalid." || len(a.body) != 2 {
			t.Errorf("%s: %d %v %v", name, a.status, a.header, a.body)
		}
		if a.header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: a Lambda answer has no bearer challenge", name)
		}
	}
	for name, authz := range map[string]string{
		"SigV4 with the token as access key id": sigV4(token),
		"bearer token":                          "Bearer " + token,
	} {
		if a := authCall(t, "GET", esm, authz); a.status != 200 {
			t.Errorf("%s: %d %v", name, a.status, a.body)
		}
	}
}

// A deleted token goes on working only while the server still trusts its
// earlier lookup: forever within the cache bound (an hour here), not at
// all with a bound of 0.
func TestAuthDeletedToken(t *testing.T) {
	for _, tc := range []struct {
		ttl         time.Duration
		afterDelete int
	}{
		{0, 401},
		{time.Hour, 200},
	} {
		srv, svc, token := authServer(t, tc.ttl)
		pipes := srv.URL + "/v1/pipes"
		if a := authCall(t, "GET", pipes, "Bearer "+token); a.status != 200 {
			t.Fatalf("ttl %s: before delete: %d %v", tc.ttl, a.status, a.body)
		}
		if err := svc.Store.DeleteToken(t.Context(), "ci"); err != nil {
			t.Fatal(err)
		}
		if a := authCall(t, "GET", pipes, "Bearer "+token); a.status != tc.afterDelete {
			t.Errorf("ttl %s: after delete: %d, want %d", tc.ttl, a.status, tc.afterDelete)
		}
		// The SigV4 form is the same token under the same cache.
		want := map[int]int{401: 403, 200: 200}[tc.afterDelete]
		if a := authCall(t, "GET", srv.URL+"/2015-03-31/event-source-mappings/", sigV4(token)); a.status != want {
			t.Errorf("ttl %s: SigV4 after delete: %d, want %d", tc.ttl, a.status, want)
		}
	}
}

// The client sends its token, and a 401 becomes an error that says what
// to do.
func TestClientToken(t *testing.T) {
	srv, _, token := authServer(t, 0)
	ctx := t.Context()

	_, err := api.NewClient(srv.URL, nil).ListPipes(ctx)
	var ue *api.UnauthorizedError
	if !errors.As(err, &ue) || ue.TokenSent || !strings.Contains(err.Error(), "requires a token") ||
		!strings.Contains(err.Error(), "sluice tokens create NAME") || !strings.Contains(err.Error(), "SLUICE_TOKEN") {
		t.Errorf("without a token: %v", err)
	}
	_, err = api.NewClient(srv.URL, nil).WithToken(api.NewToken()).ListPipes(ctx)
	if !errors.As(err, &ue) || !ue.TokenSent || !strings.Contains(err.Error(), "refused the token") {
		t.Errorf("unknown token: %v", err)
	}

	base := api.NewClient(srv.URL, nil)
	if _, err := base.WithToken(token).ListPipes(ctx); err != nil {
		t.Errorf("with the token: %v", err)
	}
	// WithToken returns a copy: the original still sends none.
	if _, err := base.ListPipes(ctx); !errors.As(err, &ue) {
		t.Errorf("WithToken changed the client it was called on: %v", err)
	}
}

// Without WithAuth, as under `sluice dev`, nothing is checked.
func TestNoAuthWithoutOption(t *testing.T) {
	srv, _ := apitest.NewServer(t)
	if a := authCall(t, "GET", srv.URL+"/v1/pipes", ""); a.status != 200 {
		t.Errorf("without WithAuth: %d %v", a.status, a.body)
	}
}

// Tokens never reach the log, valid or not, at any level.
func TestAuthLogsNoTokens(t *testing.T) {
	var buf syncBuffer
	svc := apitest.NewService(t)
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := httptest.NewServer(api.NewHandler(svc, log, append(svc.API(), api.WithAuth(svc.Store, 0))...))
	t.Cleanup(srv.Close)
	token, unknown := api.NewToken(), api.NewToken()
	if _, err := svc.Store.CreateToken(t.Context(), store.Token{Name: "ci", Hash: api.HashToken(token), Scope: api.ScopeAdmin}); err != nil {
		t.Fatal(err)
	}
	authCall(t, "GET", srv.URL+"/v1/pipes", "Bearer "+token)
	authCall(t, "GET", srv.URL+"/v1/pipes", "Bearer "+unknown)
	authCall(t, "GET", srv.URL+"/2015-03-31/event-source-mappings/", sigV4(unknown))
	srv.Close() // every request has been logged
	out := buf.String()
	if !strings.Contains(out, "invalid token") {
		t.Fatalf("the refusals were not logged:\n%s", out)
	}
	for _, tok := range []string{token, unknown, strings.TrimPrefix(token, "sluice_"), strings.TrimPrefix(unknown, "sluice_")} {
		if strings.Contains(out, tok) {
			t.Errorf("the log holds a token:\n%s", out)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A store that fails is the server's problem, not a bad token: 500, so a
// client does not go and replace a good token.
func TestAuthStoreFailure(t *testing.T) {
	srv, svc, token := authServer(t, 0)
	if err := svc.Store.Close(); err != nil {
		t.Fatal(err)
	}
	if a := authCall(t, "GET", srv.URL+"/v1/pipes", "Bearer "+token); a.status != 500 || a.body["code"] != "Internal" {
		t.Errorf("native: %d %v", a.status, a.body)
	}
	a := authCall(t, "GET", srv.URL+"/2015-03-31/event-source-mappings/", sigV4(token))
	if a.status != 500 || a.header.Get("x-amzn-errortype") != "ServiceException" || a.body["Type"] != "Service" {
		t.Errorf("lambda: %d %v %v", a.status, a.header, a.body)
	}
}
