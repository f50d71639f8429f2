package target

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
)

// Enrichment is the Pipes enrichment step over HTTP: it posts a batch (as
// the Pipes event, or the payload an input transformer made) and answers
// what the endpoint answered, the payload the target then gets. It shares
// the HTTP target's client, redirect rule and error phrasing.
type Enrichment struct {
	h *HTTP
}

// EnrichmentConfig configures an Enrichment.
type EnrichmentConfig struct {
	URL          string
	Timeout      time.Duration
	PayloadLimit int
	// Source describes the records in the Pipes event sent.
	Source event.Source
	Client *http.Client
}

// NewEnrichment returns an enrichment step.
func NewEnrichment(cfg EnrichmentConfig) (*Enrichment, error) {
	enc, err := event.NewFormatEncoder(cfg.Source, event.FormatPipes)
	if err != nil {
		return nil, err
	}
	h, err := NewHTTP(HTTPConfig{URL: cfg.URL, Timeout: cfg.Timeout, PayloadLimit: cfg.PayloadLimit, Encoder: enc, Client: cfg.Client,
		Headers: http.Header{}, readBody: true})
	if err != nil {
		return nil, err
	}
	return &Enrichment{h: h}, nil
}

// Enrich posts b and returns the answer; nil means the endpoint answered
// nothing to deliver (an empty body, null or an empty JSON array).
func (e *Enrichment) Enrich(ctx context.Context, b *batch.Batch) ([]byte, error) {
	body, err := e.h.post(ctx, b)
	if err != nil {
		if te, ok := err.(*Error); ok {
			// The HTTP phrasing names the target; this call is not it.
			if rest, ok := strings.CutPrefix(te.Problem, "target"); ok {
				te.Problem = "enrichment" + rest
			} else {
				te.Problem = "enrichment: " + te.Problem
			}
		}
		return nil, err
	}
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0, bytes.Equal(trimmed, []byte("null")), bytes.Equal(trimmed, []byte("[]")):
		return nil, nil
	case len(trimmed) > e.h.cfg.PayloadLimit:
		return nil, &Error{StatusCode: 200, Problem: fmt.Sprintf("enrichment answered %d bytes, over the payload limit of %d bytes", len(trimmed), e.h.cfg.PayloadLimit)}
	}
	return trimmed, nil
}
