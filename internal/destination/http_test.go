package destination

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/stage"
)

func testFailure() stage.Failure {
	return stage.Failure{Topic: "orders", Partition: 1, Records: sample("orders", 1), Condition: batch.RetryAttemptsExhausted, Err: &statusErr{500}, Attempts: 3}
}

func TestHTTPAccepts(t *testing.T) {
	var (
		mu   sync.Mutex
		got  []*http.Request
		body [][]byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, body = append(got, r), append(body, b)
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "thanks")
	}))
	defer srv.Close()

	d, err := NewHTTP(srv.URL+"/dlq?token=secret", nil, testMeta(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	f := testFailure()
	if err := d.Send(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if err := d.Send(context.Background(), stage.Failure{Topic: "orders"}); err != nil {
		t.Fatalf("a failure without records: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("%d requests, want 1 (none for a failure without records)", len(got))
	}
	r := got[0]
	if r.Method != http.MethodPost || r.URL.Path != "/dlq" || r.URL.Query().Get("token") != "secret" {
		t.Errorf("request %s %s", r.Method, r.URL)
	}
	if ct, ua := r.Header.Get("Content-Type"), r.Header.Get("User-Agent"); ct != "application/json" || ua != "sluice" {
		t.Errorf("Content-Type %q, User-Agent %q", ct, ua)
	}
	entries, err := DecodeLine(body[0])
	if err != nil {
		t.Fatal(err)
	}
	checkEntries(t, entries, f.Records)
	if !strings.Contains(string(body[0]), `"condition":"RetryAttemptsExhausted"`) || !strings.Contains(string(body[0]), `"statusCode":500`) {
		t.Errorf("body lacks the failure's context: %s", body[0])
	}
}

func TestHTTPRefused(t *testing.T) {
	long := strings.Repeat("é", 300) // multi-byte, so a byte cut would show
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, "database\x1b[31m down\n\t"+long)
	}))
	defer srv.Close()
	d, err := NewHTTP("http://user:pw@"+strings.TrimPrefix(srv.URL, "http://")+"/dlq?token=secret", nil, testMeta(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Send(context.Background(), testFailure())
	if err == nil {
		t.Fatal("a 500 was accepted")
	}
	msg := err.Error()
	if !strings.Contains(msg, "answered 500 Internal Server Error: database [31m down éé") {
		t.Errorf("error does not say what the destination answered: %q", msg)
	}
	snippet := msg[strings.Index(msg, "database"):]
	if n := utf8.RuneCountInString(snippet); n > maxSnippet {
		t.Errorf("snippet is %d characters, over %d", n, maxSnippet)
	}
	if !strings.HasSuffix(msg, "…") || strings.ContainsAny(msg, "\x1b\n\t") {
		t.Errorf("snippet is not cut short and printable: %q", msg)
	}
	if strings.Contains(msg, "secret") || strings.Contains(msg, "pw") {
		t.Errorf("error shows the URL's credentials: %q", msg)
	}
}

func TestHTTPDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int32
	final := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
	}))
	defer final.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, final.URL+"/elsewhere?sig=abc", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()

	// Even a client that follows redirects does not, and is left as it was.
	client := &http.Client{}
	d, err := NewHTTP(srv.URL, client, testMeta(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Send(context.Background(), testFailure())
	if err == nil {
		t.Fatal("a redirect was taken as accepted")
	}
	if followed.Load() != 0 {
		t.Errorf("the redirect was followed %d times", followed.Load())
	}
	if msg := err.Error(); !strings.Contains(msg, "307") || !strings.Contains(msg, "redirects are not followed") ||
		!strings.Contains(msg, final.URL+"/elsewhere") || strings.Contains(msg, "sig=abc") {
		t.Errorf("error %q does not say where it redirects (without its query)", msg)
	}
	if client.CheckRedirect != nil {
		t.Error("NewHTTP changed the caller's client")
	}
}

func TestHTTPUnreachable(t *testing.T) {
	// A port that was just listening and is now closed refuses at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d, err := NewHTTP("http://"+addr+"/dlq", nil, testMeta(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	err = d.Send(context.Background(), testFailure())
	if err == nil || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %v, want one saying the destination is unreachable", err)
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	defer srv.Close()
	defer close(release)
	d, err := NewHTTP(srv.URL, nil, testMeta(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = d.Send(context.Background(), testFailure())
	if err == nil || !strings.Contains(err.Error(), "did not answer within 100ms") {
		t.Errorf("error %v, want one saying the destination did not answer in time", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Send took %s, past its timeout", time.Since(start))
	}

	// The partition stopping is not the destination's fault, and says so.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	err = d.Send(ctx, testFailure())
	if err == nil || !strings.Contains(err.Error(), "stopped before it answered") {
		t.Errorf("error %v, want one saying the Send was stopped", err)
	}
}

func TestNewHTTPRejects(t *testing.T) {
	for _, u := range []string{"ftp://host/x", "http:///nohost", "://bad"} {
		if _, err := NewHTTP(u, nil, Meta{}, 0); err == nil {
			t.Errorf("NewHTTP(%q) accepted it", u)
		}
	}
}
