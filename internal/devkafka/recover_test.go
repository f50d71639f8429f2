package devkafka

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTopicsSurviveSIGKILL runs the broker in a child process, creates a
// topic there after it started, produces to it, SIGKILLs the child (kfake
// saves its topic list only on a clean stop), and starts a broker on the
// same data dir: the topic and its records are back.
func TestTopicsSurviveSIGKILL(t *testing.T) {
	if dir := os.Getenv("DEVKAFKA_TEST_CHILD"); dir != "" {
		b, err := Start(context.Background(), Config{DataDir: dir, Addr: "127.0.0.1:0"})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Println(b.Addrs()[0])
		time.Sleep(time.Minute) // killed before this ends
		os.Exit(0)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestTopicsSurviveSIGKILL$")
	cmd.Env = append(os.Environ(), "DEVKAFKA_TEST_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.HasPrefix(line, "error") {
		t.Fatalf("child broker: %q, %v", line, err)
	}
	addr := strings.TrimSpace(line)

	const topic, n = "made-after-start", 10
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := prod.ProduceSync(t.Context(), &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	prod.Close()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	b := start(t, Config{DataDir: dir, Addr: "127.0.0.1:0"})
	cl := newClient(t, b, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	recs := consume(t.Context(), t, cl, n)
	if len(recs) != n || string(recs[0].Value) != "v0" {
		t.Fatalf("after the kill the topic holds %d records", len(recs))
	}
}
