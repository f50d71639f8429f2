package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-dev/sluice/internal/target"
)

// slot is one execution environment of a hosted function: at most one
// process, running at most one invocation.
type slot struct {
	f    *Function
	n    int
	mu   sync.Mutex
	proc *process // nil when none runs
	// failed marks that the last process was killed or crashed, so the
	// next start counts as a restart.
	failed bool
}

// process is one handler process and the runtime API it polls.
type process struct {
	cmd    *exec.Cmd
	srv    *http.Server
	next   chan *invocation // handed to the process's GET /next
	exited chan struct{}    // closed once the process has exited
	err    error            // why it exited; read after exited

	// writes counts invocations handed over whose payload the runtime
	// API may still be writing: close waits for them, so a payload's
	// buffer is the caller's again once Invoke returns.
	writes sync.WaitGroup

	mu      sync.Mutex
	pid     int // its process group; 0 until started
	cur     *invocation
	lastID  string // the request id of the invocation it ran last
	initErr []byte // the document it posted to /init/error
}

// invocation is one payload on its way through a process.
type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	trace    string
	done     chan target.Invocation // buffered: the runtime API never waits
}

// invoke runs payload on the slot's process, starting one if none runs.
func (s *slot) invoke(ctx context.Context, payload []byte) (target.Invocation, error) {
	deadline := time.Now().Add(s.f.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	inv := &invocation{id: requestID(), payload: payload, deadline: deadline, trace: traceID(), done: make(chan target.Invocation, 1)}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()

	// Hand it over: the process takes it when it asks for the next
	// invocation (after its init, on a cold start). A warm process that
	// exits instead was on its way out after its last invocation (as
	// aws-lambda-go's after a panic): this one goes to a new process, as
	// the reference gives it a new environment.
	var p *process
	for handed := false; !handed; {
		var cold bool
		var err error
		if p, cold, err = s.ensure(); err != nil {
			return target.Invocation{}, &target.InvokeError{Err: err,
				Problem: fmt.Sprintf("function %s: cannot start handler %s", s.f.cfg.Name, s.f.cfg.Path)}
		}
		p.writes.Add(1)
		select {
		case p.next <- inv:
			handed = true
			continue
		case <-p.exited:
			p.writes.Done()
			if cold {
				return s.crashed(p, inv), nil
			}
			s.reap(p, true)
		case <-timer.C:
			p.writes.Done()
			return s.timedOut(p, inv), nil
		case <-ctx.Done():
			p.writes.Done()
			s.kill(p)
			return target.Invocation{}, &target.InvokeError{Err: ctx.Err(), Problem: fmt.Sprintf("function %s: invocation canceled", s.f.cfg.Name)}
		}
	}
	select {
	case r := <-inv.done:
		// Its payload was written: the process answered.
		return r, nil
	case <-p.exited:
		// A handler may answer and then exit (aws-lambda-go does after a
		// panic): the answer counts.
		select {
		case r := <-inv.done:
			s.reap(p, true)
			return r, nil
		default:
		}
		return s.crashed(p, inv), nil
	case <-timer.C:
		select {
		case r := <-inv.done:
			return r, nil
		default:
		}
		return s.timedOut(p, inv), nil
	case <-ctx.Done():
		s.kill(p)
		return target.Invocation{}, &target.InvokeError{Err: ctx.Err(), Problem: fmt.Sprintf("function %s: invocation canceled", s.f.cfg.Name)}
	}
}

// crashed is the answer of a process that exited holding inv (or before
// taking it): its init error if it posted one, else the exit.
func (s *slot) crashed(p *process, inv *invocation) target.Invocation {
	s.reap(p, true)
	p.mu.Lock()
	initErr := p.initErr
	p.mu.Unlock()
	if initErr != nil {
		return target.Invocation{FunctionError: "Unhandled", Payload: initErr}
	}
	msg := fmt.Sprintf("RequestId: %s Error: Runtime exited", inv.id)
	if p.err != nil {
		msg += " with error: " + p.err.Error()
	}
	return target.Invocation{FunctionError: "Unhandled", Payload: ErrorDoc("Runtime.ExitError", msg)}
}

// timedOut kills the process that held inv past its deadline.
func (s *slot) timedOut(p *process, inv *invocation) target.Invocation {
	s.kill(p)
	msg := fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, s.f.cfg.Timeout.Seconds())
	return target.Invocation{FunctionError: "Unhandled", Payload: ErrorDoc("Sandbox.Timedout", msg)}
}

// ensure returns the slot's running process, starting one (a cold start)
// if none runs.
func (s *slot) ensure() (p *process, cold bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.proc; p != nil {
		select {
		case <-p.exited:
			// It died between invocations.
			s.proc, s.failed = nil, true
			p.close()
			// aws-lambda-go's runtime exits after reporting a panic.
			s.f.log.Info("handler process exited after its last invocation; starting another", "err", p.err)
		default:
			return p, false, nil
		}
	}
	p, err = s.start()
	if err != nil {
		s.f.setLastError(err.Error())
		return nil, false, err
	}
	s.f.coldStarts.Add(1)
	if o := s.f.cfg.Observe; o != nil {
		o.ColdStart(s.f.cfg.Name)
	}
	if s.failed {
		s.f.restarts.Add(1)
		if o := s.f.cfg.Observe; o != nil {
			o.Restarted(s.f.cfg.Name)
		}
		s.failed = false
	}
	s.proc = p
	return p, true, nil
}

// start runs a process with a runtime API of its own on a loopback port.
func (s *slot) start() (*process, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the runtime API: %w", err)
	}
	p := &process{next: make(chan *invocation), exited: make(chan struct{})}
	p.srv = &http.Server{Handler: p.routes(s.f), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()

	cfg := &s.f.cfg
	cmd := exec.Command(cfg.Path)
	cmd.Dir = filepath.Dir(cfg.Path)
	cmd.Env = append(s.f.env[:len(s.f.env):len(s.f.env)], "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String(),
		"AWS_LAMBDA_LOG_STREAM_NAME="+time.Now().UTC().Format("2006/01/02")+"/[$LATEST]"+strconv.Itoa(s.n))
	cmd.Stdout = &lineLog{log: s.f.log, stream: "stdout", p: p}
	cmd.Stderr = &lineLog{log: s.f.log, stream: "stderr", p: p}
	// Its own process group, so a kill reaches what the handler started;
	// and output pipes a grandchild holds open do not hold Wait.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		p.close()
		return nil, startError(cfg.Path, err)
	}
	p.cmd = cmd
	p.mu.Lock()
	p.pid = cmd.Process.Pid
	p.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// startError says why the handler could not start, and what to fix.
func startError(path string, err error) error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("handler %s does not exist: build it there, or set the function again with the right --handler", path)
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("handler %s is not executable: chmod +x it", path)
	case errors.Is(err, syscall.ENOEXEC):
		return fmt.Errorf("handler %s is not a program this machine runs (built for another OS or CPU? build it with GOOS=linux for this machine)", path)
	}
	return fmt.Errorf("start handler %s: %w", path, err)
}

// kill stops p (its whole process group) and forgets it.
func (s *slot) kill(p *process) {
	p.signal()
	<-p.exited
	s.reap(p, true)
}

// signal kills p's process group.
func (p *process) signal() {
	p.mu.Lock()
	pid := p.pid
	p.mu.Unlock()
	if pid > 0 {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// close stops p's runtime API and waits for the payloads it was writing.
func (p *process) close() {
	p.srv.Close()
	p.writes.Wait()
}

// reap forgets an exited process; failed marks the next start a restart.
func (s *slot) reap(p *process, failed bool) {
	p.close()
	s.mu.Lock()
	if s.proc == p {
		s.proc = nil
		s.failed = s.failed || failed
	}
	s.mu.Unlock()
}

// stop kills the slot's process, if any.
func (s *slot) stop() {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		s.kill(p)
	}
}

func (s *slot) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return false
	}
	select {
	case <-s.proc.exited:
		return false
	default:
		return true
	}
}

// The runtime API, version 2018-06-01, as
// https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html has it.
const runtimePrefix = "/2018-06-01/runtime"

func (p *process) routes(f *Function) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimePrefix+"/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		select {
		case inv := <-p.next:
			defer p.writes.Done()
			p.mu.Lock()
			p.cur, p.lastID = inv, inv.id
			p.mu.Unlock()
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", FunctionARNPrefix+f.cfg.Name)
			h.Set("Lambda-Runtime-Trace-Id", inv.trace)
			h.Set("Content-Length", strconv.Itoa(len(inv.payload)))
			_, _ = w.Write(inv.payload)
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("POST "+runtimePrefix+"/invocation/{id}/response", func(w http.ResponseWriter, r *http.Request) {
		inv := p.take(r.PathValue("id"))
		if inv == nil {
			runtimeError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation in flight has that id")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, ResponseLimit+1))
		switch {
		case err != nil:
			inv.done <- target.Invocation{FunctionError: "Unhandled", Payload: ErrorDoc("Runtime.InvalidResponse", "reading the response: "+err.Error())}
		case len(body) > ResponseLimit:
			inv.done <- target.Invocation{FunctionError: "Unhandled", Payload: ErrorDoc("Function.ResponseSizeTooLarge",
				fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", ResponseLimit))}
			runtimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "the response is over the 6 MiB limit")
			return
		default:
			inv.done <- target.Invocation{Payload: body}
		}
		accepted(w)
	})
	mux.HandleFunc("POST "+runtimePrefix+"/invocation/{id}/error", func(w http.ResponseWriter, r *http.Request) {
		inv := p.take(r.PathValue("id"))
		if inv == nil {
			runtimeError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation in flight has that id")
			return
		}
		inv.done <- target.Invocation{FunctionError: "Unhandled", Payload: readErrorDoc(r, "")}
		accepted(w)
	})
	mux.HandleFunc("POST "+runtimePrefix+"/init/error", func(w http.ResponseWriter, r *http.Request) {
		doc := readErrorDoc(r, "init failed: ")
		p.mu.Lock()
		p.initErr = doc
		p.mu.Unlock()
		f.setLastError(target.NewFunctionError(f.cfg.Name, target.Invocation{FunctionError: "Unhandled", Payload: doc}).Error())
		accepted(w)
		// The reference ends an environment whose init failed; the next
		// invocation starts another.
		go func() {
			time.Sleep(100 * time.Millisecond) // let it read the answer
			p.signal()
		}()
	})
	return mux
}

// take returns the invocation in flight if it has id, and clears it.
func (p *process) take(id string) *invocation {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || p.cur.id != id {
		return nil
	}
	inv := p.cur
	p.cur = nil
	return inv
}

// requestID is the invocation the process runs, or ran last: output
// reaches the log after the answer may have.
func (p *process) requestID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastID
}

// readErrorDoc reads a runtime's error post: the reference's document
// ({"errorType", "errorMessage", "stackTrace"}), or its text in one, the
// type from the Lambda-Runtime-Function-Error-Type header.
func readErrorDoc(r *http.Request, prefix string) []byte {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	typ := r.Header.Get("Lambda-Runtime-Function-Error-Type")
	var doc map[string]any
	if json.Unmarshal(body, &doc) == nil && doc != nil {
		if t, _ := doc["errorType"].(string); t == "" {
			doc["errorType"] = cmpStr(typ, "Unhandled")
		}
		if m, _ := doc["errorMessage"].(string); prefix != "" {
			doc["errorMessage"] = prefix + m
		}
		out, _ := json.Marshal(doc)
		return out
	}
	return ErrorDoc(cmpStr(typ, "Unhandled"), prefix+string(body))
}

func cmpStr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = io.WriteString(w, `{"status":"OK"}`)
}

func runtimeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(ErrorDoc(typ, msg))
}
