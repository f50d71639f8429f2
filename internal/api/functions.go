package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// Function routes, served when the service is also a pipe.FunctionService:
//
//	PUT    /v1/functions/{name}  body {"url": "..."} or {"handler": pipe.Handler}; 200 pipe.Function
//	GET    /v1/functions         200 {"functions": [pipe.Function...]}
//	GET    /v1/functions/{name}  200 pipe.Function
//	DELETE /v1/functions/{name}  204; 409 InUse while a pipe targets it
func (h *handler) registerFunctions(mux *http.ServeMux, funcs pipe.FunctionService) {
	mux.HandleFunc("PUT /v1/functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			URL     string        `json:"url"`
			Handler *pipe.Handler `json:"handler"`
		}
		if !decodeBody(w, r, &body, `send {"url": "http://…"} or {"handler": {"path": "/abs/path/to/handler"}}`) {
			return
		}
		f, err := funcs.PutFunction(r.Context(), pipe.Function{Name: r.PathValue("name"), URL: body.URL, Handler: body.Handler})
		if err != nil {
			h.functionError(w, r, err, r.PathValue("name"))
			return
		}
		h.writeJSON(w, r, http.StatusOK, f)
	})
	mux.HandleFunc("GET /v1/functions", func(w http.ResponseWriter, r *http.Request) {
		fs, err := funcs.ListFunctions(r.Context())
		if err != nil {
			h.functionError(w, r, err, "")
			return
		}
		if fs == nil {
			fs = []pipe.Function{}
		}
		h.writeJSON(w, r, http.StatusOK, struct {
			Functions []pipe.Function `json:"functions"`
		}{fs})
	})
	mux.HandleFunc("GET /v1/functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		f, err := funcs.GetFunction(r.Context(), r.PathValue("name"))
		if err != nil {
			h.functionError(w, r, err, r.PathValue("name"))
			return
		}
		h.writeJSON(w, r, http.StatusOK, f)
	})
	mux.HandleFunc("DELETE /v1/functions/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := funcs.DeleteFunction(r.Context(), r.PathValue("name")); err != nil {
			h.functionError(w, r, err, r.PathValue("name"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/v1/functions", methodNotAllowed("GET"))
	mux.HandleFunc("/v1/functions/{name}", methodNotAllowed("GET, PUT, DELETE"))
}

func (h *handler) functionError(w http.ResponseWriter, r *http.Request, err error, name string) {
	switch {
	case errors.Is(err, pipe.ErrFunctionNotFound):
		writeError(w, http.StatusNotFound, errorBody{Code: CodeNotFound, Message: fmt.Sprintf("function %q not found: register it with `sluice functions set %s --url URL` (or --handler PATH)", name, name)})
	case errors.Is(err, pipe.ErrFunctionInUse):
		writeError(w, http.StatusConflict, errorBody{Code: CodeInUse, Message: err.Error()})
	default:
		h.serviceError(w, r, err, name)
	}
}

// PutFunction creates or replaces a function.
func (c *Client) PutFunction(ctx context.Context, f pipe.Function) (pipe.Function, error) {
	var out pipe.Function
	body := struct {
		URL     string        `json:"url,omitempty"`
		Handler *pipe.Handler `json:"handler,omitempty"`
	}{f.URL, f.Handler}
	err := c.do(ctx, http.MethodPut, "/v1/functions/"+url.PathEscape(f.Name), body, http.StatusOK, &out)
	return out, functionErr(err)
}

// GetFunction returns the named function.
func (c *Client) GetFunction(ctx context.Context, name string) (pipe.Function, error) {
	var out pipe.Function
	err := c.do(ctx, http.MethodGet, "/v1/functions/"+url.PathEscape(name), nil, http.StatusOK, &out)
	return out, functionErr(err)
}

// ListFunctions returns every function.
func (c *Client) ListFunctions(ctx context.Context) ([]pipe.Function, error) {
	var out struct {
		Functions []pipe.Function `json:"functions"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/functions", nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Functions, nil
}

// DeleteFunction deletes a function no pipe targets.
func (c *Client) DeleteFunction(ctx context.Context, name string) error {
	return functionErr(c.do(ctx, http.MethodDelete, "/v1/functions/"+url.PathEscape(name), nil, http.StatusNoContent, nil))
}

// functionErr maps the API's codes to the function errors.
func functionErr(err error) error {
	return mapCode(err, pipe.ErrFunctionNotFound, pipe.ErrFunctionInUse)
}
