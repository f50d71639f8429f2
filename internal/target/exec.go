package target

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluice-dev/sluice/internal/batch"
	"github.com/sluice-dev/sluice/internal/event"
	"github.com/sluice-dev/sluice/internal/pipe"
)

// The exec kind: the pipe's target.exec section.
func init() {
	Register(Kind{Name: pipe.KindExec, Describe: describeExec, Open: openExec})
}

// Bounds of what a run may make Sluice hold.
const (
	// maxExecStdout is more than a partial batch response of the largest
	// batch needs; the rest is not read into memory.
	maxExecStdout = 1 << 20
	// maxExecStderr is the tail of stderr a failure shows.
	maxExecStderr = 2 << 10
	// execWaitDelay is how long Wait waits for pipes that a process the
	// command left behind still holds, once the command exited or was
	// killed.
	execWaitDelay = time.Second
)

func describeExec(spec pipe.Spec, _ Env) string {
	return "exec " + strings.Join(spec.Target.Exec.Command, " ")
}

func openExec(_ context.Context, spec pipe.Spec, env Env) (Target, error) {
	t := spec.Target.Exec
	switch {
	case len(t.Command) == 0 || t.Command[0] == "":
		return nil, errors.New("target.exec.command is required: give the program to run and its arguments")
	case env.Encoder == nil || spec.PayloadLimitBytes <= 0:
		return nil, errors.New("target: Encoder and PayloadLimitBytes are required")
	}
	base := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		// Sluice's own settings (SLUICE_MASTER_KEY, SLUICE_TOKEN) are
		// credentials a command has no business seeing, and the prefix
		// is the batch's.
		return strings.HasPrefix(kv, pipe.ExecEnvReservedPrefix)
	})
	for _, name := range slices.Sorted(maps.Keys(t.Env)) {
		base = append(base, name+"="+t.Env[name])
	}
	return &Exec{
		command: slices.Clone(t.Command), dir: t.Dir, env: base,
		timeout: spec.TargetTimeout(), payloadLimit: spec.PayloadLimitBytes,
		encoder: env.Encoder, pipe: env.Pipe,
	}, nil
}

// Exec runs a command per batch, in a process group of its own, with the
// batch on stdin as the HTTP target would post it. Exit status 0 is
// success, and stdout may then be a partial batch response; any other
// status fails the batch.
type Exec struct {
	command      []string
	dir          string
	env          []string // Sluice's environment and the section's env
	timeout      time.Duration
	payloadLimit int
	encoder      *event.Encoder
	pipe         string
	pool         sync.Pool // *[]byte bodies
}

// ExecError is a failed run of an exec target's command.
type ExecError struct {
	// Problem is the user-facing reason, without the "PROBLEM: " prefix.
	Problem string
	// ExitCode is the status the command exited with, or -1 when it did
	// not exit on its own.
	ExitCode int
	// Unavailable is set when the command did not run to its end (it
	// could not start, timed out or was abandoned): the records are not
	// to blame, so splitting the batch cannot help.
	Unavailable bool
	Err         error
}

// Error is the Problem alone: it already says what Err would (ProblemOf
// shows Error for any type but *Error).
func (e *ExecError) Error() string { return e.Problem }

func (e *ExecError) Unwrap() error { return e.Err }

// TargetUnavailable: see batch.Unavailable.
func (e *ExecError) TargetUnavailable() bool { return e.Unavailable }

// Close releases nothing: no command outlives its Deliver.
func (e *Exec) Close() error { return nil }

// Deliver runs the command once for the batch.
func (e *Exec) Deliver(ctx context.Context, b *batch.Batch) batch.Result {
	if b.Len() == 0 {
		return batch.DeliveredAll(b)
	}
	if b.Oversized {
		return oversizedRecord(b, e.payloadLimit)
	}
	if err := ctx.Err(); err != nil {
		return batch.FailedAll(b, &ExecError{Problem: "delivery abandoned before command " + e.command[0] + " started: " + err.Error(),
			ExitCode: -1, Unavailable: true, Err: err})
	}
	bufp, _ := e.pool.Get().(*[]byte)
	if bufp == nil {
		bufp = new([]byte)
	}
	defer e.pool.Put(bufp)
	body, contentType, ceAttrs := encodeBody((*bufp)[:0], b, e.encoder)
	*bufp = body
	if len(body) > e.payloadLimit {
		return batch.FailedAll(b, oversizedBatch(len(body), e.payloadLimit))
	}
	stdout, cut, err := e.run(ctx, b, body, contentType, ceAttrs)
	if err != nil {
		return batch.FailedAll(b, err)
	}
	return execResult(b, stdout, cut)
}

// encodeBody appends to dst the body the HTTP target posts for b, and
// says its media type and, in CloudEvents binary mode, the event's
// attributes (the ce-* headers).
func encodeBody(dst []byte, b *batch.Batch, enc *event.Encoder) (body []byte, contentType string, ce [][2]string) {
	switch {
	case b.Payload != nil:
		// An earlier stage (enrichment, the input transformer) made it.
		return append(dst, b.Payload...), "application/json", nil
	case enc.Binary(b.Len()):
		ce, contentType = enc.BinaryHeaders(b.Records[0])
		return append(dst, b.Records[0].Value...), contentType, ce
	default:
		return enc.Append(dst, b.Records), enc.ContentType(), nil
	}
}

// oversizedRecord fails the one record of an Oversized batch for good.
func oversizedRecord(b *batch.Batch, limit int) batch.Result {
	r := b.Records[0]
	return batch.All(1, batch.Outcome{Status: batch.Failed, Condition: batch.MaximumPayloadSizeExceeded, Err: &Error{
		Problem: fmt.Sprintf("record %s-%d offset %d is %d bytes as an event, over the pipe's payload limit of %d bytes",
			r.Topic, r.Partition, r.Offset, b.Size, limit),
		Err: ErrOversized,
	}})
}

// oversizedBatch fails a batch whose body passed the limit: a split of
// it may fit.
func oversizedBatch(n, limit int) error {
	return &Error{Problem: fmt.Sprintf("batch is %d bytes, over the payload limit of %d bytes", n, limit), Err: ErrOversized}
}

// run runs the command with body on stdin and returns the start of what
// it wrote to stdout (cut when there was more), or why it failed.
func (e *Exec) run(ctx context.Context, b *batch.Batch, body []byte, contentType string, ceAttrs [][2]string) (stdout []byte, cut bool, err error) {
	runCtx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	cmd := exec.CommandContext(runCtx, e.command[0], e.command[1:]...)
	cmd.Dir = e.dir
	cmd.Env = append(slices.Clip(e.env),
		"SLUICE_PIPE="+e.pipe,
		"SLUICE_TOPIC="+b.Topic,
		"SLUICE_PARTITION="+strconv.Itoa(int(b.Partition)),
		"SLUICE_FIRST_OFFSET="+strconv.FormatInt(b.FirstOffset(), 10),
		"SLUICE_LAST_OFFSET="+strconv.FormatInt(b.LastOffset(), 10),
		"SLUICE_RECORDS="+strconv.Itoa(b.Len()),
		"SLUICE_CONTENT_TYPE="+contentType,
	)
	for _, kv := range ceAttrs {
		// The HTTP target sends these as headers; a command has no
		// headers, and without them a binary-mode body has no id.
		name := "SLUICE_CE_" + strings.ToUpper(strings.TrimPrefix(kv[0], "ce-"))
		if !strings.ContainsRune(kv[1], 0) {
			cmd.Env = append(cmd.Env, name+"="+kv[1])
		}
	}
	cmd.Stdin = bytes.NewReader(body)
	out := &headBuffer{limit: maxExecStdout}
	stderr := &tailBuffer{limit: maxExecStderr}
	cmd.Stdout, cmd.Stderr = out, stderr
	// A group of its own, so that a kill reaches what the command started
	// (a shell script's children) and not Sluice.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	// A child left behind may hold stdout or stderr open after the
	// command exited or was killed: Wait must not wait for it.
	cmd.WaitDelay = execWaitDelay

	if err := cmd.Start(); err != nil {
		return nil, false, e.startError(err)
	}
	pid := cmd.Process.Pid
	waitErr := cmd.Wait()
	// Whatever the command left running in its group goes with it: a
	// target holds nothing between batches. A live member keeps the
	// group's id from being reused; without one the kill finds nobody,
	// unless the kernel handed the id out again in these microseconds.
	_ = killGroup(pid)

	state := cmd.ProcessState
	switch {
	case state != nil && state.Success():
		// It exited 0 on its own: even if the deadline passed as it did,
		// or a leftover child held its pipes (ErrWaitDelay), it took the
		// batch.
		return out.buf, out.over, nil
	case runCtx.Err() != nil && ctx.Err() == nil:
		return nil, false, &ExecError{ExitCode: -1, Unavailable: true, Err: runCtx.Err(),
			Problem: withTail(fmt.Sprintf("command %s did not finish within %s and was killed (with its process group)", e.command[0], e.timeout), stderr)}
	case ctx.Err() != nil:
		return nil, false, &ExecError{ExitCode: -1, Unavailable: true, Err: ctx.Err(),
			Problem: withTail(fmt.Sprintf("delivery abandoned: command %s was killed (with its process group)", e.command[0]), stderr)}
	}
	var exitErr *exec.ExitError
	if !errors.As(waitErr, &exitErr) {
		return nil, false, &ExecError{ExitCode: -1, Unavailable: true, Err: waitErr,
			Problem: withTail(fmt.Sprintf("command %s failed: %v", e.command[0], waitErr), stderr)}
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		// Not a kill of Sluice's: the command crashed or something else
		// killed it, which a poison record can cause as well as an exit.
		return nil, false, &ExecError{ExitCode: -1, Err: waitErr,
			Problem: withTail(fmt.Sprintf("command %s was killed by signal %d (%s)", e.command[0], int(ws.Signal()), ws.Signal()), stderr)}
	}
	return nil, false, &ExecError{ExitCode: exitErr.ExitCode(), Err: waitErr,
		Problem: withTail(fmt.Sprintf("command %s exited with status %d", e.command[0], exitErr.ExitCode()), stderr)}
}

// killGroup kills the process group pgid. A group already gone is
// os.ErrProcessDone, as exec.Cmd.Cancel expects.
func killGroup(pgid int) error {
	err := syscall.Kill(-pgid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// startError says why the command could not start, and what to fix.
func (e *Exec) startError(err error) error {
	name := e.command[0]
	fix := ": fix target.exec.command: give the path of an executable file (or the name of one on $PATH)"
	var problem string
	dirOK := true
	if e.dir != "" {
		// With SysProcAttr set, os.StartProcess does not check Dir first:
		// the child's chdir fails as if the program were missing.
		fi, statErr := os.Stat(e.dir)
		dirOK = statErr == nil && fi.IsDir()
	}
	switch {
	case !dirOK:
		problem = fmt.Sprintf("command %s cannot start: its directory %s does not exist or is not a directory: fix target.exec.dir: give an existing directory", name, e.dir)
	case errors.Is(err, exec.ErrNotFound):
		problem = fmt.Sprintf("command %s cannot start: it is not found on $PATH (%s)", name, os.Getenv("PATH")) + fix
	case errors.Is(err, exec.ErrDot):
		problem = fmt.Sprintf("command %s cannot start: it is found only in the working directory through a relative $PATH entry", name) +
			": fix target.exec.command: give its path, e.g. ./" + name
	case errors.Is(err, fs.ErrNotExist):
		problem = fmt.Sprintf("command %s cannot start: no such file (or its #! interpreter is missing)", name) + fix
	case errors.Is(err, fs.ErrPermission):
		problem = fmt.Sprintf("command %s cannot start: permission denied (is it executable? chmod +x)", name) + fix
	case errors.Is(err, syscall.ENOEXEC):
		problem = fmt.Sprintf("command %s cannot start: it is not an executable format (a script needs a #! line)", name) + fix
	default:
		problem = fmt.Sprintf("command %s cannot start: %v", name, err)
	}
	return &ExecError{Problem: problem, ExitCode: -1, Unavailable: true, Err: err}
}

// execResult reads the stdout of a command that exited 0. Only a JSON
// object with a batchItemFailures member is a partial batch response;
// anything else is output the command was free to write, and means every
// record was delivered.
func execResult(b *batch.Batch, stdout []byte, cut bool) batch.Result {
	out := bytes.TrimSpace(stdout)
	if len(out) == 0 || out[0] != '{' {
		return batch.DeliveredAll(b)
	}
	if cut {
		// Cut short, it cannot parse; but a cut partial batch response
		// taken for "all delivered" would drop the records it names.
		if bytes.Contains(out, []byte(`"batchItemFailures"`)) {
			return batch.FailedAll(b, &ExecError{
				Problem: fmt.Sprintf("command's stdout holds a partial batch response over %d bytes, too long to read", maxExecStdout)})
		}
		return batch.DeliveredAll(b)
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(out, &members); err != nil {
		return batch.DeliveredAll(b)
	}
	if _, ok := members["batchItemFailures"]; !ok {
		return batch.DeliveredAll(b)
	}
	return partialResult(b, out)
}

// headBuffer keeps the first limit bytes written to it and counts the
// rest out, so a chatty command cannot hold memory.
type headBuffer struct {
	limit int
	buf   []byte
	over  bool
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.limit - len(h.buf); len(p) > room {
		h.buf = append(h.buf, p[:max(room, 0)]...)
		h.over = true
		return len(p), nil
	}
	h.buf = append(h.buf, p...)
	return len(p), nil
}

// tailBuffer keeps the last limit bytes written to it: a failing
// command's last words say why.
type tailBuffer struct {
	limit int
	buf   []byte
	cut   bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= t.limit {
		t.buf = append(t.buf[:0], p[len(p)-t.limit:]...)
		t.cut = true
		return n, nil
	}
	if over := len(t.buf) + len(p) - t.limit; over > 0 {
		t.buf = t.buf[:copy(t.buf, t.buf[over:])]
		t.cut = true
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// text is the tail on one line, fit for a status: lines joined by " | ",
// control characters blanked, and "…" where the tail was cut.
func (t *tailBuffer) text() string {
	b := t.buf
	if t.cut {
		// The cut may have split a character.
		for len(b) > 0 && !utf8.RuneStart(b[0]) {
			b = b[1:]
		}
	}
	var lines []string
	for line := range strings.SplitSeq(strings.ToValidUTF8(string(b), "�"), "\n") {
		line = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return ' '
			}
			return r
		}, line)
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			lines = append(lines, line)
		}
	}
	s := strings.Join(lines, " | ")
	cut := t.cut
	if len(s) > t.limit {
		// The separators are longer than the line breaks they replace.
		s = s[len(s)-t.limit:]
		for len(s) > 0 && !utf8.RuneStart(s[0]) {
			s = s[1:]
		}
		cut = true
	}
	if cut && s != "" {
		s = "…" + s
	}
	return s
}

// withTail ends problem with the stderr tail, when there is one.
func withTail(problem string, stderr *tailBuffer) string {
	if s := stderr.text(); s != "" {
		return problem + ": " + s
	}
	return problem
}
