// Package transform is the input transformer of EventBridge Pipes: the
// InputTemplate a pipe applies to each record before the target, here
// for records of a Kafka source.
//
// # The syntax
//
// A template is text with variables in angle brackets. A variable is a
// JSON path into the record's event or a reserved variable:
//
//	Hello, sender                          static text
//	<$.value>                              a JSON path
//	"Hello, <$.value.name>"                a dynamic string
//	{"id": <$.value.orderId>,              JSON with inline paths
//	 "topic": "<$.topic>",
//	 "pipe": <aws.pipes.pipe-name>,
//	 "record": <aws.pipes.event.json>}
//
// JSON paths are the subset Pipes documents: "$", then steps .name,
// [index] and the wildcards .* and [*]; names are ASCII letters, digits,
// '-', '_' and '/'; "$" alone is the whole record. The reserved variables are <aws.pipes.pipe-arn>,
// <aws.pipes.pipe-name>, <aws.pipes.source-arn>, <aws.pipes.enrichment-arn>,
// <aws.pipes.target-arn>, <aws.pipes.event.ingestion-time> (ISO 8601),
// <aws.pipes.event> (the record as the source delivered it, key and value
// base64) and <aws.pipes.event.json> (the record with its JSON value
// decoded; only the value of a JSON field, and missing when the value is
// not JSON).
//
// The event a template reads is the Pipes Kafka record object
// (RecordEvent builds it): eventSource, eventSourceArn or
// bootstrapServers, eventSourceKey, topic, partition, offset, timestamp,
// timestampType, key, value and headers. By the documented implicit body
// data parsing, a key or value that is JSON appears as that JSON, so
// <$.value.orderId> reads a field of a JSON record; any other value is
// its base64 string.
//
// # How a value is written
//
// Where a variable stands decides how it is written, as the
// documentation's examples show:
//
//   - In a JSON template, where a JSON value goes: the value as JSON,
//     minified; a string with its quotes ("instance": <$.detail.id> gives
//     "instance": "i-01"), an object as an object.
//   - Inside a quoted string of a JSON template (a dynamic string): a
//     string's content, any other value's JSON text, escaped so the
//     output stays valid JSON.
//   - In a text template: a string's text, any other value's JSON.
//
// A template whose first non-blank character is '{' or '[' is a JSON
// template and must be valid JSON once its variables are filled in; so
// is one that is exactly one quoted string. Compile refuses, with the
// byte offset and the fix: invalid JSON in a JSON template (including the
// trailing and missing commas of two of the documentation's own
// examples), a '<' without its '>' or a '>' without its '<', a path
// outside the documented subset, an unknown aws.pipes.* variable, and
// <aws.pipes.event.json> anywhere but as a JSON value. A '<' always
// opens a variable; inside a JSON string write \u003c for a literal one.
//
// # Where this package had to choose
//
// The documentation does not settle these; each choice is explained
// where it is made:
//
//   - A path that matches nothing writes nothing in text and strings (the
//     rules documentation: the variable "won't appear in the output") and
//     null where a JSON value goes, to keep the JSON valid.
//   - A path with a wildcard writes an array of every match, in document
//     order ([] for none), as JSONPath evaluates an indefinite path.
//   - A JSON template is minified: the rules documentation says the JSON
//     passed to a target is minified.
//   - Dynamic strings are escaped, unlike rules' input transformers,
//     because Pipes promises valid JSON output.
//   - Implicit parsing takes a key or value that is a JSON object, array,
//     number or boolean; a bare JSON string or null stays base64 (see
//     RecordEvent).
//   - A lone <$.value> whose value is a JSON object writes the object.
//     The documentation warns that the service strips the quotes from it
//     ({"key": "value"} becomes "{key: value}") and that targets then
//     fail; this package does not reproduce that defect.
//   - Repeated keys in the event: the last wins, as in JSON.parse.
//
// Apply reads the event once to check it and index its fields, then
// writes into the caller's buffer; it does no I/O and keeps no state, so
// a Template may be shared between goroutines.
package transform
