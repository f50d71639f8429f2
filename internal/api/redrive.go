package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sluice-dev/sluice/internal/redrive"
)

// Redriver replays a pipe's failure destination into its target; the
// engine is one.
type Redriver interface {
	Redrive(ctx context.Context, name string, dryRun bool, report func(redrive.Progress)) (redrive.Progress, error)
}

// registerRedrive serves
//
//	POST /v1/pipes/{name}/redrive[?dryRun=true]
//
// whose answer is JSON lines, one redrive.Progress per chunk, flushed as
// they come, the last with "done" true or an "error": a redrive of a
// large destination takes a while, and whoever runs it sees it move.
func (h *handler) registerRedrive(mux *http.ServeMux, r Redriver) {
	mux.HandleFunc("POST /v1/pipes/{name}/redrive", func(w http.ResponseWriter, req *http.Request) {
		name := req.PathValue("name")
		dry := req.URL.Query().Get("dryRun") == "true"
		// Errors before the first progress are answered as any other.
		if _, err := h.svc.GetPipe(req.Context(), name); err != nil {
			h.serviceError(w, req, err, name)
			return
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		flusher, _ := w.(http.Flusher)
		enc := json.NewEncoder(w)
		report := func(p redrive.Progress) {
			_ = enc.Encode(p)
			if flusher != nil {
				flusher.Flush()
			}
		}
		if _, err := r.Redrive(req.Context(), name, dry, report); err != nil {
			h.log.Warn("redrive failed", "pipe", name, "err", err)
		}
	})
	mux.HandleFunc("/v1/pipes/{name}/redrive", methodNotAllowed("POST"))
}

// Redrive runs a redrive on the server, calling progress with each
// report; it returns the last, with an error when the redrive stopped.
func (c *Client) Redrive(ctx context.Context, name string, dryRun bool, progress func(redrive.Progress)) (redrive.Progress, error) {
	path := "/v1/pipes/" + url.PathEscape(name) + "/redrive"
	if dryRun {
		path += "?dryRun=true"
	}
	u := c.base + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader("{}"))
	if err != nil {
		return redrive.Progress{}, fmt.Errorf("invalid API URL %q: %w: pass --api with an http:// or https:// URL", c.base, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// A redrive answers as it goes and may take longer than any request
	// timeout: only ctx bounds it.
	hc := *c.hc
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		if isDialError(err) {
			return redrive.Progress{}, &UnreachableError{URL: c.base, Err: err}
		}
		return redrive.Progress{}, fmt.Errorf("POST %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		return redrive.Progress{}, &UnauthorizedError{URL: c.base, TokenSent: c.token != ""}
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
		return redrive.Progress{}, responseError(http.MethodPost, u, resp, b)
	}
	var last redrive.Progress
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var p redrive.Progress
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return last, fmt.Errorf("read the redrive's progress: %w", err)
		}
		last = p
		if progress != nil {
			progress(p)
		}
	}
	if err := sc.Err(); err != nil {
		return last, fmt.Errorf("the redrive's progress broke off: %w", err)
	}
	switch {
	case last.Error != "":
		return last, errors.New(last.Error)
	case !last.Done:
		return last, errors.New("the server ended the redrive without a result: see its log")
	}
	return last, nil
}
