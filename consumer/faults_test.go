package consumer_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Broker errors on fetch, offset commit and produce: the agent recovers and
// loses nothing.
func TestBrokerFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault kfake.Fault
	}{
		{"fetch not leader", kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "orders", Err: kerr.NotLeaderForPartition, Count: 5}},
		{"fetch unknown error", kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: "orders", Err: kerr.UnknownServerError, Count: 3}},
		{"commit coordinator moving", kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: "g", Err: kerr.NotCoordinator, Count: 3}},
		{"commit refused", kfake.Fault{Keys: []kmsg.Key{kmsg.OffsetCommit}, Group: "g", Err: kerr.UnknownServerError, Count: 3}},
		{"dead-letter produce timing out", kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "orders.dlq", Err: kerr.RequestTimedOut, Count: 3}},
		{"dead-letter produce refused", kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "orders.dlq", Err: kerr.NotEnoughReplicas, Count: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 400
			b := testkit.Broker(t, 4, "orders", "orders.dlq")
			cl := testkit.Client(t, b.Addr())
			testkit.Produce(t, cl, testkit.Events("orders", "e", n, nil)...)

			h := b.Cluster().Fault(tt.fault)
			defer h.Remove()

			rec := newRecorder()
			c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
				rec.add(ev)
				if strings.HasSuffix(ev.ID, "7") {
					return eventkit.Warn(errors.New("park it"))
				}
				return nil
			}), consumer.DeadLetterTopic("orders.dlq"))
			run := testkit.Go(t, c.Run)
			testkit.Eventually(t, 30*time.Second, atLeast(n, rec.distinct, "handled"))
			committedAt(t, cl, "g", "orders", testkit.EndOffsets(t, cl, "orders"))
			if err := run.Stop(); err != nil {
				t.Fatal(err)
			}
			if hits := h.Hits(); hits == 0 {
				t.Fatalf("fault never hit: the test did not exercise it")
			}
			// Exactly one dead letter per warned event, in spite of the
			// produce faults: franz-go's idempotent producer drops the
			// duplicates of retried batches.
			dl := consumeAll(t, cl, "orders.dlq", n/10)
			seen := make(map[string]int)
			for _, r := range dl {
				seen[headerMap(r.Headers)["ce_id"]]++
			}
			total := testkit.EndOffsets(t, cl, "orders.dlq")
			var sum int64
			for _, o := range total {
				sum += o
			}
			if sum != n/10 || len(seen) != n/10 {
				t.Fatalf("dead-letter topic holds %d records for %d distinct events, want %d", sum, len(seen), n/10)
			}
		})
	}
}

// Malformed records reach the handler with their coordinates and a
// DecodeErr; the agent logs them and goes on.
func TestMalformedRecordsReachTheHandler(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	hdr := func(kv ...string) []kgo.RecordHeader {
		var hs []kgo.RecordHeader
		for i := 0; i < len(kv); i += 2 {
			hs = append(hs, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return hs
	}
	valid := []string{"ce_id", "x", "ce_source", "s", "ce_type", "t", "ce_specversion", "1.0"}
	records := []*kgo.Record{
		{Topic: "orders", Value: []byte("plain, no headers")},
		{Topic: "orders", Headers: hdr("ce_id", "no-source")},
		{Topic: "orders", Headers: hdr(append(valid, "ce_time", "not a time")...)},
		{Topic: "orders", Key: []byte{0xff, 0x00, 0xfe}, Headers: hdr(valid...), Value: []byte{0xc3, 0x28}},
		{Topic: "orders", Headers: append(hdr(valid[2:]...), kgo.RecordHeader{Key: "ce_id", Value: []byte{0xff}})},
		{Topic: "orders", Headers: hdr("ce_specversion", "\x00\x01garbage")},
	}
	testkit.Produce(t, cl, records...)

	logs := &logBuffer{}
	got := make(chan *eventkit.Event, len(records))
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		got <- ev
		if ev.DecodeErr != nil {
			return eventkit.Warn(ev.DecodeErr)
		}
		return nil
	}), consumer.Logger(logs.logger()))
	run := testkit.Go(t, c.Run)
	committedAt(t, cl, "g", "orders", map[int32]int64{0: int64(len(records))})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	close(got)
	var evs []*eventkit.Event
	for ev := range got {
		evs = append(evs, ev)
	}
	if len(evs) != len(records) {
		t.Fatalf("handler saw %d events, want %d", len(evs), len(records))
	}
	for i, ev := range evs {
		if ev.Topic != "orders" || ev.Offset != int64(i) {
			t.Errorf("event %d: coordinates %s", i, ev.Coordinates())
		}
		wantMalformed := i >= 1 && i != 3
		if (ev.DecodeErr != nil) != wantMalformed {
			t.Errorf("event %d: DecodeErr = %v", i, ev.DecodeErr)
		}
		if wantMalformed && !logs.contains(`msg="malformed event"`, "offset="+strconv.Itoa(i)) {
			t.Errorf("event %d: no malformed log line with its offset", i)
		}
		if i == 2 && !logs.contains(`msg="malformed event"`, "offset=2", "id=x") {
			t.Errorf("event 2: its malformed log line does not name its id, which decoded")
		}
	}
	if string(evs[3].Key) != "\xff\x00\xfe" || string(evs[3].Data) != "\xc3\x28" {
		t.Errorf("non-UTF-8 key or value changed: %q %q", evs[3].Key, evs[3].Data)
	}
}

// A group the broker will not let the agent join as configured (here a
// session timeout above the broker's maximum, 5 minutes on the embedded
// one) stops Run with the broker's reason, rather than a warning a poll
// for ever.
func TestGroupRefusedStopsRun(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	c := agent(t, b, "g", "orders", eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error { return nil }),
		consumer.SessionTimeout(6*time.Minute), consumer.RebalanceTimeout(4*time.Minute))
	err := testkit.Go(t, c.Run).Wait(30 * time.Second)
	if !errors.Is(err, kerr.InvalidSessionTimeout) {
		t.Fatalf("Run = %v, want the broker's INVALID_SESSION_TIMEOUT", err)
	}
}
