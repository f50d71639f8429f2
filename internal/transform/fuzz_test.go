package transform

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzCompileApply: Compile and Apply never panic; a JSON template always
// renders valid JSON, for a Kafka record carrying any value and for any
// JSON document as the event; and the event validator agrees with
// encoding/json.
func FuzzCompileApply(f *testing.F) {
	for _, s := range []struct{ tmpl, value string }{
		{`{"id": <$.value.orderId>, "s": "x<$.value.items[*]>y"}`, orderJSON},
		{`"Hello, <$.value.name>"`, `{"name": "a\"b\\c\u2028"}`},
		{`[<$.value.*>, <$.headers[*].*>, <aws.pipes.event>, "<aws.pipes.event>"]`, `[1, "x", {"y": null}]`},
		{`{"e": <aws.pipes.event.json>, "t": <aws.pipes.event.ingestion-time>}`, `true`},
		{`<$.value>`, "\xff\x00"},
		{`{"<$.topic>": "<$.value.a[0][1]>"}`, `{"a": [[1, {"b": 2}]]}`},
		{`text <$.key> <aws.pipes.pipe-arn>`, `{}`},
		{`{"a": 1,}`, ``},
		{`<$.a`, `{`},
	} {
		f.Add(s.tmpl, []byte(s.value))
	}
	f.Fuzz(func(t *testing.T, tmpl string, value []byte) {
		// The validator must accept exactly what encoding/json accepts,
		// for UTF-8 input (encoding/json does not check UTF-8).
		if utf8.Valid(value) {
			off, _ := validate(value)
			if (off < 0) != json.Valid(value) {
				t.Fatalf("validate(%q) = %d, json.Valid = %v", value, off, json.Valid(value))
			}
		}
		tp, err := Compile(tmpl)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Compile error %T", err)
			}
			return
		}
		v := Vars{PipeName: string(value), PipeARN: "arn\"\\"}
		events := [][]byte{RecordEvent(nil, Record{
			EventSource: "aws:kafka", EventSourceARN: tmpl, Topic: string(value),
			Key: value, Value: value, Headers: []Header{{Key: tmpl, Value: value}},
		}), value}
		for _, ev := range events {
			out, err := tp.Apply(nil, ev, v)
			if err != nil {
				if json.Valid(ev) && utf8.Valid(ev) {
					t.Fatalf("Apply on valid JSON %q: %v", ev, err)
				}
				continue
			}
			if tp.IsJSON() && !json.Valid(out) {
				t.Fatalf("template %q, event %q: output %q is not JSON", tmpl, ev, out)
			}
		}
	})
}
