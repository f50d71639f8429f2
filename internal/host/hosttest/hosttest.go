// Package hosttest builds the test handler (../testhandler, a Lambda
// handler written only with aws-lambda-go) and reads what it saw, for the
// tests of every package that hosts it.
package hosttest

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Build compiles the test handler into dir and returns its path.
func Build(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "handler")
	out, err := exec.Command("go", "build", "-o", path, "github.com/sluice-dev/sluice/internal/host/testhandler").CombinedOutput()
	if err != nil {
		t.Fatalf("build the test handler: %v\n%s", err, out)
	}
	return path
}

// Seen is one record as the handler decoded it: a line of its
// TESTHANDLER_OUT (the handler writes this type).
type Seen struct {
	RequestID string            `json:"requestId"`
	Function  string            `json:"function"`
	Deadline  bool              `json:"deadline"`
	Topic     string            `json:"topic"`
	Partition int64             `json:"partition"`
	Offset    int64             `json:"offset"`
	Key       string            `json:"key"`
	Value     string            `json:"value"`
	Headers   map[string]string `json:"headers"`
}

// Read is every record the handler wrote to path (none before it wrote).
func Read(t testing.TB, path string) []Seen {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Seen
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s Seen
		if json.Unmarshal(sc.Bytes(), &s) == nil {
			out = append(out, s)
		}
	}
	return out
}
