package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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

// An ingest that stops by itself ends dev too: lookback would otherwise
// serve an archive that no longer grows.
func TestDevEndsWhenLookbackIngestStops(t *testing.T) {
	b := testkit.Broker(t, 1, "demo")
	// The cluster refuses the ingest's group, for good.
	b.Cluster().ControlKey(int16(kmsg.JoinGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		r := req.(*kmsg.JoinGroupRequest)
		if r.Group != lookback.DefaultGroup {
			return nil, nil, false
		}
		resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return resp, nil, true
	})
	broker := devPart{name: "broker", start: func(_ context.Context, env *devEnv) (func(), error) {
		env.brokerAddr = b.Addr()
		return func() {}, nil
	}}
	lb := &devLookback{addr: "127.0.0.1:0"}
	env := &devEnv{data: t.TempDir(), logOut: io.Discard, failed: make(chan error, 1)}
	done := make(chan error, 1)
	go func() {
		done <- runDev(context.Background(), &streams{out: io.Discard, err: io.Discard}, env,
			[]devPart{broker, {name: "lookback", start: lb.start}})
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "lookback ingest: ") {
			t.Fatalf("dev ended with %v, want the ingest's error", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("dev kept running after lookback's ingest stopped")
	}
}
