package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// Actions apply reports, one line per pipe: "pipe/NAME ACTION".
const (
	actionCreated   = "created"
	actionUpdated   = "updated"
	actionUnchanged = "unchanged"
	actionDeleted   = "deleted"
	actionFailed    = "failed"
)

func (a *app) applyCmd() *cobra.Command {
	var (
		file   string
		prune  bool
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--prune] [--dry-run]",
		Short: "Create, update (and with --prune delete) pipes to match a YAML file",
		Long: `Make the server's pipes match the pipes declared in FILE (YAML or JSON; - reads
standard input):

  pipes:
    - name: orders
      bootstrapServers: [127.0.0.1:9092]
      topics: [orders]
      batchSize: 100
      target: {url: http://127.0.0.1:9000/}

The fields are those of the API's pipe spec ('sluice pipes get NAME -o yaml'
prints one). A file may also hold several YAML documents separated by ---,
each a "pipes:" list or a single pipe's fields.

Each declared pipe is created if absent, updated if it differs, and left
alone if it matches. A field left out means its default, except the
create-only fields (startingPosition, consumerGroupId), which keep their
values. Changing a create-only field (bootstrapServers, topics,
startingPosition, startingPositionTimestamp, consumerGroupId) is an error:
delete the pipe and apply again to re-create it.

Every pipe is checked before anything is changed: if any pipe in the file is
invalid, or would change a create-only field, nothing is changed.

With --prune, pipes on the server that the file does not declare are deleted
(their consumer groups keep their offsets). With --dry-run, the plan is
printed and nothing is changed.`,
		Example: `  sluice apply -f pipes.yaml
  sluice apply -f pipes.yaml --dry-run
  sluice pipes list -o yaml > backup.yaml && sluice apply -f backup.yaml --prune
  sluice pipes get orders -o yaml | sed 's/batchSize: 100/batchSize: 500/' | sluice apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("--filename/-f is required: give the YAML file of pipes, or - for standard input")
			}
			b, err := readApplyFile(cmd, file)
			if err != nil {
				return err
			}
			specs, problems := parseApplyFile(b, time.Now())
			if len(problems) > 0 {
				return problemsError(file, problems)
			}
			if prune && len(specs) == 0 {
				return fmt.Errorf("%s declares no pipes, and with --prune applying it would delete every pipe: refusing; delete pipes with 'sluice pipes delete NAME'", file)
			}
			c, err := a.client(cmd)
			if err != nil {
				return err
			}
			current, err := c.ListPipes(cmd.Context())
			if err != nil {
				return err
			}
			steps, problems := planApply(specs, current, prune)
			if len(problems) > 0 {
				return problemsError(file, problems)
			}
			results := make([]applyResult, 0, len(steps))
			failed := 0
			for _, s := range steps {
				r := applyResult{Pipe: s.name, Action: s.action, Changes: s.changes}
				if !dryRun {
					if err := s.run(cmd, c); err != nil {
						r.Action, r.Error = actionFailed, applyErrorMessage(err)
						failed++
					}
				}
				results = append(results, r)
				if a.output == outputTable {
					printApplyResult(a.env.Stdout, a.env.Stderr, r, dryRun)
				}
			}
			if a.output == outputJSON {
				if err := writeJSON(a.env.Stdout, struct {
					DryRun  bool          `json:"dryRun"`
					Results []applyResult `json:"results"`
				}{dryRun, results}); err != nil {
					return err
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d pipes failed to apply (the others were applied): fix what is reported above and apply again", failed, len(steps))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "filename", "f", "", "YAML or JSON file of pipes, or - for standard input (required)")
	f.BoolVar(&prune, "prune", false, "also delete pipes that exist on the server but are not in the file")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be created, updated and deleted, and change nothing")
	return cmd
}

func readApplyFile(cmd *cobra.Command, file string) ([]byte, error) {
	if file == "-" {
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, fmt.Errorf("reading standard input: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--filename: %w", err)
	}
	return b, nil
}

// problemsError reports every problem of the file at once, one per line,
// so all can be fixed in one round.
func problemsError(file string, problems []string) error {
	if file == "-" {
		file = "standard input"
	}
	return fmt.Errorf("%s: %d %s, so nothing was changed:\n%s", file, len(problems),
		map[bool]string{true: "problem", false: "problems"}[len(problems) == 1], strings.Join(problems, "\n"))
}

// applyResult is the outcome for one pipe; -o json prints a list of them.
type applyResult struct {
	Pipe    string   `json:"pipe"`
	Action  string   `json:"action"`
	Changes []change `json:"changes,omitempty"`
	Error   string   `json:"error,omitempty"`
}

func printApplyResult(out, errOut io.Writer, r applyResult, dryRun bool) {
	if r.Action == actionFailed {
		fmt.Fprintf(errOut, "pipe/%s failed: %s\n", r.Pipe, r.Error)
		return
	}
	line := "pipe/" + r.Pipe + " " + r.Action
	if len(r.Changes) > 0 {
		line += " (" + formatChanges(r.Changes) + ")"
	}
	if dryRun {
		line += " (dry run)"
	}
	fmt.Fprintln(out, line)
}

// applyErrorMessage flattens a server's rejection of a spec, which comes
// as one error with many fields, onto the one line of its pipe.
func applyErrorMessage(err error) string {
	var ve *pipe.ValidationError
	if errors.As(err, &ve) && len(ve.Fields) > 0 {
		s := make([]string, len(ve.Fields))
		for i, f := range ve.Fields {
			s[i] = f.Error()
		}
		return strings.Join(s, "; ")
	}
	return err.Error()
}

// declared is one pipe of the file, with where it was declared so that an
// error can point at it even when the pipe has no valid name.
type declared struct {
	spec  pipe.Spec
	where string
}

// parseApplyFile reads every document of the file and checks every pipe
// in it, returning all problems rather than the first, each naming the pipe
// and the field. now is for the rule that a starting timestamp is not in
// the future.
func parseApplyFile(b []byte, now time.Time) ([]declared, []string) {
	var out []declared
	var problems []string
	docs := splitDocuments(b)
	for i, doc := range docs {
		docWhere := ""
		if len(docs) > 1 {
			docWhere = fmt.Sprintf("document %d", i+1)
		}
		d, ps := parseDocument(doc, docWhere, now)
		out = append(out, d...)
		problems = append(problems, ps...)
	}
	first := map[string]string{}
	for _, d := range out {
		if d.spec.Name == "" {
			continue // reported by Validate
		}
		if w, dup := first[d.spec.Name]; dup {
			problems = append(problems, fmt.Sprintf("pipe/%s (%s): name: declared again, first at %s: a name declares one pipe; remove or rename one of them", d.spec.Name, d.where, w))
			continue
		}
		first[d.spec.Name] = d.where
	}
	return out, problems
}

// splitDocuments splits a YAML stream at its "---" document markers, which
// sigs.k8s.io/yaml does not do: it reads the first document only and would
// silently ignore the rest.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	var cur []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("---")) && (len(line) == 3 || strings.ContainsRune(" \t\r\n", rune(line[3]))) {
			docs = append(docs, cur)
			// "--- {name: a}" starts the next document on the marker's line.
			cur = append([]byte(nil), line[3:]...)
			continue
		}
		cur = append(cur, line...)
	}
	docs = append(docs, cur)
	// What precedes the first marker is a document only if it has
	// content; comments above a leading "---" must not shift the numbers
	// that errors give documents.
	if len(docs) > 1 && blankYAML(docs[0]) {
		docs = docs[1:]
	}
	return docs
}

func blankYAML(b []byte) bool {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if l := bytes.TrimSpace(line); len(l) > 0 && l[0] != '#' {
			return false
		}
	}
	return true
}

func parseDocument(doc []byte, where string, now time.Time) ([]declared, []string) {
	at := func(s string) string {
		if where == "" {
			return s
		}
		if s == "" {
			return where
		}
		return where + ", " + s
	}
	prefix := func(s string) string {
		if where == "" {
			return s
		}
		return where + ": " + s
	}
	// Strict, so a key given twice is an error rather than one value
	// silently winning.
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, []string{prefix("not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	var top any
	if err := decodeJSON(j, &top); err != nil {
		return nil, []string{prefix("not valid YAML: " + err.Error())}
	}
	if top == nil {
		return nil, nil // an empty document, such as after a trailing ---
	}
	m, ok := top.(map[string]any)
	if !ok {
		return nil, []string{prefix(`want a mapping: "pipes:" with a list of pipes, or one pipe's fields`)}
	}
	if _, ok := m["pipes"]; !ok {
		d, ps := parsePipe(m, at(""), now)
		return d, ps
	}
	var problems []string
	for _, k := range sortedKeys(m) {
		if k != "pipes" {
			problems = append(problems, prefix(fmt.Sprintf(`unknown field %q: a document is either "pipes:" with a list of pipes, or one pipe's fields`, k)))
		}
	}
	var list []any
	switch v := m["pipes"].(type) {
	case nil:
	case []any:
		list = v
	default:
		return nil, append(problems, prefix("pipes: want a list of pipes, each starting with \"- name: …\""))
	}
	var out []declared
	for i, v := range list {
		d, ps := parsePipe(v, at(fmt.Sprintf("pipes[%d]", i)), now)
		out = append(out, d...)
		problems = append(problems, ps...)
	}
	return out, problems
}

var specType = reflect.TypeFor[pipe.Spec]()

// parsePipe checks one pipe's fields: names (exactly, where encoding/json
// would accept any case), types, then the spec's own validation.
func parsePipe(v any, where string, now time.Time) ([]declared, []string) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, []string{fmt.Sprintf("%s: want a pipe's fields as a mapping, such as \"name: orders\"", where)}
	}
	name, _ := m["name"].(string)
	label := where
	if label == "" {
		label = "the pipe"
	}
	if name != "" {
		label = fmt.Sprintf("pipe/%s (%s)", name, where)
		if where == "" {
			label = "pipe/" + name
		}
	}
	var problems []string
	// takeUnknownFields also removes them, so that the decoder cannot
	// match them to a field regardless of case, and the validation below
	// still reports every other problem of the pipe.
	for _, u := range takeUnknownFields(m, specType, "") {
		problems = append(problems, label+": "+u)
	}
	if _, ok := m["uuid"]; ok {
		problems = append(problems, label+": uuid: Sluice assigns it when it creates the pipe: leave it out")
	}
	j, err := json.Marshal(m)
	if err != nil {
		return nil, []string{label + ": " + err.Error()}
	}
	s := pipe.Spec{Name: name}
	if err := json.Unmarshal(j, &s); err != nil {
		// The decoder stops at the first wrong type; validating the
		// half-decoded rest would report fields that are fine.
		return []declared{{spec: s, where: where}}, append(problems, label+": "+typeErrorMessage(err))
	}
	var ve *pipe.ValidationError
	if err := s.Validate(now); errors.As(err, &ve) {
		for _, f := range ve.Fields {
			problems = append(problems, label+": "+f.Error())
		}
	}
	// Returned even when invalid, so that a duplicate name is reported
	// together with the other problems.
	return []declared{{spec: s, where: where}}, problems
}

func decodeJSON(j []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(j))
	d.UseNumber()
	return d.Decode(v)
}

// typeErrorMessage says which field has the wrong kind of value, in YAML's
// words rather than Go's.
func typeErrorMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := map[reflect.Kind]string{reflect.Int: "a whole number", reflect.Float64: "a number",
			reflect.String: "a string", reflect.Bool: "true or false", reflect.Slice: "a list", reflect.Struct: "a mapping"}[te.Type.Kind()]
		if want == "" {
			want = te.Type.String()
		}
		return fmt.Sprintf("%s: got %s, want %s", te.Field, te.Value, want)
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return fmt.Sprintf("startingPositionTimestamp: %q is not an RFC 3339 time: use e.g. 2026-01-02T15:04:05Z", pe.Value)
	}
	return err.Error()
}

// takeUnknownFields names the keys of v that t has no field for, with
// their paths and what the known fields are, and deletes them from v. Names
// must match exactly: encoding/json matches them regardless of case, so
// "batchsize" would be accepted, and a round trip through get -o yaml would
// show it renamed.
func takeUnknownFields(v any, t reflect.Type, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil // such as time.Time: a value, not fields
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil // the decoder reports the wrong type
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := range t.NumField() {
			sf := t.Field(i)
			name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
			if name == "-" || !sf.IsExported() {
				continue
			}
			if name == "" {
				name = sf.Name
			}
			fields[name] = sf.Type
			if path == "" && name == "uuid" {
				continue // a field of the spec, but refused in a file: not offered
			}
			names = append(names, name)
		}
		var out []string
		for _, k := range sortedKeys(m) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ft, ok := fields[k]
			if !ok {
				hint := ""
				for _, n := range names {
					if strings.EqualFold(n, k) {
						hint = fmt.Sprintf(" (did you mean %q? names are case-sensitive)", n)
					}
				}
				if path == "" && (k == "pipe" || strings.EqualFold(k, "pipes")) {
					hint = ` (a list of pipes goes under "pipes:")`
				}
				what := "a pipe"
				if path != "" {
					what = path
				}
				out = append(out, fmt.Sprintf("unknown field %q%s: the fields of %s are %s", p, hint, what, strings.Join(names, ", ")))
				delete(m, k)
				continue
			}
			out = append(out, takeUnknownFields(m[k], ft, p)...)
		}
		return out
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return nil
		}
		var out []string
		for i, e := range l {
			out = append(out, takeUnknownFields(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// step is one change apply makes (or, for unchanged, does not make).
type step struct {
	name    string
	action  string
	changes []change
	spec    pipe.Spec // what to create or update to
	rev     int64     // the revision an update is based on
}

func (s step) run(cmd *cobra.Command, svc pipe.Service) error {
	ctx := cmd.Context()
	switch s.action {
	case actionCreated:
		_, err := svc.CreatePipe(ctx, s.spec)
		return err
	case actionUpdated:
		// Conditional on the revision the plan was made from, so that the
		// printed diff is the change made, not one over someone else's.
		_, err := svc.UpdatePipe(ctx, s.spec, s.rev)
		if errors.Is(err, pipe.ErrConflict) {
			return errors.New("it was changed by someone else while apply ran, so it was not updated: apply again")
		}
		return err
	case actionDeleted:
		return svc.DeletePipe(ctx, s.name)
	}
	return nil
}

// planApply compares the file with the server. It compares normalized
// specs, as the engine does, with create-only fields the file leaves out
// inherited from the server's pipe: so the server's defaults (consumer
// group = UUID) and a pipe exported with `get -o yaml` compare equal.
func planApply(specs []declared, current []pipe.Pipe, prune bool) ([]step, []string) {
	byName := make(map[string]pipe.Pipe, len(current))
	for _, p := range current {
		byName[p.Name] = p
	}
	var steps []step
	var problems []string
	inFile := make(map[string]bool, len(specs))
	for _, d := range specs {
		name := d.spec.Name
		inFile[name] = true
		cur, exists := byName[name]
		switch {
		case !exists:
			steps = append(steps, step{name: name, action: actionCreated, spec: d.spec})
			continue
		case cur.Status.State == pipe.StateDeleting:
			problems = append(problems, fmt.Sprintf("pipe/%s: is being deleted on the server: wait until it is gone, then apply again to re-create it", name))
			continue
		}
		want := pipe.InheritCreateOnly(cur.Spec, d.spec).Normalize()
		if ve := pipe.CreateOnlyChanges(cur.Spec, want); ve != nil {
			for _, f := range ve.Fields {
				problems = append(problems, fmt.Sprintf("pipe/%s: %s", name, f.Error()))
			}
			continue
		}
		// Equal in meaning now; take the server's spelling (a timestamp's
		// zone) so that only updatable fields can differ.
		want.UUID, want.BootstrapServers, want.Topics = cur.UUID, cur.BootstrapServers, cur.Topics
		want.StartingPosition, want.StartingPositionTimestamp, want.ConsumerGroupID = cur.StartingPosition, cur.StartingPositionTimestamp, cur.ConsumerGroupID
		cs := specDiff(cur.Spec.Normalize(), want)
		if len(cs) == 0 {
			steps = append(steps, step{name: name, action: actionUnchanged})
			continue
		}
		steps = append(steps, step{name: name, action: actionUpdated, changes: cs, spec: want, rev: cur.Revision})
	}
	if prune {
		var gone []string
		for _, p := range current {
			// A pipe already being deleted is on its way out: deleting
			// it again would print "deleted" on every apply.
			if !inFile[p.Name] && p.Status.State != pipe.StateDeleting {
				gone = append(gone, p.Name)
			}
		}
		slices.Sort(gone)
		for _, n := range gone {
			steps = append(steps, step{name: n, action: actionDeleted})
		}
	}
	return steps, problems
}
