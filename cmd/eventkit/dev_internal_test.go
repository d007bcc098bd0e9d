package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// A part that stops by itself (the payments platform after a kill, say)
// ends dev with its error, after every part is stopped, instead of leaving
// dev up with dead addresses.
func TestDevEndsWhenAPartStops(t *testing.T) {
	release, stopped := make(chan struct{}), make(chan struct{})
	part := devPart{name: "payments", start: func(ctx context.Context, env *devEnv) (func(), error) {
		env.watch(ctx, "payments", func() error {
			select {
			case <-release:
				return errors.New("reports: killed")
			case <-stopped:
				return nil
			}
		})
		return func() { close(stopped) }, nil
	}}
	env := &devEnv{logOut: io.Discard, failed: make(chan error, 1)}
	done := make(chan error, 1)
	go func() {
		done <- runDev(context.Background(), &streams{out: io.Discard, err: io.Discard}, env, []devPart{part})
	}()
	close(release)
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "payments: reports: killed") {
			t.Fatalf("dev ended with %v, want the part's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev kept running after its part stopped")
	}
	select {
	case <-stopped:
	default:
		t.Fatal("dev ended without stopping its parts")
	}
}
