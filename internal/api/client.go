package api

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// maxResponseBytes bounds what the client reads of one response: a list of
// thousands of pipes fits, a misbehaving server cannot exhaust memory.
const maxResponseBytes = 64 << 20

// defaultTimeout bounds a request when the caller gives no http.Client. The
// API answers from its store, so anything slower means it is stuck.
const defaultTimeout = 30 * time.Second

// Client is a pipe.Service over the REST API. Errors the server answers are
// *Error, which unwraps to pipe.ErrNotFound, pipe.ErrExists or a
// *pipe.ValidationError; a server that cannot be reached gives an
// *UnreachableError.
type Client struct {
	base  string
	hc    *http.Client
	token string // sent as a bearer token when not empty
}

var _ pipe.Service = (*Client)(nil)

// NewClient returns a client of the API at baseURL, e.g.
// http://127.0.0.1:8080. A nil httpClient means one with a 30 s timeout.
func NewClient(baseURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: defaultTimeout}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: httpClient}
}

// WithToken returns a copy of c that sends token (from `sluice tokens
// create`) as Authorization: Bearer on every request; "" sends none.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = token
	return &cp
}

// CreatePipe creates a pipe from spec and returns it as stored, defaults
// filled in.
func (c *Client) CreatePipe(ctx context.Context, spec pipe.Spec) (pipe.Pipe, error) {
	var p pipe.Pipe
	err := c.do(ctx, http.MethodPost, "/v1/pipes", spec, http.StatusCreated, &p)
	return p, err
}

// GetPipe returns the named pipe.
func (c *Client) GetPipe(ctx context.Context, name string) (pipe.Pipe, error) {
	if name == "" {
		return pipe.Pipe{}, errors.New("get pipe: empty name")
	}
	var p pipe.Pipe
	err := c.do(ctx, http.MethodGet, "/v1/pipes/"+url.PathEscape(name), nil, http.StatusOK, &p)
	return p, err
}

// ListPipes returns every pipe, ordered by name.
func (c *Client) ListPipes(ctx context.Context) ([]pipe.Pipe, error) {
	var out struct {
		Pipes []pipe.Pipe `json:"pipes"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/pipes", nil, http.StatusOK, &out); err != nil {
		return nil, err
	}
	if out.Pipes == nil {
		out.Pipes = []pipe.Pipe{}
	}
	return out.Pipes, nil
}

// UpdatePipe replaces the spec of the pipe named spec.Name; a non-zero
// ifRevision makes it conditional (If-Match), failing with an error that
// unwraps to pipe.ErrConflict if the pipe changed since.
func (c *Client) UpdatePipe(ctx context.Context, spec pipe.Spec, ifRevision int64) (pipe.Pipe, error) {
	if spec.Name == "" {
		return pipe.Pipe{}, errors.New("update pipe: empty name")
	}
	var hdr http.Header
	if ifRevision != 0 {
		hdr = http.Header{"If-Match": {fmt.Sprintf("%q", fmt.Sprint(ifRevision))}}
	}
	var p pipe.Pipe
	err := c.doHeader(ctx, http.MethodPut, "/v1/pipes/"+url.PathEscape(spec.Name), hdr, spec, http.StatusOK, &p)
	return p, err
}

// DeletePipe deletes the named pipe.
func (c *Client) DeletePipe(ctx context.Context, name string) error {
	if name == "" {
		return errors.New("delete pipe: empty name")
	}
	return c.do(ctx, http.MethodDelete, "/v1/pipes/"+url.PathEscape(name), nil, http.StatusNoContent, nil)
}

// do sends one request and decodes a response with status want into out.
func (c *Client) do(ctx context.Context, method, path string, in any, want int, out any) error {
	return c.doHeader(ctx, method, path, nil, in, want, out)
}

func (c *Client) doHeader(ctx context.Context, method, path string, hdr http.Header, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	u := c.base + path
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("invalid API URL %q: %w: pass --api with an http:// or https:// URL", c.base, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s %s: %w", method, u, ctx.Err())
		}
		if isDialError(err) {
			return &UnreachableError{URL: c.base, Err: err}
		}
		return fmt.Errorf("%s %s: %w%s", method, u, err, tlsHint(err))
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, u, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return &UnauthorizedError{URL: c.base, TokenSent: c.token != ""}
	}
	if resp.StatusCode != want {
		return responseError(method, u, resp, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, u, err)
	}
	return nil
}

// responseError turns an unexpected response into an *Error. Only a body in
// the API's own error format is trusted: anything else (an HTML 404 from a
// different program on that port, a proxy's 502) must not pass for, say,
// pipe.ErrNotFound.
func responseError(method, u string, resp *http.Response, b []byte) error {
	var eb errorBody
	if err := json.Unmarshal(b, &eb); err != nil || eb.Code == "" || eb.Message == "" {
		snippet := strings.TrimSpace(string(b))
		if len(snippet) > 200 {
			snippet = snippet[:200] + "…"
		}
		if strings.Contains(snippet, "HTTP request to an HTTPS server") {
			// Go's HTTP server answers so to plain HTTP on a TLS port.
			return fmt.Errorf("%s %s: the API serves HTTPS: use an https:// URL", method, u)
		}
		return fmt.Errorf("%s %s: unexpected response %s (not a Sluice API error; is --api pointing at Sluice?): %q", method, u, resp.Status, snippet)
	}
	e := &Error{StatusCode: resp.StatusCode, Code: eb.Code, Message: eb.Message}
	for _, f := range eb.Fields {
		e.Fields = append(e.Fields, pipe.FieldError(f))
	}
	return e
}

// UnauthorizedError is a 401: the API requires a token and none was sent,
// or the one sent is not valid.
type UnauthorizedError struct {
	URL       string // the API's base URL
	TokenSent bool
}

func (e *UnauthorizedError) Error() string {
	if !e.TokenSent {
		return "the Sluice API at " + e.URL + " requires a token: create one on the server with 'sluice tokens create NAME', " +
			"then pass it with --token or export SLUICE_TOKEN=<token>"
	}
	return "the Sluice API at " + e.URL + " refused the token (unknown, deleted or mistyped): check --token or SLUICE_TOKEN, " +
		"or create a new one on the server with 'sluice tokens create NAME'"
}

// tlsHint says what to do about a certificate the client does not trust;
// the x509 errors name the problem but not the remedy.
func tlsHint(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	switch {
	case errors.As(err, &unknownCA):
		return ": the API's certificate is not signed by a CA this machine trusts; pass the CA's certificate with --api-ca-cert FILE or SLUICE_API_CA_CERT"
	case errors.As(err, &badHost):
		return ": the API's certificate does not name the host in the URL; use a name or address the certificate lists"
	}
	return ""
}
