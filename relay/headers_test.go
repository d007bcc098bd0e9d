package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/relay"
	"github.com/twmb/franz-go/pkg/kgo"
)

// relayed returns the headers of a request that the relay mapping speaks
// for, names in lower case, ce-* values percent-decoded.
func relayed(t testing.TB, h http.Header) map[string]string {
	t.Helper()
	out := make(map[string]string)
	for k, vs := range h {
		k = strings.ToLower(k)
		switch {
		case strings.HasPrefix(k, "ce-"), strings.HasPrefix(k, "eventkit-replay-"):
			v, err := url.PathUnescape(vs[0])
			if err != nil {
				t.Errorf("%s: %q does not percent-decode: %v", k, vs[0], err)
			}
			out[k] = v
		case strings.HasPrefix(k, "eventkit-"), k == "content-type", slices.Contains(eventkit.TraceHeaders, k):
			out[k] = vs[0]
		}
		if len(vs) != 1 {
			t.Errorf("%s sent %d times: %q", k, len(vs), vs)
		}
	}
	return out
}

// Records go through the broker and the agent, as in production, and the
// endpoint sees each one's headers and body exactly as the mapping says.
func TestHeaderMapping(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())

	when := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("", 2*3600))
	odd := "order 42 \"é\" 100% ☃\x01"
	records := []struct {
		name string
		rec  *kgo.Record
		want map[string]string
		body []byte
	}{{
		name: "cloudevent with every attribute",
		rec: withHeaders(kafka.RecordOf("orders", &eventkit.Event{
			ID: odd, Source: "/shop/orders", Type: "order.created", Subject: "süß ☃", Time: when,
			ContentType: "application/octet-stream", Key: []byte{0x00, 0xff, 'k'},
			Data: []byte{0xff, 0xfe, 0x00, 'a', '\n'},
		}),
			"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"tracestate", "vendor=x",
			"ce_tenant", "acme corp",
			"region", "eu%west",
			"X-Custom", "dropped: not an extension name",
			"eventkit-dlq-origin", "dropped too",
			"ce_type", "a repeated binding header is not an extension",
			"tenant", "the first of a repeated extension wins",
		),
		want: map[string]string{
			"ce-id": odd, "ce-source": "/shop/orders", "ce-type": "order.created", "ce-specversion": "1.0",
			"ce-time": "2024-05-06T05:08:09.123456789Z", "ce-subject": "süß ☃",
			"content-type":          "application/octet-stream",
			"eventkit-topic":        "orders",
			"eventkit-partition":    "0",
			"eventkit-offset":       "0",
			"eventkit-key":          "AP9r",
			"eventkit-key-encoding": "base64",
			"eventkit-attempt":      "1",
			"traceparent":           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"tracestate":            "vendor=x",
			"ce-tenant":             "acme corp",
			"ce-region":             "eu%west",
		},
		body: []byte{0xff, 0xfe, 0x00, 'a', '\n'},
	}, {
		name: "plain record",
		rec:  &kgo.Record{Topic: "orders", Key: []byte("user-7"), Value: []byte(`{"a":1}`)},
		want: map[string]string{
			"ce-id": "orders/0/1", "ce-source": "kafka://orders", "ce-type": "eventkit.record", "ce-specversion": "1.0",
			"eventkit-topic": "orders", "eventkit-partition": "0", "eventkit-offset": "1",
			"eventkit-key": "user-7", "eventkit-attempt": "1",
		},
		body: []byte(`{"a":1}`),
	}, {
		name: "replay",
		rec: withHeaders(kafka.RecordOf("orders", &eventkit.Event{ID: "orig-1", Source: "/shop", Type: "t"}),
			eventkit.HeaderReplayID, "r-1", eventkit.HeaderReplayMode, "reprocess", eventkit.HeaderReplayOrigin, "orders/0/0"),
		want: map[string]string{
			"ce-id": "orig-1", "ce-source": "/shop", "ce-type": "t", "ce-specversion": "1.0",
			"eventkit-topic": "orders", "eventkit-partition": "0", "eventkit-offset": "2", "eventkit-attempt": "1",
			"eventkit-replay-id": "r-1", "eventkit-replay-mode": "reprocess", "eventkit-replay-origin": "orders/0/0",
		},
	}, {
		name: "replay of a record without an id",
		rec: withHeaders(&kgo.Record{Topic: "orders", Value: []byte("x")},
			eventkit.HeaderReplayID, "r-2", eventkit.HeaderReplayOrigin, "payments/3/9"),
		want: map[string]string{
			"ce-id": "payments/3/9", "ce-source": "kafka://payments", "ce-type": "eventkit.record", "ce-specversion": "1.0",
			"eventkit-topic": "orders", "eventkit-partition": "0", "eventkit-offset": "3", "eventkit-attempt": "1",
			"eventkit-replay-id": "r-2", "eventkit-replay-origin": "payments/3/9",
		},
		body: []byte("x"),
	}, {
		name: "key with a trailing space",
		rec:  &kgo.Record{Topic: "orders", Key: []byte("k "), Value: []byte("y")},
		want: map[string]string{
			"ce-id": "orders/0/4", "ce-source": "kafka://orders", "ce-type": "eventkit.record", "ce-specversion": "1.0",
			"eventkit-topic": "orders", "eventkit-partition": "0", "eventkit-offset": "4", "eventkit-attempt": "1",
			"eventkit-key": "ayA=", "eventkit-key-encoding": "base64",
		},
		body: []byte("y"),
	}, {
		// Attributes the event's decoding refused reach the application as
		// the record holds them, not replaced by stand-ins nor dropped.
		name: "malformed attributes",
		rec: withHeaders(&kgo.Record{Topic: "orders", Value: []byte("z")},
			"ce_id", "id-\xff", "ce_source", "/s\xff", "ce_type", "t", "ce_specversion", "1.0",
			"ce_subject", "sub\xff", "ce_time", "yesterday"),
		want: map[string]string{
			"ce-id": "id-\xff", "ce-source": "/s\xff", "ce-type": "t", "ce-specversion": "1.0",
			"ce-subject": "sub\xff", "ce-time": "yesterday",
			"eventkit-topic": "orders", "eventkit-partition": "0", "eventkit-offset": "5", "eventkit-attempt": "1",
		},
		body: []byte("z"),
	}, {
		// The CloudEvents trace extension names the trace when the record
		// has no W3C header; a W3C header wins over it, wherever it comes,
		// and the extension's tracestate stays behind.
		name: "trace extension and a W3C header",
		rec: withHeaders(&kgo.Record{Topic: "orders", Value: []byte("t")},
			"ce_traceparent", "00-11111111111111111111111111111111-2222222222222222-01",
			"ce_tracestate", "stale=1",
			"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
		want: map[string]string{
			"ce-id": "orders/0/6", "ce-source": "kafka://orders", "ce-type": "eventkit.record", "ce-specversion": "1.0",
			"eventkit-topic": "orders", "eventkit-partition": "0", "eventkit-offset": "6", "eventkit-attempt": "1",
			"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		},
		body: []byte("t"),
	}, {
		// A W3C tracestate without its traceparent belongs to no trace the
		// request names: it does not ride along with the extension's.
		name: "W3C tracestate alone and the trace extension",
		rec: withHeaders(&kgo.Record{Topic: "orders", Value: []byte("u")},
			"tracestate", "orphan=1",
			"ce_traceparent", "00-11111111111111111111111111111111-2222222222222222-01",
			"ce_tracestate", "ext=1"),
		want: map[string]string{
			"ce-id": "orders/0/7", "ce-source": "kafka://orders", "ce-type": "eventkit.record", "ce-specversion": "1.0",
			"eventkit-topic": "orders", "eventkit-partition": "0", "eventkit-offset": "7", "eventkit-attempt": "1",
			"traceparent": "00-11111111111111111111111111111111-2222222222222222-01",
			"tracestate":  "ext=1",
		},
		body: []byte("u"),
	}}
	for _, r := range records {
		testkit.Produce(t, cl, r.rec)
	}

	in := new(inbox)
	srv := endpoint(t, func(w http.ResponseWriter, r *http.Request) { in.record(t, r) })
	c := agent(t, b, "g", "orders", newRelay(t, srv.URL))
	run := testkit.Go(t, c.Run)
	testkit.Eventually(t, 20*time.Second, func() error {
		if n := in.len(); n < len(records) {
			return fmt.Errorf("%d of %d delivered", n, len(records))
		}
		return nil
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}

	got := in.all()
	for i, r := range records {
		t.Run(r.name, func(t *testing.T) {
			d := got[i]
			if h := relayed(t, d.header); !maps.Equal(h, r.want) {
				t.Errorf("headers:\n%s", diffMaps(h, r.want))
			}
			if !bytes.Equal(d.body, r.body) {
				t.Errorf("body %q, want %q", d.body, r.body)
			}
		})
	}
}

// withHeaders appends record headers given as name, value pairs.
func withHeaders(r *kgo.Record, kv ...string) *kgo.Record {
	for i := 0; i+1 < len(kv); i += 2 {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return r
}

func diffMaps(got, want map[string]string) string {
	var lines []string
	for k, v := range got {
		if w, ok := want[k]; !ok {
			lines = append(lines, fmt.Sprintf("  extra   %s: %q", k, v))
		} else if w != v {
			lines = append(lines, fmt.Sprintf("  differs %s: %q, want %q", k, v, w))
		}
	}
	for k, w := range want {
		if _, ok := got[k]; !ok {
			lines = append(lines, fmt.Sprintf("  missing %s: %q", k, w))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// The agent's attempt count reaches the endpoint: a delivery that failed
// comes back with Eventkit-Attempt one higher.
func TestAttemptCountsRetries(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 1, nil)...)

	in := new(inbox)
	srv := endpoint(t, func(w http.ResponseWriter, r *http.Request) {
		in.record(t, r)
		if in.len() < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	c := agent(t, b, "g", "orders", newRelay(t, srv.URL), consumer.MaxRetries(5))
	run := testkit.Go(t, c.Run)
	testkit.WaitCommitted(t, cl, "g", "orders", map[int32]int64{0: 1}, 20*time.Second)
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	var attempts []string
	for _, d := range in.all() {
		attempts = append(attempts, d.header.Get(relay.HeaderAttempt))
	}
	if want := []string{"1", "2", "3"}; !slices.Equal(attempts, want) {
		t.Fatalf("Eventkit-Attempt %v, want %v", attempts, want)
	}
}

// A draining agent cancels a delivery that outlasts its drain timeout, and
// the endpoint sees the request go away: the relay does not hold shutdown
// hostage to a slow endpoint.
func TestDrainCancelsDelivery(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 1, nil)...)

	in := new(inbox)
	arrived := make(chan struct{})
	cancelled := make(chan struct{})
	srv := endpoint(t, func(w http.ResponseWriter, r *http.Request) {
		in.record(t, r) // net/http notices a client that hung up only once the body is read
		close(arrived)
		<-r.Context().Done()
		close(cancelled)
	})
	c := agent(t, b, "g", "orders", newRelay(t, srv.URL), consumer.DrainTimeout(200*time.Millisecond))
	run := testkit.Go(t, c.Run)
	waitClosed(t, arrived, "delivery")
	if err := run.Stop(); err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	waitClosed(t, cancelled, "cancelled request")
	if off, ok := testkit.Committed(t, cl, "g")["orders"][0]; ok && off >= 0 {
		t.Fatalf("committed %d for an event that never got an answer", off)
	}
}

func waitClosed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s within 20s", what)
	}
}

// Handle outside an agent still says which attempt this is: the first.
func TestAttemptOutsideAnAgent(t *testing.T) {
	in := new(inbox)
	srv := endpoint(t, func(w http.ResponseWriter, r *http.Request) { in.record(t, r) })
	if err := newRelay(t, srv.URL).Handle(context.Background(), &eventkit.Event{Topic: "t", Offset: 7}); err != nil {
		t.Fatal(err)
	}
	if got := in.all()[0].header; got.Get(relay.HeaderAttempt) != "1" || got.Get("ce-id") != "t/0/7" {
		t.Fatalf("attempt %q id %q, want 1 and t/0/7", got.Get(relay.HeaderAttempt), got.Get("ce-id"))
	}
}
