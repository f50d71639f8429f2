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

// TestSleepAndWakeUnderKills runs three `sluice serve` processes on one
// PostgreSQL store with sleepAfter 1s, one pipe spread over them, and a
// producer that writes a round to every partition every 2.5 s, so that the
// members fall asleep between rounds and each round wakes them. A random
// process is SIGKILLed every few seconds, asleep or not, and started again:
// nothing may be lost. At the end every member is asleep, and one more
// round still arrives.
func TestSleepAndWakeUnderKills(t *testing.T) {
	began := time.Now()
	const topic, parts, group, session = "sleepy", 6, "chaos-sleepy", 6 * time.Second
	dsn := testproc.PostgresDSN(t)
	cl := newCluster(t, topic, parts)
	c := NewChecker(CheckerConfig{Committed: committedReader(t, cl.ListenAddrs(), group), InFlight: time.Second,
		MinBatchTime: sinkDelay, CommitPeriod: 300 * time.Millisecond, Slack: 2})
	srv := newSink(t, c, nil)

	var key [32]byte
	_, _ = rand.Read(key[:])
	t.Setenv("SLUICE_MASTER_KEY", base64.StdEncoding.EncodeToString(key[:]))
	dir := t.TempDir()
	type member struct {
		config, api string
		p           *testproc.Proc
	}
	ms := make([]*member, 3)
	for i := range ms {
		m := &member{api: freeAddr(t), config: filepath.Join(dir, fmt.Sprintf("serve-%d.yaml", i))}
		body := fmt.Sprintf("apiAddr: %s\ndataDir: %s\nstore: %s\nmemberName: worker-%d\ngroupSessionTimeout: %s\nsleepAfter: 1s\nlogFormat: json\n",
			m.api, filepath.Join(dir, fmt.Sprintf("data-%d", i)), dsn, i, session)
		if err := os.WriteFile(m.config, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		m.p = startProc(t, fmt.Sprintf("sluice %d", i), m.config, m.api)
		ms[i] = m
	}
	ms[0].p.CLI("pipes", "create", "sleepy", "--bootstrap-servers", strings.Join(cl.ListenAddrs(), ","), "--topic", topic,
		"--target", srv.URL, "--batch-size", "20", "--batching-window", "10ms", "--consumer-group-id", group)
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 5, 2500*time.Millisecond, c)
	progress(t, c, 6, 30*time.Second, "before the first kill")

	kills := mode(4, 12)
	for range kills {
		time.Sleep(3*time.Second + time.Duration(mrand.IntN(3000))*time.Millisecond)
		m := ms[mrand.IntN(len(ms))]
		f := c.Begin("sigkill")
		m.p.Signal(syscall.SIGKILL)
		f.End(0)
		m.p = startProc(t, m.p.Name, m.config, m.api)
	}
	figure(t, "3 processes on one PostgreSQL store sleeping between rounds 2.5 s apart (sleepAfter 1s), %d SIGKILLs of a random one 3–6 s apart, each restarted at once", kills)
	allDelivered(t, prod, c, 2*time.Minute)

	asleep := func() bool {
		for _, m := range ms {
			if !strings.Contains(m.p.CLI("pipes", "describe", "sleepy"), "left while asleep") {
				return false
			}
		}
		return true
	}
	waitFor(t, 60*time.Second, "every member to fall asleep", asleep)
	last := startProducer(t, cl.ListenAddrs(), topic, parts, 5, time.Hour, c)
	waitFor(t, 30*time.Second, "one more round to be produced", func() bool { return last.rounds.Load() >= 1 })
	allDelivered(t, last, c, time.Minute)
	for _, m := range ms {
		m.p.Signal(syscall.SIGTERM)
	}
	finish(t, c, began)
}
