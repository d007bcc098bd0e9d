package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
)

const (
	topic = "crashtest.events"
	group = "crashtest"
)

// serveBroker runs the embedded broker with the topic, prints "ready ADDR"
// and serves until its standard input closes (the harness ends or dies).
func serveBroker(partitions int32) error {
	b, err := kafka.StartBroker(kafka.BrokerConfig{
		Partitions: partitions,
		Topics:     []string{topic},
		// The consumer's short session lets a restart take over a killed
		// member's partitions within a second or two.
		Opts: []kfake.Opt{kfake.GroupMinSessionTimeout(500 * time.Millisecond)},
	})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Println("ready", b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// runConsumer is the consumer child: the agent with the idempotency
// middleware, whose handler writes the side effect and the done mark in
// one transaction. It runs until SIGTERM, or SIGKILL.
func runConsumer(store, brokers, dsn string, lease time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	b, ok := backends[store]
	if !ok {
		return fmt.Errorf("unknown store %q", store)
	}
	s, err := b.open(ctx, dsn)
	if err != nil {
		return err
	}
	defer s.close()
	h := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		c, ok := idempotency.ClaimFrom(ctx)
		if !ok {
			return eventkit.Kill(errors.New("no claim in the handler's context: the idempotency middleware is missing"))
		}
		if err := s.effect(ctx, c, ev); err != nil {
			return eventkit.Retry(err) // fenced, or the database failed: the effect rolled back
		}
		return nil
	})
	c, err := consumer.New(eventkit.Chain(h, idempotency.Middleware(s.store, idempotency.LeaseTTL(lease))),
		consumer.Brokers(brokers),
		consumer.Group(group),
		consumer.Topics(topic),
		consumer.Ordering(consumer.Unordered),
		consumer.Concurrency(64),
		// Events whose claims a killed process left behind wait out the
		// lease; they must not halt the agent meanwhile.
		consumer.MaxRetries(-1),
		consumer.Backoff(10*time.Millisecond, 500*time.Millisecond),
		consumer.SessionTimeout(1500*time.Millisecond),
		consumer.RebalanceTimeout(time.Second),
		consumer.HeartbeatInterval(100*time.Millisecond),
		consumer.DrainTimeout(500*time.Millisecond),
		consumer.CommitInterval(100*time.Millisecond),
	)
	if err != nil {
		return err
	}
	return c.Run(ctx)
}

// proc is a child process of this binary.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process is reaped; err is then set
	err  error
}

// spawn starts this binary with args; the child dies with the harness.
func spawn(stdin io.Reader, stdout io.Writer, args ...string) (*proc, error) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop asks the process to finish (SIGTERM) and returns its exit error,
// killing it after timeout.
func (p *proc) stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("did not stop within %v after SIGTERM", timeout)
	}
}

// startBroker runs the broker child and returns its address.
func startBroker(partitions int32) (addr string, stop func(), err error) {
	r, w := io.Pipe()
	stdin, toChild := io.Pipe()
	p, err := spawn(stdin, w, "-serve-broker", fmt.Sprintf("-partitions=%d", partitions))
	if err != nil {
		return "", nil, err
	}
	stop = func() {
		toChild.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.kill()
		}
		w.Close()
	}
	s := bufio.NewScanner(r)
	for s.Scan() {
		if a, ok := strings.CutPrefix(s.Text(), "ready "); ok {
			go func() { _, _ = io.Copy(io.Discard, r) }() // until stop closes w
			return a, stop, nil
		}
	}
	stop()
	return "", nil, errors.New("broker child exited before it was ready")
}
