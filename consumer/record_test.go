package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

// An archive must keep headers exactly as they came, which the decoded
// Event does not: it lifts binding headers into attributes.
func TestRecordGivesTheRawRecord(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	if consumer.Record(context.Background()) != nil {
		t.Fatal("Record outside a handler is not nil")
	}
	type seen struct {
		rec *kgo.Record
		ev  *eventkit.Event
	}
	got := make(chan seen, 1)
	c := agent(t, b, "archive", "orders", eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		got <- seen{consumer.Record(ctx), ev}
		return nil
	}))
	testkit.Go(t, c.Run)
	headers := []kgo.RecordHeader{
		{Key: "ce_type", Value: []byte("t")}, {Key: "x", Value: []byte("1")}, {Key: "ce_id", Value: []byte("e-1")},
		{Key: "ce_time", Value: []byte("not a time")}, {Key: "x", Value: []byte("2")},
	}
	testkit.Produce(t, cl, &kgo.Record{Topic: "orders", Key: []byte("k"), Value: []byte("v"), Headers: headers})
	select {
	case s := <-got:
		if s.rec == nil || s.rec.Topic != "orders" || s.rec.Offset != s.ev.Offset || string(s.rec.Key) != "k" {
			t.Fatalf("record %+v for event at offset %d", s.rec, s.ev.Offset)
		}
		if len(s.rec.Headers) != len(headers) {
			t.Fatalf("headers %v, want %v", s.rec.Headers, headers)
		}
		for i, h := range headers {
			if s.rec.Headers[i].Key != h.Key || string(s.rec.Headers[i].Value) != string(h.Value) {
				t.Errorf("header %d = %v, want %v", i, s.rec.Headers[i], h)
			}
		}
	case <-time.After(30 * time.Second):
		t.Fatal("event not handled")
	}
}
