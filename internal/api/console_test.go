package api_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/api"
	"github.com/sluice-dev/sluice/internal/api/apitest"
	"github.com/sluice-dev/sluice/internal/console"
	"github.com/sluice-dev/sluice/internal/store"
)

// consoleServer is authServer with the console.
func consoleServer(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	svc := apitest.NewService(t)
	srv := httptest.NewServer(api.NewHandler(svc, nil, append(svc.API(), api.WithAuth(svc.Store, 0), api.WithConsole(console.Handler()))...))
	t.Cleanup(srv.Close)
	token := api.NewToken()
	if _, err := svc.Store.CreateToken(t.Context(), store.Token{Name: "viewer", Hash: api.HashToken(token), Scope: api.ScopeRead}); err != nil {
		t.Fatal(err)
	}
	return srv, token
}

// browserClient keeps cookies and does not follow redirects, as the tests
// look at them.
func browserClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestConsoleNeedsTheToken: outside dev the console's pages and its data
// need the API's token, which a browser gives once at the sign-in page and
// then holds as an HttpOnly, SameSite=Strict session cookie.
func TestConsoleNeedsTheToken(t *testing.T) {
	srv, token := consoleServer(t)
	c := browserClient(t)

	// Without a token: a page load goes to the sign-in page, an API call
	// is refused; the sign-in page and what it loads are served.
	if r := do(t, c, "GET", srv.URL+"/ui/", ""); r.StatusCode != http.StatusSeeOther || !strings.HasPrefix(r.Header.Get("Location"), "/ui/login?next=") {
		t.Fatalf("GET /ui/ without a token: %d Location %q, want 303 to the sign-in page", r.StatusCode, r.Header.Get("Location"))
	}
	for _, p := range []string{"/ui/login", "/ui/assets/login.js", "/ui/assets/style.css"} {
		if r := do(t, c, "GET", srv.URL+p, ""); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d, want 200", p, r.StatusCode)
		}
	}
	for _, p := range []string{"/ui/assets/app.js", "/v1/pipes", "/v1/overview"} {
		if r := do(t, c, "GET", srv.URL+p, ""); r.StatusCode == http.StatusOK {
			t.Errorf("GET %s without a token: 200, want it refused", p)
		}
	}

	// A wrong token signs nobody in.
	if r := do(t, c, "POST", srv.URL+"/ui/login", `{"token":"sluice_wrong"}`); r.StatusCode != http.StatusUnauthorized || len(r.Cookies()) != 0 {
		t.Fatalf("sign-in with a wrong token: %d, cookies %v", r.StatusCode, r.Cookies())
	}
	// A form post (what a page of another site can send) is refused.
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/ui/login", strings.NewReader("token="+token))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r, err := c.Do(req); err != nil || r.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("sign-in as a form post: %v %v, want 415", r, err)
	}

	r := do(t, c, "POST", srv.URL+"/ui/login", `{"token":"`+token+`"}`)
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("sign-in: %d", r.StatusCode)
	}
	var session *http.Cookie
	for _, ck := range r.Cookies() {
		if ck.Name == api.SessionCookie {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || session.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", session)
	}

	// Signed in: pages and reads work; the token's scope still rules.
	for _, p := range []string{"/ui/", "/ui/assets/app.js", "/v1/pipes"} {
		if r := do(t, c, "GET", srv.URL+p, ""); r.StatusCode != http.StatusOK {
			t.Errorf("GET %s signed in: %d, want 200", p, r.StatusCode)
		}
	}
	if r := do(t, c, "GET", srv.URL+"/ui/", ""); !strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Errorf("console page without its Content-Security-Policy: %q", r.Header.Get("Content-Security-Policy"))
	}
	if r := do(t, c, "POST", srv.URL+"/v1/pipes", `{"name":"x"}`); r.StatusCode != http.StatusForbidden {
		t.Errorf("a read token's session created a pipe: %d, want 403", r.StatusCode)
	}
	// The Lambda routes never take the cookie: SDKs sign their requests.
	if r := do(t, c, "GET", srv.URL+"/2015-03-31/event-source-mappings/", ""); r.StatusCode == http.StatusOK {
		t.Errorf("Lambda route took the session cookie")
	}
	// A cross-site write with the cookie is refused whatever it is.
	req, _ = http.NewRequestWithContext(t.Context(), "DELETE", srv.URL+"/v1/pipes/x", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if r, err := c.Do(req); err != nil || r.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site DELETE with the session: %v %v, want 403", r, err)
	}

	if r := do(t, c, "POST", srv.URL+"/ui/logout", ""); r.StatusCode != http.StatusNoContent {
		t.Fatalf("sign-out: %d", r.StatusCode)
	}
	if r := do(t, c, "GET", srv.URL+"/v1/pipes", ""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/pipes after sign-out: %d, want 401", r.StatusCode)
	}
}

// TestConsoleWithoutTokens: sluice dev has no tokens, so the console opens
// at once and the sign-in page sends the browser on.
func TestConsoleWithoutTokens(t *testing.T) {
	svc := apitest.NewService(t)
	srv := httptest.NewServer(api.NewHandler(svc, nil, append(svc.API(), api.WithConsole(console.Handler()))...))
	defer srv.Close()
	c := browserClient(t)
	if r := do(t, c, "GET", srv.URL+"/ui/", ""); r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/: %d %s", r.StatusCode, r.Header.Get("Content-Type"))
	}
	if r := do(t, c, "GET", srv.URL+"/ui/login", ""); r.StatusCode != http.StatusFound || r.Header.Get("Location") != "/ui/" {
		t.Fatalf("GET /ui/login: %d %q, want 302 to /ui/", r.StatusCode, r.Header.Get("Location"))
	}
	if r := do(t, c, "GET", srv.URL+"/ui", ""); r.StatusCode != http.StatusFound {
		t.Fatalf("GET /ui: %d, want a redirect to /ui/", r.StatusCode)
	}
	if r := do(t, c, "GET", srv.URL+"/ui/assets/", ""); r.StatusCode != http.StatusNotFound {
		t.Errorf("GET /ui/assets/: %d, want 404 (no listing)", r.StatusCode)
	}
}
