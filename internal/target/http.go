package target

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// The http kind: the pipe's target.http section.
func init() {
	Register(Kind{Name: pipe.KindHTTP, Key: httpKey, Describe: describeHTTP, Open: openHTTP})
}

// describeHTTP is the redacted URL, or the function's name and URL.
func describeHTTP(spec pipe.Spec, env Env) string {
	t := spec.Target.HTTP
	if t.Function == "" {
		return RedactURL(t.URL)
	}
	if u, err := env.FunctionURL(t.Function); err == nil {
		return "function " + t.Function + " (" + RedactURL(u) + ")"
	}
	return "function " + t.Function
}

// httpKey is the URL a function name resolves to and the versions of the
// secrets the target uses.
func httpKey(spec pipe.Spec, env Env) string {
	t := spec.Target.HTTP
	var b strings.Builder
	if t.Function != "" {
		u, err := env.FunctionURL(t.Function)
		if err != nil {
			u = "(unresolved)"
		}
		b.WriteString(u)
	}
	for _, ref := range t.SecretRefs() {
		fmt.Fprintf(&b, ",%s@%s", ref.Secret, env.SecretVersion(ref.Secret))
	}
	return b.String()
}

// openHTTP resolves the section's function and secrets into an HTTP
// target. Its errors are the pipe's PROBLEM, so they name the fix.
func openHTTP(_ context.Context, spec pipe.Spec, env Env) (Target, error) {
	t := spec.Target.HTTP
	u := t.URL
	if t.Function != "" {
		var err error
		if u, err = env.FunctionURL(t.Function); err != nil {
			return nil, err
		}
	}
	if t.Function == "" {
		u, _ = t.ResolvedURL(u) // validated: the counts match
	}
	cfg := HTTPConfig{
		URL: u, Timeout: spec.TargetTimeout(), PayloadLimit: spec.PayloadLimitBytes,
		Encoder: env.Encoder, Client: env.HTTPClient, Headers: http.Header{},
		ReportBatchItemFailures: t.ReportBatchItemFailures,
	}
	for name, v := range t.Headers {
		if !strings.HasPrefix(v, pipe.SecretValuePrefix) {
			cfg.Headers.Set(name, v)
		}
	}
	for _, ref := range t.SecretRefs() {
		v, err := env.Secret(ref)
		if err != nil {
			return nil, err
		}
		switch ref.Field {
		case "target.http.signingSecret":
			cfg.SigningKey = v
		case "target.http.oauth.clientSecret":
			if cfg.OAuth == nil {
				cfg.OAuth = &clientcredentials.Config{TokenURL: t.OAuth.TokenURL, Scopes: t.OAuth.Scopes}
			}
			if ref.Key == pipe.OAuthClientIDKey {
				cfg.OAuth.ClientID = string(v)
			} else {
				cfg.OAuth.ClientSecret = string(v)
			}
		default:
			if strings.ContainsAny(string(v), "\r\n") {
				return nil, fmt.Errorf("Secret %q of %s holds a line break, which no header value may: store the value without it.", ref.Secret, ref.Field)
			}
			cfg.Headers.Set(strings.TrimPrefix(ref.Field, "target.http.headers."), string(v))
		}
	}
	if env.Pipe != "" {
		cfg.Headers.Set("X-Sluice-Pipe", env.Pipe)
	}
	return NewHTTP(cfg)
}

// HTTPConfig configures an HTTP target.
type HTTPConfig struct {
	URL string
	// Timeout bounds one attempt, from connecting to reading the status.
	Timeout time.Duration
	// PayloadLimit is the largest body sent; a bigger batch is a failure.
	PayloadLimit int
	Encoder      *event.Encoder
	// Client defaults to one with a transport sized for many partitions
	// posting concurrently to one host.
	Client *http.Client
	// Headers are added to every request (e.g. the pipe's name, an API
	// key).
	Headers http.Header
	// SigningKey, when set, signs every body: see SignatureHeader.
	SigningKey []byte
	// OAuth, when set, authorizes every request with a bearer token of
	// the client credentials grant, cached until it expires and fetched
	// again after the target answers 401.
	OAuth *clientcredentials.Config
	// Now is the clock of the signatures' time stamps; nil is time.Now.
	Now func() time.Time
	// ReportBatchItemFailures reads a 2xx answer's body as the
	// reference's partial batch response; see pipe.HTTPTarget.
	ReportBatchItemFailures bool

	// readBody keeps a 2xx answer's body for the caller (enrichment).
	readBody bool
}

// SignatureHeader carries the body's signature, as webhook receivers
// verify one: "t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under
// the signing key>". The time stamp is signed with the body, so a receiver
// can refuse old replays; a key rotation can send several v1 values.
const SignatureHeader = "X-Sluice-Signature"

// Sign returns the SignatureHeader value for body at t.
func Sign(key, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// RedactURL is a target URL fit for logs: without user info, and with
// every query value replaced, since query strings carry API keys.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"REDACTED"}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// HTTP posts each batch as the reference Kafka event. A 2xx answer is
// success; any other status, a transport error or a timeout fails the batch.
type HTTP struct {
	cfg  HTTPConfig
	pool sync.Pool // *[]byte bodies, returned when the transport closes them

	tokenMu sync.Mutex
	tokens  oauth2.TokenSource // nil until first used, and after a 401
}

// tokenTimeout bounds one token request to the authorization server.
const tokenTimeout = 30 * time.Second

// token returns the bearer token for a request, from the cache while it
// is valid.
func (h *HTTP) token() (*oauth2.Token, error) {
	h.tokenMu.Lock()
	if h.tokens == nil {
		// The grant's own client: bounded, and not the pipe's (whose
		// timeout is per delivery, and may be far longer).
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Timeout: tokenTimeout, Transport: DefaultTransport})
		h.tokens = h.cfg.OAuth.TokenSource(ctx) // caches and refreshes on expiry
	}
	ts := h.tokens
	h.tokenMu.Unlock()
	return ts.Token()
}

// dropToken forgets the cached token: the target refused it.
func (h *HTTP) dropToken() {
	h.tokenMu.Lock()
	h.tokens = nil
	h.tokenMu.Unlock()
}

// DefaultTransport is shared by HTTP targets that bring no client, so pipes
// posting to one host share its connections.
var DefaultTransport = &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	ForceAttemptHTTP2:     true,
	MaxIdleConns:          1024,
	MaxIdleConnsPerHost:   256, // one per partition in flight, for a few hundred partitions
	IdleConnTimeout:       90 * time.Second,
	TLSHandshakeTimeout:   10 * time.Second,
	ExpectContinueTimeout: time.Second,
}

// NewHTTP returns an HTTP target.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if cfg.URL == "" || cfg.Encoder == nil || cfg.Timeout <= 0 || cfg.PayloadLimit <= 0 {
		return nil, errors.New("target: URL, Encoder, Timeout and PayloadLimit are required")
	}
	// A redirected POST is replayed as a GET without its body (301, 302,
	// 303) or not at all (307, 308: the pooled body cannot be rewound), so
	// following one could report a batch delivered that the target never
	// got. A redirect is an answer like any other non-2xx. The caller's
	// client is copied, not changed.
	client := http.Client{Transport: DefaultTransport}
	if cfg.Client != nil {
		client = *cfg.Client
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.Client = &client
	return &HTTP{cfg: cfg}, nil
}

// pooledBody returns its buffer to the pool when the transport closes it,
// which is when the transport no longer reads it.
type pooledBody struct {
	*bytes.Reader
	buf  *[]byte
	pool *sync.Pool
	once sync.Once
}

func (b *pooledBody) Close() error {
	b.once.Do(func() { b.pool.Put(b.buf) })
	return nil
}

// Close releases nothing: the transport is shared, and its idle
// connections time out on their own.
func (h *HTTP) Close() error { return nil }

// Deliver posts the batch once.
func (h *HTTP) Deliver(ctx context.Context, b *batch.Batch) batch.Result {
	if b.Oversized {
		r := b.Records[0]
		return batch.All(1, batch.Outcome{Status: batch.Failed, Condition: batch.MaximumPayloadSizeExceeded, Err: &Error{
			Problem: fmt.Sprintf("record %s-%d offset %d is %d bytes as an event, over the pipe's payload limit of %d bytes",
				r.Topic, r.Partition, r.Offset, b.Size, h.cfg.PayloadLimit),
			Err: ErrOversized,
		}})
	}
	body, err := h.post(ctx, b)
	if err != nil {
		return batch.FailedAll(b, err)
	}
	if !h.cfg.ReportBatchItemFailures {
		return batch.DeliveredAll(b)
	}
	return partialResult(b, body)
}

// post sends the batch and returns the first bytes of a 2xx answer's body
// (what a partial batch response needs), or the failure.
func (h *HTTP) post(ctx context.Context, b *batch.Batch) ([]byte, error) {
	bufp, _ := h.pool.Get().(*[]byte)
	if bufp == nil {
		bufp = new([]byte)
	}
	binary := b.Payload == nil && h.cfg.Encoder.Binary(b.Len())
	switch {
	case b.Payload != nil:
		// An earlier stage (enrichment, the input transformer) made the
		// body: it is sent as it is.
		*bufp = append((*bufp)[:0], b.Payload...)
	case binary:
		// CloudEvents binary mode: the value is the body.
		*bufp = append((*bufp)[:0], b.Records[0].Value...)
	default:
		*bufp = h.cfg.Encoder.Append((*bufp)[:0], b.Records)
	}
	body := &pooledBody{Reader: bytes.NewReader(*bufp), buf: bufp, pool: &h.pool}
	if n := len(*bufp); n > h.cfg.PayloadLimit {
		body.Close()
		return nil, &Error{Problem: fmt.Sprintf("batch is %d bytes, over the payload limit of %d bytes", n, h.cfg.PayloadLimit), Err: ErrOversized}
	}

	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, body)
	if err != nil {
		body.Close()
		return nil, &Error{Problem: "cannot build the request to the target", Err: err}
	}
	req.ContentLength = int64(body.Len())
	contentType := "application/json"
	if b.Payload == nil {
		contentType = h.cfg.Encoder.ContentType()
	}
	if binary {
		var ce [][2]string
		ce, contentType = h.cfg.Encoder.BinaryHeaders(b.Records[0])
		for _, kv := range ce {
			req.Header.Set(kv[0], kv[1])
		}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "sluice")
	for k, v := range h.cfg.Headers {
		req.Header[k] = v
	}
	if h.cfg.OAuth != nil {
		tok, err := h.token()
		if err != nil {
			body.Close()
			return nil, &Error{Problem: fmt.Sprintf("cannot get an OAuth token from %s: %s", RedactURL(h.cfg.OAuth.TokenURL), printable([]byte(oauthCause(err)))), Err: err}
		}
		tok.SetAuthHeader(req)
	}
	if h.cfg.SigningKey != nil {
		now := time.Now
		if h.cfg.Now != nil {
			now = h.cfg.Now
		}
		req.Header.Set(SignatureHeader, Sign(h.cfg.SigningKey, *bufp, now()))
	}
	resp, err := h.cfg.Client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return nil, &Error{Problem: fmt.Sprintf("target did not answer within %s", h.cfg.Timeout), Err: err}
		}
		cause := withoutLocalAddr(unwrapURLError(err))
		if errors.Is(cause, io.EOF) || errors.Is(cause, io.ErrUnexpectedEOF) {
			return nil, &Error{Problem: "target closed the connection without answering", Err: cause}
		}
		return nil, &Error{Problem: "target unreachable: " + cause.Error(), Err: cause}
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Read what a partial batch response needs and drain the rest, so
		// the connection is reused; the bound keeps a chatty target from
		// holding memory.
		var body []byte
		if h.cfg.ReportBatchItemFailures || h.cfg.readBody {
			limit := maxResponseBody
			if h.cfg.readBody {
				limit = max(limit, h.cfg.PayloadLimit) // an enrichment answers the target's body
			}
			if body, err = io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1)); err != nil {
				return nil, &Error{StatusCode: resp.StatusCode, Problem: "target's answer broke off: " + withoutLocalAddr(unwrapURLError(err)).Error(), Err: err}
			}
			if len(body) > limit {
				return nil, &Error{StatusCode: resp.StatusCode, Problem: fmt.Sprintf("target's answer is over %d bytes, too long to read", limit)}
			}
		}
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		return body, nil
	}
	if resp.StatusCode == http.StatusUnauthorized && h.cfg.OAuth != nil {
		h.dropToken() // revoked or rotated early: the retry asks for a new one
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	problem := fmt.Sprintf("target answered %s", resp.Status)
	if s := printable(snippet); s != "" {
		problem += ": " + s
	}
	return nil, &Error{
		StatusCode:      resp.StatusCode,
		RetryAfterDelay: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		Problem:         problem,
	}
}

// oauthCause is a token request's failure in a line: the authorization
// server's status and error code, or the transport error.
func oauthCause(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return fmt.Sprintf("%s: %s %s", re.Response.Status, re.ErrorCode, re.ErrorDescription)
		}
		return re.Response.Status
	}
	return withoutLocalAddr(unwrapURLError(err)).Error()
}

// withoutLocalAddr drops the local address from a network error: its
// ephemeral port differs on every attempt, which would make every failure
// a new status and the cause unreadable.
func withoutLocalAddr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Source != nil {
		c := *oe
		c.Source = nil
		return &c
	}
	return err
}

func unwrapURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	// A number too big for a Duration asks for the longest delay (which the
	// policy caps), rather than wrapping around to a negative one.
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case secs < 0:
			return 0
		case secs > math.MaxInt64/int64(time.Second):
			return math.MaxInt64
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// printable keeps a response snippet safe to show in a status line.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "�")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError { // C0, DEL and C1: terminal escapes
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}
