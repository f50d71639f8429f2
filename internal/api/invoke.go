package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
	"github.com/sluice-dev/sluice/internal/target"
)

// FunctionInvoker runs a registered function synchronously: a hosted
// handler on one of its processes, an HTTP function by a POST (the
// engine).
type FunctionInvoker interface {
	InvokeFunction(ctx context.Context, name string, payload []byte) (target.Invocation, error)
}

// WithInvoker serves the Lambda Invoke API from i (invoke.go).
func WithInvoker(i FunctionInvoker) Option { return func(o *observeOptions) { o.invoker = i } }

// invokePath is the Lambda Invoke API's route, so `aws lambda invoke
// --endpoint-url` and any Lambda SDK (another Sluice's lambda target
// among them) can call Sluice's functions.
const invokePath = "/2015-03-31/functions/{name}/invocations"

// invokeRequestLimit is the reference's limit on a synchronous request.
const invokeRequestLimit = pipe.LambdaRequestLimitBytes

// registerInvoke serves POST /2015-03-31/functions/{name}/invocations:
// the body is the payload; the answer is the function's, with
// X-Amz-Function-Error: Unhandled when it failed, as the reference
// answers. X-Amz-Invocation-Type RequestResponse (the default) and DryRun
// are served; Event (asynchronous) is refused, since Sluice keeps no queue
// of invocations.
func (h *handler) registerInvoke(mux *http.ServeMux, inv FunctionInvoker) {
	mux.HandleFunc("POST "+invokePath, func(w http.ResponseWriter, r *http.Request) {
		raw := r.PathValue("name")
		name, ok := functionName(raw)
		if !ok || name == "" {
			writeLambdaError(w, invalid("FunctionName %q: give a function's name or its ARN (%sNAME).", raw, functionARNPrefix))
			return
		}
		typ := r.Header.Get("X-Amz-Invocation-Type")
		switch typ {
		case "", "RequestResponse", "DryRun":
		case "Event":
			writeLambdaError(w, invalid("InvocationType Event: Sluice invokes functions synchronously only; use RequestResponse (the default)."))
			return
		default:
			writeLambdaError(w, invalid("InvocationType %q: use RequestResponse or DryRun.", typ))
			return
		}
		payload, err := io.ReadAll(http.MaxBytesReader(w, r.Body, invokeRequestLimit))
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeLambdaError(w, &lambdaError{http.StatusRequestEntityTooLarge, lambdaTooLarge,
				fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", invokeRequestLimit)})
			return
		}
		if err != nil {
			return // the client went away
		}
		if len(payload) == 0 {
			payload = []byte("{}")
		}
		if typ == "DryRun" {
			if _, err := h.obs.functions.GetFunction(r.Context(), name); err != nil {
				h.invokeError(w, r, raw, name, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		// A hosted function may take up to its timeout (at most 15
		// minutes), past the server's write timeout for API requests.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(pipe.MaxHandlerTimeout + time.Minute))
		out, err := inv.InvokeFunction(r.Context(), name, payload)
		if err != nil {
			h.invokeError(w, r, raw, name, err)
			return
		}
		hd := w.Header()
		hd.Set("Content-Type", "application/json")
		hd.Set("X-Amz-Executed-Version", "$LATEST")
		if out.FunctionError != "" {
			hd.Set("X-Amz-Function-Error", out.FunctionError)
		}
		hd.Set("Content-Length", strconv.Itoa(len(out.Payload)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(out.Payload)
	})
}

// invokeError answers an invocation that got no answer of the function's,
// with the error type the reference's SDKs know.
func (h *handler) invokeError(w http.ResponseWriter, r *http.Request, raw, name string, err error) {
	var ie *target.InvokeError
	switch {
	case errors.Is(err, pipe.ErrFunctionNotFound):
		writeLambdaError(w, &lambdaError{http.StatusNotFound, lambdaNotFound,
			fmt.Sprintf("Function not found: %s. Register it with `sluice functions set %s --handler PATH` (or --url URL).", functionARNPrefix+name, name)})
	case errors.As(err, &ie) && ie.Throttled:
		w.Header().Set("Retry-After", "1")
		writeLambdaError(w, &lambdaError{http.StatusTooManyRequests, "TooManyRequestsException", "Rate Exceeded. " + ie.Problem})
	case errors.As(err, &ie):
		// The handler could not start, or the endpoint was unreachable:
		// the reference's closest is a service error of the function's
		// environment.
		writeLambdaError(w, &lambdaError{http.StatusBadGateway, "ServiceException", err.Error()})
	case r.Context().Err() != nil:
	default:
		id := requestID()
		h.log.ErrorContext(r.Context(), "invoke failed", "function", raw, "request_id", id, "err", err)
		writeLambdaError(w, &lambdaError{http.StatusInternalServerError, lambdaService, "internal error (request id " + id + "); the server log has the details"})
	}
}
