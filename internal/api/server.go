// Package api is Sluice's REST API: an http.Handler over a pipe.Service, and
// a Client that implements pipe.Service over HTTP, so the CLI and the server
// share one contract.
//
// Routes:
//
//	POST   /v1/pipes         body: pipe.Spec; 201 with the pipe.Pipe
//	GET    /v1/pipes         200 {"pipes":[pipe.Pipe...]}, ordered by name
//	GET    /v1/pipes/{name}  200 pipe.Pipe, ETag "<revision>"
//	PUT    /v1/pipes/{name}  body: pipe.Spec (create-only fields may be left
//	                         out); If-Match "<revision>" optional; 200 pipe.Pipe
//	DELETE /v1/pipes/{name}  204; the pipe is Deleting until its consumer stops
//	GET    /healthz          200 "ok"
//
// and the observability routes (observe.go: /metrics, /readyz and
// /v1/pipes/{name}/describe), the function routes (functions.go), the
// cluster and secret routes (clusters.go), redrive (redrive.go), the web
// console and its history and failure routes (console.go), and the
// Lambda-compatible event source mapping routes (lambda.go), and the
// EventBridge Pipes API on the same /v1/pipes paths for requests signed for
// the service pipes (pipesapi.go). Which of them
// a server has is declared by its options, never discovered from svc.
//
// Every error is JSON {"code","message"} with a code from the Code
// constants; a rejected spec adds "fields": [{"field","value","reason"}].
//
// With WithAuth, every route but GET /healthz and /readyz needs a token
// (auth.go). Every listener refuses cross-origin browser requests and
// bodies that are not JSON, and with WithLoopbackHosts any Host but the
// loopback names (browser.go).
package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-dev/sluice/internal/fielderr"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/strictjson"
)

// MaxBodyBytes bounds a request body. A pipe spec is well under a kilobyte;
// the limit only has to stop a client from making the server buffer
// arbitrary amounts of memory.
const MaxBodyBytes = 1 << 20

type handler struct {
	svc pipe.Service
	log *slog.Logger
	obs observeOptions // observe.go
}

// NewHandler returns the API's handler over svc. A nil log discards logs.
// Options add the observability routes' sources (observe.go) and token
// authentication (WithAuth, auth.go).
func NewHandler(svc pipe.Service, log *slog.Logger, opts ...Option) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, log: log}
	for _, o := range opts {
		o(&h.obs)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/pipes", h.createPipe)
	mux.HandleFunc("GET /v1/pipes", h.listPipes)
	mux.HandleFunc("GET /v1/pipes/{name}", h.getPipe)
	mux.HandleFunc("PUT /v1/pipes/{name}", h.updatePipe)
	mux.HandleFunc("DELETE /v1/pipes/{name}", h.deletePipe)
	mux.HandleFunc("GET /healthz", h.healthz)
	h.registerObserve(mux)
	h.registerConsole(mux)
	funcs, clusters := h.obs.functions, h.obs.clusters
	if funcs != nil {
		h.registerFunctions(mux, funcs)
	}
	if clusters != nil && h.obs.secrets != nil {
		h.registerClusters(mux, clusters, h.obs.secrets)
	}
	if h.obs.redriver != nil {
		h.registerRedrive(mux, h.obs.redriver)
	}
	if h.obs.invoker != nil && funcs != nil {
		h.registerInvoke(mux, h.obs.invoker)
	}
	(&lambdaHandler{h: h, funcs: funcs, clusters: clusters, aws: h.obs.awsLambda}).register(mux)
	// The method-less patterns are less specific than the ones above, so
	// they only catch other methods and unknown paths. Without them
	// ServeMux would answer in plain text, and clients expect JSON errors.
	mux.HandleFunc("/v1/pipes", methodNotAllowed("GET, POST"))
	mux.HandleFunc("/v1/pipes/{name}", methodNotAllowed("GET, PUT, DELETE"))
	mux.HandleFunc("/healthz", methodNotAllowed("GET"))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, errorBody{Code: CodeNotFound, Message: fmt.Sprintf("no route %s %s: the API serves /v1/pipes", r.Method, r.URL.Path)})
	})
	// Authentication and the browser checks sit inside middleware, so
	// refused requests are logged like any other and a panic in the token
	// lookup is a 500. The browser checks come first: a page of another
	// site is refused whether or not it could guess a token.
	//
	// The EventBridge Pipes API shares the /v1/pipes paths: a request
	// signed for the service "pipes" goes to it, with its own token check
	// (pipesapi.go); every other request stays native.
	pipes := newPipesAPI(h, funcs, clusters)
	return h.middleware(h.browserGuard(pipes.route(h.obs.auth.wrap(h.log, mux))))
}

// middleware logs each request and turns a panicking handler into a 500 the
// client can read, instead of a dropped connection.
func (h *handler) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				id := requestID()
				h.log.ErrorContext(r.Context(), "api handler panicked", "method", r.Method, "path", r.URL.Path, "request_id", id, "panic", v)
				if rec.status == 0 {
					writeError(rec, http.StatusInternalServerError, internalBody(id))
				}
			}
			h.log.DebugContext(r.Context(), "api request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", time.Since(start))
		}()
		next.ServeHTTP(rec, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (h *handler) createPipe(w http.ResponseWriter, r *http.Request) {
	var spec pipe.Spec
	if body, status := decodeSpec(w, r, &spec); status != 0 {
		writeError(w, status, body)
		return
	}
	p, err := h.svc.CreatePipe(r.Context(), spec)
	if err != nil {
		h.serviceError(w, r, err, spec.Name)
		return
	}
	w.Header().Set("Location", "/v1/pipes/"+url.PathEscape(p.Name))
	h.writeJSON(w, r, http.StatusCreated, p)
}

func (h *handler) listPipes(w http.ResponseWriter, r *http.Request) {
	ps, err := h.svc.ListPipes(r.Context())
	if err != nil {
		h.serviceError(w, r, err, "")
		return
	}
	if ps == nil {
		ps = []pipe.Pipe{} // clients iterate "pipes"; null would be a needless special case
	}
	h.writeJSON(w, r, http.StatusOK, struct {
		Pipes []pipe.Pipe `json:"pipes"`
	}{ps})
}

func (h *handler) getPipe(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	p, err := h.svc.GetPipe(r.Context(), name)
	if err != nil {
		h.serviceError(w, r, err, name)
		return
	}
	w.Header().Set("ETag", etag(p.Revision))
	h.writeJSON(w, r, http.StatusOK, p)
}

// etag is a pipe revision as an entity tag, so a client can make its
// update conditional with If-Match.
func etag(revision int64) string { return fmt.Sprintf("%q", strconv.FormatInt(revision, 10)) }

func (h *handler) updatePipe(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var spec pipe.Spec
	if body, status := decodeSpec(w, r, &spec); status != 0 {
		writeError(w, status, body)
		return
	}
	if spec.Name == "" {
		spec.Name = name
	}
	if spec.Name != name {
		writeError(w, http.StatusBadRequest, badRequest(fmt.Sprintf("the body names pipe %q but the path names %q: a pipe cannot be renamed; leave name out or make them equal", spec.Name, name)))
		return
	}
	var ifRevision int64
	if m := r.Header.Get("If-Match"); m != "" {
		rev, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(m, "W/"), `"`), 10, 64)
		if err != nil || rev <= 0 {
			writeError(w, http.StatusBadRequest, badRequest(fmt.Sprintf("If-Match %s: use the ETag a GET returned, a quoted revision such as \"3\"", m)))
			return
		}
		ifRevision = rev
	}
	p, err := h.svc.UpdatePipe(r.Context(), spec, ifRevision)
	if err != nil {
		h.serviceError(w, r, err, name)
		return
	}
	w.Header().Set("ETag", etag(p.Revision))
	h.writeJSON(w, r, http.StatusOK, p)
}

func (h *handler) deletePipe(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := h.svc.DeletePipe(r.Context(), name); err != nil {
		h.serviceError(w, r, err, name)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, errorBody{Code: CodeMethodNotAllowed, Message: fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, allow)})
	}
}

// serviceError answers with the error the service returned. Messages for
// known errors are composed here rather than copied from err, whose wrapping
// may name internals (store, SQL) that are no business of the client. It is
// the one place an invalid spec of any kind (a *fielderr.List: pipe,
// cluster, secret) becomes the API's InvalidParameter with its fields.
func (h *handler) serviceError(w http.ResponseWriter, r *http.Request, err error, name string) {
	var ve *fielderr.List
	switch {
	case errors.As(err, &ve):
		body := errorBody{Code: CodeInvalidParameter, Message: ve.Error()}
		for _, f := range ve.Fields {
			body.Fields = append(body.Fields, fieldJSON(f))
		}
		writeError(w, http.StatusBadRequest, body)
	case errors.Is(err, pipe.ErrNotFound):
		writeError(w, http.StatusNotFound, errorBody{Code: CodeNotFound, Message: fmt.Sprintf("pipe %q not found", name)})
	case errors.Is(err, pipe.ErrExists):
		writeError(w, http.StatusConflict, errorBody{Code: CodeConflict, Message: fmt.Sprintf("pipe %q already exists: delete it first or choose another name", name)})
	case errors.Is(err, pipe.ErrDeleting):
		writeError(w, http.StatusConflict, errorBody{Code: CodeInUse, Message: fmt.Sprintf("pipe %q is being deleted: wait until it is gone, then create it again", name)})
	case errors.Is(err, pipe.ErrConflict):
		writeError(w, http.StatusPreconditionFailed, errorBody{Code: CodePrecondition, Message: fmt.Sprintf("pipe %q was changed since the revision in If-Match: get it again, reapply your change and retry", name)})
	case r.Context().Err() != nil:
		// The client went away; nobody reads an answer.
		h.log.DebugContext(r.Context(), "api request canceled", "method", r.Method, "path", r.URL.Path, "err", err)
	default:
		id := requestID()
		h.log.ErrorContext(r.Context(), "api request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		writeError(w, http.StatusInternalServerError, internalBody(id))
	}
}

func internalBody(id string) errorBody {
	return errorBody{Code: CodeInternal, Message: "internal error (request id " + id + "); the server log has the details"}
}

// requestID ties a 500 the client saw to the server's log line.
func requestID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (h *handler) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.serviceError(w, r, fmt.Errorf("encode response: %w", err), "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, body errorBody) {
	b, _ := json.Marshal(body) // strings and slices of strings always encode
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decodeSpec reads exactly one JSON object into spec, strictly (package
// strictjson: exact field names, no duplicates, nothing after it; a
// misspelt optional field would otherwise silently fall back to its
// default). On failure it returns the error body and status to answer.
func decodeSpec(w http.ResponseWriter, r *http.Request, spec *pipe.Spec) (errorBody, int) {
	return decodeStrict(w, r, spec, "send a pipe spec as a JSON object")
}

// decodeStrict reads the body (at most MaxBodyBytes) and decodes it into
// v with strictjson; empty tells the client what to send.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any, empty string) (errorBody, int) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		return decodeError(err)
	}
	if err := strictjson.Unmarshal(b, v); err != nil {
		if errors.Is(err, strictjson.ErrEmpty) {
			return badRequest("the body is empty: " + empty), http.StatusBadRequest
		}
		return decodeError(err)
	}
	return errorBody{}, 0
}

func badRequest(msg string) errorBody { return errorBody{Code: CodeBadRequest, Message: msg} }

func decodeError(err error) (errorBody, int) {
	var (
		maxErr    *http.MaxBytesError
		strictErr *strictjson.Error
	)
	switch {
	case errors.As(err, &maxErr):
		return errorBody{Code: CodeRequestTooLarge, Message: fmt.Sprintf("the body is larger than %d bytes: a request is far smaller, check what is being sent", MaxBodyBytes)}, http.StatusRequestEntityTooLarge
	case errors.As(err, &strictErr):
		eb := badRequest(strictErr.Error())
		if strictErr.Field != "" {
			eb.Fields = []fieldJSON{{Field: strictErr.Field, Reason: strictErr.Reason}}
		}
		return eb, http.StatusBadRequest
	default:
		return badRequest("cannot read the body: " + err.Error()), http.StatusBadRequest
	}
}
