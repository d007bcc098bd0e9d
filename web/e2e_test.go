package web_test

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestEndToEnd produces events to three topics of the embedded broker,
// lets the ingest archive them into SQLite, and finds them through the
// API with every filter, paging with cursors.
func TestEndToEnd(t *testing.T) {
	topics := []string{"orders", "payments", "shipments"}
	b := testkit.Broker(t, 2, topics...)
	cl := testkit.Client(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	f := newFixture(t)
	in, err := lookback.NewIngest(f.archive,
		lookback.Brokers(b.Addr()),
		lookback.Logger(testkit.Logger(t)),
		lookback.Registerer(prometheus.NewRegistry()),
		lookback.AgentOpts(testkit.QuickAgent(t)...),
	)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Go(t, in.Run)

	const n = 30 // per topic
	base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	var rs []*kgo.Record
	for _, topic := range topics {
		for i := range n {
			ev := &eventkit.Event{
				ID: fmt.Sprintf("%s-%d", topic, i), Type: topic + "." + []string{"created", "updated"}[i%2],
				Source: "/svc/" + topic, Subject: "subject-" + strconv.Itoa(i%3),
				Key: []byte("acct-" + strconv.Itoa(i%5)), ContentType: "application/json",
				Data:    fmt.Appendf(nil, `{"n":%d}`, i),
				Headers: []eventkit.Header{{Key: "tenant", Value: []byte("t" + strconv.Itoa(i%2))}},
			}
			r := kafka.RecordOf(topic, ev)
			r.Partition = int32(i % 2)
			r.Timestamp = base.Add(time.Duration(i) * time.Minute)
			rs = append(rs, r)
		}
	}
	testkit.Produce(t, cl, rs...)
	testkit.Eventually(t, 60*time.Second, func() error {
		n, err := f.archive.Count(context.Background(), lookback.Filter{})
		if err != nil || n != int64(len(rs)) {
			return fmt.Errorf("archived %d of %d (%v)", n, len(rs), err)
		}
		return nil
	})

	at := func(i int) string { return base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano) }
	for _, c := range []struct {
		query string
		want  int
	}{
		{"", 3 * n},
		{"topic=payments", n},
		{"topic=payments&partition=1", n / 2},
		{"key=acct-3", 3 * n / 5},
		{"topic=orders&key=acct-3", n / 5},
		{"type=shipments.updated", n / 2},
		{"id=orders-7", 1},
		{"source=/svc/orders", n},
		{"subject=subject-0", 3 * n / 3},
		{"header=tenant:t1", 3 * n / 2},
		{"header=tenant:t1&header=ce_type:orders.updated", n / 2},
		{"from=" + url.QueryEscape(at(10)) + "&to=" + url.QueryEscape(at(19)), 3 * 10},
		{"from=" + url.QueryEscape(at(25)), 3 * 5},
		{"topic=nothing", 0},
		// The zero instant is a bound like any other, not the absence of one.
		{"to=0001-01-01T00:00:00Z", 0},
		{"from=0001-01-01T00:00:00Z", 3 * n},
	} {
		t.Run(c.query, func(t *testing.T) {
			for _, order := range []string{"asc", "desc"} {
				got := pageAll(t, f, c.query+"&order="+order+"&limit=7")
				if len(got) != c.want {
					t.Fatalf("order %s: %d events, want %d", order, len(got), c.want)
				}
				seen := make(map[string]bool)
				for i, e := range got {
					coord := fmt.Sprintf("%s/%d/%d", e.Topic, e.Partition, e.Offset)
					if seen[coord] {
						t.Fatalf("order %s: %s twice across pages", order, coord)
					}
					seen[coord] = true
					if i > 0 {
						prev := got[i-1].Timestamp
						if (order == "asc" && e.Timestamp.Before(prev)) || (order == "desc" && e.Timestamp.After(prev)) {
							t.Fatalf("order %s: %s at %v after %v", order, coord, e.Timestamp, prev)
						}
					}
				}
			}
		})
	}

	var detail event
	f.getJSON("/api/v1/events/orders/1/0", &detail)
	if detail.ID != "orders-1" || string(detail.Data) != `{"n":1}` || detail.Headers["tenant"] != "t1" {
		t.Errorf("detail %+v", detail)
	}
}

// pageAll follows next_cursor from the first page of query to the last and
// returns every event.
func pageAll(t *testing.T, f *fixture, query string) []event {
	t.Helper()
	var all []event
	q := query
	for range 1000 {
		var page eventsPage
		f.getJSON("/api/v1/events?"+q, &page)
		all = append(all, page.Events...)
		if page.NextCursor == nil {
			return all
		}
		q = query + "&cursor=" + url.QueryEscape(*page.NextCursor)
	}
	t.Fatal("more than 1000 pages")
	return nil
}
