package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/sluice-dev/sluice/internal/cluster"
	"github.com/sluice-dev/sluice/internal/secret"
)

// Cluster and secret routes, served when the service is also a
// cluster.Service and a secret.Service:
//
//	PUT    /v1/clusters/{name}  body cluster.Cluster; 200 cluster.Cluster
//	GET    /v1/clusters         200 {"clusters": [cluster.Cluster...]}
//	GET    /v1/clusters/{name}  200 cluster.Cluster
//	DELETE /v1/clusters/{name}  204; 409 InUse while a pipe uses it
//	PUT    /v1/secrets/{name}   body {"type": "generic", "data": {"KEY": "VALUE"}}; 200 secret.Meta
//	GET    /v1/secrets          200 {"secrets": [secret.Meta...]}
//	GET    /v1/secrets/{name}   200 secret.Meta
//	DELETE /v1/secrets/{name}   204; 409 InUse while a cluster uses it
//
// A secret's values go in and never come out: every answer is its Meta.
func (h *handler) registerClusters(mux *http.ServeMux, clusters cluster.Service, secrets secret.Service) {
	mux.HandleFunc("PUT /v1/clusters/{name}", func(w http.ResponseWriter, r *http.Request) {
		var c cluster.Cluster
		if !decodeBody(w, r, &c, `send a cluster: {"bootstrapServers": ["host:9092"], "auth": "…"}`) {
			return
		}
		if c.Name == "" {
			c.Name = r.PathValue("name")
		}
		if c.Name != r.PathValue("name") {
			writeError(w, http.StatusBadRequest, errorBody{Code: CodeInvalidParameter, Message: fmt.Sprintf("name %q in the body differs from %q in the path: leave it out or make them equal", c.Name, r.PathValue("name"))})
			return
		}
		out, err := clusters.PutCluster(r.Context(), c)
		if err != nil {
			h.clusterError(w, r, err, c.Name)
			return
		}
		h.writeJSON(w, r, http.StatusOK, out)
	})
	mux.HandleFunc("GET /v1/clusters", func(w http.ResponseWriter, r *http.Request) {
		all, err := clusters.ListClusters(r.Context())
		if err != nil {
			h.clusterError(w, r, err, "")
			return
		}
		if all == nil {
			all = []cluster.Cluster{}
		}
		h.writeJSON(w, r, http.StatusOK, struct {
			Clusters []cluster.Cluster `json:"clusters"`
		}{all})
	})
	mux.HandleFunc("GET /v1/clusters/{name}", func(w http.ResponseWriter, r *http.Request) {
		c, err := clusters.GetCluster(r.Context(), r.PathValue("name"))
		if err != nil {
			h.clusterError(w, r, err, r.PathValue("name"))
			return
		}
		h.writeJSON(w, r, http.StatusOK, c)
	})
	mux.HandleFunc("DELETE /v1/clusters/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := clusters.DeleteCluster(r.Context(), r.PathValue("name")); err != nil {
			h.clusterError(w, r, err, r.PathValue("name"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/v1/clusters", methodNotAllowed("GET"))
	mux.HandleFunc("/v1/clusters/{name}", methodNotAllowed("GET, PUT, DELETE"))

	mux.HandleFunc("PUT /v1/secrets/{name}", func(w http.ResponseWriter, r *http.Request) {
		var body secretBody
		if !decodeBody(w, r, &body, `send {"type": "generic", "data": {"KEY": "VALUE"}}`) {
			return
		}
		s := secret.Secret{Name: r.PathValue("name"), Type: body.Type, Brokers: body.Brokers, Data: make(map[string][]byte, len(body.Data))}
		for k, v := range body.Data {
			s.Data[k] = []byte(v)
		}
		m, err := secrets.PutSecret(r.Context(), s)
		if err != nil {
			h.secretError(w, r, err, s.Name)
			return
		}
		h.writeJSON(w, r, http.StatusOK, m)
	})
	mux.HandleFunc("GET /v1/secrets", func(w http.ResponseWriter, r *http.Request) {
		all, err := secrets.ListSecrets(r.Context())
		if err != nil {
			h.secretError(w, r, err, "")
			return
		}
		if all == nil {
			all = []secret.Meta{}
		}
		h.writeJSON(w, r, http.StatusOK, struct {
			Secrets []secret.Meta `json:"secrets"`
		}{all})
	})
	mux.HandleFunc("GET /v1/secrets/{name}", func(w http.ResponseWriter, r *http.Request) {
		m, err := secrets.GetSecret(r.Context(), r.PathValue("name"))
		if err != nil {
			h.secretError(w, r, err, r.PathValue("name"))
			return
		}
		h.writeJSON(w, r, http.StatusOK, m)
	})
	mux.HandleFunc("DELETE /v1/secrets/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := secrets.DeleteSecret(r.Context(), r.PathValue("name")); err != nil {
			h.secretError(w, r, err, r.PathValue("name"))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/v1/secrets", methodNotAllowed("GET"))
	mux.HandleFunc("/v1/secrets/{name}", methodNotAllowed("GET, PUT, DELETE"))
}

// secretBody is a secret on the way in. Values are strings: PEM and
// passwords are text.
type secretBody struct {
	Type secret.Type       `json:"type"`
	Data map[string]string `json:"data"`
	// Brokers are where the secret may be sent (host:port, host or
	// *.domain[:port]); empty: where the clusters using it already send
	// it, or the first cluster to use it.
	Brokers []string `json:"brokers,omitempty"`
}

// decodeBody decodes a JSON body strictly into v, answering the error
// itself; empty tells the client what to send.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, empty string) bool {
	if eb, status := decodeStrict(w, r, v, empty); status != 0 {
		writeError(w, status, eb)
		return false
	}
	return true
}

func (h *handler) clusterError(w http.ResponseWriter, r *http.Request, err error, name string) {
	switch {
	case errors.Is(err, cluster.ErrNotFound):
		writeError(w, http.StatusNotFound, errorBody{Code: CodeNotFound, Message: fmt.Sprintf("cluster %q not found: register it with `sluice clusters set %s --bootstrap-servers HOST:PORT`", name, name)})
	case errors.Is(err, cluster.ErrInUse):
		writeError(w, http.StatusConflict, errorBody{Code: CodeInUse, Message: err.Error()})
	default:
		h.serviceError(w, r, err, name)
	}
}

func (h *handler) secretError(w http.ResponseWriter, r *http.Request, err error, name string) {
	switch {
	case errors.Is(err, secret.ErrNotFound):
		writeError(w, http.StatusNotFound, errorBody{Code: CodeNotFound, Message: fmt.Sprintf("secret %q not found: create it with `sluice secrets create`", name)})
	case errors.Is(err, secret.ErrInUse):
		writeError(w, http.StatusConflict, errorBody{Code: CodeInUse, Message: err.Error()})
	default:
		// Validation messages never hold values (package secret); any
		// other error is never echoed: a store or crypto error could
		// quote input.
		h.serviceError(w, r, err, name)
	}
}

// PutCluster creates or replaces a cluster.
func (c *Client) PutCluster(ctx context.Context, cl cluster.Cluster) (cluster.Cluster, error) {
	var out cluster.Cluster
	err := c.do(ctx, http.MethodPut, "/v1/clusters/"+url.PathEscape(cl.Name), cl, http.StatusOK, &out)
	return out, clusterErr(err)
}

// GetCluster returns the named cluster.
func (c *Client) GetCluster(ctx context.Context, name string) (cluster.Cluster, error) {
	var out cluster.Cluster
	err := c.do(ctx, http.MethodGet, "/v1/clusters/"+url.PathEscape(name), nil, http.StatusOK, &out)
	return out, clusterErr(err)
}

// ListClusters returns every cluster.
func (c *Client) ListClusters(ctx context.Context) ([]cluster.Cluster, error) {
	var out struct {
		Clusters []cluster.Cluster `json:"clusters"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/clusters", nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Clusters, nil
}

// DeleteCluster deletes a cluster no pipe uses.
func (c *Client) DeleteCluster(ctx context.Context, name string) error {
	return clusterErr(c.do(ctx, http.MethodDelete, "/v1/clusters/"+url.PathEscape(name), nil, http.StatusNoContent, nil))
}

// PutSecret creates or replaces a secret; the answer is its Meta.
func (c *Client) PutSecret(ctx context.Context, s secret.Secret) (secret.Meta, error) {
	body := secretBody{Type: s.Type, Brokers: s.Brokers, Data: make(map[string]string, len(s.Data))}
	for k, v := range s.Data {
		body.Data[k] = string(v)
	}
	var out secret.Meta
	err := c.do(ctx, http.MethodPut, "/v1/secrets/"+url.PathEscape(s.Name), body, http.StatusOK, &out)
	return out, secretErr(err)
}

// GetSecret returns a secret's Meta.
func (c *Client) GetSecret(ctx context.Context, name string) (secret.Meta, error) {
	var out secret.Meta
	err := c.do(ctx, http.MethodGet, "/v1/secrets/"+url.PathEscape(name), nil, http.StatusOK, &out)
	return out, secretErr(err)
}

// ListSecrets returns every secret's Meta.
func (c *Client) ListSecrets(ctx context.Context) ([]secret.Meta, error) {
	var out struct {
		Secrets []secret.Meta `json:"secrets"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/secrets", nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	return out.Secrets, nil
}

// DeleteSecret deletes a secret no cluster uses.
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	return secretErr(c.do(ctx, http.MethodDelete, "/v1/secrets/"+url.PathEscape(name), nil, http.StatusNoContent, nil))
}

// sentinelError is an API error that also matches a resource's sentinel
// with errors.Is, printing only the server's message.
type sentinelError struct {
	err      *Error
	sentinel error
}

func (e *sentinelError) Error() string   { return e.err.Error() }
func (e *sentinelError) Unwrap() []error { return []error{e.err, e.sentinel} }

func clusterErr(err error) error { return mapCode(err, cluster.ErrNotFound, cluster.ErrInUse) }
func secretErr(err error) error  { return mapCode(err, secret.ErrNotFound, secret.ErrInUse) }

// mapCode maps the API's NotFound and InUse codes to a resource's errors,
// as Error.Unwrap does for pipes.
func mapCode(err, notFound, inUse error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	// The server's message says it all already; the sentinel is for
	// errors.Is, not for saying twice.
	switch e.Code {
	case CodeNotFound:
		return &sentinelError{e, notFound}
	case CodeInUse:
		return &sentinelError{e, inUse}
	}
	return err
}
