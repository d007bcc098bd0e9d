// Package benchkit holds what the benchmark programs share: a broker in a
// child process and the median of the rounds.
package benchkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit/seed"
	"github.com/eventkit/eventkit/kafka"
)

// StartChild runs this same binary with args as the broker child, which
// prints "ready ADDR" once it serves and runs until its standard input
// closes; it returns ADDR and what stops the child. A broker of its own
// keeps its garbage out of the measured process.
func StartChild(args ...string) (addr string, stop func(), err error) {
	cmd := exec.Command(os.Args[0], args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { stdin.Close(); _ = cmd.Wait() }
	s := bufio.NewScanner(stdout)
	for s.Scan() {
		if a, ok := strings.CutPrefix(s.Text(), "ready "); ok {
			return a, stop, nil
		}
	}
	stop()
	return "", nil, errors.New("broker child exited before it was ready")
}

// Median returns the median of xs, 0 when empty.
func Median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// TimeAgent runs the consumer agent with h and opts until h has succeeded
// n times, and returns the time from the first call to the n-th success.
// It fails when Run returns early or the events do not all succeed within
// timeout.
func TimeAgent(ctx context.Context, n int, timeout time.Duration, h eventkit.Handler, opts ...consumer.Opt) (time.Duration, error) {
	var (
		seen, start, end atomic.Int64
		done             = make(chan struct{})
	)
	timed := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		if start.Load() == 0 {
			start.CompareAndSwap(0, time.Now().UnixNano())
		}
		err := h.Handle(ctx, ev)
		if err == nil && seen.Add(1) == int64(n) {
			end.Store(time.Now().UnixNano())
			close(done)
		}
		return err
	})
	c, err := consumer.New(timed, opts...)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- c.Run(ctx) }()
	select {
	case <-done:
	case err := <-errc:
		return 0, fmt.Errorf("Run returned early: %v", err)
	case <-time.After(timeout):
		cancel()
		<-errc
		return 0, fmt.Errorf("handled %d of %d events in %v", seen.Load(), n, timeout)
	}
	cancel()
	if err := <-errc; err != nil {
		return 0, err
	}
	return time.Duration(end.Load() - start.Load()), nil
}

// ServeBroker is the broker child's side of [StartChild]: it starts an
// embedded broker, creates each topic with its partitions and fills it with
// records CloudEvents of size bytes over keys keys, prints "ready ADDR",
// and serves until its standard input closes.
func ServeBroker(topics map[string]int32, records, size, keys int) error {
	b, err := kafka.StartBroker(kafka.BrokerConfig{})
	if err != nil {
		return err
	}
	defer b.Close()
	for topic, parts := range topics {
		if err := b.CreateTopic(topic, parts); err != nil {
			return err
		}
		if err := seed.Events(b.Addr(), topic, records, size, keys); err != nil {
			return err
		}
	}
	Serve(b.Addr())
	return nil
}

// Serve is the child's side of [StartChild] for a broker it set up itself:
// it prints "ready ADDR" and returns once the parent closes stdin (or dies).
func Serve(addr string) {
	fmt.Println("ready", addr)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// Exit ends a benchmark program that failed: err on standard error after
// the program's name, and status 1. A nil err returns.
func Exit(name string, err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}
