package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/store"
)

// Authentication (WithAuth): every request needs a token, except GET (and
// HEAD) /healthz and /readyz, which load balancers and orchestrators probe
// without credentials and which reveal nothing, and the console's sign-in
// page (console.go). The console's session cookie stands in for the
// header on every route but the Lambda ones.
//
//	Authorization: Bearer sluice_…
//
// The Lambda-compatible routes (/2015-03-31/…) also take the token as the
// access key id of an AWS Signature V4 header, because the AWS CLI and SDKs
// cannot send a bearer token:
//
//	Authorization: AWS4-HMAC-SHA256 Credential=sluice_…/20260101/us-east-1/lambda/aws4_request, …
//
// A refused request gets 401 {"code":"Unauthorized"} with
// WWW-Authenticate, or on the Lambda routes what Lambda answers: 403 with
// x-amzn-errortype UnrecognizedClientException.

// CodeUnauthorized is the error code of a 401: no token, or not a valid one.
const CodeUnauthorized = "Unauthorized"

// Token scopes: what a token may do, each including the ones before it.
// A token that runs pipes should not be able to re-point the credentials
// they use.
const (
	// ScopeRead reads everything the API shows: pipes, describe,
	// metrics, functions, clusters and secrets' metadata.
	ScopeRead = "read"
	// ScopeOperate also writes pipes, functions and event source
	// mappings.
	ScopeOperate = "operate"
	// ScopeAdmin also writes clusters and secrets, and event source
	// mappings that bring their own credentials
	// (SourceAccessConfigurations). Tokens themselves are made on the
	// server with 'sluice tokens', never through the API.
	ScopeAdmin = "admin"
)

// Scopes lists the scopes from least to most.
var Scopes = []string{ScopeRead, ScopeOperate, ScopeAdmin}

func scopeRank(s string) int {
	for i, v := range Scopes {
		if v == s {
			return i
		}
	}
	return -1 // unknown: allows nothing
}

// requiredScope is the scope a request needs. Reads need read; writes to
// clusters and secrets need admin; every other write needs operate.
func requiredScope(r *http.Request) string {
	switch {
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return ScopeRead
	case strings.HasPrefix(r.URL.Path, "/v1/clusters") || strings.HasPrefix(r.URL.Path, "/v1/secrets"):
		return ScopeAdmin
	}
	return ScopeOperate
}

// caller is the token a request came with, in its context.
type caller struct{ name, scope string }

type callerKey struct{}

// needScope returns an error when the request's token (if the server
// checks tokens at all) lacks scope for what; handlers call it for what
// the path alone does not tell, such as a mapping bringing credentials.
func needScope(r *http.Request, scope, what string) error {
	c, ok := r.Context().Value(callerKey{}).(caller)
	if !ok || scopeRank(c.scope) >= scopeRank(scope) {
		return nil
	}
	return fmt.Errorf("token %q has scope %s; %s needs %s: use a token with scope %s (sluice tokens create NAME --scope %s)",
		c.name, c.scope, what, scope, scope, scope)
}

// TokenPrefix starts every token, so a leaked one is recognisable (secret
// scanners, logs) and a mistaken value is refused without a store query.
const TokenPrefix = "sluice_"

// tokenLen is TokenPrefix and 32 random bytes in unpadded base64url.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(32)

// DefaultTokenCacheTTL is how long a server trusts a token it found in the
// store without asking again, so that not every request is a store query;
// it is therefore also how long a deleted token may go on working.
const DefaultTokenCacheTTL = 10 * time.Second

// NewToken returns a new random token: TokenPrefix and 43 characters of
// unpadded base64url (32 bytes), never containing '/', which would end
// the access key id of a SigV4 Credential.
func NewToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program instead
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// HashToken is what the store keeps of a token: its SHA-256, hex. A plain
// hash suffices (no salt or slow KDF): the token has 256 random bits, so
// there is nothing to guess from the hash.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// TokenStore finds tokens by hash; store.Store is one.
type TokenStore interface {
	// TokenByHash returns the token with that hash, or an error wrapping
	// store.ErrTokenNotFound.
	TokenByHash(ctx context.Context, hash string) (store.Token, error)
}

// WithAuth makes every request but the health probes need a token found in
// tokens. A token found is trusted for cacheTTL before it is looked up
// again, so a deleted token stops working at most cacheTTL later; 0 looks
// every request up.
func WithAuth(tokens TokenStore, cacheTTL time.Duration) Option {
	return func(o *observeOptions) {
		o.auth = &authenticator{tokens: tokens, ttl: cacheTTL, now: time.Now, valid: map[string]cached{}}
	}
}

// authenticator checks requests' tokens. One per handler: the cache is
// that handler's, not global.
type authenticator struct {
	tokens TokenStore
	ttl    time.Duration
	now    func() time.Time

	mu    sync.Mutex
	valid map[string]cached // by token hash
}

// wrap returns next behind the token check; a nil a (no WithAuth) checks
// nothing, as for `sluice dev`.
func (a *authenticator) wrap(log *slog.Logger, next http.Handler) http.Handler {
	if a == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/healthz" || r.URL.Path == "/readyz") {
			next.ServeHTTP(w, r)
			return
		}
		if consolePublic(r) {
			next.ServeHTTP(w, r) // the sign-in page (console.go)
			return
		}
		// The prefix only chooses the shape of the refusal: every path
		// but the two probes and the sign-in page needs a token, so a
		// path that escapes this test (say, unclean) is still checked.
		lambda := strings.HasPrefix(r.URL.Path, "/2015-03-31/")
		token := requestToken(r.Header.Get("Authorization"), lambda)
		if token == "" && !lambda && r.Header.Get("Authorization") == "" {
			// The console's session (console.go); the Lambda routes are
			// for SDKs, which never hold it.
			if c, err := r.Cookie(SessionCookie); err == nil {
				token = c.Value
			}
		}
		page := (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/"))
		if token == "" {
			log.DebugContext(r.Context(), "api request refused: no token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			if page {
				redirectToLogin(w, r)
				return
			}
			refuse(w, lambda, false)
			return
		}
		tok, ok, err := a.check(r.Context(), token)
		if err != nil {
			if r.Context().Err() != nil {
				return // the client went away; nobody reads an answer
			}
			id := requestID()
			log.ErrorContext(r.Context(), "api token lookup failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
			if lambda {
				writeLambdaError(w, &lambdaError{http.StatusInternalServerError, lambdaService, "internal error (request id " + id + "); the server log has the details"})
			} else {
				writeError(w, http.StatusInternalServerError, internalBody(id))
			}
			return
		}
		if !ok {
			// Never the token itself: logs travel further than the store.
			log.InfoContext(r.Context(), "api request refused: invalid token", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			if page {
				redirectToLogin(w, r)
				return
			}
			refuse(w, lambda, true)
			return
		}
		if need := requiredScope(r); scopeRank(tok.scope) < scopeRank(need) {
			log.InfoContext(r.Context(), "api request refused: token scope", "method", r.Method, "path", r.URL.Path, "token", tok.name, "scope", tok.scope, "needs", need)
			msg := fmt.Sprintf("token %q has scope %s; %s %s needs %s: use a token with scope %s (sluice tokens create NAME --scope %s)",
				tok.name, tok.scope, r.Method, r.URL.Path, need, need, need)
			if lambda {
				writeLambdaError(w, &lambdaError{http.StatusForbidden, lambdaAccessDenied, msg})
			} else {
				writeError(w, http.StatusForbidden, errorBody{Code: CodeForbidden, Message: msg})
			}
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, tok)))
	})
}

// requestToken extracts the token from an Authorization header: a bearer
// token, or on the Lambda routes the access key id of a SigV4 header.
func requestToken(authz string, lambda bool) string {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(authz), " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		return strings.TrimSpace(rest)
	case lambda && scheme == "AWS4-HMAC-SHA256":
		// Only the access key id is read. The signature is not
		// verified, and cannot be: the store keeps only the token's
		// hash, and SigV4 signs with the secret key, which the user
		// chose freely. So this proves possession of the token (the
		// access key id) like a bearer token does, no more; TLS is what
		// keeps it from being read on the way.
		for _, part := range strings.Split(rest, ",") {
			if cred, ok := strings.CutPrefix(strings.TrimSpace(part), "Credential="); ok {
				id, _, _ := strings.Cut(cred, "/")
				return id
			}
		}
	}
	return ""
}

// check reports whether token is valid, and whose it is. The store is
// asked by hash, so there are no token comparisons whose timing could leak
// a prefix; the cache is keyed by hash for the same reason.
func (a *authenticator) check(ctx context.Context, token string) (caller, bool, error) {
	// Not one of ours: refused without a store query, so garbage costs
	// nothing.
	if len(token) != tokenLen || !strings.HasPrefix(token, TokenPrefix) {
		return caller{}, false, nil
	}
	hash := HashToken(token)
	// The expiry counts from before the lookup: a token deleted while it
	// is in flight is then still refused within ttl of the deletion.
	now := a.now()
	if a.ttl > 0 {
		a.mu.Lock()
		e, ok := a.valid[hash]
		a.mu.Unlock()
		if ok && now.Before(e.until) {
			return e.caller, true, nil
		}
	}
	t, err := a.tokens.TokenByHash(ctx, hash)
	if err != nil {
		if errors.Is(err, store.ErrTokenNotFound) {
			a.forget(hash)
			return caller{}, false, nil
		}
		return caller{}, false, err
	}
	c := caller{name: t.Name, scope: t.Scope}
	if a.ttl > 0 {
		a.remember(hash, cached{caller: c, until: now.Add(a.ttl)}, now)
	}
	return c, true, nil
}

// cached is a token found in the store, trusted until until.
type cached struct {
	caller
	until time.Time
}

// remember caches hash until until, dropping expired entries, so the map
// holds at most the tokens used within the last ttl.
func (a *authenticator) remember(hash string, e cached, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for h, u := range a.valid {
		if !now.Before(u.until) {
			delete(a.valid, h)
		}
	}
	a.valid[hash] = e
}

func (a *authenticator) forget(hash string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.valid, hash)
}

const (
	// lambdaUnrecognizedClient is Lambda's error type for a bad access
	// key id; it is a common AWS error, so not in the Lambda model.
	lambdaUnrecognizedClient = "UnrecognizedClientException"
	// lambdaAccessDenied is AWS's error type for a caller who may not
	// do what it asked.
	lambdaAccessDenied    = "AccessDeniedException"
	lambdaInvalidTokenMsg = "The security token included in the request is invalid."
	howToGetToken         = "create one on the server with 'sluice tokens create NAME', then pass it with --token or the SLUICE_TOKEN environment variable (the header is Authorization: Bearer <token>)"
)

// refuse answers a request without a valid token: 401 with a challenge,
// or on the Lambda routes Lambda's own answer, which AWS SDKs recognise.
func refuse(w http.ResponseWriter, lambda, tokenSent bool) {
	if lambda {
		writeLambdaError(w, &lambdaError{http.StatusForbidden, lambdaUnrecognizedClient, lambdaInvalidTokenMsg})
		return
	}
	challenge := `Bearer realm="sluice"`
	msg := "this API requires a token: " + howToGetToken
	if tokenSent {
		// RFC 6750's error attribute tells a client that retrying with
		// the same token is pointless.
		challenge += `, error="invalid_token"`
		msg = "the token is not valid (unknown, deleted or mistyped): " + howToGetToken
	}
	w.Header().Set("WWW-Authenticate", challenge)
	writeError(w, http.StatusUnauthorized, errorBody{Code: CodeUnauthorized, Message: msg})
}

// writeLambdaError writes e as Lambda does: the type in x-amzn-errortype,
// the message in the body.
func writeLambdaError(w http.ResponseWriter, e *lambdaError) {
	typ := "User"
	if e.status >= 500 {
		typ = "Service"
	}
	b, _ := json.Marshal(map[string]string{"Type": typ, "message": e.msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("x-amzn-errortype", e.typ)
	w.WriteHeader(e.status)
	_, _ = w.Write(b)
}
