package idempotency_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/sqlite"
)

// childEnv makes this test binary run childMain instead of the tests; the
// other EVENTKIT_CHILD_* variables configure it.
const childEnv = "EVENTKIT_CHILD_CONSUMER"

const (
	restartGroup = "payments-group"
	restartTopic = "payments"
)

// childMain runs an agent whose handler always asks for a retry, behind the
// middleware on a SQLite store. It prints "attempt N" as the handler sees
// it, and "halted attempts=N" when the agent halts, then exits 3.
func childMain() int {
	maxRetries, _ := strconv.Atoi(os.Getenv("EVENTKIT_CHILD_MAX_RETRIES"))
	ctx := context.Background()
	db, err := sqlite.Open(ctx, os.Getenv("EVENTKIT_CHILD_DB"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer db.Close()
	store := sqlite.NewIdempotencyStore(db)
	defer store.Close()
	h := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		fmt.Printf("attempt %d\n", consumer.Attempt(ctx))
		return eventkit.Retry(errors.New("always failing"))
	})
	c, err := consumer.New(eventkit.Chain(h, idempotency.Middleware(store)),
		consumer.Brokers(os.Getenv("EVENTKIT_CHILD_BROKER")),
		consumer.Group(restartGroup),
		consumer.Topics(restartTopic),
		consumer.ClientOpts(testkit.ClientOpts()...),
		consumer.MaxRetries(maxRetries),
		// The test kills the process while it waits out this backoff:
		// between two attempts, after the release.
		consumer.Backoff(time.Minute, time.Minute),
		consumer.SessionTimeout(1500*time.Millisecond),
		consumer.RebalanceTimeout(time.Second),
		consumer.DrainTimeout(500*time.Millisecond),
		consumer.HeartbeatInterval(100*time.Millisecond),
		consumer.CommitInterval(50*time.Millisecond),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = c.Run(ctx)
	var ee *consumer.EventError
	if errors.As(err, &ee) && errors.Is(err, consumer.ErrHalted) {
		fmt.Printf("halted attempts=%d\n", ee.Attempts)
		return 3
	}
	fmt.Fprintln(os.Stderr, "Run:", err)
	return 1
}

// child is a running childMain process.
type child struct {
	cmd   *exec.Cmd
	lines chan string // stdout, closed at EOF
}

func startChild(t *testing.T, env ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			c.lines <- s.Text()
		}
	}()
	t.Cleanup(func() { c.kill() })
	return c
}

// next returns the next line the child prints, failing the test if none
// comes within timeout.
func (c *child) next(t *testing.T, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatalf("child exited: %v", c.cmd.Wait())
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("child printed nothing within %v", timeout)
		return ""
	}
}

// kill sends SIGKILL and reaps the process; it returns its exit error.
func (c *child) kill() error {
	if c.cmd.ProcessState == nil {
		_ = c.cmd.Process.Signal(syscall.SIGKILL)
	}
	return c.wait()
}

func (c *child) wait() error {
	for range c.lines {
	}
	if c.cmd.ProcessState != nil {
		return nil
	}
	return c.cmd.Wait()
}

// TestRestartKeepsAttemptCount kills the consumer process between every
// two attempts of an always-failing event: the claim record carries the
// count, so the agent still halts after MaxRetries+1 attempts in all.
func TestRestartKeepsAttemptCount(t *testing.T) {
	const maxRetries = 3
	b := testkit.Broker(t, 1, restartTopic)
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, kafka.RecordOf(restartTopic, &eventkit.Event{ID: "pay-1", Source: "/bank", Type: "payment"}))

	dbPath := filepath.Join(t.TempDir(), "eventkit.db")
	db, err := sqlite.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	env := []string{
		"EVENTKIT_CHILD_BROKER=" + b.Addr(),
		"EVENTKIT_CHILD_DB=" + dbPath,
		"EVENTKIT_CHILD_MAX_RETRIES=" + strconv.Itoa(maxRetries),
	}
	// A restart waits for the group to drop the killed member: seconds.
	const timeout = time.Minute
	for attempt := 1; attempt <= maxRetries; attempt++ {
		c := startChild(t, env...)
		if l := c.next(t, timeout); l != fmt.Sprintf("attempt %d", attempt) {
			t.Fatalf("process %d printed %q, want attempt %d", attempt, l, attempt)
		}
		// Kill only once the failed attempt is released, so that the next
		// process claims it at once instead of waiting out a lease.
		testkit.Eventually(t, timeout, func() error {
			var state, n int
			err := db.Reader().QueryRow(`SELECT state, attempt FROM idempotency`).Scan(&state, &n)
			if err == nil && (state != int(idempotency.Released) || n != attempt) {
				err = fmt.Errorf("record in state %d at attempt %d, want released at %d", state, n, attempt)
			}
			return err
		})
		if err := c.kill(); err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("process %d: exit %v, want killed", attempt, err)
		}
	}
	last := startChild(t, env...)
	if l := last.next(t, timeout); l != fmt.Sprintf("attempt %d", maxRetries+1) {
		t.Fatalf("last process printed %q, want attempt %d", l, maxRetries+1)
	}
	if l := last.next(t, timeout); l != fmt.Sprintf("halted attempts=%d", maxRetries+1) {
		t.Fatalf("last process printed %q, want a halt after %d attempts", l, maxRetries+1)
	}
	var exit *exec.ExitError
	if err := last.wait(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("last process: exit %v, want 3 (halted)", err)
	}
	// Nothing that was not processed is committed.
	if off, ok := testkit.Committed(t, cl, restartGroup)[restartTopic][0]; ok && off > 0 {
		t.Fatalf("committed offset %d past the failing event", off)
	}
}

// A resume grants a fresh retry budget on the member that resumed, and on
// one that takes the event over: the middleware counts the stored attempts
// from 1 again, so the new member does not halt the event at its next
// failure for the attempts made before the resume.
func TestResumeBudgetSurvivesATakeover(t *testing.T) {
	const maxRetries = 2
	b := testkit.Broker(t, 1, restartTopic)
	testkit.Produce(t, testkit.Client(t, b.Addr()), testkit.Events(restartTopic, "e", 1, nil)...)
	store := idempotency.NewMemoryStore()
	var calls atomic.Int32
	started := make(chan struct{}, 1)
	member := func(block bool) *consumer.Consumer {
		h := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
			calls.Add(1)
			if block && consumer.Resumed(ctx) {
				started <- struct{}{}
				<-ctx.Done() // the member stops during the call
				return eventkit.Retry(ctx.Err())
			}
			return eventkit.Retry(errors.New("always failing"))
		})
		return testkit.Agent(t, b, restartGroup, restartTopic,
			eventkit.Chain(h, idempotency.Middleware(store, idempotency.Logger(testkit.Logger(t)))),
			consumer.MaxRetries(maxRetries), consumer.HaltPolicy(consumer.PausePartition),
			consumer.Backoff(time.Millisecond, time.Millisecond))
	}
	halted := func(c *consumer.Consumer) func() error {
		return func() error {
			if len(c.Halted()) == 0 {
				return errors.New("not halted yet")
			}
			return nil
		}
	}

	a := member(true)
	runA := testkit.Go(t, a.Run)
	testkit.Eventually(t, 30*time.Second, halted(a))
	if n := calls.Load(); n != maxRetries+1 {
		t.Fatalf("halted after %d calls, want %d", n, maxRetries+1)
	}
	if err := a.Resume(restartTopic, 0, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the resumed event was not handed over again")
	}
	if err := runA.Stop(); err != nil {
		t.Fatal(err)
	}

	calls.Store(0)
	bm := member(false)
	runB := testkit.Go(t, bm.Run)
	testkit.Eventually(t, 30*time.Second, halted(bm))
	// One call of the fresh budget went to the first member.
	if n := calls.Load(); n != maxRetries {
		t.Errorf("the member that took over halted the event after %d calls, want %d", n, maxRetries)
	}
	if err := runB.Stop(); err != nil {
		t.Fatal(err)
	}
}
