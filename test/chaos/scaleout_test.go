package chaos

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/test/testproc"
)

// TestScaleOutUnderKills runs three `sluice serve` processes on one
// PostgreSQL store, one pipe spread over them by its consumer group, and
// SIGKILLs a random one every few seconds, starting it again at once,
// while records flow and the target fails one call in ten: nothing may
// be lost, and duplicates stay within what each kill may redeliver.
func TestScaleOutUnderKills(t *testing.T) {
	began := time.Now()
	const topic, parts, group, session = "scaleout", 6, "chaos-scaleout", 6 * time.Second
	dsn := testproc.PostgresDSN(t)
	cl := newCluster(t, topic, parts)
	c := NewChecker(CheckerConfig{Committed: committedReader(t, cl.ListenAddrs(), group), InFlight: time.Second,
		MinBatchTime: sinkDelay, CommitPeriod: 300 * time.Millisecond, Slack: 2})
	srv := newSink(t, c, nil)

	ms := startServeMembers(t, dsn, 3, session, "")
	ms[0].p.CLI("pipes", "create", "scaleout", "--bootstrap-servers", strings.Join(cl.ListenAddrs(), ","), "--topic", topic,
		"--target", srv.URL, "--batch-size", "20", "--batching-window", "10ms", "--consumer-group-id", group)
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 2, 10*time.Millisecond, c)
	progress(t, c, 40, 30*time.Second, "before the first kill")

	kills := mode(6, 20)
	killRandomly(t, c, ms, kills)
	figure(t, "3 processes on one PostgreSQL store, %d SIGKILLs of a random one 3–6 s apart, each restarted at once", kills)
	allDelivered(t, prod, c, 2*time.Minute)
	for _, m := range ms {
		m.p.Signal(syscall.SIGTERM)
	}
	finish(t, c, began)
}

// serveMember is one `sluice serve` process of a shared-store scenario.
type serveMember struct {
	config, api string
	p           *testproc.Proc
}

// startServeMembers starts n `sluice serve` processes named worker-0… on
// the PostgreSQL store dsn, with one master key, the group session
// timeout session and extra config lines.
func startServeMembers(t *testing.T, dsn string, n int, session time.Duration, extra string) []*serveMember {
	t.Helper()
	var key [32]byte
	_, _ = rand.Read(key[:])
	t.Setenv("SLUICE_MASTER_KEY", base64.StdEncoding.EncodeToString(key[:]))
	dir := t.TempDir()
	ms := make([]*serveMember, n)
	for i := range ms {
		m := &serveMember{api: freeAddr(t), config: filepath.Join(dir, fmt.Sprintf("serve-%d.yaml", i))}
		body := fmt.Sprintf("apiAddr: %s\ndataDir: %s\nstore: %s\nmemberName: worker-%d\ngroupSessionTimeout: %s\nlogFormat: json\n%s",
			m.api, filepath.Join(dir, fmt.Sprintf("data-%d", i)), dsn, i, session, extra)
		if err := os.WriteFile(m.config, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		m.p = startProc(t, fmt.Sprintf("sluice %d", i), m.config, m.api)
		ms[i] = m
	}
	return ms
}

// killRandomly SIGKILLs a random member every 3–6 s, kills times,
// starting it again at once; each kill is a fault for c.
func killRandomly(t *testing.T, c *Checker, ms []*serveMember, kills int) {
	t.Helper()
	for range kills {
		time.Sleep(3*time.Second + time.Duration(mrand.IntN(3000))*time.Millisecond)
		m := ms[mrand.IntN(len(ms))]
		f := c.Begin("sigkill")
		m.p.Signal(syscall.SIGKILL)
		f.End(0)
		m.p = startProc(t, m.p.Name, m.config, m.api)
	}
}
