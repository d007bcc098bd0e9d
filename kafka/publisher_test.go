package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newEvents(n int) []*eventkit.Event {
	evs := make([]*eventkit.Event, n)
	for i := range evs {
		evs[i] = &eventkit.Event{
			Type: "test.created",
			Key:  []byte(fmt.Sprintf("k%d", i%7)),
			Data: []byte(fmt.Sprintf(`{"n":%d}`, i)),
		}
	}
	return evs
}

// TestPublishExactlyOnceUnderTimeouts proves that the idempotent producer
// absorbs retries: the broker appends each faulted batch and still answers
// REQUEST_TIMED_OUT, the client sends it again, and no record lands twice.
func TestPublishExactlyOnceUnderTimeouts(t *testing.T) {
	const n, faults = 200, 6
	b := testkit.Broker(t, 3, "t")
	cl := testkit.Client(t, b.Addr())
	pub := kafka.NewPublisher(cl)
	ctx := testCtx(t)

	// Warm up so that the faults hit produce requests, not metadata loads.
	if err := pub.Publish(ctx, "t", newEvents(1)...); err != nil {
		t.Fatal(err)
	}
	h := b.Cluster().Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: faults})
	t.Cleanup(h.Remove)

	evs := newEvents(n)
	for i := 0; i < n; i += 20 {
		if err := pub.Publish(ctx, "t", evs[i:i+20]...); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	if got := h.Hits(); got != faults {
		t.Fatalf("faults answered %d produce requests, want %d", got, faults)
	}

	rs := testkit.ReadAll(t, b.Addr(), "t")
	if len(rs) != n+1 {
		t.Fatalf("read %d records, want %d: retried batches were written twice", len(rs), n+1)
	}
	seen := make(map[string]bool)
	for _, r := range rs {
		id := kafka.EventOf(r).ID
		if seen[id] {
			t.Fatalf("event %s written twice", id)
		}
		seen[id] = true
	}
	for _, ev := range evs {
		if !seen[ev.ID] {
			t.Fatalf("event %s published but not read back", ev.ID)
		}
	}
}

func TestPublishFillsEnvelope(t *testing.T) {
	b := testkit.Broker(t, 2, "t")
	cl := testkit.Client(t, b.Addr())
	now := time.Date(2026, 3, 1, 12, 30, 0, 123456789, time.UTC)
	pub := kafka.NewPublisher(cl, kafka.Source("/payments"), kafka.Clock(func() time.Time { return now }))
	ctx := testCtx(t)

	t.Run("ids are unique UUIDv7", func(t *testing.T) {
		evs := newEvents(500)
		if err := pub.Publish(ctx, "t", evs...); err != nil {
			t.Fatal(err)
		}
		seen := make(map[string]bool)
		for _, ev := range evs {
			u, err := uuid.Parse(ev.ID)
			if err != nil || u.Version() != 7 {
				t.Fatalf("id %q: want a UUIDv7 (%v)", ev.ID, err)
			}
			if seen[ev.ID] {
				t.Fatalf("id %s given twice", ev.ID)
			}
			seen[ev.ID] = true
		}
	})

	t.Run("defaults and coordinates", func(t *testing.T) {
		ev := &eventkit.Event{Type: "payments.transfer.created"}
		if err := pub.Publish(ctx, "t", ev); err != nil {
			t.Fatal(err)
		}
		if ev.Source != "/payments" || !ev.Time.Equal(now) || ev.SpecVersion != "1.0" {
			t.Errorf("published %+v, want source /payments, time %v, specversion 1.0", ev, now)
		}
		if ev.Topic != "t" || ev.Offset < 0 || ev.Timestamp.IsZero() {
			t.Errorf("published event names record %s at %v, want its coordinates", ev.Coordinates(), ev.Timestamp)
		}
	})

	t.Run("given fields are kept", func(t *testing.T) {
		at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
		ev := &eventkit.Event{ID: "order-1", Source: "/orders", Type: "orders.placed", Time: at}
		if err := pub.Publish(ctx, "t", ev); err != nil {
			t.Fatal(err)
		}
		if ev.ID != "order-1" || ev.Source != "/orders" || !ev.Time.Equal(at) {
			t.Errorf("published %+v, want the given id, source and time", ev)
		}
	})

	t.Run("headers round-trip", func(t *testing.T) {
		sent := &eventkit.Event{
			Type: "payments.transfer.created", Subject: "acct-42", ContentType: "application/json",
			Key:  []byte("acct-42"),
			Data: []byte(`{"amount":100}`),
			Headers: []eventkit.Header{
				{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")},
				{Key: "tenant", Value: []byte("acme")},
			},
		}
		if err := b.CreateTopic("rt", 1); err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish(ctx, "rt", sent); err != nil {
			t.Fatal(err)
		}
		rs := testkit.ReadAll(t, b.Addr(), "rt")
		if len(rs) != 1 {
			t.Fatalf("read %d records, want 1", len(rs))
		}
		got := kafka.EventOf(rs[0])
		if got.DecodeErr != nil {
			t.Fatalf("decode: %v", got.DecodeErr)
		}
		for _, f := range []struct{ name, got, want string }{
			{"id", got.ID, sent.ID}, {"source", got.Source, "/payments"}, {"type", got.Type, sent.Type},
			{"subject", got.Subject, sent.Subject}, {"content type", got.ContentType, sent.ContentType},
			{"specversion", got.SpecVersion, "1.0"}, {"key", string(got.Key), "acct-42"},
			{"data", string(got.Data), string(sent.Data)},
		} {
			if f.got != f.want {
				t.Errorf("%s: got %q, want %q", f.name, f.got, f.want)
			}
		}
		if !got.Time.Equal(now) {
			t.Errorf("time: got %v, want %v", got.Time, now)
		}
		if len(got.Headers) != 2 || got.Headers[0].Key != "traceparent" || string(got.Headers[1].Value) != "acme" {
			t.Errorf("headers: got %+v, want traceparent and tenant in order", got.Headers)
		}
		if got.Coordinates() != sent.Coordinates() {
			t.Errorf("read %s, publisher said %s", got.Coordinates(), sent.Coordinates())
		}
	})

	t.Run("event without type is refused before anything is written", func(t *testing.T) {
		before := testkit.EndOffsets(t, cl, "t")
		err := pub.Publish(ctx, "t", &eventkit.Event{Type: "ok"}, &eventkit.Event{Data: []byte("x")})
		if err == nil || !strings.Contains(err.Error(), "event 1: no type") {
			t.Fatalf("Publish: %v, want it to name event 1 and its missing type", err)
		}
		after := testkit.EndOffsets(t, cl, "t")
		for p := range before {
			if before[p] != after[p] {
				t.Fatalf("partition %d grew from %d to %d", p, before[p], after[p])
			}
		}
	})

	t.Run("no topic", func(t *testing.T) {
		if err := pub.Publish(ctx, "", newEvents(1)...); err == nil {
			t.Fatal("Publish without a topic succeeded")
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		err := pub.Publish(ctx, "t", newEvents(1)...)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Publish: %v, want context.Canceled", err)
		}
	})
}

// Publishing no events has nothing to wait for.
func TestPublishNothing(t *testing.T) {
	b := testkit.Broker(t, 1, "t")
	pub := kafka.NewPublisher(testkit.Client(t, b.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := pub.Publish(ctx, "t"); err != nil {
		t.Fatalf("Publish of no events: %v, want nil", err)
	}
}

// A cancelled Publish returns even when its records were sent and the
// broker never answers: franz-go would retry them, and wait, for as long as
// the broker stays away.
func TestPublishReturnsOnCancel(t *testing.T) {
	b := testkit.Broker(t, 1, "t")
	cl := testkit.Client(t, b.Addr())
	pub := kafka.NewPublisher(cl)
	if err := pub.Publish(testCtx(t), "t", newEvents(1)...); err != nil {
		t.Fatal(err)
	}
	// The broker takes the next produce request and never answers it.
	sent, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	b.Cluster().ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		select {
		case sent <- struct{}{}:
		default:
		}
		b.Cluster().SleepControl(func() { <-release })
		return nil, nil, false
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pub.Publish(ctx, "t", newEvents(1)...) }()
	select {
	case <-sent:
	case <-time.After(20 * time.Second):
		t.Fatal("no produce request")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Publish returned %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Publish still waits 20s after its context was cancelled")
	}
	once.Do(func() { close(release) })
}
