package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluice-dev/sluice/internal/api/apitest"
)

// TestDemoTwiceOnOneDataDir: a second `dev --demo` on the data dir of the
// first finds the pipe it left and aims it at its own endpoint, instead of
// failing with "pipe already exists".
func TestDemoTwiceOnOneDataDir(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc := apitest.NewService(t)
	first, err := startDemo(t.Context(), io.Discard, svc, c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	p1, _ := svc.GetPipe(t.Context(), demoPipe)
	first.stop()
	second, err := startDemo(t.Context(), io.Discard, svc, c.ListenAddrs()[0])
	if err != nil {
		t.Fatalf("second demo on the same store: %v", err)
	}
	defer second.stop()
	p2, err := svc.GetPipe(t.Context(), demoPipe)
	if err != nil || p2.UUID != p1.UUID || p2.Target.HTTP.URL == p1.Target.HTTP.URL || !strings.HasPrefix(p2.Target.HTTP.URL, "http://127.0.0.1:") {
		t.Fatalf("after the second demo: %+v (first %+v), %v; want the same pipe aimed at the new endpoint", p2.Target, p1.Target, err)
	}
}

// TestPlainDevParksTheDemoPipe: a plain dev after --demo disables the
// demo's pipe, whose endpoint is gone, and leaves a user's pipe named demo.
func TestPlainDevParksTheDemoPipe(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	svc := apitest.NewService(t)
	d, err := startDemo(t.Context(), io.Discard, svc, c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	d.stop()
	var out bytes.Buffer
	if err := parkDemoPipe(t.Context(), &out, svc); err != nil {
		t.Fatal(err)
	}
	p, _ := svc.GetPipe(t.Context(), demoPipe)
	if p.IsEnabled() || !strings.Contains(out.String(), "is disabled") {
		t.Fatalf("after a plain dev the demo pipe is enabled=%v; said %q", p.IsEnabled(), out.String())
	}
	// --demo again turns it back on.
	d, err = startDemo(t.Context(), io.Discard, svc, c.ListenAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	if p, _ := svc.GetPipe(t.Context(), demoPipe); !p.IsEnabled() {
		t.Fatal("--demo did not enable the demo pipe again")
	}
}
