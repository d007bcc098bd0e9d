package testkit

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Map // path → *buildResult
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// Build compiles the main package pkg (an import path) once per test binary
// and returns the executable's path. Builds run without the race detector:
// they stand in for programs a user runs, not the code under test.
func Build(tb testing.TB, pkg string) string {
	tb.Helper()
	v, _ := buildOnce.LoadOrStore(pkg, &buildResult{})
	r := v.(*buildResult)
	r.once.Do(func() {
		dir, err := os.MkdirTemp("", "eventkit-build-")
		if err != nil {
			r.err = err
			return
		}
		r.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", r.path, pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			r.err = &buildError{pkg: pkg, out: string(out), err: err}
		}
	})
	if r.err != nil {
		tb.Fatal(r.err)
	}
	return r.path
}

type buildError struct {
	pkg, out string
	err      error
}

func (e *buildError) Error() string { return "go build " + e.pkg + ": " + e.err.Error() + "\n" + e.out }

// BrokerProcess starts an embedded broker in a process of its own, seeded
// with records records of size bytes on topic (keys distinct keys, 0 for
// none), and returns its address once the backlog is written.
func BrokerProcess(tb testing.TB, topic string, partitions, records, size, keys int) string {
	tb.Helper()
	bin := Build(tb, "github.com/eventkit/eventkit/internal/testkit/brokerd")
	cmd := exec.Command(bin, "-topic", topic, "-partitions", strconv.Itoa(partitions),
		"-records", strconv.Itoa(records), "-size", strconv.Itoa(size), "-keys", strconv.Itoa(keys))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if strings.HasPrefix(s.Text(), "ready ") {
				line <- strings.TrimPrefix(s.Text(), "ready ")
				return
			}
		}
		close(line)
	}()
	select {
	case addr, ok := <-line:
		if !ok {
			tb.Fatal("brokerd exited before it was ready")
		}
		return addr
	case <-time.After(5 * time.Minute):
		tb.Fatal("brokerd not ready within 5 minutes")
		return ""
	}
}
