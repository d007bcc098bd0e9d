package groupcommit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/groupcommit"
)

// hanging is an Exec that never answers until its context ends, as a
// database that does not answer.
func hanging(entered chan<- struct{}) groupcommit.Exec[int, int] {
	return func(ctx context.Context, _ []*groupcommit.Call[int, int]) error {
		entered <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
}

func TestDoReturnsWhenItsContextEnds(t *testing.T) {
	entered := make(chan struct{}, 1)
	b := groupcommit.New(hanging(entered), groupcommit.Config{})
	defer func() { b.Abort(); b.Close() }()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := b.Do(ctx, 1); done <- err }()
	<-entered
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Do: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Do still waits on a batch that hangs after its context ended")
	}
}

func TestAbortedCloseReturnsWhileExecHangs(t *testing.T) {
	entered := make(chan struct{}, 1)
	b := groupcommit.New(hanging(entered), groupcommit.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = b.Do(ctx, 1) }()
	<-entered
	cancel()
	closed := make(chan struct{})
	go func() { b.Abort(); b.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close waits for a batch that hangs")
	}
	if _, err := b.Do(context.Background(), 2); !errors.Is(err, groupcommit.ErrClosed) {
		t.Fatalf("Do after Close: %v, want ErrClosed", err)
	}
}
