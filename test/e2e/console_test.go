package e2e

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sluice-dev/sluice/internal/sink"
)

// The web console driven in headless Chromium (Debian's package, which
// .ci/run installs), against the real binary. Screenshots go to
// $SLUICE_ARTIFACTS/console, by default .ci/artifacts/console in the
// checkout, for CI to keep.

// browser starts Chromium and returns a context for its first tab; a
// JavaScript exception on any page fails the test.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := need(t, "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // CI runs as root, where Chromium's sandbox refuses to start
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1400),
		chromedp.UserDataDir(t.TempDir()),
		// Without these Chromium dials Google's services at start, which
		// a closed network refuses many times over.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	// Uncaught exceptions fail the test; the goroutine ends with ctx.
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleException {
				t.Errorf("JavaScript exception at %s:%d: %s", m.URL, m.Line, m.Text)
			}
		}
	}()
	t.Cleanup(func() { cancelTime(); <-done })
	return ctx
}

func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// text is the text of the first element matching sel, and whether there
// is one; it does not wait.
func text(t *testing.T, ctx context.Context, sel string) (string, bool) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.textContent : null; })()`, sel)
	v, err := chromedp.Run(ctx, chromedp.Evaluate[*string](js))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	if v == nil {
		return "", false
	}
	return strings.TrimSpace(*v), true
}

// waitText waits until sel's text satisfies ok, and returns it.
func waitText(t *testing.T, ctx context.Context, timeout time.Duration, sel, what string, ok func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, found := text(t, ctx, sel)
		if found && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			screenshot(t, ctx, "failed-"+strings.ReplaceAll(t.Name(), "/", "-"))
			t.Fatalf("timed out after %s waiting for %s: %s shows %q (found %v)", timeout, what, sel, s, found)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// clearInput empties an input, as selecting its text and deleting it
// would.
func clearInput(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](fmt.Sprintf(`(() => { document.querySelector(%q).value = ""; return true; })()`, sel))(ctx, t)
		return err
	})
}

// attr is an attribute of the first element matching sel.
func attr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	a, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		t.Fatalf("read %s's %s: %v", sel, name, err)
	}
	return a.Value
}

func equals(want string) func(string) bool { return func(s string) bool { return s == want } }

// screenshot saves the whole page as NAME.png among the artifacts.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("SLUICE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".ci", "artifacts")
	}
	dir = filepath.Join(dir, "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", p)
}

// TestConsoleCreatesAndRunsAPipe does what a new user does in the
// console: creates a pipe through the form (meeting a validation error on
// the way), watches its lag, enables it and sees the lag fall to 0 as the
// records arrive, edits it, then disables and enables it again.
func TestConsoleCreatesAndRunsAPipe(t *testing.T) {
	ctx := browser(t)
	api, kafka := freeAddr(t), freeAddr(t)
	startDev(t, t.TempDir(), kafka, api)
	s := sink.New()
	endpoint := httptest.NewServer(s)
	defer endpoint.Close()
	const topic, records = "ui-orders", 40
	createTopics(t, kafka, map[string]int32{topic: 2})
	produceOrders(t, kafka, topic, 2, records/2, nil)

	ui := "http://" + api + "/ui/"
	run(t, ctx, "open the console", chromedp.Navigate(ui), chromedp.WaitVisible(chromedp.CSS(`a[href="#/new"]`)))
	screenshot(t, ctx, "1-empty-list")

	// The form, with a batch size the API refuses.
	run(t, ctx, "fill the form",
		chromedp.Click(chromedp.CSS(`#nav-new`)),
		chromedp.WaitVisible(chromedp.CSS(`#pipe-form`)),
		chromedp.SendKeys(chromedp.CSS(`#f-name`), "ui-orders"),
		chromedp.SendKeys(chromedp.CSS(`#f-bootstrapServers`), kafka),
		chromedp.SendKeys(chromedp.CSS(`#f-topics`), topic),
		chromedp.SendKeys(chromedp.CSS(`#f-batchSize`), "100000"),
		chromedp.SendKeys(chromedp.CSS(`#f-target-http-url`), endpoint.URL),
		chromedp.Click(chromedp.CSS(`#f-enabled`)), // created disabled: the lag is seen first
		chromedp.Click(chromedp.CSS(`#btn-save`)),
	)
	msg := waitText(t, ctx, 10*time.Second, `.field-error[data-for="batchSize"]`, "the batch size's validation message", func(s string) bool { return s != "" })
	if !strings.Contains(msg, "100000") {
		t.Errorf("batchSize message %q does not name the value", msg)
	}
	if other, _ := text(t, ctx, `.field-error[data-for="name"]`); other != "" {
		t.Errorf("the name field shows an error too: %q", other)
	}
	screenshot(t, ctx, "2-validation-error")

	run(t, ctx, "fix the batch size",
		clearInput(`#f-batchSize`),
		chromedp.SendKeys(chromedp.CSS(`#f-batchSize`), "10"),
		chromedp.Click(chromedp.CSS(`#btn-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#btn-enable`)),
	)
	waitText(t, ctx, 30*time.Second, `#lag-total`, "the disabled pipe's lag", equals(strconv.Itoa(records)))
	screenshot(t, ctx, "3-disabled-with-lag")

	run(t, ctx, "enable", chromedp.Click(chromedp.CSS(`#btn-enable`)), chromedp.WaitVisible(chromedp.CSS(`#btn-disable`)))
	waitFor(t, 30*time.Second, "the records at the endpoint", func() bool { return len(s.Records()) >= records })
	waitText(t, ctx, 30*time.Second, `#lag-total`, "lag 0 after delivery", equals("0"))
	waitText(t, ctx, 10*time.Second, `[data-testid="state"]`, "state Enabled", equals("Enabled"))
	// The charts have the points: the lag chart's last one is 0, after
	// the disabled pipe's 40.
	max := attr(t, ctx, `svg[data-testid="lag-chart"]`, "data-max")
	if n, _ := strconv.Atoi(max); n < records {
		t.Errorf("lag chart's scale tops at %s: the earlier lag of %d is not on it", max, records)
	}
	if last, _ := text(t, ctx, `#rps`); last == "0.00" {
		t.Errorf("records per second still %s after %d records", last, records)
	}
	screenshot(t, ctx, "4-delivered-lag-zero")

	// Edit: the form comes back filled in; a changed batch size is saved.
	run(t, ctx, "edit",
		chromedp.Click(chromedp.CSS(`#btn-edit`)),
		chromedp.WaitVisible(chromedp.CSS(`#pipe-form`)),
		clearInput(`#f-batchSize`),
		chromedp.SendKeys(chromedp.CSS(`#f-batchSize`), "20"),
		chromedp.Click(chromedp.CSS(`#btn-save`)),
		chromedp.WaitVisible(chromedp.CSS(`#btn-disable`)),
	)
	waitText(t, ctx, 10*time.Second, `pre.spec`, "the edited spec", func(s string) bool { return strings.Contains(s, `"batchSize": 20`) })

	run(t, ctx, "disable", chromedp.Click(chromedp.CSS(`#btn-disable`)), chromedp.WaitVisible(chromedp.CSS(`#btn-enable`)))
	waitText(t, ctx, 30*time.Second, `[data-testid="state"]`, "state Disabled", equals("Disabled"))
	run(t, ctx, "enable again", chromedp.Click(chromedp.CSS(`#btn-enable`)), chromedp.WaitVisible(chromedp.CSS(`#btn-disable`)))
	waitText(t, ctx, 30*time.Second, `[data-testid="state"]`, "state Enabled again", equals("Enabled"))
	produceOrders(t, kafka, topic, 2, 5, nil)
	waitFor(t, 30*time.Second, "the records produced after re-enabling", func() bool { return len(s.Records()) >= records+10 })
	if dups, err := sink.Check(s.Records(), topic, map[int32]int64{0: records/2 + 5, 1: records/2 + 5}); err != nil {
		t.Fatalf("delivery: %v (%d duplicates)", err, dups)
	}

	run(t, ctx, "the list", chromedp.Navigate(ui), chromedp.WaitVisible(chromedp.CSS(`tr[data-pipe="ui-orders"]`)))
	waitText(t, ctx, 30*time.Second, `tr[data-pipe="ui-orders"] [data-testid="lag"]`, "lag 0 in the list", equals("0"))
	screenshot(t, ctx, "5-list")
}

// TestConsoleShowsTheDemoMoving is the first try a new user makes:
// sluice dev --demo, then the console: the demo pipe is listed, its
// records per second are above 0, and its charts fill as it runs.
func TestConsoleShowsTheDemoMoving(t *testing.T) {
	ctx := browser(t)
	api, kafka := freeAddr(t), freeAddr(t)
	startSluice(t, api, "dev", "--demo", "--data-dir", t.TempDir(), "--kafka-addr", kafka, "--api-addr", api)
	run(t, ctx, "open the console", chromedp.Navigate("http://"+api+"/ui/"), chromedp.WaitVisible(chromedp.CSS(`tr[data-pipe="demo"]`)))
	waitText(t, ctx, 30*time.Second, `tr[data-pipe="demo"] [data-testid="rps"]`, "the demo's records per second", func(s string) bool {
		f, err := strconv.ParseFloat(s, 64)
		return err == nil && f > 0
	})
	screenshot(t, ctx, "demo-list")
	run(t, ctx, "open the demo", chromedp.Click(chromedp.CSS(`tr[data-pipe="demo"] a`)), chromedp.WaitVisible(chromedp.CSS(`svg[data-testid="lag-chart"]`)))
	// The lag chart gets a point at each measurement (every 10 s), and
	// the throughput chart a bar for each 10 s with deliveries.
	waitFor(t, 40*time.Second, "a lag measurement on the chart", func() bool {
		return attr(t, ctx, `svg[data-testid="lag-chart"]`, "data-last") != ""
	})
	bars := func() int {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('svg[data-testid="flow-chart"] rect').length`))
		if err != nil {
			t.Fatalf("count the throughput chart's bars: %v", err)
		}
		return n
	}
	first := bars()
	waitFor(t, 40*time.Second, "the throughput chart to move", func() bool { return bars() > first })
	screenshot(t, ctx, "demo-pipe")
}
