package api

import (
	"fmt"
	"mime"
	"net"
	"net/http"
	"strings"
)

// Browser safety. The API is driven by the CLI, the AWS CLI and SDKs, and
// scripts; never by web pages. A page the user happens to visit can still
// send requests to 127.0.0.1, so every listener refuses what only a
// browser would send:
//
//   - cross-origin state-changing requests (Sec-Fetch-Site or Origin say
//     another site), with Go's http.CrossOriginProtection;
//   - bodies that are not JSON: a page can POST text/plain or a form
//     without asking the server first (a "simple" request), but not
//     application/json;
//   - with WithLoopbackHosts (sluice dev, which has no tokens), any Host
//     but the loopback names: a DNS-rebinding page reaches 127.0.0.1
//     under its own host name.
//
// Each refusal is a 403 or 415 with a JSON error saying why.

// WithLoopbackHosts refuses requests whose Host is not 127.0.0.1,
// localhost or [::1] (any port): for listeners without authentication.
func WithLoopbackHosts() Option {
	return func(o *observeOptions) { o.loopbackHosts = true }
}

// jsonTypes are the content types a body may have: JSON, and on the AWS
// routes the AWS JSON protocols' own types, which SDKs send.
func jsonType(path, ct string) bool {
	if ct == "" && isInvokePath(path) {
		// The AWS CLI sends an invocation's payload without one; a page
		// of another site that tries is stopped by the cross-origin
		// check, which browsers' Sec-Fetch-Site and Origin feed.
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	if mt == "application/json" {
		return true
	}
	if isInvokePath(path) {
		// An invocation's payload is a blob: the SDKs send it as
		// application/octet-stream, which no cross-site form can.
		return mt == "application/octet-stream"
	}
	return strings.HasPrefix(path, lambdaPath) && (mt == "application/x-amz-json-1.0" || mt == "application/x-amz-json-1.1")
}

// isInvokePath reports whether path is the Lambda Invoke API's.
func isInvokePath(path string) bool {
	return strings.HasPrefix(path, "/2015-03-31/functions/") && strings.HasSuffix(path, "/invocations")
}

// hasBody reports whether the request carries a body.
func hasBody(r *http.Request) bool {
	return r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
}

// loopbackHost reports whether a Host header names this machine's
// loopback interface.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	switch strings.ToLower(host) {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// browserGuard wraps next with the checks above.
func (h *handler) browserGuard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, errorBody{Code: CodeForbidden,
			Message: "cross-origin request refused: the Sluice API does not serve web pages of other sites (Origin " + quoteOrNone(r.Header.Get("Origin")) + ")"})
	}))
	checked := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.obs.loopbackHosts && !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, errorBody{Code: CodeForbidden,
				Message: fmt.Sprintf("Host %q refused: this server answers only requests addressed to 127.0.0.1, localhost or [::1] (a page of another site can reach it under its own name)", r.Host)})
			return
		}
		if hasBody(r) && r.Method != http.MethodGet && r.Method != http.MethodHead {
			if ct := r.Header.Get("Content-Type"); !jsonType(r.URL.Path, ct) {
				writeError(w, http.StatusUnsupportedMediaType, errorBody{Code: CodeUnsupportedMediaType,
					Message: fmt.Sprintf("Content-Type %s refused: send the body as application/json", quoteOrNone(ct))})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
	return cop.Handler(checked)
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return fmt.Sprintf("%q", s)
}
