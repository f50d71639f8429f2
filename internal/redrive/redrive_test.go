package redrive

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/destination"
	"github.com/sluice-dev/sluice/internal/stage"
)

// writeFailures writes failures of the given partitions and offsets to a
// file destination, as a pipe would.
func writeFailures(t *testing.T, path string, fs ...stage.Failure) {
	t.Helper()
	d, err := destination.NewFile(path, destination.Meta{FunctionARN: "http://target/", BootstrapServers: []string{"b:9092"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, f := range fs {
		if err := d.Send(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
}

func failure(p int32, offsets ...int64) stage.Failure {
	f := stage.Failure{Topic: "orders", Partition: p, Condition: batch.RetryAttemptsExhausted, Attempts: 3}
	for _, o := range offsets {
		f.Records = append(f.Records, &kgo.Record{Topic: "orders", Partition: p, Offset: o, Timestamp: time.UnixMilli(1_700_000_000_000 + o),
			Key: []byte("k"), Value: []byte{byte(o)}})
	}
	return f
}

// A redrive from a file delivers in original order per source partition,
// a dry run changes nothing, and a second redrive delivers only what was
// added since; a target that refuses stops the redrive there.
func TestFileRedrive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dlq.jsonl")
	writeFailures(t, path, failure(1, 7), failure(0, 9), failure(0, 3, 4), failure(1, 2))
	var got []string
	refuse := false
	h := func(_ context.Context, b *batch.Batch) batch.Result {
		if refuse {
			return batch.FailedAll(b, os.ErrDeadlineExceeded)
		}
		for _, r := range b.Records {
			got = append(got, r.Topic+"-"+string(rune('0'+r.Partition))+"@"+string(rune('0'+r.Offset)))
		}
		return batch.DeliveredAll(b)
	}
	run := func(dry bool) (Progress, error) {
		src, err := NewFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		return Run(context.Background(), src, h, Options{BatchSize: 10, Chunk: 3, DryRun: dry})
	}
	p, err := run(true)
	if err != nil || p.Read != 5 || p.Delivered != 0 || len(got) != 0 || len(p.Partitions) != 2 {
		t.Fatalf("dry run = %+v, %v, delivered %v", p, err, got)
	}
	p, err = run(false)
	// Chunks of 3 lines: the first holds partition 1's 7, partition 0's 9
	// and 3,4, each chunk ordered on its own.
	if err != nil || p.Delivered != 5 || !slices.Equal(got, []string{"orders-0@3", "orders-0@4", "orders-0@9", "orders-1@7", "orders-1@2"}) {
		t.Fatalf("redrive = %+v, %v, delivered %v", p, err, got)
	}
	got = nil
	if p, err = run(false); err != nil || p.Read != 0 || len(got) != 0 {
		t.Fatalf("second redrive = %+v, %v, delivered %v; want nothing", p, err, got)
	}
	writeFailures(t, path, failure(0, 8))
	refuse = true
	if _, err = run(false); err == nil {
		t.Fatal("a refusing target did not stop the redrive")
	}
	refuse = false
	if p, err = run(false); err != nil || p.Delivered != 1 || !slices.Equal(got, []string{"orders-0@8"}) {
		t.Fatalf("redrive after the target was fixed = %+v, %v, delivered %v", p, err, got)
	}
}

func TestFileRedriveOfMissingFile(t *testing.T) {
	src, err := NewFile(filepath.Join(t.TempDir(), "never-written.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Run(context.Background(), src, nil, Options{})
	if err != nil || p.Read != 0 || !p.Done {
		t.Fatalf("= %+v, %v; want an empty redrive", p, err)
	}
}
