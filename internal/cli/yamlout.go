package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	yaml2 "go.yaml.in/yaml/v2"

	"github.com/sluice-dev/sluice/internal/pipe"
)

const outputYAML = "yaml"

// yamlOutput lists the commands that print YAML. YAML output is the file
// format of `sluice apply` (specs only, no status), which is what reading
// commands can offer; a write's result with its status has no meaning as an
// apply file, so the others refuse -o yaml instead of printing something
// that looks like one.
var yamlOutput = map[string]bool{
	"sluice pipes get":  true,
	"sluice pipes list": true,
}

// applyFile is the document `sluice apply` reads and `-o yaml` writes.
type applyFile struct {
	Pipes []pipe.Spec `json:"pipes"`
}

// exportSpec is a stored pipe as a user would declare it: every default
// spelled out (so the file shows what runs), and without what the server
// assigns (the UUID, and the consumer group when it is the UUID's default),
// so that applying the result to the same or another server changes
// nothing or creates the same pipe.
func exportSpec(p pipe.Pipe) pipe.Spec {
	s := p.Spec.Normalize()
	if s.ConsumerGroupID == s.UUID {
		s.ConsumerGroupID = ""
	}
	s.UUID = ""
	return s
}

// writeSpecYAML writes one pipe's spec as a YAML document apply accepts.
func writeSpecYAML(w io.Writer, p pipe.Pipe) error {
	return writeYAML(w, exportSpec(p))
}

// writeSpecsYAML writes every pipe as one apply document: `sluice pipes
// list -o yaml` is a backup of the whole declared state that `sluice apply
// --prune -f` restores.
func writeSpecsYAML(w io.Writer, ps []pipe.Pipe) error {
	f := applyFile{Pipes: make([]pipe.Spec, 0, len(ps))}
	for _, p := range ps {
		f.Pipes = append(f.Pipes, exportSpec(p))
	}
	return writeYAML(w, f)
}

// writeYAML writes v, through its JSON form so the JSON tags name the
// fields, keeping the struct's field order: sigs.k8s.io/yaml.Marshal goes
// through a map and would sort the keys, putting "name" in the middle.
func writeYAML(w io.Writer, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	o, err := orderedJSON(j)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	b, err := yaml2.Marshal(o)
	if err != nil {
		return fmt.Errorf("encode output: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// orderedJSON decodes JSON into values yaml.v2 marshals in the JSON's own
// order: objects become MapSlices, numbers int64 or float64 (a json.Number
// would be quoted as a string).
func orderedJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return decodeOrdered(d)
}

func decodeOrdered(d *json.Decoder) (any, error) {
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			ms := yaml2.MapSlice{}
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return nil, err
				}
				v, err := decodeOrdered(d)
				if err != nil {
					return nil, err
				}
				ms = append(ms, yaml2.MapItem{Key: k, Value: v})
			}
			_, err := d.Token()
			return ms, err
		}
		list := []any{}
		for d.More() {
			v, err := decodeOrdered(d)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := d.Token()
		return list, err
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i, nil
		}
		return t.Float64()
	default: // string, bool, nil
		return t, nil
	}
}

// change is one field that differs between two specs, as apply and update
// print it: "batchSize: 100 -> 500".
type change struct {
	Field string `json:"field"`
	From  string `json:"from"`
	To    string `json:"to"`
}

func (c change) String() string { return c.Field + ": " + c.From + " -> " + c.To }

func formatChanges(cs []change) string {
	s := make([]string, len(cs))
	for i, c := range cs {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

// specDiff lists the fields whose values differ, by their paths in the
// spec's JSON (the names the apply file and validation errors use), in the
// spec's field order. It works on the JSON form so that a field added to
// pipe.Spec is compared without anyone remembering to add it here.
func specDiff(from, to pipe.Spec) []change {
	return diffLeaves(flattenSpec(from), flattenSpec(to))
}

type leaf struct{ path, value string }

func flattenSpec(s pipe.Spec) []leaf { return flattenJSON("spec", s) }

// flattenJSON lists v's JSON leaves as dotted paths with their values, in
// the JSON's order.
func flattenJSON(what string, v any) []leaf {
	j, err := json.Marshal(v)
	if err != nil {
		// Specs and functions always encode; a failure here is a
		// programming error.
		panic(fmt.Sprintf("encode %s: %v", what, err))
	}
	tree, err := orderedJSON(j)
	if err != nil {
		panic(fmt.Sprintf("decode %s: %v", what, err))
	}
	var out []leaf
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if ms, ok := v.(yaml2.MapSlice); ok {
			for _, it := range ms {
				k := fmt.Sprint(it.Key)
				if prefix != "" {
					k = prefix + "." + k
				}
				walk(k, it.Value)
			}
			return
		}
		out = append(out, leaf{prefix, diffValue(v)})
	}
	walk("", tree)
	return out
}

// diffValue shows a value as the user would write it in the apply file,
// quoting only strings that would otherwise be unreadable in a diff.
func diffValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "<none>"
	case string:
		if v == "" || strings.ContainsAny(v, " ,\t\n") || strings.Contains(v, "->") {
			return strconv.Quote(v)
		}
		return v
	case []any:
		s := make([]string, len(v))
		for i, e := range v {
			s[i] = diffValue(e)
		}
		return "[" + strings.Join(s, ", ") + "]"
	case yaml2.MapSlice:
		s := make([]string, len(v))
		for i, it := range v {
			s[i] = fmt.Sprint(it.Key) + ": " + diffValue(it.Value)
		}
		return "{" + strings.Join(s, ", ") + "}"
	default:
		return fmt.Sprint(v)
	}
}
