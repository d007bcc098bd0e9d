package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/testkit"
)

// waitLimit bounds every wait on a child process.
const waitLimit = 60 * time.Second

// childEnv is the test's environment without any EVENTKIT_ variable, so
// that a developer's settings do not leak into the commands, plus extra.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "EVENTKIT_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// result is how a finished command went.
type result struct {
	stdout, stderr string
	code           int
}

// run runs eventkit with args and stdin to completion, within waitLimit.
func run(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, eventkitBinary(t), args...)
	cmd.Env = childEnv(env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("eventkit %s did not finish within %v; stderr: %s", strings.Join(args, " "), waitLimit, stderr.String())
	case errors.As(err, &exit):
	case err != nil:
		t.Fatalf("eventkit %s: %v", strings.Join(args, " "), err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}
}

// mustRun runs eventkit and fails the test unless it exits 0.
func mustRun(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	r := run(t, nil, stdin, args...)
	if r.code != 0 {
		t.Fatalf("eventkit %s: exit %d; stderr: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

// proc is an eventkit process running in the background of a test.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	lines  chan string // stdout, line by line; closed at its end
	stderr testkit.Buffer
	done   chan struct{} // closed once the process has exited
	code   int           // the exit status, once done is closed
}

// start runs eventkit with args in the background; the test's cleanup kills
// it if it still runs.
func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startEnv(t, nil, args...)
}

// startEnv is start with env added to the child's environment. When the
// test fails (or EVENTKIT_TEST_LOG is set) the cleanup shows its stderr.
func startEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return startIn(t, "", env, args...)
}

// startIn is startEnv in working directory dir ("": the test's own).
func startIn(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: "eventkit " + strings.Join(args, " "), lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd = exec.Command(eventkitBinary(t), args...)
	p.cmd.Dir = dir
	p.cmd.Env = childEnv(env...)
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 8<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		_, _ = io.Copy(io.Discard, out)
		_ = p.cmd.Wait() // after stdout is drained, as exec requires
		p.code = p.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() || os.Getenv("EVENTKIT_TEST_LOG") != "" {
			t.Logf("%s stderr:\n%s", p.name, p.stderr.String())
		}
	})
	return p
}

// line returns the next line of stdout, failing the test if none comes
// within waitLimit.
func (p *proc) line() string {
	p.t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("%s: stdout ended; stderr: %s", p.name, p.stderr.String())
		}
		return l
	case <-time.After(waitLimit):
		p.t.Fatalf("%s: no output within %v; stderr: %s", p.name, waitLimit, p.stderr.String())
		return ""
	}
}

// until returns the lines of stdout up to and including the first that
// equals last.
func (p *proc) until(last string) []string {
	p.t.Helper()
	var out []string
	for {
		l := p.line()
		out = append(out, l)
		if l == last {
			return out
		}
	}
}

// interrupt sends SIGINT, as Ctrl-C does, and returns the exit status.
func (p *proc) interrupt() int {
	p.t.Helper()
	return p.signal(os.Interrupt)
}

// signal sends sig and returns the exit status.
func (p *proc) signal(sig os.Signal) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: %v: %v", p.name, sig, err)
	}
	return p.wait()
}

// wait returns the exit status once the process exits by itself, failing
// the test after waitLimit.
func (p *proc) wait() int {
	p.t.Helper()
	go func() { // drain, so that a last write cannot block the exit
		for range p.lines {
		}
	}()
	select {
	case <-p.done:
		return p.code
	case <-time.After(waitLimit):
		p.t.Fatalf("%s: still running after %v; stderr: %s", p.name, waitLimit, p.stderr.String())
		return -1
	}
}

// lastLine returns the last line the process wrote to stderr.
func (p *proc) lastLine() string {
	lines := strings.Split(strings.TrimRight(p.stderr.String(), "\n"), "\n")
	return lines[len(lines)-1]
}

// freeAddr returns a 127.0.0.1 address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// startBroker runs `eventkit broker` on a free port with args and returns
// its address once it says it is ready.
func startBroker(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	addr := freeAddr(t)
	p := start(t, append([]string{"broker", "--listen", addr}, args...)...)
	if got := p.line(); got != "broker: "+addr {
		t.Fatalf("broker printed %q, want %q", got, "broker: "+addr)
	}
	if got := p.line(); got != "ready" {
		t.Fatalf("broker printed %q, want ready", got)
	}
	return p, addr
}
