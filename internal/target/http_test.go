package target

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
)

var testEncoder = event.NewEncoder(event.Source{
	EventSource:      event.SourceSelfManaged,
	BootstrapServers: []string{"b-1.example:9092", "b-2.example:9092"},
})

// records returns n consecutive records of topic/partition from offset first,
// each with a key, a value of valueSize bytes and a header.
func records(topic string, partition int32, first int64, n, valueSize int) []*kgo.Record {
	recs := make([]*kgo.Record, n)
	for i := range recs {
		off := first + int64(i)
		val := bytes.Repeat([]byte{byte('a' + off%26)}, valueSize)
		recs[i] = &kgo.Record{
			Topic:     topic,
			Partition: partition,
			Offset:    off,
			Timestamp: time.UnixMilli(1_700_000_000_000 + off),
			Key:       fmt.Appendf(nil, "key-%d", off),
			Value:     val,
			Headers:   []kgo.RecordHeader{{Key: "h", Value: []byte{0x00, 0xff, byte(off)}}},
		}
	}
	return recs
}

func batchOf(recs []*kgo.Record) *batch.Batch {
	return batch.New(recs, nil)
}

// hit is one request a test server received.
type hit struct {
	method string
	path   string
	header http.Header
	body   []byte
	at     time.Time
}

// recorder is a real HTTP server that records what it receives and answers
// with respond(n, w, r), n being the 1-based number of the request.
type recorder struct {
	srv     *httptest.Server
	respond func(n int, w http.ResponseWriter, r *http.Request)
	// readBody false leaves the request body unread, as a target answering
	// before it reads the request does.
	readBody bool

	mu     sync.Mutex
	hits   []hit
	notify chan struct{}
}

func newRecorder(t *testing.T, respond func(n int, w http.ResponseWriter, r *http.Request)) *recorder {
	t.Helper()
	rec := &recorder{respond: respond, readBody: true, notify: make(chan struct{}, 1)}
	rec.srv = httptest.NewServer(http.HandlerFunc(rec.serve))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) serve(w http.ResponseWriter, r *http.Request) {
	h := hit{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), at: time.Now()}
	if rec.readBody {
		h.body, _ = io.ReadAll(r.Body)
	}
	rec.mu.Lock()
	rec.hits = append(rec.hits, h)
	n := len(rec.hits)
	rec.mu.Unlock()
	select {
	case rec.notify <- struct{}{}:
	default:
	}
	if rec.respond != nil {
		rec.respond(n, w, r)
	}
}

func (rec *recorder) calls() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.hits)
}

func (rec *recorder) hit(i int) hit {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.hits[i]
}

// waitCalls waits until the server has received at least n requests.
func (rec *recorder) waitCalls(t *testing.T, n int) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for rec.calls() < n {
		select {
		case <-rec.notify:
		case <-deadline.C:
			t.Fatalf("server got %d requests, want at least %d", rec.calls(), n)
		}
	}
}

func newTestHTTP(t *testing.T, cfg HTTPConfig) *HTTP {
	t.Helper()
	if cfg.Encoder == nil {
		cfg.Encoder = testEncoder
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.PayloadLimit == 0 {
		cfg.PayloadLimit = 6 << 20
	}
	h, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// decodedEvent is the reference Kafka event as a target's runtime parses it.
type decodedEvent struct {
	EventSource      string `json:"eventSource"`
	BootstrapServers string `json:"bootstrapServers"`
	Records          map[string][]struct {
		Topic         string             `json:"topic"`
		Partition     int32              `json:"partition"`
		Offset        int64              `json:"offset"`
		Timestamp     int64              `json:"timestamp"`
		TimestampType string             `json:"timestampType"`
		Key           string             `json:"key"`
		Value         *string            `json:"value"`
		Headers       []map[string][]int `json:"headers"`
	} `json:"records"`
}

func checkEvent(t *testing.T, body []byte, recs []*kgo.Record) {
	t.Helper()
	if want := testEncoder.Append(nil, recs); !bytes.Equal(body, want) {
		t.Fatalf("body is not the encoder's output:\ngot  %.300s\nwant %.300s", body, want)
	}
	var ev decodedEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	if ev.EventSource != event.SourceSelfManaged || ev.BootstrapServers != "b-1.example:9092,b-2.example:9092" {
		t.Errorf("envelope = %q, %q", ev.EventSource, ev.BootstrapServers)
	}
	key := fmt.Sprintf("%s-%d", recs[0].Topic, recs[0].Partition)
	if len(ev.Records) != 1 || len(ev.Records[key]) != len(recs) {
		t.Fatalf("records = %d keys, %d under %q; want 1 key with %d records", len(ev.Records), len(ev.Records[key]), key, len(recs))
	}
	for i, got := range ev.Records[key] {
		r := recs[i]
		if got.Topic != r.Topic || got.Partition != r.Partition || got.Offset != r.Offset || got.Timestamp != r.Timestamp.UnixMilli() {
			t.Errorf("record %d = %s-%d@%d t=%d, want %s-%d@%d t=%d", i, got.Topic, got.Partition, got.Offset, got.Timestamp,
				r.Topic, r.Partition, r.Offset, r.Timestamp.UnixMilli())
		}
		if got.Key != base64.StdEncoding.EncodeToString(r.Key) {
			t.Errorf("record %d key = %q", i, got.Key)
		}
		if got.Value == nil || *got.Value != base64.StdEncoding.EncodeToString(r.Value) {
			t.Errorf("record %d value differs", i)
		}
		if len(got.Headers) != 1 || len(got.Headers[0]["h"]) != 3 || got.Headers[0]["h"][1] != -1 {
			t.Errorf("record %d headers = %v", i, got.Headers)
		}
	}
}

func TestHTTPDeliversBatch(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusAccepted, http.StatusNoContent} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			srv := newRecorder(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(status)
				if status != http.StatusNoContent {
					io.WriteString(w, `{"batchItemFailures":[]}`)
				}
			})
			h := newTestHTTP(t, HTTPConfig{
				URL:     srv.srv.URL + "/invoke",
				Headers: http.Header{"X-Sluice-Pipe": {"orders-to-billing"}},
			})
			recs := records("orders", 3, 100, 5, 40)
			if err := deliver(h, context.Background(), batchOf(recs)); err != nil {
				t.Fatalf("Deliver = %v, want nil", err)
			}
			if n := srv.calls(); n != 1 {
				t.Fatalf("server got %d requests, want 1", n)
			}
			got := srv.hit(0)
			if got.method != http.MethodPost || got.path != "/invoke" {
				t.Errorf("request = %s %s, want POST /invoke", got.method, got.path)
			}
			for k, want := range map[string]string{
				"Content-Type":   "application/json",
				"User-Agent":     "sluice",
				"X-Sluice-Pipe":  "orders-to-billing",
				"Content-Length": fmt.Sprint(len(got.body)),
			} {
				if v := got.header.Get(k); v != want {
					t.Errorf("header %s = %q, want %q", k, v, want)
				}
			}
			checkEvent(t, got.body, recs)
		})
	}
}

func TestHTTPErrorStatus(t *testing.T) {
	long := strings.Repeat("é", 600) // 1200 bytes: cut at the 512-byte read, then at 200 runes
	cases := []struct {
		name       string
		status     int
		body       string
		header     map[string]string
		problem    string // exact, when set
		contains   []string
		excludes   []string
		retryAfter time.Duration
	}{
		{name: "500 with body", status: 500, body: "database is down\r\n\ttry later\x1b[31m!\x00",
			problem: "target answered 500 Internal Server Error: database is down try later [31m!"},
		{name: "500 without body", status: 500, problem: "target answered 500 Internal Server Error"},
		{name: "whitespace body", status: 502, body: " \n\t\n", problem: "target answered 502 Bad Gateway"},
		{name: "invalid utf8", status: 400, body: "bad\xff\xfeinput", problem: "target answered 400 Bad Request: bad input"},
		{name: "long body", status: 500, body: long,
			problem: "target answered 500 Internal Server Error: " + strings.Repeat("é", 200) + "…"},
		{name: "control characters", status: 500, body: "a\x7fb\u0085c\u009bd\u2028e",
			contains: []string{"a", "b", "c", "d", "e"}, excludes: []string{"\x7f", "\u0085", "\u009b", "\u2028"}},
		{name: "redirect is not success", status: 302, header: map[string]string{"Location": "/elsewhere"},
			problem: "target answered 302 Found"},
		{name: "429 retry after seconds", status: 429, header: map[string]string{"Retry-After": "3"},
			problem: "target answered 429 Too Many Requests", retryAfter: 3 * time.Second},
		{name: "503 garbage retry after", status: 503, header: map[string]string{"Retry-After": "soon"},
			problem: "target answered 503 Service Unavailable", retryAfter: 0},
		{name: "503 past date", status: 503, header: map[string]string{"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
			retryAfter: 0},
		{name: "negative retry after", status: 503, header: map[string]string{"Retry-After": "-5"}, retryAfter: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := newRecorder(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				for k, v := range c.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			h := newTestHTTP(t, HTTPConfig{URL: srv.srv.URL})
			err := deliver(h, context.Background(), batchOf(records("t", 0, 0, 2, 10)))
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("Deliver = %#v, want *Error", err)
			}
			if te.StatusCode != c.status {
				t.Errorf("StatusCode = %d, want %d", te.StatusCode, c.status)
			}
			if te.RetryAfterDelay != c.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", te.RetryAfterDelay, c.retryAfter)
			}
			if c.problem != "" && te.Problem != c.problem {
				t.Errorf("Problem = %q\nwant      %q", te.Problem, c.problem)
			}
			for _, s := range c.contains {
				if !strings.Contains(te.Problem, s) {
					t.Errorf("Problem %q lacks %q", te.Problem, s)
				}
			}
			for _, s := range c.excludes {
				if strings.Contains(te.Problem, s) {
					t.Errorf("Problem %q contains %q", te.Problem, s)
				}
			}
			if te.Err == nil && err.Error() != te.Problem {
				t.Errorf("Error() = %q, want the Problem", err.Error())
			}
			if ProblemOf(err) != te.Problem {
				t.Errorf("ProblemOf = %q, want %q", ProblemOf(err), te.Problem)
			}
			if errors.Is(err, ErrOversized) {
				t.Error("a status error must not be ErrOversized")
			}
		})
	}
}

func TestHTTPRetryAfterDate(t *testing.T) {
	srv := newRecorder(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	h := newTestHTTP(t, HTTPConfig{URL: srv.srv.URL})
	err := deliver(h, context.Background(), batchOf(records("t", 0, 0, 1, 1)))
	var te *Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Deliver = %v, want a 503 *Error", err)
	}
	// The date has second resolution and was written before it was read.
	if te.RetryAfterDelay <= 0 || te.RetryAfterDelay > time.Hour {
		t.Errorf("RetryAfter = %v, want within (0, 1h]", te.RetryAfterDelay)
	}
}

// A redirected POST becomes a GET without the body (301/302/303) or cannot
// be replayed (307/308): following it would report a batch delivered that
// the target never received.
func TestHTTPDoesNotFollowRedirects(t *testing.T) {
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			var followed atomic.Int32
			mux := http.NewServeMux()
			mux.HandleFunc("/in", func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				http.Redirect(w, r, "/ok", status)
			})
			mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
				followed.Add(1)
				w.WriteHeader(http.StatusOK)
			})
			srv := httptest.NewServer(mux)
			t.Cleanup(srv.Close)
			for _, client := range []*http.Client{nil, {}} {
				h := newTestHTTP(t, HTTPConfig{URL: srv.URL + "/in", Client: client})
				err := deliver(h, context.Background(), batchOf(records("t", 0, 0, 1, 1)))
				var te *Error
				if !errors.As(err, &te) || te.StatusCode != status {
					t.Errorf("Deliver = %v, want a %d *Error", err, status)
				}
				if client != nil && client.CheckRedirect != nil {
					t.Error("NewHTTP changed the caller's client")
				}
			}
			if n := followed.Load(); n != 0 {
				t.Errorf("the redirect was followed %d times", n)
			}
		})
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newRecorder(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for handlers
	h := newTestHTTP(t, HTTPConfig{URL: srv.srv.URL, Timeout: 50 * time.Millisecond})
	err := deliver(h, context.Background(), batchOf(records("t", 0, 0, 1, 1)))
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("Deliver = %v, want *Error", err)
	}
	if want := "target did not answer within 50ms"; te.Problem != want {
		t.Errorf("Problem = %q, want %q", te.Problem, want)
	}
	if te.StatusCode != 0 {
		t.Errorf("StatusCode = %d, want 0", te.StatusCode)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestHTTPUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := newTestHTTP(t, HTTPConfig{URL: "http://" + addr + "/"})
	err = deliver(h, context.Background(), batchOf(records("t", 0, 0, 1, 1)))
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("Deliver = %v, want *Error", err)
	}
	// The problem carries the cause, with the target's address and
	// without the ephemeral local one, and says it once.
	want := "target unreachable: dial tcp " + addr + ": connect: connection refused"
	if te.Problem != want || te.StatusCode != 0 {
		t.Errorf("Problem, StatusCode = %q, %d; want %q, 0", te.Problem, te.StatusCode, want)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %v does not wrap ECONNREFUSED", err)
	}
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestHTTPUnreachableCauses(t *testing.T) {
	// A name that cannot resolve: the DNS failure is the cause.
	h := newTestHTTP(t, HTTPConfig{URL: "http://no-such-host.invalid/"})
	err := deliver(h, context.Background(), batchOf(records("t", 0, 0, 1, 1)))
	if p := ProblemOf(err); !strings.HasPrefix(p, "target unreachable: dial tcp: lookup no-such-host.invalid") {
		t.Errorf("Problem for an unresolvable host = %q, want the lookup failure", p)
	}
	// A target that hangs up without answering.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 512)
			_, _ = c.Read(buf)
			c.Close()
		}
	}()
	h = newTestHTTP(t, HTTPConfig{URL: "http://" + ln.Addr().String() + "/"})
	err = deliver(h, context.Background(), batchOf(records("t", 0, 0, 1, 1)))
	// EOF, a reset, or (on a pooled connection the test's earlier servers
	// left on a reused port) a closed connection: each says what happened.
	if p := ProblemOf(err); p != "target closed the connection without answering" && !strings.HasPrefix(p, "target unreachable: ") {
		t.Errorf("Problem for a target that hangs up = %q", p)
	}
}

func TestWithoutLocalAddr(t *testing.T) {
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 54321}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9000}
	err := withoutLocalAddr(&net.OpError{Op: "read", Net: "tcp", Source: local, Addr: remote, Err: syscall.ECONNRESET})
	if got, want := err.Error(), "read tcp 127.0.0.1:9000: connection reset by peer"; got != want {
		t.Errorf("withoutLocalAddr = %q, want %q", got, want)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Error("the cause is lost")
	}
}

func TestHTTPCanceledContext(t *testing.T) {
	srv := newRecorder(t, nil)
	h := newTestHTTP(t, HTTPConfig{URL: srv.srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := deliver(h, ctx, batchOf(records("t", 0, 0, 1, 1)))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Deliver = %v, want it to wrap context.Canceled", err)
	}
	if n := srv.calls(); n != 0 {
		t.Errorf("server got %d requests after the context was canceled", n)
	}
}

func TestHTTPOversizedRecord(t *testing.T) {
	srv := newRecorder(t, nil)
	h := newTestHTTP(t, HTTPConfig{URL: srv.srv.URL, PayloadLimit: 6 << 20})
	b := batchOf(records("big-topic", 7, 42, 1, 10))
	b.Oversized, b.Size = true, 7_000_000
	err := deliver(h, context.Background(), b)
	if !errors.Is(err, ErrOversized) {
		t.Fatalf("Deliver = %v, want ErrOversized", err)
	}
	p := ProblemOf(err)
	for _, s := range []string{"big-topic-7", "offset 42", "7000000 bytes", "payload limit of 6291456 bytes"} {
		if !strings.Contains(p, s) {
			t.Errorf("Problem %q lacks %q", p, s)
		}
	}
	if n := srv.calls(); n != 0 {
		t.Errorf("server got %d requests for an oversized record", n)
	}
}

func TestHTTPPayloadLimit(t *testing.T) {
	srv := newRecorder(t, nil)
	recs := records("t", 1, 0, 10, 100)
	size := len(testEncoder.Append(nil, recs))

	// Exactly at the limit is allowed.
	h := newTestHTTP(t, HTTPConfig{URL: srv.srv.URL, PayloadLimit: size})
	if err := deliver(h, context.Background(), batchOf(recs)); err != nil {
		t.Fatalf("Deliver at the limit = %v", err)
	}
	checkEvent(t, srv.hit(0).body, recs)

	// One byte more is not.
	h = newTestHTTP(t, HTTPConfig{URL: srv.srv.URL, PayloadLimit: size - 1})
	err := deliver(h, context.Background(), batchOf(recs))
	if !errors.Is(err, ErrOversized) {
		t.Fatalf("Deliver over the limit = %v, want ErrOversized", err)
	}
	if want := fmt.Sprintf("batch is %d bytes, over the payload limit of %d bytes", size, size-1); ProblemOf(err) != want {
		t.Errorf("Problem = %q, want %q", ProblemOf(err), want)
	}
	if n := srv.calls(); n != 1 {
		t.Errorf("server got %d requests, want only the one within the limit", n)
	}
	// The buffer went back to the pool; the target still works.
	if err := deliver(h, context.Background(), batchOf(recs[:2])); err != nil {
		t.Fatalf("Deliver after an oversized batch = %v", err)
	}
	checkEvent(t, srv.hit(1).body, recs[:2])
}

// Many partitions post through one target at once, with batch sizes that
// change from one delivery to the next, so pooled buffers are reused at
// other lengths; some answers come before the target read the body.
func TestHTTPConcurrentDeliveries(t *testing.T) {
	// A body whose length is a multiple of 4 is answered at once, unread.
	early := func(n int64) bool { return n%4 == 0 }
	var expected sync.Map // "topic-partition@first" → encoded body
	srv := newRecorder(t, nil)
	srv.readBody = false
	srv.respond = func(_ int, w http.ResponseWriter, r *http.Request) {
		if early(r.ContentLength) {
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var ev decodedEvent
		if err := json.Unmarshal(body, &ev); err != nil || len(ev.Records) != 1 {
			t.Errorf("body is not one partition's event: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		for key, recs := range ev.Records {
			want, ok := expected.Load(fmt.Sprintf("%s@%d", key, recs[0].Offset))
			if !ok || !bytes.Equal(body, want.([]byte)) {
				t.Errorf("body for %s@%d differs from what was sent", key, recs[0].Offset)
				w.WriteHeader(http.StatusBadRequest)
				return
			}
		}
		w.WriteHeader(http.StatusOK)
	}

	h := newTestHTTP(t, HTTPConfig{URL: srv.srv.URL})
	const partitions, perPartition = 32, 12
	var earlyAnswers atomic.Int32
	var wg sync.WaitGroup
	for p := range int32(partitions) {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(p), 1))
			offset := int64(0)
			for range perPartition {
				n := 1 + rnd.IntN(8)
				recs := records("orders", p, offset, n, rnd.IntN(4096))
				key := fmt.Sprintf("orders-%d@%d", p, offset)
				body := testEncoder.Append(nil, recs)
				expected.Store(key, body)
				err := deliver(h, context.Background(), batchOf(recs))
				var te *Error
				switch {
				case early(int64(len(body))):
					earlyAnswers.Add(1)
					if !errors.As(err, &te) || te.StatusCode != http.StatusTooManyRequests {
						t.Errorf("%s: Deliver = %v, want a 429 *Error", key, err)
					}
				case err != nil:
					t.Errorf("%s: Deliver = %v", key, err)
				}
				offset += int64(n)
			}
		})
	}
	wg.Wait()
	if n := srv.calls(); n != partitions*perPartition {
		t.Errorf("server got %d requests, want %d", n, partitions*perPartition)
	}
	if earlyAnswers.Load() == 0 {
		t.Error("no request was answered before its body was read; change the sizes")
	}
}

func TestNewHTTPValidates(t *testing.T) {
	good := HTTPConfig{URL: "http://127.0.0.1:1/", Timeout: time.Second, PayloadLimit: 1, Encoder: testEncoder}
	for name, mutate := range map[string]func(*HTTPConfig){
		"no URL":              func(c *HTTPConfig) { c.URL = "" },
		"no encoder":          func(c *HTTPConfig) { c.Encoder = nil },
		"no timeout":          func(c *HTTPConfig) { c.Timeout = 0 },
		"negative timeout":    func(c *HTTPConfig) { c.Timeout = -time.Second },
		"no payload limit":    func(c *HTTPConfig) { c.PayloadLimit = 0 },
		"negative limit":      func(c *HTTPConfig) { c.PayloadLimit = -1 },
		"nothing at all here": func(c *HTTPConfig) { *c = HTTPConfig{} },
	} {
		cfg := good
		mutate(&cfg)
		if h, err := NewHTTP(cfg); err == nil || h != nil {
			t.Errorf("%s: NewHTTP = %v, %v; want an error", name, h, err)
		}
	}
	h, err := NewHTTP(good)
	if err != nil || h == nil {
		t.Fatalf("NewHTTP(valid) = %v, %v", h, err)
	}
	if h.cfg.Client == nil || h.cfg.Client.Transport != DefaultTransport {
		t.Error("a target without a client should use DefaultTransport")
	}
}

// A client the caller brings is the one used: here the only one trusting
// the test server's certificate.
func TestHTTPUsesGivenClient(t *testing.T) {
	var got atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	b := batchOf(records("t", 0, 0, 1, 1))

	h := newTestHTTP(t, HTTPConfig{URL: srv.URL, Client: srv.Client()})
	if err := deliver(h, context.Background(), b); err != nil {
		t.Fatalf("Deliver with the server's client = %v", err)
	}
	h = newTestHTTP(t, HTTPConfig{URL: srv.URL})
	if err := deliver(h, context.Background(), b); err == nil || !strings.HasPrefix(ProblemOf(err), "target unreachable: tls: failed to verify certificate") {
		t.Errorf("Deliver with the default client to an untrusted certificate = %v, want target unreachable with the TLS cause", err)
	}
	if n := got.Load(); n != 1 {
		t.Errorf("server handled %d requests, want 1", n)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"3", 3 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"-1", 0},
		{"1.5", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(90 * time.Second).Format(time.RFC850), 90 * time.Second},
		{now.Add(90 * time.Second).Format(time.ANSIC), 90 * time.Second},
		{now.Format(http.TimeFormat), 0},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		// A target asking for a very long delay gets the longest one, which
		// the policy then caps; it must not wrap around to no delay.
		{"9999999999", time.Duration(1<<63 - 1)},
		{"99999999999999999999999", time.Duration(1<<63 - 1)},
	} {
		if got := parseRetryAfter(c.in, now); got != c.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestPrintable(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"  a\r\n b\t\tc  ", "a b c"},
		{"esc\x1b[2Jclear", "esc [2Jclear"},
		{"del\x7fc1\u0085\u009bend", "del c1 end"},
		{"bad\xffutf8", "bad utf8"},
		{"ünïcödé ok", "ünïcödé ok"},
		{strings.Repeat("x", 201), strings.Repeat("x", 200) + "…"},
		{strings.Repeat("x", 200), strings.Repeat("x", 200)},
	} {
		if got := printable([]byte(c.in)); got != c.want {
			t.Errorf("printable(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestErrorFormatting(t *testing.T) {
	inner := errors.New("dial tcp: refused")
	err := error(&Error{Problem: "target unreachable", Err: inner})
	if err.Error() != "target unreachable: dial tcp: refused" || !errors.Is(err, inner) {
		t.Errorf("Error() = %q, Is(inner) = %v", err.Error(), errors.Is(err, inner))
	}
	// A problem that already ends with its cause says it once.
	if e := (&Error{Problem: "target unreachable: dial tcp: refused", Err: inner}); e.Error() != "target unreachable: dial tcp: refused" {
		t.Errorf("Error() with the cause in the problem = %q", e.Error())
	}
	wrapped := fmt.Errorf("pipe p: %w", err)
	if ProblemOf(wrapped) != "target unreachable" {
		t.Errorf("ProblemOf(wrapped) = %q", ProblemOf(wrapped))
	}
	if ProblemOf(inner) != inner.Error() {
		t.Errorf("ProblemOf(plain) = %q", ProblemOf(inner))
	}
}

// TestSigningAndRedaction: a signed delivery carries the webhook
// convention's header, which a receiver verifies with the key alone; URLs
// in logs lose user info and query values.
func TestSigningAndRedaction(t *testing.T) {
	key := []byte("whsec-test-key")
	at := time.Unix(1_800_000_000, 0)
	var gotSig string
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotSig = r.Header.Get(SignatureHeader)
		gotBody, _ = io.ReadAll(r.Body)
	}))
	defer srv.Close()
	h := newTestHTTP(t, HTTPConfig{URL: srv.URL, SigningKey: key, Now: func() time.Time { return at },
		Headers: http.Header{"X-Api-Key": {"k"}}})
	if err := deliver(h, context.Background(), batchOf(records("t", 0, 0, 2, 1))); err != nil {
		t.Fatal(err)
	}
	// Verify as a receiver would: recompute over "<t>.<body>".
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("1800000000." + string(gotBody)))
	if want := "t=1800000000,v1=" + hex.EncodeToString(mac.Sum(nil)); gotSig != want {
		t.Errorf("signature %q, want %q", gotSig, want)
	}
	for raw, want := range map[string]string{
		"https://user:pw@hooks.example.com/in?api_key=abc&team=x": "https://hooks.example.com/in?api_key=REDACTED&team=REDACTED",
		"http://127.0.0.1:9000/":                                  "http://127.0.0.1:9000/",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestOAuthClientCredentials: a token from the authorization server is
// sent as the bearer token, reused while valid, fetched again after the
// target answers 401, and a failing grant is a clear, retryable problem.
func TestOAuthClientCredentials(t *testing.T) {
	var issued atomic.Int64
	refuse := atomic.Bool{}
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, sec, ok := r.BasicAuth()
		if refuse.Load() || !ok || id != "sluice" || sec != "client-s3cret" || r.FormValue("grant_type") != "client_credentials" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"unknown client"}`)
			return
		}
		n := issued.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":3600}`, n)
	}))
	defer auth.Close()
	var seen []string
	var mu sync.Mutex
	revoke := atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		if revoke.Swap(false) {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	h := newTestHTTP(t, HTTPConfig{URL: srv.URL, OAuth: &clientcredentials.Config{ClientID: "sluice", ClientSecret: "client-s3cret",
		TokenURL: auth.URL + "/token", AuthStyle: oauth2.AuthStyleInHeader}})
	b := batchOf(records("t", 0, 0, 1, 1))
	for i := 0; i < 3; i++ {
		if err := deliver(h, context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if issued.Load() != 1 {
		t.Errorf("%d tokens issued for 3 deliveries, want 1 (cached)", issued.Load())
	}
	revoke.Store(true)
	if err := deliver(h, context.Background(), b); err == nil {
		t.Fatal("a 401 from the target was a success")
	}
	if err := deliver(h, context.Background(), b); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if last := seen[len(seen)-1]; last != "Bearer tok-2" || issued.Load() != 2 {
		t.Errorf("after a 401: %q with %d tokens issued, want Bearer tok-2", last, issued.Load())
	}
	mu.Unlock()

	refuse.Store(true)
	h2 := newTestHTTP(t, HTTPConfig{URL: srv.URL, OAuth: &clientcredentials.Config{ClientID: "sluice", ClientSecret: "wrong",
		TokenURL: auth.URL + "/token?tenant=x", AuthStyle: oauth2.AuthStyleInHeader}})
	err := deliver(h2, context.Background(), b)
	p := ProblemOf(err)
	if !strings.Contains(p, "cannot get an OAuth token from "+auth.URL+"/token?tenant=REDACTED: 401 Unauthorized: invalid_client unknown client") {
		t.Errorf("problem = %q", p)
	}
	if strings.Contains(p, "wrong") || strings.Contains(err.Error(), "client-s3cret") {
		t.Error("the problem shows the client secret")
	}
}

// deliver makes one attempt and answers it as an error: nil when every
// record was delivered, else the first failure.
func deliver(h *HTTP, ctx context.Context, b *batch.Batch) error {
	res := h.Deliver(ctx, b)
	if res.Final() == b.Len() {
		return nil
	}
	if err := res.Err(); err != nil {
		return err
	}
	return errors.New("records left pending without an error")
}
