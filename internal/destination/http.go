package destination

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/stage"
)

// DefaultHTTPTimeout bounds a POST when NewHTTP is given no timeout.
const DefaultHTTPTimeout = 30 * time.Second

// maxSnippet is how much of a refusing answer's body an error quotes, in
// characters: enough to show an error message, not enough to flood a log.
const maxSnippet = 200

// HTTP POSTs one failure record per Failure to a URL. It is safe for
// concurrent use.
type HTTP struct {
	url     string
	shown   string // url without credentials or query, for errors
	client  *http.Client
	timeout time.Duration
	b       *builder
}

var _ stage.Destination = (*HTTP)(nil)

// NewHTTP posts to rawURL (http or https) with client (nil is a client of
// its own), each POST bounded by timeout (0 is DefaultHTTPTimeout).
// Redirects are never followed, whatever client does: a redirect would
// resend the pipe's records to wherever the answer points, and a 3xx is
// not the destination accepting them.
func NewHTTP(rawURL string, client *http.Client, meta Meta, timeout time.Duration) (*HTTP, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("failure destination URL: %w", err)
	}
	shown := redactURL(u)
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("failure destination URL %s: the scheme must be http or https", shown)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("failure destination URL %s: no host", shown)
	}
	c := &http.Client{}
	if client != nil {
		cp := *client // the caller's client is theirs: change a copy
		c = &cp
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if timeout <= 0 {
		timeout = DefaultHTTPTimeout
	}
	return &HTTP{url: rawURL, shown: shown, client: c, timeout: timeout, b: newBuilder(meta)}, nil
}

// Send posts f's record and returns nil once the destination answers 2xx.
func (d *HTTP) Send(ctx context.Context, f stage.Failure) error {
	if len(f.Records) == 0 {
		return nil
	}
	rec, err := d.b.batch(f)
	if err != nil {
		return err
	}
	body, err := marshal(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("failure destination %s: cannot build the request: %w", d.shown, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice")
	resp, err := d.client.Do(req)
	if err != nil {
		switch {
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return fmt.Errorf("failure destination %s did not answer within %s: %w", d.shown, d.timeout, err)
		case ctx.Err() != nil:
			return fmt.Errorf("failure destination %s: stopped before it answered: %w", d.shown, ctx.Err())
		}
		// url.Error repeats the method and the full URL, credentials
		// and all; its cause is what matters.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("failure destination %s unreachable: %w", d.shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drained (within reason) so the connection is reused.
		_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 4*maxSnippet))
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	msg := fmt.Sprintf("failure destination %s answered %s", d.shown, resp.Status)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		msg += " (redirects are not followed"
		if loc, err := resp.Location(); err == nil {
			msg += ": set the destination to " + redactURL(loc)
		}
		msg += ")"
	}
	if s := printable(snippet); s != "" {
		msg += ": " + s
	}
	return errors.New(msg)
}

// Close releases idle connections.
func (d *HTTP) Close() error {
	d.client.CloseIdleConnections()
	return nil
}

// redactURL is u without what may be a secret: credentials and query.
func redactURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.ForceQuery, c.Fragment = nil, "", false, ""
	return c.String()
}

// printable is a body snippet safe for a log line: valid UTF-8, no control
// characters (terminal escapes), whitespace folded, and at most maxSnippet
// characters, an ellipsis included.
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(b), " "))
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxSnippet {
		s = string(r[:maxSnippet-1]) + "…"
	}
	return s
}
