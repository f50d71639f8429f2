package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/observe"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// The routes behind the web console (package console), which any client
// may use as well:
//
//	GET  /v1/overview[?window=1h]              200 observe.Overview: every pipe's state, lag and sparkline
//	GET  /v1/pipes/{name}/history[?window=1h]  200 observe.History: lag per partition and flow, one point per 10 s
//	GET  /v1/pipes/{name}/failures[?limit=20]  200 observe.FailurePeek: what a redrive would replay next
//	GET  /ui/...                               the console's pages, with WithConsole
//	POST /ui/login                             body {"token": "sluice_…"}: 204 and a session cookie
//	POST /ui/logout                            204, the cookie cleared
//
// With WithAuth, a browser cannot send an Authorization header on a page
// load, so the console signs in once: POST /ui/login checks the token
// as any request's, then sets it as an HttpOnly, SameSite=Strict cookie
// that the token check accepts in place of the header (never on the
// Lambda routes). A cross-site page gets no such cookie, and its writes
// are refused by the browser checks anyway (browser.go). The sign-in page
// and its script and style carry no data and need no token; every other
// /ui path without one is sent to the sign-in page.

// Historian keeps pipes' recent lag and flow; the engine is one.
type Historian interface {
	History(ctx context.Context, name string, window time.Duration) (observe.History, error)
	Overview(ctx context.Context, window time.Duration) (observe.Overview, error)
}

// FailurePeeker reads a pipe's failure destination without redriving it;
// the engine is one.
type FailurePeeker interface {
	PeekFailures(ctx context.Context, name string, limit int) (observe.FailurePeek, error)
}

// WithHistory serves /v1/overview and /v1/pipes/{name}/history from h.
func WithHistory(h Historian) Option { return func(o *observeOptions) { o.history = h } }

// WithFailurePeek serves /v1/pipes/{name}/failures from p.
func WithFailurePeek(p FailurePeeker) Option { return func(o *observeOptions) { o.peeker = p } }

// WithConsole serves the web console h under /ui/ (package console).
func WithConsole(h http.Handler) Option { return func(o *observeOptions) { o.console = h } }

// CodeUnavailable is the error code of a 503: what was asked for cannot be
// read now (a failure destination that cannot be read back or reached);
// the message says why.
const CodeUnavailable = "Unavailable"

// SessionCookie holds the console's token in a browser.
const SessionCookie = "sluice_session"

// Console paths that need no token: the sign-in page and what it loads.
const (
	consoleLoginPath = "/ui/login"
	consoleLogout    = "/ui/logout"
)

// consolePublic reports whether a console path is served without a token.
func consolePublic(r *http.Request) bool {
	switch r.URL.Path {
	case consoleLoginPath, "/ui/assets/login.js", "/ui/assets/style.css":
		return r.Method == http.MethodGet || r.Method == http.MethodHead || (r.Method == http.MethodPost && r.URL.Path == consoleLoginPath)
	case consoleLogout:
		return r.Method == http.MethodPost
	}
	return false
}

// maxWindow bounds the history asked for: what the rings keep.
const maxWindow = time.Hour

func parseWindow(r *http.Request) (time.Duration, *errorBody) {
	v := r.URL.Query().Get("window")
	if v == "" {
		return maxWindow, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > maxWindow {
		b := badRequest(fmt.Sprintf("window %q: give a duration from 10s to 1h, such as window=15m", v))
		return 0, &b
	}
	return d, nil
}

func (h *handler) registerConsole(mux *http.ServeMux) {
	if hs := h.obs.history; hs != nil {
		mux.HandleFunc("GET /v1/overview", func(w http.ResponseWriter, r *http.Request) {
			win, bad := parseWindow(r)
			if bad != nil {
				writeError(w, http.StatusBadRequest, *bad)
				return
			}
			ov, err := hs.Overview(r.Context(), win)
			if err != nil {
				h.serviceError(w, r, err, "")
				return
			}
			h.writeJSON(w, r, http.StatusOK, ov)
		})
		mux.HandleFunc("/v1/overview", methodNotAllowed("GET"))
		mux.HandleFunc("GET /v1/pipes/{name}/history", func(w http.ResponseWriter, r *http.Request) {
			name := r.PathValue("name")
			win, bad := parseWindow(r)
			if bad != nil {
				writeError(w, http.StatusBadRequest, *bad)
				return
			}
			hist, err := hs.History(r.Context(), name, win)
			if err != nil {
				h.serviceError(w, r, err, name)
				return
			}
			h.writeJSON(w, r, http.StatusOK, hist)
		})
		mux.HandleFunc("/v1/pipes/{name}/history", methodNotAllowed("GET"))
	}
	if pk := h.obs.peeker; pk != nil {
		mux.HandleFunc("GET /v1/pipes/{name}/failures", func(w http.ResponseWriter, r *http.Request) {
			name := r.PathValue("name")
			limit := 20
			if v := r.URL.Query().Get("limit"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 100 {
					writeError(w, http.StatusBadRequest, badRequest(fmt.Sprintf("limit %q: give a number of records from 1 to 100", v)))
					return
				}
				limit = n
			}
			peek, err := pk.PeekFailures(r.Context(), name, limit)
			switch {
			case err == nil:
				h.writeJSON(w, r, http.StatusOK, peek)
			case errors.Is(err, pipe.ErrNotFound) || r.Context().Err() != nil:
				h.serviceError(w, r, err, name)
			default:
				// Why the destination cannot be read (none set, an HTTP
				// endpoint, a broker down) is the user's to see.
				writeError(w, http.StatusServiceUnavailable, errorBody{Code: CodeUnavailable, Message: err.Error()})
			}
		})
		mux.HandleFunc("/v1/pipes/{name}/failures", methodNotAllowed("GET"))
	}
	if h.obs.console == nil {
		return
	}
	mux.HandleFunc("POST "+consoleLoginPath, h.consoleLogin)
	if h.obs.auth == nil {
		// Nothing to sign in to (sluice dev).
		mux.Handle("GET "+consoleLoginPath, http.RedirectHandler("/ui/", http.StatusFound))
	}
	mux.HandleFunc("POST "+consoleLogout, func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("GET /ui/", securePage(h.obs.console))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusFound))
}

// securePage adds the headers every console response carries: scripts and
// styles from this server only, no framing by other sites, no sniffing.
func securePage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// consoleLogin checks the token sent and sets it as the session cookie. It
// answers 204 without a body either way when the server has no tokens
// (sluice dev), so the sign-in page simply goes on to the console.
func (h *handler) consoleLogin(w http.ResponseWriter, r *http.Request) {
	a := h.obs.auth
	if a == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	var body struct {
		Token string `json:"token"`
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err == nil {
		err = json.Unmarshal(b, &body)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, badRequest(`send {"token": "sluice_…"} as JSON`))
		return
	}
	token := strings.TrimSpace(body.Token)
	c, ok, err := a.check(r.Context(), token)
	if err != nil {
		h.serviceError(w, r, err, "")
		return
	}
	if !ok {
		h.log.InfoContext(r.Context(), "console sign-in refused: invalid token", "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, errorBody{Code: CodeUnauthorized, Message: "the token is not valid (unknown, deleted or mistyped): " + howToGetToken})
		return
	}
	h.log.InfoContext(r.Context(), "console sign-in", "token", c.name, "scope", c.scope, "remote", r.RemoteAddr)
	// A session cookie (no Max-Age): it ends with the browser session,
	// and a deleted token stops working within the token cache's TTL.
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// redirectToLogin sends a page load without a token to the sign-in page,
// which comes back to where it was sent from.
func redirectToLogin(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, consoleLoginPath+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}
