package payments_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/examples/payments/reports"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
)

// reportsAlone runs reports by itself on an embedded broker and returns its
// URL and a function that publishes hand-made transfer events to it.
func reportsAlone(t *testing.T) (string, func(typ, id, data string)) {
	t.Helper()
	checkLeaks(t)
	b := testkit.Broker(t, 3, events.TopicTransfers, events.TopicAccounts)
	svc, err := reports.New(context.Background(), reports.Config{
		Brokers: []string{b.Addr()}, TransfersURL: "http://127.0.0.1:1", DBPath: filepath.Join(t.TempDir(), "reports.db"),
		ClientOpts: testkit.ClientOpts(), AgentOpts: testkit.AgentTimings(t), Logger: testkit.Logger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Go(t, svc.Run)
	pub := kafka.NewPublisher(testkit.Client(t, b.Addr()), kafka.Source(events.Source))
	return svc.URL(), func(typ, id, data string) {
		t.Helper()
		ev := &eventkit.Event{Type: typ, Subject: id, Key: []byte(id), ContentType: "application/json", Data: []byte(data)}
		if err := pub.Publish(context.Background(), events.TopicTransfers, ev); err != nil {
			t.Fatal(err)
		}
	}
}

// A completion whose payload disagrees with the transfer as created (a
// misbehaving producer): the daily totals count the transfer as the
// volumes do, as its row holds it.
func TestTotalsCountTheTransferAsCreated(t *testing.T) {
	url, publish := reportsAlone(t)
	publish(events.TransferCreated, "t1", `{"id": "t1", "from": "a", "to": "b", "amount_minor": 100, "currency": "EUR",
		"status": "pending", "created_at": "2026-03-01T10:00:00Z"}`)
	publish(events.TransferCompleted, "t1", `{"id": "t1", "from": "a", "to": "b", "amount_minor": 999, "currency": "USD",
		"status": "completed", "created_at": "2026-03-01T10:00:00Z", "settled_at": "2026-03-01T11:00:00Z"}`)
	var days struct{ Days []reports.Day }
	testkit.Eventually(t, 30*time.Second, func() error {
		if err := call("GET", url+"/totals/daily?from=2026-03-01&to=2026-03-01", "", http.StatusOK, &days); err != nil {
			return err
		}
		if len(days.Days) == 0 {
			return fmt.Errorf("no daily totals yet")
		}
		return nil
	})
	var v reports.Volume
	if err := call("GET", url+"/accounts/a/volume?from=2026-01-01T00:00:00Z&to=2027-01-01T00:00:00Z", "", http.StatusOK, &v); err != nil {
		t.Fatal(err)
	}
	want := reports.Amount{Currency: "EUR", Transfers: 1, AmountMinor: 100}
	if len(days.Days) != 1 || days.Days[0].Amount != want || len(v.Sent) != 1 || v.Sent[0] != want {
		t.Fatalf("daily totals %+v, volume %+v; want both %+v", days.Days, v.Sent, want)
	}
}

// Volumes count transfers created in [from, to), to the nanosecond of the
// bounds, though times are kept in microseconds.
func TestVolumeBoundsFinerThanMicroseconds(t *testing.T) {
	url, publish := reportsAlone(t)
	publish(events.TransferCompleted, "t1", `{"id": "t1", "from": "a", "to": "b", "amount_minor": 5, "currency": "EUR",
		"status": "completed", "created_at": "2026-03-01T10:00:00.000001Z", "settled_at": "2026-03-01T11:00:00Z"}`)
	volume := func(from, to string) []reports.Amount {
		t.Helper()
		var v reports.Volume
		if err := call("GET", url+"/accounts/a/volume?from="+from+"&to="+to, "", http.StatusOK, &v); err != nil {
			t.Fatal(err)
		}
		return v.Sent
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		if sent := volume("2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"); len(sent) != 1 {
			return fmt.Errorf("sent %+v, want the transfer", sent)
		}
		return nil
	})
	for _, tc := range []struct {
		from, to string
		in       bool
	}{
		{"2026-01-01T00:00:00Z", "2026-03-01T10:00:00.0000015Z", true},
		{"2026-03-01T10:00:00.0000005Z", "2027-01-01T00:00:00Z", true},
		{"2026-03-01T10:00:00.0000015Z", "2027-01-01T00:00:00Z", false},
		{"2026-01-01T00:00:00Z", "2026-03-01T10:00:00.000001Z", false},
	} {
		if sent := volume(tc.from, tc.to); (len(sent) == 1) != tc.in {
			t.Errorf("[%s, %s): sent %+v, want the transfer counted %v", tc.from, tc.to, sent, tc.in)
		}
	}
}
