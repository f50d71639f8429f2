package filter

import (
	"testing"
)

// ec2 is the sample event of the EventBridge and event-ruler documentation.
const ec2 = `{
  "version": "0",
  "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "012345679012",
  "time": "2017-10-02T16:24:49Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
  "detail": {
    "c-count": 5,
    "d-count": 3,
    "x-limit": 301.8,
    "source-ip": "10.0.0.33",
    "instance-id": "i-000000aaaaaa00000",
    "state": "running"
  }
}`

type docCase struct {
	name    string
	pattern string
	match   []string
	nomatch []string
}

// docCases are the examples of the EventBridge pages (event patterns,
// content filtering, comparison operators, null values, arrays), the Lambda
// event-filtering page, the Kafka filtering page and the SNS numeric page
// (same engine), each with documents that must and must not match.
var docCases = []docCase{
	{
		name:    "eb/ec2-termination",
		pattern: `{"source":["aws.ec2"],"detail-type":["EC2 Instance State-change Notification"],"detail":{"state":["terminated"]}}`,
		match:   []string{`{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{"instance-id":"i-1","state":"terminated"}}`},
		nomatch: []string{
			ec2, // state is running
			`{"source":"aws.ec2","detail":{"state":"terminated"}}`,                                             // detail-type missing
			`{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","state":"terminated"}`, // wrong nesting
		},
	},
	{
		name:    "eb/multiple-values",
		pattern: `{"source":["aws.ec2","aws.fargate"]}`,
		match:   []string{`{"source":"aws.ec2"}`, `{"source":"aws.fargate"}`},
		nomatch: []string{`{"source":"aws.s3"}`, `{"source":"AWS.EC2"}`, `{}`},
	},
	{
		name:    "ruler/simple",
		pattern: `{"detail-type":["EC2 Instance State-change Notification"],"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],"detail":{"state":["initializing","running"]}}`,
		match:   []string{ec2},
	},
	{
		name:    "eb/array-intersection",
		pattern: `{"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f","arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f"]}`,
		match:   []string{`{"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f","arn:aws:ec2:us-east-1:123456789012:instance/i-xx"]}`},
		nomatch: []string{`{"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-xx"]}`, `{"resources":[]}`},
	},
	{
		name:    "eb/prefix",
		pattern: `{"time":[{"prefix":"2017-10-02"}]}`,
		match:   []string{ec2, `{"time":"2017-10-02"}`},
		nomatch: []string{`{"time":"2017-10-03T18:43:48Z"}`, `{"time":"2017-10-0"}`, `{"time":20171002}`},
	},
	{
		name:    "eb/prefix-ignore-case",
		pattern: `{"detail":{"service":[{"prefix":{"equals-ignore-case":"EventB"}}]}}`,
		match:   []string{`{"detail":{"service":"EventBridge"}}`, `{"detail":{"service":"EVENTB"}}`, `{"detail":{"service":"eventbus"}}`},
		nomatch: []string{`{"detail":{"service":"Event"}}`, `{"detail":{"service":"SNS"}}`},
	},
	{
		name:    "eb/suffix",
		pattern: `{"FileName":[{"suffix":".png"}]}`,
		match:   []string{`{"FileName":"image.png"}`, `{"FileName":".png"}`},
		nomatch: []string{`{"FileName":"image.PNG"}`, `{"FileName":"image.png.jpg"}`},
	},
	{
		name:    "eb/suffix-ignore-case",
		pattern: `{"detail":{"FileName":[{"suffix":{"equals-ignore-case":".png"}}]}}`,
		match:   []string{`{"detail":{"FileName":"a.png"}}`, `{"detail":{"FileName":"a.PNG"}}`, `{"detail":{"FileName":"a.pNg"}}`},
		nomatch: []string{`{"detail":{"FileName":"a.jpg"}}`},
	},
	{
		name:    "eb/equals-ignore-case",
		pattern: `{"Name":[{"equals-ignore-case":"alice"}]}`,
		match:   []string{`{"Name":"Alice"}`, `{"Name":"ALICE"}`, `{"Name":"alice"}`},
		nomatch: []string{`{"Name":"Alice "}`, `{"Name":"Alicia"}`},
	},
	{
		name:    "eb/anything-but-string",
		pattern: `{"detail":{"state":[{"anything-but":"initializing"}]}}`,
		match:   []string{ec2, `{"detail":{"state":"Initializing"}}`},
		nomatch: []string{`{"detail":{"state":"initializing"}}`, `{"detail":{}}`},
	},
	{
		name:    "eb/anything-but-number",
		pattern: `{"detail":{"x-limit":[{"anything-but":123}]}}`,
		match:   []string{ec2, `{"detail":{"x-limit":124}}`},
		nomatch: []string{`{"detail":{"x-limit":123}}`},
	},
	{
		name:    "eb/anything-but-list",
		pattern: `{"detail":{"state":[{"anything-but":["stopped","overloaded"]}]}}`,
		match:   []string{ec2},
		nomatch: []string{`{"detail":{"state":"stopped"}}`, `{"detail":{"state":"overloaded"}}`},
	},
	{
		name:    "sns/anything-but-numbers-array",
		pattern: `{"price":[{"anything-but":[100,500]}]}`,
		match:   []string{`{"price":101}`, `{"price":100.1}`, `{"price":[100,50]}`},
		nomatch: []string{`{"price":100}`, `{"price":[100,500]}`},
	},
	{
		name:    "eb/anything-but-prefix",
		pattern: `{"detail":{"state":[{"anything-but":{"prefix":"init"}}]}}`,
		match:   []string{ec2},
		nomatch: []string{`{"detail":{"state":"initializing"}}`, `{"detail":{"state":5}}`},
	},
	{
		name:    "eb/anything-but-suffix",
		pattern: `{"detail":{"FileName":[{"anything-but":{"suffix":".txt"}}]}}`,
		match:   []string{`{"detail":{"FileName":"a.png"}}`},
		nomatch: []string{`{"detail":{"FileName":"a.txt"}}`},
	},
	{
		name:    "eb/anything-but-ignore-case",
		pattern: `{"detail":{"state":[{"anything-but":{"equals-ignore-case":["Stopped","OverLoaded"]}}]}}`,
		match:   []string{ec2},
		nomatch: []string{`{"detail":{"state":"STOPPED"}}`, `{"detail":{"state":"overloaded"}}`},
	},
	{
		name:    "eb/anything-but-wildcard",
		pattern: `{"detail":{"FilePath":[{"anything-but":{"wildcard":"*/lib/*"}}]}}`,
		match:   []string{`{"detail":{"FilePath":"/usr/bin/x"}}`},
		nomatch: []string{`{"detail":{"FilePath":"/usr/lib/x"}}`},
	},
	{
		name:    "ruler/numeric",
		pattern: `{"detail":{"c-count":[{"numeric":[">",0,"<=",5]}],"d-count":[{"numeric":["<",10]}],"x-limit":[{"numeric":["=",3.018e2]}]}}`,
		match:   []string{ec2},
		nomatch: []string{
			`{"detail":{"c-count":0,"d-count":3,"x-limit":301.8}}`,
			`{"detail":{"c-count":6,"d-count":3,"x-limit":301.8}}`,
			`{"detail":{"c-count":5,"d-count":10,"x-limit":301.8}}`,
			`{"detail":{"c-count":"5","d-count":3,"x-limit":301.8}}`,
		},
	},
	{
		name:    "sns/numeric-equals",
		pattern: `{"price_usd":[{"numeric":["=",301.5]}]}`,
		match:   []string{`{"price_usd":301.5}`, `{"price_usd":3.015e2}`},
		nomatch: []string{`{"price_usd":301.6}`, `{"price_usd":"301.5"}`},
	},
	{
		name:    "eb/exists",
		pattern: `{"detail":{"c-count":[{"exists":true}]}}`,
		match:   []string{ec2, `{"detail":{"c-count":null}}`, `{"detail":{"c-count":[1]}}`},
		nomatch: []string{`{"detail":{"d-count":3}}`, `{"detail":{"c-count":{"c1":100}}}`, `{"detail":{"c-count":[]}}`},
	},
	{
		name:    "eb/does-not-exist",
		pattern: `{"detail":{"c-count":[{"exists":false}]}}`,
		match: []string{
			`{"detail-type":"x","detail":{"state":"running"}}`,
			`{"detail":{"state":"running","c-count":{"c1":100}}}`, // not a leaf
			`{"other":1}`,
		},
		nomatch: []string{ec2, `{"detail":{"c-count":null}}`},
	},
	{
		name:    "eb/null",
		pattern: `{"detail":{"responseElements":[null]}}`,
		match:   []string{`{"detail":{"eventVersion":"","responseElements":null}}`},
		nomatch: []string{`{"detail":{"responseElements":""}}`, `{"detail":{}}`, `{"detail":{"responseElements":"null"}}`},
	},
	{
		name:    "eb/empty-string",
		pattern: `{"detail":{"eventVersion":[""]}}`,
		match:   []string{`{"detail":{"eventVersion":"","responseElements":null}}`},
		nomatch: []string{`{"detail":{"eventVersion":null}}`, `{"detail":{}}`, `{"detail":{"eventVersion":" "}}`},
	},
	{
		name:    "ruler/or",
		pattern: `{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"namespace":["AWS/EC2","AWS/ES"]}]}`,
		match:   []string{`{"source":"aws.cloudwatch","metricName":"ReadLatency"}`, `{"source":"aws.cloudwatch","namespace":"AWS/ES"}`},
		nomatch: []string{`{"source":"aws.cloudwatch","metricName":"Other"}`, `{"source":"aws.ec2","namespace":"AWS/ES"}`},
	},
	{
		name:    "ruler/parallel-or",
		pattern: `{"$or":[{"metricName":["CPUUtilization"]},{"namespace":["AWS/EC2"]}],"detail":{"$or":[{"source":["aws.cloudwatch"]},{"detail-type":["CloudWatch Alarm State Change"]}]}}`,
		match:   []string{`{"namespace":"AWS/EC2","detail":{"detail-type":"CloudWatch Alarm State Change"}}`},
		nomatch: []string{`{"namespace":"AWS/EC2","detail":{"source":"x"}}`, `{"detail":{"source":"aws.cloudwatch"}}`},
	},
	{
		name:    "ruler/nested-or-and",
		pattern: `{"source":["aws.cloudwatch"],"$or":[{"metricName":["CPUUtilization","ReadLatency"]},{"metricType":["MetricType"],"namespace":["AWS/EC2","AWS/ES"],"$or":[{"metricId":[1234]},{"spaceId":[1000]}]},{"scope":["Service"]}]}`,
		match: []string{
			`{"source":"aws.cloudwatch","metricType":"MetricType","namespace":"AWS/EC2","spaceId":1000}`,
			`{"source":"aws.cloudwatch","scope":"Service"}`,
		},
		nomatch: []string{`{"source":"aws.cloudwatch","metricType":"MetricType","namespace":"AWS/EC2","spaceId":1001}`},
	},
	{
		name:    "eb/wildcard",
		pattern: `{"EventBusArn":[{"wildcard":"arn:aws:events:us-east-1:*:event-bus/*"}]}`,
		match:   []string{`{"EventBusArn":"arn:aws:events:us-east-1:123456789012:event-bus/default"}`},
		nomatch: []string{`{"EventBusArn":"arn:aws:events:us-west-2:123456789012:event-bus/default"}`},
	},
	{
		name:    "eb/wildcard-dir",
		pattern: `{"FileName":[{"wildcard":"dir/*.png"}]}`,
		match:   []string{`{"FileName":"dir/a.png"}`, `{"FileName":"dir/sub/a.png"}`, `{"FileName":"dir/.png"}`},
		nomatch: []string{`{"FileName":"dir/a.jpg"}`, `{"FileName":"other/a.png"}`, `{"FileName":"dir.png"}`},
	},
	{
		name:    "ruler/wildcard-escape",
		pattern: `{"k":[{"wildcard":"a\\*b*"}]}`,
		match:   []string{`{"k":"a*b"}`, `{"k":"a*bcd"}`},
		nomatch: []string{`{"k":"axb"}`, `{"k":"ab"}`},
	},
	{
		name:    "ruler/array-crush",
		pattern: `{"employees":{"firstName":["Anna"]}}`,
		match: []string{
			`{"employees":[{"firstName":"John","lastName":"Doe"},{"firstName":"Anna","lastName":"Smith"}]}`,
			`{"employees":[[{"firstName":"John"},{"firstName":"Anna"}],[{"firstName":"Peter"}]]}`,
		},
		nomatch: []string{`{"employees":[{"firstName":"John"}]}`},
	},
	// The Lambda page's table.
	{name: "lambda/null", pattern: `{"UserID":[null]}`, match: []string{`{"UserID":null}`}, nomatch: []string{`{"UserID":""}`, `{}`}},
	{name: "lambda/empty", pattern: `{"LastName":[""]}`, match: []string{`{"LastName":""}`}, nomatch: []string{`{"LastName":null}`}},
	{name: "lambda/equals", pattern: `{"Name":["Alice"]}`, match: []string{`{"Name":"Alice"}`}, nomatch: []string{`{"Name":"alice"}`}},
	{
		name: "lambda/and", pattern: `{"Location":["New York"],"Day":["Monday"]}`,
		match:   []string{`{"Location":"New York","Day":"Monday"}`},
		nomatch: []string{`{"Location":"New York","Day":"Tuesday"}`, `{"Location":"New York"}`},
	},
	{
		name: "lambda/or", pattern: `{"PaymentType":["Credit","Debit"]}`,
		match: []string{`{"PaymentType":"Debit"}`}, nomatch: []string{`{"PaymentType":"Cash"}`},
	},
	{
		name: "lambda/or-fields", pattern: `{"$or":[{"Location":["New York"]},{"Day":["Monday"]}]}`,
		match: []string{`{"Location":"New York"}`, `{"Day":"Monday"}`}, nomatch: []string{`{"Location":"Boston","Day":"Sunday"}`},
	},
	{
		name: "lambda/not", pattern: `{"Weather":[{"anything-but":["Raining"]}]}`,
		match: []string{`{"Weather":"Sunny"}`}, nomatch: []string{`{"Weather":"Raining"}`, `{}`},
	},
	{
		name: "lambda/numeric-equals", pattern: `{"Price":[{"numeric":["=",100]}]}`,
		match: []string{`{"Price":100}`, `{"Price":100.0}`, `{"Price":1e2}`}, nomatch: []string{`{"Price":"100"}`, `{"Price":100.5}`},
	},
	{
		name: "lambda/numeric-range", pattern: `{"Price":[{"numeric":[">",10,"<=",20]}]}`,
		match: []string{`{"Price":20}`, `{"Price":10.000001}`}, nomatch: []string{`{"Price":10}`, `{"Price":20.5}`},
	},
	{
		name: "lambda/exists", pattern: `{"ProductName":[{"exists":true}]}`,
		match: []string{`{"ProductName":"x"}`}, nomatch: []string{`{"Product":"x"}`},
	},
	{
		name: "lambda/not-exists", pattern: `{"ProductName":[{"exists":false}]}`,
		match: []string{`{"Product":"x"}`}, nomatch: []string{`{"ProductName":"x"}`},
	},
	{
		name: "lambda/begins-with", pattern: `{"Region":[{"prefix":"us-"}]}`,
		match: []string{`{"Region":"us-east-1"}`}, nomatch: []string{`{"Region":"eu-west-1"}`},
	},
	{
		name: "lambda/ends-with", pattern: `{"FileName":[{"suffix":".png"}]}`,
		match: []string{`{"FileName":"a.png"}`}, nomatch: []string{`{"FileName":"a.jpg"}`},
	},
	// Kafka filtering page: the record value's fields under "value".
	{
		name: "lambda/kafka", pattern: `{"value":{"device_ID":[{"prefix":"AB"}]}}`,
		match: []string{`{"value":{"device_ID":"AB1234"}}`}, nomatch: []string{`{"value":{"device_ID":"CD1234"}}`, `{"device_ID":"AB1234"}`},
	},
	// Types and the string form of numbers.
	{
		name: "types/string-is-not-number", pattern: `{"a":["100"]}`,
		match: []string{`{"a":"100"}`}, nomatch: []string{`{"a":100}`},
	},
	{
		name: "types/number-is-not-string", pattern: `{"a":[100]}`,
		match: []string{`{"a":100}`, `{"a":[1,100]}`}, nomatch: []string{`{"a":"100"}`, `{"a":100.0}`, `{"a":1e2}`},
	},
	{
		name: "types/300-string-form", pattern: `{"a":[300]}`,
		match: []string{`{"a":300}`}, nomatch: []string{`{"a":300.0}`, `{"a":3.0e2}`},
	},
	{
		name: "types/bool", pattern: `{"a":[true]}`,
		match: []string{`{"a":true}`}, nomatch: []string{`{"a":"true"}`, `{"a":false}`, `{"a":1}`},
	},
	{
		name: "types/anything-but-string-form", pattern: `{"a":[{"anything-but":100}]}`,
		match: []string{`{"a":100.0}`, `{"a":"100"}`, `{"a":null}`}, nomatch: []string{`{"a":100}`, `{"a":{"b":1}}`},
	},
	{
		name: "types/prefix-strings-only", pattern: `{"a":[{"prefix":"1"}]}`,
		match: []string{`{"a":"1x"}`}, nomatch: []string{`{"a":12}`, `{"a":true}`},
	},
	// Mixed conditions in one array are ORed, exists:false included.
	{
		name: "mix/value-or-absent", pattern: `{"a":["x",{"exists":false}]}`,
		match: []string{`{"a":"x"}`, `{}`}, nomatch: []string{`{"a":"y"}`},
	},
	{
		name: "json/escapes", pattern: `{"k\u00e9y":["caf\u00e9 \"x\""]}`,
		match: []string{`{"k\u00e9y":"café \"x\""}`, `{"kéy":"caf\u00e9 \u0022x\u0022"}`}, nomatch: []string{`{"key":"café \"x\""}`},
	},
	{
		name: "json/unicode-fold", pattern: `{"a":[{"prefix":{"equals-ignore-case":"straße"}}]}`,
		match: []string{`{"a":"STRAßE 5"}`}, nomatch: []string{`{"a":"strasse"}`},
	},
	{
		name: "json/dotted-key-is-one-key", pattern: `{"a.b":["x"]}`,
		match: []string{`{"a.b":"x"}`}, nomatch: []string{`{"a":{"b":"x"}}`},
	},
}

func TestDocumentedExamples(t *testing.T) {
	for _, tc := range docCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Compile(tc.pattern)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			for _, d := range tc.match {
				if !p.Match(JSON(d)) {
					t.Errorf("pattern %s\nshould match %s", tc.pattern, d)
				}
			}
			for _, d := range tc.nomatch {
				if p.Match(JSON(d)) {
					t.Errorf("pattern %s\nshould not match %s", tc.pattern, d)
				}
			}
		})
	}
}

func TestSetIsOr(t *testing.T) {
	s, err := CompileAll([]string{`{"a":["x"]}`, `{"b":[{"numeric":[">",1]}]}`, `{"a":["y"],"b":[0]}`})
	if err != nil {
		t.Fatal(err)
	}
	for doc, want := range map[string]bool{
		`{"a":"x"}`:       true,
		`{"b":2}`:         true,
		`{"a":"y","b":0}`: true,
		`{"a":"y","b":1}`: false,
		`{"a":"z"}`:       false,
		`not json`:        false,
		`{"a":"x"} extra`: false,
		`{"a":"x","b":}`:  false,
	} {
		if got := s.Match(JSON(doc)); got != want {
			t.Errorf("Match(%s) = %v, want %v", doc, got, want)
		}
	}
	var none *Set
	if !none.Match(JSON(`{}`)) {
		t.Error("a nil Set (no filter) must match everything")
	}
	if len(s.Patterns()) != 3 || s.Patterns()[1].String() != `{"b":[{"numeric":[">",1]}]}` {
		t.Errorf("Patterns() = %v", s.Patterns())
	}
}

func TestInvalidJSONDocumentMatchesNothing(t *testing.T) {
	p, err := Compile(`{"a":[{"exists":false}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Match(JSON(`{"b":1}`)) {
		t.Fatal("a valid document without a should match")
	}
	for _, d := range []string{``, `{`, `{"b":1,}`, `{"b":01}`, `{"b":"\x01"}`, "{\"b\":\"\xff\"}", `{"b":"\q"}`, `{"b":tru}`, `[1,]`} {
		if p.Match(JSON(d)) {
			t.Errorf("invalid JSON %q matched", d)
		}
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"", "", true}, {"", "a", false},
		{"abc", "abc", true}, {"abc", "abcd", false}, {"a*", "a", true}, {"*a", "ba", true},
		{"a*b", "ab", true}, {"a*b", "a", false}, {"a*b*c", "abc", true}, {"a*b*c", "acb", false},
		{"*ab*ab*", "abab", true}, {"*ab*ab*", "aba", false}, {"a*a", "a", false}, {"a*a", "aa", true},
		{`\\*`, `\x`, true}, {`\\*`, `x`, false}, {`\*`, `*`, true}, {`\*`, `x`, false},
	} {
		c, _, err := compileWildcard(&jnode{kind: jString, s: tc.pat}, "", cWildcard)
		if err != nil {
			t.Fatalf("%q: %v", tc.pat, err)
		}
		c.prep()
		if got := wildMatch([]byte(tc.s), &c); got != tc.want {
			t.Errorf("wildcard %q on %q = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
}

// TestSpecial8 checks the SWAR test against the byte test it replaces, for
// every byte value at every position, on plain and on varied backgrounds.
func TestSpecial8(t *testing.T) {
	special := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 || c >= 0x80 }
	for _, bg := range []byte{'a', ' ', '!', '#', '[', ']', 0x7f} {
		for pos := 0; pos < 8; pos++ {
			for c := 0; c < 256; c++ {
				var w [8]byte
				for i := range w {
					w[i] = bg
				}
				w[pos] = byte(c)
				x := uint64(0)
				for i := 7; i >= 0; i-- {
					x = x<<8 | uint64(w[i])
				}
				if got, want := special8(x) != 0, special(byte(c)) || special(bg); got != want {
					t.Fatalf("special8(% x) = %v, want %v", w, got, want)
				}
			}
		}
	}
}
