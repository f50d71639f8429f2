package transform

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var vars = Vars{
	PipeName:      "example",
	PipeARN:       "arn:aws:pipes:us-east-1:123456789012:pipe/example",
	SourceARN:     "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abc-1",
	TargetARN:     "arn:aws:sqs:us-east-1:123456789012:out",
	EnrichmentARN: "",
	IngestionTime: time.Date(2024, 3, 5, 7, 8, 9, 123456789, time.UTC),
}

func render(t *testing.T, tmpl string, event []byte) string {
	t.Helper()
	tp, err := Compile(tmpl)
	if err != nil {
		t.Fatalf("Compile(%q): %v", tmpl, err)
	}
	out, err := tp.Apply(nil, event, vars)
	if err != nil {
		t.Fatalf("Apply(%q): %v", tmpl, err)
	}
	if tp.IsJSON() && !json.Valid(out) {
		t.Fatalf("Apply(%q) = %s: JSON template gave invalid JSON", tmpl, out)
	}
	return string(out)
}

// The SQS message the documentation's samples reference (trimmed).
const sqsEvent = `{
  "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
  "body": {"key": "v", "Records": [0, 1, 2, {"id": "third"}]},
  "attributes": {"SenderId": "AIDAIENQZJOLO23YVJ4VO", "ApproximateReceiveCount": "1"},
  "eventSource": "aws:sqs"
}`

// The EC2 event of the documentation's "Input transform example".
const ec2Event = `{
  "version": "0",
  "id": "7bf73129-1428-4cd3-a780-95db273d1602",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "123456789012",
  "time": "2015-11-11T21:29:54Z",
  "region": "us-east-1",
  "resources": [
    "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"
  ],
  "detail": {
    "instance-id": "i-0123456789",
    "state": "RUNNING"
  }
}`

func compact(s string) string {
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		panic(err)
	}
	return b.String()
}

func TestDocumentedSamples(t *testing.T) {
	ev := []byte(sqsEvent)
	for _, c := range []struct{ name, tmpl, want string }{
		{"static string", `"Hello, sender"`, `"Hello, sender"`},
		{"JSON path", `<$.attributes.SenderId>`, `AIDAIENQZJOLO23YVJ4VO`},
		{"dynamic string", `"Hello, <$.attributes.SenderId>"`, `"Hello, AIDAIENQZJOLO23YVJ4VO"`},
		// The documentation's static and dynamic JSON samples with their
		// trailing and missing commas fixed (see TestDocumentedTypos).
		{"static JSON", "{\n  \"key1\": \"value1\",\n  \"key2\": \"value2\",\n  \"key3\": \"value3\"\n}",
			`{"key1":"value1","key2":"value2","key3":"value3"}`},
		{"dynamic JSON", "{\n  \"key1\": \"value1\",\n  \"key2\": <$.body.key>,\n  \"d\": <aws.pipes.event.ingestion-time>\n}",
			`{"key1":"value1","key2":"v","d":"2024-03-05T07:08:09.123Z"}`},
		{"array index", "{\n  \"key1\": \"value1\",\n  \"key2\": <$.body.Records[3]>,\n  \"d\": <aws.pipes.event.ingestion-time>\n}",
			`{"key1":"value1","key2":{"id":"third"},"d":"2024-03-05T07:08:09.123Z"}`},
		{"free text", `Hello, <$.attributes.SenderId>!`, `Hello, AIDAIENQZJOLO23YVJ4VO!`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := render(t, c.tmpl, ev); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// Two of the documentation's samples are not JSON as printed: a comma
// after the last field, and none after "key1". Compile names the byte.
func TestDocumentedTypos(t *testing.T) {
	for _, c := range []struct {
		tmpl string
		at   string // the text at the reported offset
		why  string
	}{
		{"{\n  \"key1\": \"value1\",\n  \"key2\": \"value2\",\n  \"key3\": \"value3\",\n}", "}", "trailing comma"},
		{"{\n  \"key1\": \"value1\"\n  \"key2\": <$.body.key>,\n  \"d\": <aws.pipes.event.ingestion-time>\n}", `"key2"`, "missing comma"},
	} {
		_, err := Compile(c.tmpl)
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Compile(%q) = %v, want *Error", c.tmpl, err)
		}
		if !strings.HasPrefix(c.tmpl[e.Offset:], c.at) || !strings.Contains(e.Reason, c.why) {
			t.Errorf("Compile(%q): %v; want offset at %q and %q", c.tmpl, err, c.at, c.why)
		}
	}
}

func TestDocumentedTransformExample(t *testing.T) {
	tmpl := `{
  "instance" : <$.detail.instance-id>,
  "state": <$.detail.state>,
  "pipeArn" : <aws.pipes.pipe-arn>,
  "pipeName" : <aws.pipes.pipe-name>,
  "originalEvent" : <aws.pipes.event.json>
}`
	// The EC2 event has no Kafka value, so <aws.pipes.event.json> would be
	// missing; wrap it as a record whose value is the EC2 event instead.
	got := render(t, tmpl, []byte(ec2Event))
	want := `{"instance":"i-0123456789","state":"RUNNING","pipeArn":"arn:aws:pipes:us-east-1:123456789012:pipe/example","pipeName":"example","originalEvent":null}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}

	rec := RecordEvent(nil, Record{EventSource: "aws:kafka", EventSourceARN: vars.SourceARN, Topic: "ec2", Value: []byte(ec2Event)})
	tmpl = strings.ReplaceAll(tmpl, "$.detail", "$.value.detail")
	got = render(t, tmpl, rec)
	var out struct {
		Instance, State, PipeArn, PipeName string
		OriginalEvent                      struct {
			Value json.RawMessage
		}
	}
	if err := json.Unmarshal([]byte(got), &out); err != nil {
		t.Fatal(err)
	}
	if out.Instance != "i-0123456789" || out.State != "RUNNING" || out.PipeArn != vars.PipeARN || out.PipeName != "example" {
		t.Errorf("got %s", got)
	}
	if string(out.OriginalEvent.Value) != compact(ec2Event) {
		t.Errorf("originalEvent.value = %s, want the EC2 event", out.OriginalEvent.Value)
	}
}

func orderRecord(value string) []byte {
	return RecordEvent(nil, Record{
		EventSource:      "SelfManagedKafka",
		BootstrapServers: []string{"b-1.example.com:9092", "b-2.example.com:9092"},
		Topic:            "orders",
		Partition:        2,
		Offset:           15,
		Timestamp:        1545084650987,
		Key:              []byte("order-1"),
		Value:            []byte(value),
		Headers:          []Header{{Key: "h", Value: []byte("hé")}, {Key: "trace", Value: []byte{1, 255}}},
	})
}

const orderJSON = `{"orderId": "o-1", "amount": 12.5, "paid": true, "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 3}], "note": "say \"hi\"\n"}`

func TestImplicitValueParsing(t *testing.T) {
	ev := orderRecord(orderJSON)
	for _, c := range []struct{ name, tmpl, want string }{
		{"field", `{"id": <$.value.orderId>, "amount": <$.value.amount>, "paid": <$.value.paid>}`,
			`{"id":"o-1","amount":12.5,"paid":true}`},
		{"wrap the body", `{"data": <$.value>}`, `{"data":` + compact(orderJSON) + `}`},
		{"lone value", `<$.value>`, compact(orderJSON)},
		{"record fields", `{"k": "<$.eventSourceKey>", "p": <$.partition>, "o": <$.offset>, "key": <$.key>}`,
			`{"k":"orders-2","p":2,"o":15,"key":"b3JkZXItMQ=="}`},
		{"dynamic string", `"order <$.value.orderId> of <$.value.amount> (<$.value.paid>)"`, `"order o-1 of 12.5 (true)"`},
		{"escaped in string", `{"n": "<$.value.note>"}`, `{"n":"say \"hi\"\n"}`},
		{"object in string", `{"s": "items=<$.value.items[0]>"}`, `{"s":"items={\"sku\":\"a\",\"qty\":1}"}`},
		{"text unescapes", `note: <$.value.note>`, "note: say \"hi\"\n"},
		{"reserved", `{"n": <aws.pipes.pipe-name>, "s": "<aws.pipes.source-arn>", "t": <aws.pipes.target-arn>, "e": <aws.pipes.enrichment-arn>}`,
			`{"n":"example","s":"` + vars.SourceARN + `","t":"` + vars.TargetARN + `","e":""}`},
		{"reserved text", `<aws.pipes.pipe-name> at <aws.pipes.event.ingestion-time>`, `example at 2024-03-05T07:08:09.123Z`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := render(t, c.tmpl, ev); got != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestValueNotJSON(t *testing.T) {
	ev := orderRecord("Hello, this is a test.")
	if got := render(t, `<$.value>`, ev); got != "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==" {
		t.Errorf("lone value = %s", got)
	}
	if got := render(t, `{"v": <$.value>, "id": <$.value.orderId>}`, ev); got != `{"v":"SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==","id":null}` {
		t.Errorf("got %s", got)
	}
	if got := render(t, `{"e": <aws.pipes.event.json>}`, ev); got != `{"e":null}` {
		t.Errorf("event.json of a binary record = %s, want null", got)
	}
	// A bare JSON string or null stays base64 (see RecordEvent).
	for _, v := range []string{`"quoted"`, `null`, ``, `{"a":`, "\xff"} {
		var ev struct{ Value any }
		if err := json.Unmarshal(orderRecord(v), &ev); err != nil {
			t.Fatal(err)
		}
		if _, ok := ev.Value.(string); !ok {
			t.Errorf("value %q: got %T, want base64 string", v, ev.Value)
		}
	}
	// Numbers and booleans are JSON.
	if got := render(t, `{"v": <$.value>}`, orderRecord(" 42\n")); got != `{"v":42}` {
		t.Errorf("number value = %s", got)
	}
}

func TestEventVariables(t *testing.T) {
	ev := orderRecord(orderJSON)
	var rec map[string]any
	if err := json.Unmarshal(ev, &rec); err != nil {
		t.Fatal(err)
	}

	// <aws.pipes.event> is the record as delivered: value (and key) base64.
	got := render(t, `{"e": <aws.pipes.event>}`, ev)
	var out struct{ E map[string]any }
	if err := json.Unmarshal([]byte(got), &out); err != nil {
		t.Fatal(err)
	}
	if out.E["value"] != "eyJvcmRlcklkIjogIm8tMSIsICJhbW91bnQiOiAxMi41LCAicGFpZCI6IHRydWUsICJpdGVtcyI6IFt7InNrdSI6ICJhIiwgInF0eSI6IDF9LCB7InNrdSI6ICJiIiwgInF0eSI6IDN9XSwgIm5vdGUiOiAic2F5IFwiaGlcIlxuIn0=" {
		t.Errorf("event.value = %v, want base64 of the original bytes", out.E["value"])
	}
	for k, v := range rec {
		if k != "value" && !jsonEqual(out.E[k], v) {
			t.Errorf("event.%s = %v, want %v", k, out.E[k], v)
		}
	}

	// <aws.pipes.event.json> is the record with the value decoded.
	got = render(t, `{"e": <aws.pipes.event.json>}`, ev)
	var out2 struct{ E map[string]any }
	if err := json.Unmarshal([]byte(got), &out2); err != nil {
		t.Fatal(err)
	}
	if !jsonEqual(out2.E, rec) {
		t.Errorf("event.json = %v\nwant %v", out2.E, rec)
	}

	// In a string, the event is escaped JSON text.
	got = render(t, `{"s": "<aws.pipes.event>"}`, ev)
	var out3 struct{ S string }
	if err := json.Unmarshal([]byte(got), &out3); err != nil {
		t.Fatal(err)
	}
	var inner map[string]any
	if err := json.Unmarshal([]byte(out3.S), &inner); err != nil || !jsonEqual(inner, out.E) {
		t.Errorf("event in a string = %q (%v)", out3.S, err)
	}

	// A tombstone's value is null in both.
	tomb := RecordEvent(nil, Record{EventSource: "aws:kafka", EventSourceARN: "arn", Topic: "t"})
	if got := render(t, `[<aws.pipes.event>, <aws.pipes.event.json>]`, tomb); !strings.Contains(got, `"value":null,"headers":[]},{`) {
		t.Errorf("tombstone = %s", got)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

func TestPathMatchesNothing(t *testing.T) {
	ev := orderRecord(orderJSON)
	for _, c := range []struct{ tmpl, want string }{
		{`{"a": <$.value.nope>}`, `{"a":null}`},
		{`[<$.nope>, <$.value.items[9]>, <$.value.orderId.deeper>, <$.topic[0]>]`, `[null,null,null,null]`},
		{`{"a": "x<$.value.nope>y"}`, `{"a":"xy"}`},
		{`x<$.value.nope>y`, `xy`},
		{`<$.value.nope>`, ``},
		{`{"w": <$.value.items[*].nope>}`, `{"w":[]}`},
		{`{"w": "<$.nope[*]>"}`, `{"w":"[]"}`},
	} {
		if got := render(t, c.tmpl, ev); got != c.want {
			t.Errorf("%s: got %s, want %s", c.tmpl, got, c.want)
		}
	}
	// null that is there is not missing.
	if got := render(t, `{"a": <$.value.x>, "s": "<$.value.x>"}`, orderRecord(`{"x": null}`)); got != `{"a":null,"s":"null"}` {
		t.Errorf("present null = %s", got)
	}
}

func TestArraysAndWildcards(t *testing.T) {
	ev := orderRecord(orderJSON)
	for _, c := range []struct{ tmpl, want string }{
		{`{"i": <$.value.items[1]>}`, `{"i":{"sku":"b","qty":3}}`},
		{`{"q": <$.value.items[1].qty>}`, `{"q":3}`},
		{`{"skus": <$.value.items[*].sku>}`, `{"skus":["a","b"]}`},
		{`{"all": <$.value.items.*.qty>}`, `{"all":[1,3]}`},
		{`{"vals": <$.value.items[0].*>}`, `{"vals":["a",1]}`},
		{`{"h": <$.headers[0].h>, "t": <$.headers[1].trace>}`, `{"h":[104,-61,-87],"t":[1,-1]}`},
		{`{"hs": <$.headers[*].*>}`, `{"hs":[[104,-61,-87],[1,-1]]}`},
		{`{"s": "skus <$.value.items[*].sku>"}`, `{"s":"skus [\"a\",\"b\"]"}`},
		{`skus <$.value.items[*].sku>`, `skus ["a","b"]`},
		{`{"one": <$.value.items[*].sku>}`, `{"one":["a","b"]}`},
		{`{"scalar": <$.topic.*>}`, `{"scalar":[]}`},
	} {
		if got := render(t, c.tmpl, ev); got != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.tmpl, got, c.want)
		}
	}
}

func TestKeysAndEscapes(t *testing.T) {
	ev := []byte(`{"a\u0062": 1, "x": 1, "x": 2, "s": "\ud83d\ude00 \u00e9 \\ \/", "lone": "\ud800"}`)
	for _, c := range []struct{ tmpl, want string }{
		{`{"v": <$.ab>}`, `{"v":1}`},                                // escaped key
		{`{"v": <$.x>}`, `{"v":2}`},                                 // last repeated key wins
		{`<$.s>`, "😀 é \\ /"},                                       // text decodes escapes
		{`<$.lone>`, "\uFFFD"},                                      // a lone surrogate decodes to U+FFFD
		{`{"<$.x>": "\u003c<$.x>\u003e"}`, `{"2":"\u003c2\u003e"}`}, // variables in keys; literal < >
		{`{"v": "<aws.pipes.pipe-name>"}`, `{"v":"a\"b\\\n"}`},
	} {
		tp, err := Compile(c.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", c.tmpl, err)
		}
		v := vars
		v.PipeName = "a\"b\\\n"
		out, err := tp.Apply(nil, ev, v)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != c.want {
			t.Errorf("%s: got %s, want %s", c.tmpl, out, c.want)
		}
	}
}

func TestRootPath(t *testing.T) {
	ev := orderRecord(`{"a": 1}`)
	if got := render(t, `{"r": <$>}`, ev); got != `{"r":`+compact(string(ev))+`}` {
		t.Errorf("<$> = %s", got)
	}
	if got := render(t, `<$.value>`, []byte(` [1, {"b": 2}] `)); got != `` {
		t.Errorf("a path into an array event = %q", got)
	}
	if got := render(t, `<$[1].b>`, []byte(` [1, {"b": 2}] `)); got != `2` {
		t.Errorf("<$[1].b> = %q", got)
	}
}

func TestErrorText(t *testing.T) {
	_, err := Compile(`{"a": <$.x}`)
	if err == nil || err.Error() != "input template: byte 6: '<' not closed: end the variable with '>' (a template has no other use for '<')" {
		t.Errorf("Error() = %v", err)
	}
}

func TestIsJSON(t *testing.T) {
	for tmpl, want := range map[string]bool{
		`{"a": 1}`:           true,
		` [<$.value>]`:       true,
		`"hi <$.topic>"`:     true,
		`"a" and "b"`:        false,
		`<$.value>`:          false,
		`plain text`:         false,
		``:                   false,
		`42`:                 false,
		"\n{\"a\": \"b\"}\n": true,
	} {
		tp, err := Compile(tmpl)
		if err != nil {
			t.Fatalf("%q: %v", tmpl, err)
		}
		if tp.IsJSON() != want {
			t.Errorf("IsJSON(%q) = %v, want %v", tmpl, tp.IsJSON(), want)
		}
		if tp.String() != tmpl {
			t.Errorf("String() = %q", tp.String())
		}
	}
}

func TestApplyAppendsAndRejectsBadEvents(t *testing.T) {
	tp, err := Compile(`{"t": <$.topic>}`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := tp.Apply([]byte("prefix,"), []byte(`{"topic":"x"}`), vars)
	if err != nil || string(out) != `prefix,{"t":"x"}` {
		t.Errorf("Apply = %q, %v", out, err)
	}
	for _, bad := range []string{``, `{`, `{"topic":"x"} extra`, "{\"topic\":\"\xff\"}", `{"a":01}`} {
		out, err := tp.Apply([]byte("keep"), []byte(bad), vars)
		var e *EventError
		if !errors.As(err, &e) || string(out) != "keep" {
			t.Errorf("Apply(%q) = %q, %v; want EventError and dst unchanged", bad, out, err)
		}
	}
}

func TestInvalidTemplates(t *testing.T) {
	for _, c := range []struct {
		tmpl string
		off  int
		why  string
	}{
		{`Hello <$.value`, 6, "not closed"},
		{`<$.a <$.b>`, 0, "before the next '<'"},
		{`a > b`, 2, "without a '<'"},
		{`{"a": "x>"}`, 8, "without a '<'"},
		{`<>`, 0, "empty variable"},
		{`<value>`, 1, "no named variables"},
		{`<aws.pipes.pipe>`, 1, "unknown reserved variable"},
		{`<aws.events.rule-name>`, 1, "EventBridge rules"},
		{`<$.a..b>`, 4, "recursive descent"},
		{`<$.>`, 3, "field name"},
		{`<$.a b>`, 4, "unexpected ' '"},
		{`<$.a[x]>`, 5, "array index"},
		{`<$.a[1>`, 4, "'[' not closed"},
		{`<$.a[-1]>`, 5, "negative"},
		{`<$.a['b']>`, 5, "bracketed names"},
		{`<$.a[?(@.x)]>`, 5, "filter"},
		{`<$.a[0:2]>`, 6, "slices"},
		{`<$.a[01]>`, 5, "leading zeros"},
		{`<$.a.b$>`, 6, "unexpected '$'"},
		{`<$.é>`, 3, "field name"},
		{`$.value`, -1, ""}, // text without a variable is fine
		{`<aws.pipes.event.json>`, 0, "value of a JSON field"},
		{`{"e": "<aws.pipes.event.json>"}`, 7, "value of a JSON field"},
		{`{"a": 1,}`, 8, "trailing comma"},
		{`[1,]`, 3, "trailing comma"},
		{`{"a": 1 "b": 2}`, 8, "missing comma"},
		{`{a: 1}`, 1, "double quotes"},
		{`{<$.k>: 1}`, 1, "cannot be a key"},
		{`{"a" 1}`, 5, "':'"},
		{`{"a": 'x'}`, 6, "single quotes"},
		{`{"a": tru}`, 6, "invalid literal"},
		{`{"a": 01}`, 6, "leading zeros"},
		{`{"a": <$.x> <$.y>}`, 12, "missing comma"},
		{`{"a": 1} x`, 9, "after the end"},
		{`{"a": "x}`, 6, "not closed"},
		{`{"a": "\q"}`, 7, "invalid escape"},
		{"{\"a\": \"\t\"}", 7, "control character"},
		{`{"a": `, 6, "end of template"},
		{`[`, 1, "end of template"},
		{"ok \xff", 3, "UTF-8"},
		{`{"a": hello}`, 6, "expected a JSON value"},
	} {
		_, err := Compile(c.tmpl)
		if c.off < 0 {
			if err != nil {
				t.Errorf("Compile(%q) = %v, want ok", c.tmpl, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Compile(%q) = %v, want *Error", c.tmpl, err)
			continue
		}
		if e.Offset != c.off || !strings.Contains(e.Reason, c.why) {
			t.Errorf("Compile(%q) = offset %d %q; want offset %d containing %q", c.tmpl, e.Offset, e.Reason, c.off, c.why)
		}
		if !strings.Contains(e.Error(), "byte ") {
			t.Errorf("Error() = %q lacks the position", e.Error())
		}
	}
}

func TestTemplateLength(t *testing.T) {
	ok := strings.Repeat("é", MaxTemplateLen) // 8192 characters, 16384 bytes
	if _, err := Compile(ok); err != nil {
		t.Errorf("%d characters: %v", MaxTemplateLen, err)
	}
	if _, err := Compile(ok + "x"); err == nil || !strings.Contains(err.Error(), "at most 8192") {
		t.Errorf("%d characters: %v", MaxTemplateLen+1, err)
	}
}

// RecordEvent writes what the event package's pipes format writes for a
// record whose key and value are not JSON: its golden files, field for
// field.
func TestRecordEventMatchesPipesFormat(t *testing.T) {
	for _, c := range []struct {
		file string
		recs []Record
	}{
		{"pipes_self_managed.json", []Record{{
			EventSource: "SelfManagedKafka", BootstrapServers: []string{"b-1.example.com:9092", "b-2.example.com:9092"},
			Topic: "mytopic", Offset: 15, Timestamp: 1545084650987, TimestampType: "CREATE_TIME",
			Key: []byte("order-1"), Value: []byte("Hello, this is a test."),
			Headers: []Header{{Key: "headerKey", Value: []byte("headerValue")}},
		}, {
			EventSource: "SelfManagedKafka", BootstrapServers: []string{"b-1.example.com:9092", "b-2.example.com:9092"},
			Topic: "mytopic", Offset: 16, Timestamp: 1545084650987,
		}}},
		{"pipes_msk.json", []Record{{
			EventSource: "aws:kafka", EventSourceARN: "arn:aws:kafka:us-east-1:123456789012:cluster/demo/abc-1",
			Topic: "mytopic", Offset: 3, Timestamp: 1545084650987, TimestampType: "LOG_APPEND_TIME",
			Key: []byte("k"), Value: []byte{0xff, 0},
		}}},
	} {
		golden, err := os.ReadFile(filepath.Join("..", "event", "testdata", c.file))
		if err != nil {
			t.Skipf("golden file: %v", err)
		}
		var want []json.RawMessage
		if err := json.Unmarshal(golden, &want); err != nil {
			t.Fatal(err)
		}
		if len(want) != len(c.recs) {
			t.Fatalf("%s: %d records, test has %d", c.file, len(want), len(c.recs))
		}
		for i, r := range c.recs {
			got := RecordEvent(nil, r)
			if w := compact(string(want[i])); string(got) != w {
				t.Errorf("%s[%d]:\ngot  %s\nwant %s", c.file, i, got, w)
			}
		}
	}
}

func TestRecordEventEscapes(t *testing.T) {
	ev := RecordEvent([]byte("x"), Record{
		EventSource: "SelfManagedKafka", BootstrapServers: []string{`a"b`, "c"},
		Topic: "t\"\n", Partition: -1, Key: []byte(`{"id":1}`), Value: []byte("[1, 2]\n"),
		Headers: []Header{{Key: "k\x00", Value: nil}},
	})
	if ev[0] != 'x' || !json.Valid(ev[1:]) {
		t.Fatalf("RecordEvent = %s", ev)
	}
	var r map[string]any
	if err := json.Unmarshal(ev[1:], &r); err != nil {
		t.Fatal(err)
	}
	if r["bootstrapServers"] != `a"b,c` || r["eventSourceKey"] != "t\"\n--1" || r["topic"] != "t\"\n" {
		t.Errorf("got %v", r)
	}
	if !jsonEqual(r["key"], map[string]any{"id": 1}) || !jsonEqual(r["value"], []any{1, 2}) {
		t.Errorf("key/value not parsed: %v %v", r["key"], r["value"])
	}
}
