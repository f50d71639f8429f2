package destination

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/stage"
)

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("file does not end with a whole line: %q", b[max(0, len(b)-40):])
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	return lines
}

func TestFileAppendsLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new", "deeper", "failures.jsonl")
	d, err := NewFile(path, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	recs := sample("orders", 2)
	ctx := context.Background()
	first := stage.Failure{Topic: "orders", Partition: 2, Records: recs[:3], Condition: batch.RetryAttemptsExhausted, Err: &statusErr{500}, Attempts: 4}
	second := stage.Failure{Topic: "orders", Partition: 2, Records: recs[3:], Condition: batch.MaximumPayloadSizeExceeded, Attempts: 1}
	if err := d.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := d.Send(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := d.Send(ctx, stage.Failure{Topic: "orders"}); err != nil {
		t.Fatalf("a failure without records: %v", err)
	}

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("file permissions %o, want 600", perm)
	}
	for _, dir := range []string{filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := st.Mode().Perm(); perm != 0o700 {
			t.Errorf("directory %s permissions %o, want 700", filepath.Base(dir), perm)
		}
	}

	lines := readLines(t, path)
	if len(lines) != 2 {
		t.Fatalf("%d lines, want one per failure with records (2)", len(lines))
	}
	for i, f := range []stage.Failure{first, second} {
		var rec Record
		if err := json.Unmarshal(lines[i], &rec); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if rec.RequestContext.Condition != f.Condition || rec.RequestContext.ApproximateInvokeCount != f.Attempts || rec.KafkaBatchInfo.BatchSize != len(f.Records) {
			t.Errorf("line %d: requestContext %+v, batchSize %d; want %s, %d attempts, %d records",
				i, rec.RequestContext, rec.KafkaBatchInfo.BatchSize, f.Condition, f.Attempts, len(f.Records))
		}
		entries, err := DecodeLine(lines[i])
		if err != nil {
			t.Fatal(err)
		}
		checkEntries(t, entries, f.Records)
	}
	if !bytes.Contains(lines[1], []byte(`"responseContext":null`)) {
		t.Errorf("a payload-size failure has a responseContext: %s", lines[1])
	}

	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Send(ctx, first); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Send after Close: %v, want an error saying it is closed", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// Opening again appends; it never truncates what is there.
	d2, err := NewFile(path, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	defer d2.Close()
	if err := d2.Send(ctx, first); err != nil {
		t.Fatal(err)
	}
	if n := len(readLines(t, path)); n != 3 {
		t.Errorf("%d lines after reopening and one more Send, want 3", n)
	}
}

func TestFileConcurrentSendsWriteWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "failures.jsonl")
	d, err := NewFile(path, testMeta())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	const senders, each = 8, 25
	// Big values, so a line spans many pages and interleaving would show.
	big := bytes.Repeat([]byte("x"), 64<<10)
	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				rec := &kgo.Record{Topic: "t", Partition: int32(s), Offset: int64(i), Key: fmt.Appendf(nil, "%d-%d", s, i), Value: big}
				errs <- d.Send(context.Background(), stage.Failure{Topic: "t", Partition: int32(s), Records: []*kgo.Record{rec}, Condition: batch.RetryAttemptsExhausted})
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	lines := readLines(t, path)
	if len(lines) != senders*each {
		t.Fatalf("%d lines, want %d", len(lines), senders*each)
	}
	seen := map[string]bool{}
	for i, line := range lines {
		entries, err := DecodeLine(line)
		if err != nil {
			t.Fatalf("line %d is not a whole record: %v", i, err)
		}
		if len(entries) != 1 || !bytes.Equal(entries[0].Value, big) {
			t.Fatalf("line %d does not hold its record", i)
		}
		seen[string(entries[0].Key)] = true
	}
	if len(seen) != senders*each {
		t.Errorf("%d distinct records, want %d", len(seen), senders*each)
	}
}

func TestFileErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewFile("", Meta{}); err == nil {
		t.Error("an empty path was accepted")
	}
	// A path under a regular file cannot be created.
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := NewFile(filepath.Join(blocker, "failures.jsonl"), Meta{})
	if err == nil || !strings.Contains(err.Error(), "failures.jsonl") {
		t.Errorf("NewFile under a file: %v, want an error naming the path", err)
	}

	d, err := NewFile(filepath.Join(dir, "f.jsonl"), Meta{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := stage.Failure{Topic: "t", Records: sample("t", 0)[:1], Condition: batch.RetryAttemptsExhausted}
	if err := d.Send(ctx, f); err == nil {
		t.Error("Send with a canceled context succeeded")
	}
	if lines := readLines(t, filepath.Join(dir, "f.jsonl")); len(lines) != 0 {
		t.Errorf("a canceled Send wrote %d lines", len(lines))
	}
}
