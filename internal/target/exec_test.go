package target

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// writeScript writes an executable /bin/sh script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func execSpec(sec pipe.ExecTarget) pipe.Spec {
	return pipe.Spec{Name: "orders", PayloadLimitBytes: pipe.DefaultPayloadLimitBytes, Target: pipe.Target{Exec: &sec}}
}

func openExecT(t *testing.T, spec pipe.Spec, env Env) Target {
	t.Helper()
	if env.Encoder == nil {
		env.Encoder = testEncoder
	}
	tg, err := Open(context.Background(), spec, env)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = tg.Close() })
	return tg
}

// envFile reads the output of env(1) as a map.
func envFile(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	return out
}

// gone reports whether process pid no longer runs. A zombie counts as
// gone: it was killed, and whether something reaps it is up to the
// machine's init, not to the target.
func gone(pid int) bool {
	if errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) STATE …; comm may hold spaces and parentheses.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] == 'Z'
	}
	return false
}

// waitGone waits a few seconds for the process whose pid file is at path
// to be gone.
func waitGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the script wrote no pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file holds %q", data)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the command's child %d still runs after Deliver returned", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecDeliversBodyAndEnvironment(t *testing.T) {
	t.Setenv("EXEC_TEST_INHERITED", "yes")
	t.Setenv("SLUICE_MASTER_KEY", "must-not-leak")
	dir := t.TempDir()
	writeScript(t, dir, "handle.sh", `cat > "$OUT/stdin"; env > "$OUT/env"; pwd > "$OUT/pwd"; echo "done, thanks"`)
	tg := openExecT(t, execSpec(pipe.ExecTarget{Command: []string{"./handle.sh", "--verbose"}, Dir: dir,
		Env: map[string]string{"OUT": dir, "GREETING": "hello world"}}), Env{Pipe: "orders"})

	recs := records("orders", 3, 10, 3, 50)
	if r := tg.Deliver(context.Background(), batchOf(recs)); r.Count(batch.Delivered) != 3 {
		t.Fatalf("Deliver = %d delivered (%v), want 3", r.Count(batch.Delivered), r.Err())
	}
	stdin, err := os.ReadFile(filepath.Join(dir, "stdin"))
	if err != nil {
		t.Fatal(err)
	}
	if want := testEncoder.Append(nil, recs); !bytes.Equal(stdin, want) {
		t.Fatalf("stdin is not the event the HTTP target posts:\ngot  %.300s\nwant %.300s", stdin, want)
	}
	env := envFile(t, filepath.Join(dir, "env"))
	for k, want := range map[string]string{
		"SLUICE_PIPE": "orders", "SLUICE_TOPIC": "orders", "SLUICE_PARTITION": "3",
		"SLUICE_FIRST_OFFSET": "10", "SLUICE_LAST_OFFSET": "12", "SLUICE_RECORDS": "3",
		"SLUICE_CONTENT_TYPE": "application/json", "GREETING": "hello world", "EXEC_TEST_INHERITED": "yes",
	} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	if v, ok := env["SLUICE_MASTER_KEY"]; ok {
		t.Errorf("Sluice's own SLUICE_MASTER_KEY reached the command (%q)", v)
	}
	if pwd, _ := os.ReadFile(filepath.Join(dir, "pwd")); strings.TrimSpace(string(pwd)) != dir {
		t.Errorf("working directory %q, want %q", bytes.TrimSpace(pwd), dir)
	}
}

func TestExecBodyIsWhatHTTPPosts(t *testing.T) {
	dir := t.TempDir()
	script := writeScript(t, dir, "handle.sh", `cat > "$OUT/stdin"; env > "$OUT/env"`)
	spec := execSpec(pipe.ExecTarget{Command: []string{script}, Env: map[string]string{"OUT": dir}})

	t.Run("payload", func(t *testing.T) {
		tg := openExecT(t, spec, Env{})
		payload := []byte(`[{"order":1},{"order":2}]`)
		if r := tg.Deliver(context.Background(), batchOf(records("t", 0, 0, 2, 5)).WithPayload(payload)); r.Count(batch.Delivered) != 2 {
			t.Fatalf("Deliver: %v", r.Err())
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "stdin")); !bytes.Equal(got, payload) {
			t.Fatalf("stdin %q, want the payload %q", got, payload)
		}
		if ct := envFile(t, filepath.Join(dir, "env"))["SLUICE_CONTENT_TYPE"]; ct != "application/json" {
			t.Fatalf("SLUICE_CONTENT_TYPE %q", ct)
		}
	})
	t.Run("cloudevents binary", func(t *testing.T) {
		enc, err := event.NewFormatEncoder(event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: []string{"b:9092"}}, event.FormatCloudEvents)
		if err != nil {
			t.Fatal(err)
		}
		enc.UseBinaryMode()
		tg := openExecT(t, spec, Env{Encoder: enc})
		rec := records("t", 1, 7, 1, 5)[0]
		rec.Value = []byte(`{"order":7}`)
		b := batchOf(records("t", 1, 7, 1, 5))
		b.Records[0] = rec
		if r := tg.Deliver(context.Background(), b); r.Count(batch.Delivered) != 1 {
			t.Fatalf("Deliver: %v", r.Err())
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "stdin")); !bytes.Equal(got, rec.Value) {
			t.Fatalf("stdin %q, want the value (binary mode)", got)
		}
		env := envFile(t, filepath.Join(dir, "env"))
		if env["SLUICE_CONTENT_TYPE"] != "application/json" || env["SLUICE_CE_ID"] != "t-1-7" || env["SLUICE_CE_SPECVERSION"] != "1.0" {
			t.Fatalf("content type %q, ce id %q, specversion %q; want the binary-mode attributes",
				env["SLUICE_CONTENT_TYPE"], env["SLUICE_CE_ID"], env["SLUICE_CE_SPECVERSION"])
		}
	})
	t.Run("cloudevents structured", func(t *testing.T) {
		enc, err := event.NewFormatEncoder(event.Source{EventSource: event.SourceSelfManaged, BootstrapServers: []string{"b:9092"}}, event.FormatCloudEvents)
		if err != nil {
			t.Fatal(err)
		}
		tg := openExecT(t, spec, Env{Encoder: enc})
		recs := records("t", 1, 7, 2, 5)
		if r := tg.Deliver(context.Background(), batchOf(recs)); r.Count(batch.Delivered) != 2 {
			t.Fatalf("Deliver: %v", r.Err())
		}
		if got, _ := os.ReadFile(filepath.Join(dir, "stdin")); !bytes.Equal(got, enc.Append(nil, recs)) {
			t.Fatalf("stdin %.200q, want the encoder's batch", got)
		}
		if ct := envFile(t, filepath.Join(dir, "env"))["SLUICE_CONTENT_TYPE"]; ct != event.ContentTypeCloudEventsBatch {
			t.Fatalf("SLUICE_CONTENT_TYPE %q, want %q", ct, event.ContentTypeCloudEventsBatch)
		}
	})
}

func TestExecPartialBatchResponse(t *testing.T) {
	dir := t.TempDir()
	recs := records("orders", 0, 10, 4, 5)
	cases := []struct {
		name   string
		stdout string
		want   []batch.Status
		inErr  string
	}{
		{"second failed", `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":11}}]}`,
			[]batch.Status{batch.Delivered, batch.Failed, batch.Pending, batch.Pending}, "offset 11 failed"},
		{"string offset, after log lines on stderr", `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":"13"}}]}`,
			[]batch.Status{batch.Delivered, batch.Delivered, batch.Delivered, batch.Failed}, "offset 13"},
		{"empty list", `{"batchItemFailures":[]}`, []batch.Status{batch.Delivered, batch.Delivered, batch.Delivered, batch.Delivered}, ""},
		{"not in the batch", `{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":99}}]}`,
			[]batch.Status{batch.Failed, batch.Failed, batch.Failed, batch.Failed}, "not in the batch"},
		{"log lines are no response", "processing 4 records\nall good\n", []batch.Status{batch.Delivered, batch.Delivered, batch.Delivered, batch.Delivered}, ""},
		{"another object is no response", `{"ok":true}`, []batch.Status{batch.Delivered, batch.Delivered, batch.Delivered, batch.Delivered}, ""},
		{"nothing", "", []batch.Status{batch.Delivered, batch.Delivered, batch.Delivered, batch.Delivered}, ""},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("stdout-%d", i))
			if err := os.WriteFile(out, []byte(c.stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			script := writeScript(t, dir, fmt.Sprintf("handle-%d.sh", i), `cat > /dev/null; echo "a log line" >&2; cat "$1"`)
			tg := openExecT(t, execSpec(pipe.ExecTarget{Command: []string{script, out}}), Env{})
			r := tg.Deliver(context.Background(), batchOf(recs))
			for j, want := range c.want {
				if got := r.At(j).Status; got != want {
					t.Errorf("record %d: %s, want %s (%v)", j, got, want, r.At(j).Err)
				}
			}
			if c.inErr != "" && (r.Err() == nil || !strings.Contains(r.Err().Error(), c.inErr)) {
				t.Errorf("error %v, want it to mention %q", r.Err(), c.inErr)
			}
		})
	}
}

func TestExecNonZeroExitFailsEveryRecord(t *testing.T) {
	dir := t.TempDir()
	// Far more stderr than is kept: only its tail may reach the error.
	script := writeScript(t, dir, "handle.sh", `cat > /dev/null
i=0; while [ $i -lt 3000 ]; do echo "noise line $i" >&2; i=$((i+1)); done
echo "cannot parse record 11" >&2
echo "giving up" >&2
exit 3`)
	tg := openExecT(t, execSpec(pipe.ExecTarget{Command: []string{script}}), Env{})
	r := tg.Deliver(context.Background(), batchOf(records("orders", 0, 10, 3, 5)))
	if r.Count(batch.Failed) != 3 || r.Final() != 0 {
		t.Fatalf("%d failed, %d final; want all 3 Failed", r.Count(batch.Failed), r.Final())
	}
	err := r.Err()
	msg := ProblemOf(err)
	want := "command " + script + " exited with status 3: "
	if !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, "cannot parse record 11 | giving up") {
		t.Fatalf("problem %q, want %q… ending with the stderr tail", msg, want)
	}
	if strings.Contains(msg, "noise line 0 ") || len(msg) > len(want)+maxExecStderr+len("…") || len(msg) < len(want)+maxExecStderr-20 {
		t.Fatalf("problem is %d bytes: it keeps other than the %d-byte stderr tail", len(msg), maxExecStderr)
	}
	if strings.ContainsAny(msg, "\n\r") {
		t.Fatalf("problem %q spans lines", msg)
	}
	var ee *ExecError
	if !errors.As(err, &ee) || ee.ExitCode != 3 {
		t.Fatalf("error %#v, want an *ExecError with ExitCode 3", err)
	}
	if batch.TargetUnavailable(err) {
		t.Fatal("a command that exited 3 counts as the target being down: bisect could not isolate a poison record")
	}
}

func TestExecKilledBySignal(t *testing.T) {
	dir := t.TempDir()
	script := writeScript(t, dir, "handle.sh", `cat > /dev/null; echo "about to crash" >&2; kill -TERM $$`)
	tg := openExecT(t, execSpec(pipe.ExecTarget{Command: []string{script}}), Env{})
	r := tg.Deliver(context.Background(), batchOf(records("orders", 0, 0, 2, 5)))
	msg := ProblemOf(r.Err())
	if r.Count(batch.Failed) != 2 || !strings.Contains(msg, "was killed by signal 15") || !strings.HasSuffix(msg, ": about to crash") {
		t.Fatalf("%d failed, problem %q; want both Failed, naming the signal and the stderr tail", r.Count(batch.Failed), msg)
	}
	if batch.TargetUnavailable(r.Err()) {
		t.Fatal("a crash counts as the target being down: bisect could not isolate a poison record")
	}
}

func TestExecTimeoutKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	// The child holds stdout and stderr open: Wait must not wait for it.
	script := writeScript(t, dir, "handle.sh", `cat > /dev/null
sleep 30 &
echo $! > "$OUT/child.pid"
echo "waiting for the database" >&2
wait`)
	tg := openExecT(t, execSpec(pipe.ExecTarget{Command: []string{script}, TimeoutSeconds: 0.5, Env: map[string]string{"OUT": dir}}), Env{})
	r := tg.Deliver(context.Background(), batchOf(records("orders", 0, 0, 2, 5)))
	if r.Count(batch.Failed) != 2 || r.Final() != 0 {
		t.Fatalf("%d failed, %d final; want both Failed", r.Count(batch.Failed), r.Final())
	}
	want := "command " + script + " did not finish within 500ms and was killed (with its process group): waiting for the database"
	if msg := ProblemOf(r.Err()); msg != want {
		t.Fatalf("problem %q, want %q", msg, want)
	}
	if !batch.TargetUnavailable(r.Err()) {
		t.Fatal("a timed out command blames the records: bisect would split the batch for nothing")
	}
	waitGone(t, filepath.Join(dir, "child.pid"))
}

func TestExecCancelKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	script := writeScript(t, dir, "handle.sh", `cat > /dev/null
sleep 30 &
echo $! > "$OUT/child.pid.tmp"; mv "$OUT/child.pid.tmp" "$OUT/child.pid"
wait`)
	tg := openExecT(t, execSpec(pipe.ExecTarget{Command: []string{script}, Env: map[string]string{"OUT": dir}}), Env{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			if _, err := os.Stat(filepath.Join(dir, "child.pid")); err == nil {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	r := tg.Deliver(ctx, batchOf(records("orders", 0, 0, 2, 5)))
	if r.Count(batch.Failed) != 2 || !batch.TargetUnavailable(r.Err()) || !strings.Contains(ProblemOf(r.Err()), "delivery abandoned") {
		t.Fatalf("%d failed, problem %q; want both Failed as abandoned, the target to blame", r.Count(batch.Failed), ProblemOf(r.Err()))
	}
	waitGone(t, filepath.Join(dir, "child.pid"))
}

func TestExecLeavesNothingRunning(t *testing.T) {
	dir := t.TempDir()
	// Exits 0 at once, leaving a child that holds stdout.
	script := writeScript(t, dir, "handle.sh", `cat > /dev/null
sleep 30 &
echo $! > "$OUT/child.pid"
echo '{"batchItemFailures":[]}'`)
	tg := openExecT(t, execSpec(pipe.ExecTarget{Command: []string{script}, Env: map[string]string{"OUT": dir}}), Env{})
	if r := tg.Deliver(context.Background(), batchOf(records("orders", 0, 0, 2, 5))); r.Count(batch.Delivered) != 2 {
		t.Fatalf("Deliver: %v; a command that exited 0 took the batch", r.Err())
	}
	waitGone(t, filepath.Join(dir, "child.pid"))
}

func TestExecBoundsStdout(t *testing.T) {
	dir := t.TempDir()
	// 4 MiB of output, more than is read.
	script := writeScript(t, dir, "handle.sh", `cat > /dev/null
head -c 4194304 /dev/zero | tr '\0' x`)
	tg := openExecT(t, execSpec(pipe.ExecTarget{Command: []string{script}}), Env{})
	if r := tg.Deliver(context.Background(), batchOf(records("orders", 0, 0, 2, 5))); r.Count(batch.Delivered) != 2 {
		t.Fatalf("Deliver: %v", r.Err())
	}

	// A partial batch response too long to read must not pass for "all
	// delivered".
	big := writeScript(t, dir, "big.sh", `cat > /dev/null
printf '{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":0}}],"pad":"'
head -c 2097152 /dev/zero | tr '\0' x
printf '"}'`)
	tg = openExecT(t, execSpec(pipe.ExecTarget{Command: []string{big}}), Env{})
	r := tg.Deliver(context.Background(), batchOf(records("orders", 0, 0, 2, 5)))
	if r.Count(batch.Failed) != 2 || !strings.Contains(ProblemOf(r.Err()), "too long to read") {
		t.Fatalf("%d failed (%v), want both Failed as too long", r.Count(batch.Failed), r.Err())
	}
}

func TestExecCannotStart(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "plain.sh")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	noShebang := filepath.Join(dir, "binary")
	if err := os.WriteFile(noShebang, []byte("\x01\x02\x03 not a program"), 0o755); err != nil {
		t.Fatal(err)
	}
	ok := writeScript(t, dir, "ok.sh", "cat > /dev/null")
	cases := []struct {
		name string
		sec  pipe.ExecTarget
		want []string
	}{
		{"missing file", pipe.ExecTarget{Command: []string{filepath.Join(dir, "nope.sh")}}, []string{"cannot start", "no such file", "target.exec.command"}},
		{"not on PATH", pipe.ExecTarget{Command: []string{"sluice-exec-test-no-such-command"}}, []string{"cannot start", "not found on $PATH", "target.exec.command"}},
		{"not executable", pipe.ExecTarget{Command: []string{notExec}}, []string{"permission denied", "target.exec.command"}},
		{"not a program", pipe.ExecTarget{Command: []string{noShebang}}, []string{"not an executable format", "target.exec.command"}},
		{"missing dir", pipe.ExecTarget{Command: []string{ok}, Dir: filepath.Join(dir, "gone")}, []string{"cannot start", "target.exec.dir"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tg := openExecT(t, execSpec(c.sec), Env{})
			r := tg.Deliver(context.Background(), batchOf(records("orders", 0, 0, 2, 5)))
			if r.Count(batch.Failed) != 2 || !batch.TargetUnavailable(r.Err()) {
				t.Fatalf("%d failed (%v), want both Failed with the target to blame", r.Count(batch.Failed), r.Err())
			}
			for _, w := range c.want {
				if msg := ProblemOf(r.Err()); !strings.Contains(msg, w) {
					t.Errorf("problem %q does not say %q", msg, w)
				}
			}
		})
	}
}

func TestExecPayloadLimit(t *testing.T) {
	dir := t.TempDir()
	script := writeScript(t, dir, "handle.sh", `cat > /dev/null; touch "$OUT/ran"`)
	recs := records("orders", 0, 0, 3, 100)
	spec := execSpec(pipe.ExecTarget{Command: []string{script}, Env: map[string]string{"OUT": dir}})
	spec.PayloadLimitBytes = len(testEncoder.Append(nil, recs)) - 1
	tg := openExecT(t, spec, Env{})
	r := tg.Deliver(context.Background(), batchOf(recs))
	if r.Count(batch.Failed) != 3 || !errors.Is(r.Err(), ErrOversized) || batch.TargetUnavailable(r.Err()) {
		t.Fatalf("%d failed (%v), want all Failed as oversized, which a split may fix", r.Count(batch.Failed), r.Err())
	}
	if _, err := os.Stat(filepath.Join(dir, "ran")); err == nil {
		t.Fatal("the command ran for a batch over the payload limit")
	}
}

func TestExecDescribe(t *testing.T) {
	spec := execSpec(pipe.ExecTarget{Command: []string{"./handle.sh", "--verbose", "-n", "3"}})
	if got, want := Describe(spec, Env{}), "exec ./handle.sh --verbose -n 3"; got != want {
		t.Fatalf("Describe = %q, want %q", got, want)
	}
	if got := KeyOf(spec, Env{}); got != "" {
		t.Fatalf("KeyOf = %q, want \"\": the spec is all an exec target is made of", got)
	}
}

func TestTailBuffer(t *testing.T) {
	tb := &tailBuffer{limit: 24}
	for _, s := range []string{"first line\n", "\x1b[31mred\x1b[0m\r\n", "ünïcode tail  \n\n"} {
		_, _ = tb.Write([]byte(s))
	}
	if len(tb.buf) > tb.limit {
		t.Fatalf("kept %d bytes, limit %d", len(tb.buf), tb.limit)
	}
	got := tb.text()
	if !strings.HasPrefix(got, "…") || !strings.HasSuffix(got, "m | ünïcode tail") || strings.ContainsAny(got, "\x1b\r\n") {
		t.Fatalf("text %q, want a cut, clean, one-line tail", got)
	}
	// Cut in the middle of a character, which must not show as garbage.
	odd := &tailBuffer{limit: 3}
	_, _ = odd.Write([]byte("aü€"))
	if got := odd.text(); got != "…€" {
		t.Fatalf("text %q, want %q", got, "…€")
	}
	small := &tailBuffer{limit: 64}
	_, _ = small.Write([]byte("  one\ntwo  \n"))
	if got := small.text(); got != "one | two" {
		t.Fatalf("text %q, want %q", got, "one | two")
	}
}

// execReceiver is the exec kind's conformance case: a shell script that
// writes what it read on stdin to a file of its own, then waits on a FIFO
// for the test's answer (ok, or refused, as rcv says) and exits with it.
// The script exits only after the test recorded its batch, so the
// receiver is up to date when Deliver returns.
func execReceiver(t *testing.T, rcv *receiver) (pipe.Spec, Env) {
	dir := t.TempDir()
	inbox := filepath.Join(dir, "inbox")
	if err := os.Mkdir(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	script := writeScript(t, dir, "receive.sh", `set -e
f="$INBOX/$$"
cat > "$f.tmp"
mkfifo "$f.ack"
mv "$f.tmp" "$f.body"
read answer < "$f.ack"
rm -f "$f.ack"
if [ "$answer" != ok ]; then echo "receiver refused the batch" >&2; exit 1; fi
`)
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		answers := map[string]string{} // FIFO → answer not yet written
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			entries, _ := os.ReadDir(inbox)
			for _, e := range entries {
				base, ok := strings.CutSuffix(e.Name(), ".body")
				if !ok {
					continue
				}
				path := filepath.Join(inbox, e.Name())
				body, err := os.ReadFile(path)
				_ = os.Remove(path)
				answer := "ok"
				switch {
				case rcv.refuse.Load():
					answer = "refused"
				case err != nil:
					answer = "unreadable"
				default:
					var ev decodedEvent
					if err := json.Unmarshal(body, &ev); err != nil {
						answer = "not an event"
						break
					}
					for key, recs := range ev.Records {
						for _, r := range recs {
							v, _ := base64.StdEncoding.DecodeString(*r.Value)
							rcv.add(key, string(v))
						}
					}
				}
				answers[filepath.Join(inbox, base+".ack")] = answer
			}
			for fifo, answer := range answers {
				// Not blocking: a script not yet reading is answered on
				// the next round.
				f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0)
				if err != nil {
					if !errors.Is(err, syscall.ENXIO) {
						delete(answers, fifo) // the script is gone
					}
					continue
				}
				_, _ = f.WriteString(answer + "\n")
				_ = f.Close()
				delete(answers, fifo)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	spec := pipe.Spec{Name: "conf", PayloadLimitBytes: pipe.DefaultPayloadLimitBytes,
		Target: pipe.Target{Exec: &pipe.ExecTarget{Command: []string{script}, Env: map[string]string{"INBOX": inbox}}}}
	return spec, Env{Pipe: "conf", Encoder: testEncoder}
}
