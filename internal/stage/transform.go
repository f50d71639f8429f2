package stage

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/sluice-dev/sluice/internal/batch"
)

// Renderer renders one event (a JSON value) through an input template.
type Renderer interface {
	// Apply appends the rendered event to dst.
	Apply(dst []byte, event []byte) ([]byte, error)
	// IsJSON says the rendering is JSON (else text, sent as a JSON string).
	IsJSON() bool
	// RecordEvent appends the event a record is to the template.
	RecordEvent(dst []byte, b *batch.Batch, i int) []byte
}

// Transform is the Pipes input transformer as a stage: the handler after
// it gets the batch with a payload of the rendered events as a JSON
// array. The events are the batch's records or, after an enrichment, the
// elements of the enrichment's answer (an answer that is not an array is
// one event). A failure to render fails the batch.
func Transform(r Renderer) batch.Stage {
	return func(next batch.Handler) batch.Handler {
		return func(ctx context.Context, b *batch.Batch) batch.Result {
			payload, err := render(r, b)
			if err != nil {
				return batch.FailedAll(b, fmt.Errorf("input template: %w", err))
			}
			return next(ctx, b.WithPayload(payload))
		}
	}
}

func render(r Renderer, b *batch.Batch) ([]byte, error) {
	out := []byte{'['}
	var ev []byte
	add := func(event []byte) error {
		if len(out) > 1 {
			out = append(out, ',')
		}
		if r.IsJSON() {
			var err error
			out, err = r.Apply(out, event)
			return err
		}
		text, err := r.Apply(nil, event)
		if err != nil {
			return err
		}
		s, _ := json.Marshal(string(text))
		out = append(out, s...)
		return nil
	}
	if b.Payload != nil {
		var events []json.RawMessage
		if err := json.Unmarshal(b.Payload, &events); err != nil {
			events = []json.RawMessage{b.Payload}
		}
		for _, e := range events {
			if err := add(e); err != nil {
				return nil, err
			}
		}
		return append(out, ']'), nil
	}
	for i := range b.Records {
		ev = r.RecordEvent(ev[:0], b, i)
		if err := add(ev); err != nil {
			return nil, err
		}
	}
	return append(out, ']'), nil
}
