package chaos

import (
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

	ms := startServeMembers(t, dsn, 3, session, "sleepAfter: 1s\n")
	ms[0].p.CLI("pipes", "create", "sleepy", "--bootstrap-servers", strings.Join(cl.ListenAddrs(), ","), "--topic", topic,
		"--target", srv.URL, "--batch-size", "20", "--batching-window", "10ms", "--consumer-group-id", group)
	prod := startProducer(t, cl.ListenAddrs(), topic, parts, 5, 2500*time.Millisecond, c)
	progress(t, c, 6, 30*time.Second, "before the first kill")

	kills := mode(4, 12)
	killRandomly(t, c, ms, kills)
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
