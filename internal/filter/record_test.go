package filter

import (
	"encoding/base64"
	"testing"
)

func rec() *Record {
	return &Record{
		Topic:         "orders",
		Partition:     3,
		Offset:        15,
		Timestamp:     1545084650987,
		TimestampType: "CREATE_TIME",
		Key:           []byte(`{"tenant":"acme","id":7}`),
		Value:         []byte(`{"device_ID":"AB1234","status":"active","price":12.5,"tags":["a","b"],"meta":{"region":"us-east-1"}}`),
		Headers: []Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "trace", Value: []byte("t-1")},
			{Key: "trace", Value: []byte("t-2")},
			{Key: "bin", Value: []byte{0xff, 0x00, 0x01}},
			{Key: "nil", Value: nil},
		},
	}
}

func TestRecord(t *testing.T) {
	for _, tc := range []struct {
		pattern string
		want    bool
		edit    func(*Record)
	}{
		// value as JSON
		{pattern: `{"value":{"device_ID":[{"prefix":"AB"}]}}`, want: true},
		{pattern: `{"value":{"device_ID":[{"prefix":"CD"}]}}`, want: false},
		{pattern: `{"value":{"price":[{"numeric":[">",10,"<=",20]}],"status":["active"]}}`, want: true},
		{pattern: `{"value":{"tags":["b"]}}`, want: true},
		{pattern: `{"value":{"meta":{"region":[{"prefix":"us-"}]}}}`, want: true},
		{pattern: `{"value":{"missing":[{"exists":false}]}}`, want: true},
		{pattern: `{"value":{"status":[{"exists":false}]}}`, want: false},
		// key as JSON
		{pattern: `{"key":{"tenant":["acme"],"id":[7]}}`, want: true},
		{pattern: `{"key":{"tenant":["other"]}}`, want: false},
		// metadata
		{pattern: `{"topic":["orders"],"partition":[3]}`, want: true},
		{pattern: `{"partition":[{"numeric":[">=",0,"<",3]}]}`, want: false},
		{pattern: `{"offset":[{"numeric":[">",10]}],"timestamp":[{"numeric":[">",1500000000000]}]}`, want: true},
		{pattern: `{"timestampType":["LOG_APPEND_TIME"]}`, want: false},
		{pattern: `{"topic":[{"wildcard":"ord*"}]}`, want: true},
		{pattern: `{"partition":["3"]}`, want: false}, // a number, not a string
		// headers
		{pattern: `{"headers":{"content-type":[{"prefix":"application/"}]}}`, want: true},
		{pattern: `{"headers":{"trace":["t-2"]}}`, want: true}, // any of the duplicates
		{pattern: `{"headers":{"trace":[{"anything-but":"t-1"}]}}`, want: true},
		{pattern: `{"headers":{"bin":["/wAB"]}}`, want: true}, // base64 of non-UTF-8
		{pattern: `{"headers":{"nil":[null]}}`, want: true},
		{pattern: `{"headers":{"absent":[{"exists":false}]}}`, want: true},
		{pattern: `{"headers":{"absent":[{"exists":true}]}}`, want: false},
		{pattern: `{"headers":[{"exists":true}]}`, want: false}, // an object, not a leaf
		{pattern: `{"unknown":[{"exists":false}]}`, want: true},
		// $or across the record
		{pattern: `{"$or":[{"topic":["x"]},{"value":{"status":["active"]}}]}`, want: true},
		// value not JSON: one string of the raw bytes
		{pattern: `{"value":[{"prefix":"hello"}]}`, want: true, edit: func(r *Record) { r.Value = []byte("hello world") }},
		{pattern: `{"value":{"a":[{"exists":false}]}}`, want: true, edit: func(r *Record) { r.Value = []byte("hello world") }},
		{pattern: `{"value":{"status":["active"]}}`, want: false, edit: func(r *Record) { r.Value = []byte(`{"status":"active"} trailing`) }},
		{pattern: `{"value":[{"suffix":"trailing"}]}`, want: true, edit: func(r *Record) { r.Value = []byte(`{"status":"active"} trailing`) }},
		// a partial scan that recorded a match must be forgotten
		{pattern: `{"value":{"status":["active"]}}`, want: false, edit: func(r *Record) { r.Value = []byte(`{"status":"active",`) }},
		// value a JSON scalar
		{pattern: `{"value":[42]}`, want: true, edit: func(r *Record) { r.Value = []byte(" 42 ") }},
		{pattern: `{"value":["hi"]}`, want: true, edit: func(r *Record) { r.Value = []byte(`"hi"`) }},
		{pattern: `{"value":[true]}`, want: true, edit: func(r *Record) { r.Value = []byte(`true`) }},
		// value not UTF-8: base64
		{pattern: `{"value":["` + base64.StdEncoding.EncodeToString([]byte{0xde, 0xad, 0xbe, 0xef}) + `"]}`, want: true, edit: func(r *Record) { r.Value = []byte{0xde, 0xad, 0xbe, 0xef} }},
		// null and empty
		{pattern: `{"value":[null]}`, want: true, edit: func(r *Record) { r.Value = nil }},
		{pattern: `{"value":[""]}`, want: true, edit: func(r *Record) { r.Value = []byte{} }},
		{pattern: `{"value":[null]}`, want: false, edit: func(r *Record) { r.Value = []byte{} }},
		{pattern: `{"key":[{"exists":true}]}`, want: true, edit: func(r *Record) { r.Key = nil }},
		// key as a plain string
		{pattern: `{"key":["user-42"]}`, want: true, edit: func(r *Record) { r.Key = []byte("user-42") }},
	} {
		r := rec()
		if tc.edit != nil {
			tc.edit(r)
		}
		p, err := Compile(tc.pattern)
		if err != nil {
			t.Fatalf("Compile(%s): %v", tc.pattern, err)
		}
		if got := p.Match(r); got != tc.want {
			t.Errorf("%s on value %q: got %v, want %v", tc.pattern, r.Value, got, tc.want)
		}
	}
	var nilRec *Record
	p, _ := Compile(`{"topic":[{"exists":false}]}`)
	if p.Match(nilRec) {
		t.Error("a nil *Record must not match")
	}
}

// TestRecordEqualsJSONForm checks that a Record matches exactly as the JSON
// object the package documents it to be.
func TestRecordEqualsJSONForm(t *testing.T) {
	r := &Record{
		Topic: "t", Partition: 1, Offset: 2, Timestamp: 3, TimestampType: "CREATE_TIME",
		Key: []byte(`"k"`), Value: []byte(`{"a":[1,2],"b":{"c":"d"}}`),
		Headers: []Header{{Key: "h", Value: []byte("v")}},
	}
	form := JSON(`{"topic":"t","partition":1,"offset":2,"timestamp":3,"timestampType":"CREATE_TIME","key":"k","value":{"a":[1,2],"b":{"c":"d"}},"headers":{"h":"v"}}`)
	for _, pat := range []string{
		`{"topic":["t"],"partition":[1],"offset":[2],"timestamp":[3]}`,
		`{"key":["k"],"value":{"a":[2],"b":{"c":["d"]}}}`,
		`{"headers":{"h":["v"]}}`,
		`{"value":{"a":[{"numeric":[">",1.5]}]}}`,
		`{"value":{"b":[{"exists":true}]}}`,
		`{"value":{"b":{"c":[{"anything-but":"d"}]}}}`,
		`{"timestampType":[{"equals-ignore-case":"create_time"}]}`,
	} {
		p, err := Compile(pat)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := p.Match(r), p.Match(form); a != b {
			t.Errorf("%s: Record %v, JSON form %v", pat, a, b)
		}
	}
}
