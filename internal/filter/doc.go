// Package filter is the event-filtering pattern language of AWS Lambda event
// source mappings (FilterCriteria) and EventBridge Pipes, with a matcher
// written for Kafka records.
//
// # The language
//
// A pattern is a JSON object (at most MaxPatternLen characters) whose shape
// follows the document it matches. Every field named in the pattern must
// match (AND); fields the pattern does not name are ignored. The value of a
// field is either a nested object (a deeper path) or an array of conditions,
// of which at least one must hold (OR). A condition is:
//
//	"x", 100, true, false, null     exact value; [""] is the empty string
//	{"equals-ignore-case": "x"}
//	{"prefix": "us-"}               {"prefix": {"equals-ignore-case": "us-"}}
//	{"suffix": ".png"}              {"suffix": {"equals-ignore-case": ".PNG"}}
//	{"wildcard": "dir/*.png"}       '*' is any run of characters, `\*` a star
//	{"anything-but": "a"}           also 100, ["a","b"], [1,2]
//	{"anything-but": {"prefix": "x"}}  likewise suffix, wildcard, and
//	                                   equals-ignore-case (a string or a list)
//	{"numeric": ["=", 100]}         or one or two bounds: [">", 0, "<=", 5]
//	{"exists": true}                {"exists": false}
//
// and "$or": [{...}, {...}] at any object level holds when one of its
// objects does. If a field of the document is an array, a condition holds
// when it holds for any element (arrays are "crushed": an array of objects
// behaves as if each object's fields were fields of the parent).
//
// # Semantics, and where this package had to choose
//
// The documentation (EventBridge "Event pattern syntax", "Content filtering",
// "Comparison operators"; Lambda "Event filtering") fixes most of it:
//
//   - Strings match exactly, byte for byte after JSON unescaping, with no
//     case folding or normalisation.
//   - Exact numbers match by their string form: [300] matches 300 but not
//     300.0 or 3.0e2 ("For numbers, EventBridge uses string representation").
//     Only the numeric operator compares values as numbers.
//   - Types never mix: the pattern "100" does not match the number 100, [true]
//     does not match "true", [null] does not match "" nor a missing field.
//   - prefix, suffix, equals-ignore-case and wildcard match strings only.
//     numeric matches JSON numbers only.
//   - Wildcard: consecutive stars are refused; `\*` is a literal star and `\\`
//     a literal backslash; a backslash before anything else is refused (as in
//     aws/event-ruler, the engine behind EventBridge).
//   - exists works on leaves only: a field whose value is an object or an
//     empty array does not "exist" for {"exists": true}, and {"exists": false}
//     holds for it.
//
// Choices made here where the documentation is silent or loose:
//
//   - anything-but is the negation of exact matching, so it follows the same
//     string-form rule: {"anything-but": 100} matches 100.0, and any value of
//     another type (a string, a boolean, null). Its prefix, suffix, wildcard
//     and equals-ignore-case forms match strings only. A missing field never
//     matches anything-but. A list must be all strings or all numbers.
//   - numeric compares IEEE-754 float64 values parsed with correct rounding,
//     so 3.0 = 3 = 3e0 and any two numbers that differ in their first 15
//     significant digits compare as different. (EventBridge documents 15
//     digits, and a range of ±5.0e9, which this package does not enforce;
//     Record offsets and timestamps beyond 2^53 lose precision.) A range
//     names its lower bound first: [">", 0, "<=", 5]; an empty range is
//     refused.
//   - Conditions on different fields are checked independently, even when
//     the fields sit in different elements of the same array (EventBridge's
//     newer "array-consistent" matching would refuse such a match).
//   - A duplicate field in one object is refused: the documentation calls
//     such patterns invalid, although EventBridge keeps the last one.
//   - A key with a dot is a single key: {"a.b": ["x"]} does not match
//     {"a": {"b": "x"}} (EventBridge joins paths with dots and says not to
//     rely on it).
//   - An empty condition list [] and an empty object {} are refused: they
//     could never match, or would match everything, which is never what was
//     meant. "$or" needs at least two objects.
//   - Characters are counted as Unicode code points for the length limit.
//   - A document whose JSON is invalid (including invalid UTF-8) matches
//     nothing; a document with duplicate keys has all its values considered.
//
// # Kafka records
//
// A Record is matched as if it were the JSON object
//
//	{"topic": "t", "partition": 0, "offset": 15, "timestamp": 1545084650987,
//	 "timestampType": "CREATE_TIME", "key": ..., "value": ...,
//	 "headers": {"h1": "v1", ...}}
//
// so a pattern filters on the payload with {"value": {"device": ["AB"]}}
// (the form Lambda documents; Lambda itself filters Kafka on value only).
// key and value are parsed as JSON when the whole of them is valid JSON
// (object, array, number, string, boolean or null); otherwise they are a
// string holding the raw bytes, or, when the bytes are not valid UTF-8, their
// standard base64 encoding (the form Lambda delivers them in). A nil key or
// value (a Kafka null, such as a tombstone) is JSON null; an empty non-nil
// one is the empty string. Header values are never parsed as JSON: they are
// strings by the same rule (raw, or base64 when not UTF-8; nil is null); when several headers share a key, a condition on that key
// holds if it holds for any of them.
//
// # Speed
//
// A Set merges the paths of all its patterns into one trie, then walks the
// document once with a small validating scanner: values under paths no
// pattern names are skipped without being decoded, and no map or interface
// tree is built. Each leaf condition sets a bit; the patterns' AND/OR trees
// are evaluated over those bits at the end. A Set is immutable and safe for
// concurrent use.
package filter
