package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/sluice-dev/sluice/internal/pipe"
)

// Actions apply reports, one line per pipe or function: "KIND/NAME ACTION".
const (
	actionCreated   = "created"
	actionUpdated   = "updated"
	actionUnchanged = "unchanged"
	actionDeleted   = "deleted"
	actionFailed    = "failed"
)

// What apply declares: the KIND of "KIND/NAME" lines.
const (
	kindPipe     = "pipe"
	kindFunction = "function"
)

// applyService is what apply changes: the API client is both.
type applyService interface {
	pipe.Service
	pipe.FunctionService
}

func (a *app) applyCmd() *cobra.Command {
	var (
		file   string
		prune  bool
		dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE [--prune] [--dry-run]",
		Short: "Create, update (and with --prune delete) pipes, and create or update functions, to match a YAML file",
		Long: `Make the server's pipes, and the functions they target, match those declared
in FILE (YAML or JSON; - reads standard input):

  functions:
    - name: enrich
      url: http://127.0.0.1:9100/
    - name: resize
      handler: {path: ./bin/resize, concurrency: 4}
  pipes:
    - name: orders
      bootstrapServers: [127.0.0.1:9092]
      topics: [orders]
      batchSize: 100
      target: {http: {function: enrich}}

The fields are those of the API's pipe spec ('sluice pipes get NAME -o yaml'
prints one) and of a function (name, then url or handler, as 'sluice
functions get NAME -o json' prints them; its lastModified and status are the
server's and ignored, so 'sluice functions list -o json' output applies as
is). A file may also hold several YAML documents separated by ---, each a
"pipes:" list, a "functions:" list, both, or a single pipe's fields.

Functions are applied before pipes, so a pipe may target a function the same
file declares. A relative handler.path is resolved against FILE's directory
(the working directory for -), so a file kept beside its handler works from
anywhere. A function is created if absent, replaced if its url or handler
differs (a handler field left out means its default), and left alone
otherwise.

Each declared pipe is created if absent, updated if it differs, and left
alone if it matches. A field left out means its default, except the
create-only fields (startingPosition, consumerGroupId), which keep their
values. Changing a create-only field (bootstrapServers, topics,
startingPosition, startingPositionTimestamp, consumerGroupId) is an error:
delete the pipe and apply again to re-create it.

Everything is checked before anything is changed: if any pipe or function in
the file is invalid, would change a create-only field, or would turn a
function that pipes target from a url one into a hosted one (or back),
nothing is changed.

Each pipe and function prints one line, "pipe/NAME ACTION" or
"function/NAME ACTION" (created, updated, unchanged, deleted, failed); -o json
prints {"dryRun": …, "results": [{"function" or "pipe": NAME, "action",
"changes", "error"}]}, functions first.

With --prune, pipes on the server that the file does not declare are deleted
(their consumer groups keep their offsets). Functions are never deleted, so
that a file of pipes alone does not remove every function: use 'sluice
functions delete NAME'.
With --dry-run, the plan is printed and nothing is changed.`,
		Example: `  sluice apply -f pipes.yaml
  sluice apply -f pipes.yaml --dry-run
  sluice pipes list -o yaml > backup.yaml && sluice apply -f backup.yaml --prune
  sluice functions list -o json > functions.json && sluice apply -f functions.json
  sluice pipes get orders -o yaml | sed 's/batchSize: 100/batchSize: 500/' | sluice apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("--filename/-f is required: give the YAML file of pipes and functions, or - for standard input")
			}
			b, err := readApplyFile(cmd, file)
			if err != nil {
				return err
			}
			decl, problems := parseApplyFile(b, applyDir(file), time.Now())
			if len(problems) > 0 {
				return problemsError(file, problems)
			}
			// Functions are not pruned, so a file of functions only would,
			// with --prune, still delete every pipe.
			if prune && len(decl.pipes) == 0 {
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
			var steps []step
			// Only a file that declares functions needs the server to serve
			// them; a file of pipes applies to any server.
			if len(decl.functions) > 0 {
				fns, err := c.ListFunctions(cmd.Context())
				if err != nil {
					return err
				}
				steps, problems = planFunctions(decl.functions, fns, current)
			}
			pipeSteps, ps := planApply(decl.pipes, current, prune)
			// Functions first: a created pipe may target a function the
			// file also creates.
			steps, problems = append(steps, pipeSteps...), append(problems, ps...)
			if len(problems) > 0 {
				return problemsError(file, problems)
			}
			results := make([]applyResult, 0, len(steps))
			failed := 0
			for _, s := range steps {
				r := s.result()
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
				what := "pipes"
				if len(decl.functions) > 0 {
					what = "pipes and functions"
				}
				return fmt.Errorf("%d of %d %s failed to apply (the others were applied): fix what is reported above and apply again", failed, len(steps), what)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "filename", "f", "", "YAML or JSON file of pipes and functions, or - for standard input (required)")
	f.BoolVar(&prune, "prune", false, "also delete pipes that exist on the server but are not in the file (never functions)")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be created, updated and deleted, and change nothing")
	return cmd
}

// applyDir is the directory relative handler paths in file are resolved
// against: the file's own, so that a file kept beside its handler works
// from any working directory; for standard input, the working directory,
// as 'functions set --handler' does. It is "" if that cannot be found,
// which only a relative handler path then reports.
func applyDir(file string) string {
	dir := "."
	if file != "-" {
		dir = filepath.Dir(file)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	return abs
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

// applyResult is the outcome for one pipe or function; -o json prints a
// list of them. Exactly one of Pipe and Function is set: a name key per
// kind keeps the pipe results as they were before files declared
// functions.
type applyResult struct {
	Function string   `json:"function,omitempty"`
	Pipe     string   `json:"pipe,omitempty"`
	Action   string   `json:"action"`
	Changes  []change `json:"changes,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// ref is how the result's line names what it is about: "pipe/orders".
func (r applyResult) ref() string {
	if r.Function != "" {
		return kindFunction + "/" + r.Function
	}
	return kindPipe + "/" + r.Pipe
}

func printApplyResult(out, errOut io.Writer, r applyResult, dryRun bool) {
	if r.Action == actionFailed {
		fmt.Fprintf(errOut, "%s failed: %s\n", r.ref(), r.Error)
		return
	}
	line := r.ref() + " " + r.Action
	if len(r.Changes) > 0 {
		line += " (" + formatChanges(r.Changes) + ")"
	}
	if dryRun {
		line += " (dry run)"
	}
	fmt.Fprintln(out, line)
}

// applyErrorMessage flattens a server's rejection of a spec, which comes
// as one error with many fields, onto the one line of its pipe or function.
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

// declaredFunction is one function of the file, and where.
type declaredFunction struct {
	fn    pipe.Function
	where string
}

// declaration is everything a file declares, in file order.
type declaration struct {
	pipes     []declared
	functions []declaredFunction
}

func (d *declaration) add(o declaration) {
	d.pipes = append(d.pipes, o.pipes...)
	d.functions = append(d.functions, o.functions...)
}

// parseApplyFile reads every document of the file and checks every pipe
// and function in it, returning all problems rather than the first, each
// naming the pipe or function and the field. dir is what relative handler
// paths are relative to (see applyDir); now is for the rule that a starting
// timestamp is not in the future.
func parseApplyFile(b []byte, dir string, now time.Time) (declaration, []string) {
	var out declaration
	var problems []string
	docs := splitDocuments(b)
	for i, doc := range docs {
		docWhere := ""
		if len(docs) > 1 {
			docWhere = fmt.Sprintf("document %d", i+1)
		}
		d, ps := parseDocument(doc, docWhere, dir, now)
		out.add(d)
		problems = append(problems, ps...)
	}
	// Pipes and functions are named apart (a pipe may share its
	// function's name), so each kind has its own duplicates.
	first := map[string]string{}
	for _, d := range out.pipes {
		if d.spec.Name == "" {
			continue // reported by Validate
		}
		if w, dup := first[d.spec.Name]; dup {
			problems = append(problems, fmt.Sprintf("pipe/%s (%s): name: declared again, first at %s: a name declares one pipe; remove or rename one of them", d.spec.Name, d.where, w))
			continue
		}
		first[d.spec.Name] = d.where
	}
	first = map[string]string{}
	for _, d := range out.functions {
		if d.fn.Name == "" {
			continue // reported by Validate
		}
		if w, dup := first[d.fn.Name]; dup {
			problems = append(problems, fmt.Sprintf("function/%s (%s): name: declared again, first at %s: a name declares one function; remove or rename one of them", d.fn.Name, d.where, w))
			continue
		}
		first[d.fn.Name] = d.where
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

func parseDocument(doc []byte, where, dir string, now time.Time) (declaration, []string) {
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
		return declaration{}, []string{prefix("not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	var top any
	if err := decodeJSON(j, &top); err != nil {
		return declaration{}, []string{prefix("not valid YAML: " + err.Error())}
	}
	if top == nil {
		return declaration{}, nil // an empty document, such as after a trailing ---
	}
	m, ok := top.(map[string]any)
	if !ok {
		return declaration{}, []string{prefix(`want a mapping: "pipes:" and "functions:" lists, or one pipe's fields`)}
	}
	_, hasPipes := m["pipes"]
	_, hasFunctions := m["functions"]
	if !hasPipes && !hasFunctions {
		d, ps := parsePipe(m, at(""), now)
		return declaration{pipes: d}, ps
	}
	var problems []string
	for _, k := range sortedKeys(m) {
		if k != "pipes" && k != "functions" {
			problems = append(problems, prefix(fmt.Sprintf(`unknown field %q: a document is "pipes:" and "functions:" lists (either or both), or one pipe's fields`, k)))
		}
	}
	// list is the items under key; a key given with no items (pipes:) is
	// an empty list.
	list := func(key, what string) []any {
		switch v := m[key].(type) {
		case nil:
		case []any:
			return v
		default:
			problems = append(problems, prefix(fmt.Sprintf("%s: want a list of %s, each starting with \"- name: …\"", key, what)))
		}
		return nil
	}
	var out declaration
	for i, v := range list("functions", "functions") {
		d, ps := parseFunction(v, at(fmt.Sprintf("functions[%d]", i)), dir)
		out.functions = append(out.functions, d...)
		problems = append(problems, ps...)
	}
	for i, v := range list("pipes", "pipes") {
		d, ps := parsePipe(v, at(fmt.Sprintf("pipes[%d]", i)), now)
		out.pipes = append(out.pipes, d...)
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

var functionType = reflect.TypeFor[pipe.Function]()

// parseFunction checks one function's fields as parsePipe does a pipe's,
// and makes a relative handler path absolute against dir.
func parseFunction(v any, where, dir string) ([]declaredFunction, []string) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, []string{fmt.Sprintf("%s: want a function's fields as a mapping, such as \"name: enrich\"", where)}
	}
	name, _ := m["name"].(string)
	label := where
	if name != "" {
		label = fmt.Sprintf("function/%s (%s)", name, where)
	}
	// The server's own fields, which 'functions get/list -o json' print:
	// dropped rather than refused, so that output applies as is. Unlike
	// a pipe's uuid, neither could mean anything to keep.
	for _, k := range serverFields[functionType] {
		delete(m, k)
	}
	var problems []string
	for _, u := range takeUnknownFields(m, functionType, "") {
		problems = append(problems, label+": "+u)
	}
	j, err := json.Marshal(m)
	if err != nil {
		return nil, []string{label + ": " + err.Error()}
	}
	f := pipe.Function{Name: name}
	if err := json.Unmarshal(j, &f); err != nil {
		return []declaredFunction{{fn: f, where: where}}, append(problems, label+": "+typeErrorMessage(err))
	}
	if h := f.Handler; h != nil && h.Path != "" && !filepath.IsAbs(h.Path) {
		if dir == "" {
			problems = append(problems, fmt.Sprintf("%s: handler.path: %q is relative, and the directory to resolve it against cannot be found: use an absolute path", label, h.Path))
		} else {
			// The server runs the handler, where a path relative to
			// wherever apply ran means nothing.
			h.Path = filepath.Join(dir, h.Path)
		}
	}
	var ve *pipe.ValidationError
	if err := f.Validate(); errors.As(err, &ve) {
		for _, fe := range ve.Fields {
			problems = append(problems, label+": "+fe.Error())
		}
	}
	return []declaredFunction{{fn: f, where: where}}, problems
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
			reflect.String: "a string", reflect.Bool: "true or false", reflect.Slice: "a list", reflect.Struct: "a mapping",
			reflect.Map: "a mapping"}[te.Type.Kind()]
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
	root := path == ""
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
			if root && slices.Contains(serverFields[t], name) {
				continue // a field of the type, but the server's: not offered
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
				if root && t == specType {
					switch {
					case k == "pipe" || strings.EqualFold(k, "pipes"):
						hint = ` (a list of pipes goes under "pipes:")`
					case k == "function" || strings.EqualFold(k, "functions"):
						hint = ` (a list of functions goes under "functions:")`
					}
				}
				what := path
				if root {
					what = map[reflect.Type]string{specType: "a pipe", functionType: "a function"}[t]
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

// serverFields are the fields of a declared type that the server sets, so
// unknown-field messages do not offer them: a pipe's uuid, which a file
// may not give, and a function's, which apply drops.
var serverFields = map[reflect.Type][]string{
	specType:     {"uuid"},
	functionType: {"lastModified", "status"},
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// step is one change apply makes (or, for unchanged, does not make).
type step struct {
	kind    string // kindPipe or kindFunction
	name    string
	action  string
	changes []change
	spec    pipe.Spec     // what to create or update a pipe to
	rev     int64         // the revision a pipe's update is based on
	fn      pipe.Function // what to create or update a function to
}

func (s step) result() applyResult {
	r := applyResult{Action: s.action, Changes: s.changes}
	if s.kind == kindFunction {
		r.Function = s.name
	} else {
		r.Pipe = s.name
	}
	return r
}

func (s step) run(cmd *cobra.Command, svc applyService) error {
	ctx := cmd.Context()
	if s.kind == kindFunction {
		if s.action == actionCreated || s.action == actionUpdated {
			// Functions have no revision to make this conditional on: a
			// change made meanwhile is replaced, as by 'functions set'.
			_, err := svc.PutFunction(ctx, s.fn)
			return err
		}
		return nil
	}
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

// planFunctions compares the file's functions with the server's, on url
// and handler only (name is the key; lastModified and status are the
// server's), with the handler's defaults filled in so that leaving a
// field out and giving its default compare equal. pipes are the server's,
// for the one change it refuses: a function's kind while pipes target it.
func planFunctions(fns []declaredFunction, current []pipe.Function, pipes []pipe.Pipe) ([]step, []string) {
	byName := make(map[string]pipe.Function, len(current))
	for _, f := range current {
		byName[f.Name] = f
	}
	var steps []step
	var problems []string
	for _, d := range fns {
		name := d.fn.Name
		cur, exists := byName[name]
		if !exists {
			steps = append(steps, step{kind: kindFunction, name: name, action: actionCreated, fn: d.fn})
			continue
		}
		if cur.Kind() != d.fn.Kind() {
			// Checked here, as the server would refuse it, so that the
			// file changes nothing rather than fail halfway.
			var users []string
			for _, p := range pipes {
				if p.Target.FunctionName() == name {
					users = append(users, p.Name)
				}
			}
			if len(users) > 0 {
				field := map[string]string{pipe.FunctionURL: "url", pipe.FunctionHosted: "handler"}[d.fn.Kind()]
				problems = append(problems, fmt.Sprintf("function/%s: %s: would turn a %s function into a %s one, which the server refuses while pipes target it (%s): declare it under another name and point the pipes at that, or delete the pipes first",
					name, field, cur.Kind(), d.fn.Kind(), strings.Join(users, ", ")))
				continue
			}
		}
		cs := diffLeaves(functionLeaves(cur), functionLeaves(d.fn))
		if len(cs) == 0 {
			steps = append(steps, step{kind: kindFunction, name: name, action: actionUnchanged})
			continue
		}
		steps = append(steps, step{kind: kindFunction, name: name, action: actionUpdated, changes: cs, fn: d.fn})
	}
	return steps, problems
}

// functionLeaves is what of f apply compares, by the paths of the file's
// fields. It goes through the JSON form, as flattenSpec does, so that a
// field added to pipe.Handler is compared without anyone remembering to
// add it here.
func functionLeaves(f pipe.Function) []leaf {
	if f.Handler != nil {
		h := f.Handler.Normalized()
		f.Handler = &h
	}
	return flattenJSON("function", struct {
		URL     string        `json:"url,omitempty"`
		Handler *pipe.Handler `json:"handler,omitempty"`
	}{f.URL, f.Handler})
}

// diffLeaves lists the paths whose values differ from a to b, in b's order
// and then those only a has, as specDiff does for pipes.
func diffLeaves(a, b []leaf) []change {
	old := make(map[string]string, len(a))
	for _, l := range a {
		old[l.path] = l.value
	}
	var cs []change
	seen := make(map[string]bool, len(b))
	for _, l := range b {
		seen[l.path] = true
		if v, ok := old[l.path]; !ok || v != l.value {
			if !ok {
				v = "<none>"
			}
			cs = append(cs, change{Field: l.path, From: v, To: l.value})
		}
	}
	for _, l := range a {
		if !seen[l.path] {
			cs = append(cs, change{Field: l.path, From: l.value, To: "<none>"})
		}
	}
	return cs
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
			steps = append(steps, step{kind: kindPipe, name: name, action: actionCreated, spec: d.spec})
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
			steps = append(steps, step{kind: kindPipe, name: name, action: actionUnchanged})
			continue
		}
		steps = append(steps, step{kind: kindPipe, name: name, action: actionUpdated, changes: cs, spec: want, rev: cur.Revision})
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
			steps = append(steps, step{kind: kindPipe, name: n, action: actionDeleted})
		}
	}
	return steps, problems
}
