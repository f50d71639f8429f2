package filter

import (
	"errors"
	"strings"
	"testing"
)

func TestInvalidPatterns(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pattern string
		offset  int
		path    string
		reason  string // a fragment of the reason
	}{
		{"empty", ``, 0, "", "empty"},
		{"not an object", `["a"]`, 0, "", "must be a JSON object"},
		{"bad json", `{"a": ["x",]}`, 11, "a", "unexpected ']'"},
		{"unclosed", `{"a": ["x"]`, 11, "", "expected ',' or '}'"},
		{"unclosed string", `{"a": ["x]}`, 7, "a", "never closed"},
		{"trailing", `{"a": ["x"]} {}`, 13, "", "after the end"},
		{"bad number", `{"a": [01]}`, 7, "a", "invalid number"},
		{"leaf not array", `{"a": "x"}`, 6, "a", `write ["x"]`},
		{"leaf number", `{"v": {"price": 5}}`, 16, "v.price", "write [5]"},
		{"empty leaf", `{"a": []}`, 6, "a", "empty condition list"},
		{"empty object", `{}`, 0, "", "no fields"},
		{"empty nested", `{"a": {}}`, 6, "a", "empty object"},
		{"nested array", `{"a": [["x"]]}`, 7, "a", "cannot be an array"},
		{"unknown op", `{"a": [{"contains": "x"}]}`, 8, "a", `unknown operator "contains"`},
		{"two ops", `{"a": [{"prefix": "x", "suffix": "y"}]}`, 7, "a", "exactly one operator"},
		{"prefix number", `{"a": [{"prefix": 1}]}`, 18, "a", `"prefix" takes a string`},
		{"ignore case number", `{"a": [{"equals-ignore-case": 1}]}`, 30, "a", "takes a string"},
		{"exists string", `{"a": [{"exists": "true"}]}`, 18, "a", "true or false"},
		{"exists not in array", `{"a": {"exists": true}}`, 7, "a.exists", "operators go inside the condition array"},
		{"exists on object", `{"value": {"exists": false}}`, 11, "value.exists", `[{"exists": false}]`},
		{"numeric string operand", `{"a": [{"numeric": [">", "5"]}]}`, 25, "a", `write 100, not "100"`},
		{"numeric bad op", `{"a": [{"numeric": ["!=", 5]}]}`, 20, "a", `unknown comparison "!="`},
		{"numeric order", `{"a": [{"numeric": ["<", 5, ">", 0]}]}`, 20, "a", "lower bound comes first"},
		{"numeric two lows", `{"a": [{"numeric": [">", 5, ">", 0]}]}`, 28, "a", "lower bound"},
		{"numeric equals range", `{"a": [{"numeric": ["=", 5, "<", 9]}]}`, 20, "a", "stands alone"},
		{"numeric empty range", `{"a": [{"numeric": [">", 5, "<", 5]}]}`, 19, "a", "range is empty"},
		{"numeric arity", `{"a": [{"numeric": [">"]}]}`, 19, "a", "takes an operator and a number"},
		{"numeric huge", `{"a": [{"numeric": [">", 1e999]}]}`, 25, "a", "out of range"},
		{"wildcard stars", `{"a": [{"wildcard": "a**b"}]}`, 20, "a", "consecutive '*'"},
		{"wildcard escape", `{"a": [{"wildcard": "a\\b"}]}`, 20, "a", "escapes only '*'"},
		{"anything-but mixed", `{"a": [{"anything-but": ["x", 1]}]}`, 30, "a", "all strings or all numbers"},
		{"anything-but bool", `{"a": [{"anything-but": true}]}`, 24, "a", `"anything-but" takes`},
		{"anything-but empty", `{"a": [{"anything-but": []}]}`, 24, "a", "excludes nothing"},
		{"anything-but numeric", `{"a": [{"anything-but": {"numeric": [">", 1]}}]}`, 25, "a", `cannot wrap "numeric"`},
		{"anything-but prefix number", `{"a": [{"anything-but": {"prefix": 1}}]}`, 35, "a", "takes a string"},
		{"or not array", `{"$or": {"a": ["x"]}}`, 8, "$or", "array of at least two"},
		{"or one", `{"$or": [{"a": ["x"]}]}`, 8, "$or", "at least two"},
		{"or element", `{"$or": [{"a": ["x"]}, "b"]}`, 23, "$or[1]", "must be an object"},
		{"or operator", `{"$or": [{"a": ["x"]}, {"prefix": "b"}]}`, 24, "$or[1]", "is an operator, not a field"},
		{"or nested error", `{"v": {"$or": [{"a": ["x"]}, {"b": "y"}]}}`, 35, "v.b", `write ["y"]`},
		{"duplicate", `{"a": ["x"], "a": ["y"]}`, 13, "a", "appears twice"},
		{"bad escape", `{"a": ["\x"]}`, 8, "a", "invalid escape"},
		{"control char", "{\"a\": [\"\t\"]}", 8, "a", "control character"},
		{"not utf8", "{\"a\": [\"\xff\"]}", 8, "", "not valid UTF-8"},
		{"too long", `{"a": ["` + strings.Repeat("x", MaxPatternLen) + `"]}`, 0, "", "limit is 4096"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Compile(tc.pattern)
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("Compile(%q) = %v, want an *Error", tc.pattern, err)
			}
			if fe.Offset != tc.offset || fe.Path != tc.path || !strings.Contains(fe.Reason, tc.reason) || fe.Index != -1 {
				t.Errorf("Compile(%q):\n got offset %d path %q index %d reason %q\nwant offset %d path %q reason containing %q",
					tc.pattern, fe.Offset, fe.Path, fe.Index, fe.Reason, tc.offset, tc.path, tc.reason)
			}
		})
	}
}

func TestLengthCountsCharacters(t *testing.T) {
	// 4096 characters, but more bytes: accepted.
	pad := strings.Repeat("é", MaxPatternLen-len(`{"a":[""]}`))
	if _, err := Compile(`{"a":["` + pad + `"]}`); err != nil {
		t.Fatalf("a pattern of exactly %d characters: %v", MaxPatternLen, err)
	}
	if _, err := Compile(`{"a":["` + pad + `x"]}`); err == nil {
		t.Fatal("a pattern of 4097 characters was accepted")
	}
}

func TestCompileAllErrors(t *testing.T) {
	_, err := CompileAll([]string{`{"a":["x"]}`, `{"b":[{"numeric":[">","1"]}]}`})
	var fe *Error
	if !errors.As(err, &fe) || fe.Index != 1 || fe.Offset != 22 || fe.Path != "b" {
		t.Fatalf("got %#v", err)
	}
	if got := err.Error(); got != `filter pattern 1, byte 22 (b): ">" needs a JSON number after it, found a string (write 100, not "100")` {
		t.Errorf("message: %s", got)
	}
	six := make([]string, MaxPatterns+1)
	for i := range six {
		six[i] = `{"a":["x"]}`
	}
	if _, err := CompileAll(six); !errors.As(err, &fe) || fe.Index != MaxPatterns || !strings.Contains(fe.Reason, "at most 5") {
		t.Errorf("six patterns: %v", err)
	}
	if _, err := CompileAll(nil); err == nil {
		t.Error("no patterns were accepted")
	}
	_, err = Compile(`{"a":"x"}`)
	if got := err.Error(); got != `filter pattern, byte 5 (a): the value of a field must be an array of conditions or a nested object: write ["x"]` {
		t.Errorf("message: %s", got)
	}
}
