package filter

import (
	"fmt"
	"strings"
	"testing"
)

// typical are five patterns of the kinds Lambda users write on Kafka values:
// equality on a string, a numeric range, a prefix, anything-but, exists.
var typical = []string{
	`{"value":{"eventType":["order.created","order.updated"]}}`,
	`{"value":{"amount":[{"numeric":[">",100,"<=",5000]}],"currency":["EUR"]}}`,
	`{"value":{"customer":{"region":[{"prefix":"eu-"}]}}}`,
	`{"value":{"status":[{"anything-but":["cancelled","test"]}],"priority":[{"numeric":[">=",3]}]}}`,
	`{"value":{"customer":{"vip":[{"exists":true}]},"channel":["web"]}}`,
}

// value200 is a realistic order event of about 200 bytes that matches none
// of the typical patterns, so every pattern is evaluated in full.
const value200 = `{"eventType":"order.shipped","orderId":"ord-7f3a9c21","amount":42.5,"currency":"USD","status":"shipped","priority":1,"channel":"mobile","customer":{"id":"c-1029","region":"us-east-1"},"ts":1717171717}`

// value1K pads the same event with fields no pattern names, to about 1 KiB.
var value1K = func() string {
	var b strings.Builder
	b.WriteString(value200[:len(value200)-1])
	for i := 0; b.Len() < 1000; i++ {
		fmt.Fprintf(&b, `,"line%d":{"sku":"SKU-%05d","qty":%d,"price":%d.99,"tags":["a","b"]}`, i, i*37, i%5+1, i*3)
	}
	b.WriteString("}")
	return b.String()
}()

func benchMatch(b *testing.B, value string) {
	s, err := CompileAll(typical)
	if err != nil {
		b.Fatal(err)
	}
	r := &Record{Topic: "orders", Partition: 3, Offset: 1234567, Timestamp: 1717171717000, TimestampType: "CREATE_TIME",
		Key: []byte("ord-7f3a9c21"), Value: []byte(value)}
	if s.Match(r) {
		b.Fatal("the benchmark value should match no pattern")
	}
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if s.Match(r) {
			b.Fatal("matched")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "matches/s")
}

func BenchmarkMatch200B(b *testing.B) { benchMatch(b, value200) }
func BenchmarkMatch1KiB(b *testing.B) { benchMatch(b, value1K) }

// BenchmarkMatch200BHit is the matching case: the last pattern holds.
func BenchmarkMatch200BHit(b *testing.B) {
	s, _ := CompileAll(typical)
	r := &Record{Value: []byte(`{"eventType":"order.shipped","orderId":"ord-7f3a9c21","amount":42.5,"currency":"USD","status":"shipped","priority":1,"channel":"web","customer":{"id":"c-1029","region":"us-east-1","vip":true}}`)}
	if !s.Match(r) {
		b.Fatal("should match")
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Match(r)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "matches/s")
}

func TestBenchValues(t *testing.T) {
	if n := len(value200); n < 190 || n > 210 {
		t.Errorf("value200 is %d bytes", n)
	}
	if n := len(value1K); n < 1000 || n > 1100 {
		t.Errorf("value1K is %d bytes", n)
	}
	s, err := CompileAll(typical)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{value200, value1K} {
		if s.Match(JSON(`{"value":` + v + `}`)) {
			t.Errorf("benchmark value matches")
		}
	}
	// Each typical pattern does match a value made for it.
	for i, v := range []string{
		`{"eventType":"order.created"}`,
		`{"amount":5000,"currency":"EUR"}`,
		`{"customer":{"region":"eu-west-1"}}`,
		`{"status":"paid","priority":3}`,
		`{"customer":{"vip":false},"channel":"web"}`,
	} {
		p, _ := Compile(typical[i])
		if !p.Match(&Record{Value: []byte(v)}) {
			t.Errorf("typical[%d] does not match %s", i, v)
		}
	}
}
