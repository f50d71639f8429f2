package strictjson

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

type inner struct {
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
}

type embedded struct {
	Tag string `json:"tag"`
}

type body struct {
	embedded
	Name      string          `json:"name"`
	BatchSize int32           `json:"batchSize"`
	Ratio     float64         `json:"ratio"`
	Topics    []string        `json:"topics"`
	Target    inner           `json:"target"`
	Targets   []inner         `json:"targets"`
	Extra     json.RawMessage `json:"extra"`
	At        *time.Time      `json:"at"`
	Untagged  bool
	Hidden    string `json:"-"`
}

func TestUnmarshalAccepts(t *testing.T) {
	var b body
	err := Unmarshal([]byte(` {"name":"a","batchSize":10,"ratio":1e3,"topics":["x"],"target":{"url":"u","headers":{"A":"1","a":"2"}},
		"targets":[{"url":"v"}],"extra":{"k":[1,{"z":null}]},"at":"2026-01-02T03:04:05Z","tag":"t","Untagged":true} `+"\n"), &b)
	if err != nil {
		t.Fatal(err)
	}
	if b.Name != "a" || b.BatchSize != 10 || b.Target.Headers["a"] != "2" || b.Tag != "t" || !b.Untagged || b.At == nil || len(b.Targets) != 1 {
		t.Fatalf("decoded %+v", b)
	}
}

func TestUnmarshalRefuses(t *testing.T) {
	for _, c := range []struct{ name, in, field, says string }{
		{"case-folded name", `{"BatchSize":10}`, "BatchSize", `case-sensitive: did you mean "batchSize"?`},
		{"nested case-folded name", `{"target":{"URL":"u"}}`, "target.URL", `did you mean "url"?`},
		{"unknown name", `{"batchsiz":10}`, "batchsiz", "unknown field; the fields here are Untagged, at, batchSize"},
		{"unknown in a list", `{"targets":[{"url":"a"},{"uri":"b"}]}`, "targets[1].uri", "unknown field"},
		{"duplicate key", `{"name":"a","name":"b"}`, "name", "appears twice"},
		{"duplicate map key", `{"target":{"headers":{"A":"1","A":"2"}}}`, "target.headers.A", "appears twice"},
		{"duplicate inside raw", `{"extra":{"k":1,"k":2}}`, "extra.k", "appears twice"},
		{"trailing data", `{"name":"a"} {"name":"b"}`, "", "data after its JSON value"},
		{"trailing garbage", `{"name":"a"}x`, "", "data after"},
		{"out of range", `{"batchSize":1e300}`, "batchSize", "number 1e300 does not fit: want an integer"},
		{"int32 overflow", `{"batchSize":3000000000}`, "batchSize", "does not fit"},
		{"fraction for an integer", `{"batchSize":1.5}`, "batchSize", "number 1.5 does not fit: want an integer"},
		{"wrong type", `{"topics":"x"}`, "topics", "got a JSON string, want a list"},
		{"wrong nested type", `{"target":{"url":5}}`, "target.url", "got a JSON number, want a string"},
		{"not an object", `[1]`, "", "the body is a JSON array: want an object"},
		{"truncated", `{"name":"a"`, "", "ends in the middle"},
		{"syntax", `{"name" "a"}`, "", "malformed JSON at byte"},
		{"bad time", `{"at":"yesterday"}`, "", `invalid time "yesterday"`},
	} {
		var b body
		err := Unmarshal([]byte(c.in), &b)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: %v, want an *Error", c.name, err)
			continue
		}
		if e.Field != c.field || !strings.Contains(e.Reason, c.says) {
			t.Errorf("%s: field %q reason %q; want field %q saying %q", c.name, e.Field, e.Reason, c.field, c.says)
		}
		for _, goName := range []string{"int32", "float64", "main.", "strictjson.", "Go struct", "json:"} {
			if strings.Contains(e.Error(), goName) {
				t.Errorf("%s: %q speaks Go (%s)", c.name, e.Error(), goName)
			}
		}
	}
	if err := Unmarshal([]byte("  \n"), &body{}); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty body: %v", err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{"name":"a"}`, `{"target":{"url":"u"}}`, `{"a":1,"a":2}`, `[`, `{"topics":["x",1]}`, `{"extra":{"k":[{}]}}`, `1e300`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b body
		err := Unmarshal(data, &b)
		if err == nil {
			// Whatever strictjson accepts, encoding/json accepts too.
			var again body
			if err := json.Unmarshal(data, &again); err != nil {
				t.Fatalf("accepted %q, which encoding/json refuses: %v", data, err)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) && !errors.Is(err, ErrEmpty) {
			t.Fatalf("%q: error %T %v is neither *Error nor ErrEmpty", data, err, err)
		}
	})
}
