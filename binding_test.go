package eventkit_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
)

func hdrs(kv ...string) []eventkit.Header {
	var hs []eventkit.Header
	for i := 0; i < len(kv); i += 2 {
		hs = append(hs, eventkit.Header{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

func TestBindingRoundTrip(t *testing.T) {
	in := eventkit.Event{
		ID: "01J0", Source: "/transfers", Type: "transfer.created", Subject: "acct-1",
		Time: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), ContentType: "application/json",
		Headers: hdrs("traceparent", "00-abc-def-01", "x-tenant", "t1"),
	}
	var out eventkit.Event
	out.DecodeHeaders(in.EncodeHeaders(nil))
	if out.DecodeErr != nil {
		t.Fatalf("DecodeErr = %v", out.DecodeErr)
	}
	in.SpecVersion = eventkit.SpecVersion
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func TestDecodeHeaders(t *testing.T) {
	valid := []string{"ce_id", "1", "ce_source", "s", "ce_type", "t", "ce_specversion", "1.0"}
	tests := []struct {
		name     string
		headers  []eventkit.Header
		problems []string // substrings of DecodeErr; none means valid
		kept     []string // header keys left in Headers
	}{
		{name: "plain record is not a CloudEvent", headers: hdrs("x", "y"), kept: []string{"x"}},
		{name: "no headers", headers: nil},
		{name: "content-type alone is fine", headers: hdrs("content-type", "text/plain")},
		{name: "valid", headers: hdrs(valid...)},
		{name: "missing id", headers: hdrs("ce_source", "s", "ce_type", "t", "ce_specversion", "1.0"), problems: []string{"ce_id: missing"}},
		{name: "empty id", headers: hdrs("ce_id", "", "ce_source", "s", "ce_type", "t", "ce_specversion", "1.0"), problems: []string{"ce_id: missing"}},
		{name: "garbage time", headers: hdrs(append(valid, "ce_time", "yesterday")...), problems: []string{`ce_time "yesterday"`}, kept: []string{"ce_time"}},
		{name: "non-UTF-8 id", headers: append(hdrs(valid[2:]...), eventkit.Header{Key: "ce_id", Value: []byte{0xff, 0xfe}}), problems: []string{"ce_id: not UTF-8"}, kept: []string{"ce_id"}},
		{name: "wrong spec version", headers: hdrs("ce_id", "1", "ce_source", "s", "ce_type", "t", "ce_specversion", "0.3"), problems: []string{`want "1.0"`}},
		{name: "repeated header kept", headers: hdrs(append(valid, "ce_id", "2")...), kept: []string{"ce_id"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev eventkit.Event
			ev.DecodeHeaders(tt.headers)
			if len(tt.problems) == 0 && ev.DecodeErr != nil {
				t.Fatalf("DecodeErr = %v, want none", ev.DecodeErr)
			}
			for _, p := range tt.problems {
				if ev.DecodeErr == nil || !strings.Contains(ev.DecodeErr.Error(), p) {
					t.Fatalf("DecodeErr = %v, want it to mention %q", ev.DecodeErr, p)
				}
				if !errors.Is(ev.DecodeErr, eventkit.ErrMalformed) {
					t.Fatal("DecodeErr does not match ErrMalformed")
				}
			}
			var kept []string
			for _, h := range ev.Headers {
				kept = append(kept, h.Key)
			}
			if !reflect.DeepEqual(kept, tt.kept) {
				t.Fatalf("Headers = %v, want %v", kept, tt.kept)
			}
			// Nothing is lost: re-encoding carries every original header.
			if got := len(ev.EncodeHeaders(nil)); got < len(tt.headers)-countEmpty(tt.headers) {
				t.Fatalf("re-encoded %d headers, had %d", got, len(tt.headers))
			}
		})
	}
}

func countEmpty(hs []eventkit.Header) (n int) {
	for _, h := range hs {
		if len(h.Value) == 0 {
			n++
		}
	}
	return n
}

func TestDecodeReplay(t *testing.T) {
	var ev eventkit.Event
	ev.DecodeHeaders(hdrs("eventkit-replay-id", "r1", "eventkit-replay-mode", "reprocess", "eventkit-replay-origin", "pay.ments/3/42"))
	want := &eventkit.Replay{ID: "r1", Mode: eventkit.Reprocess, Origin: "pay.ments/3/42", OriginTopic: "pay.ments", OriginPartition: 3, OriginOffset: 42}
	if !reflect.DeepEqual(ev.Replay, want) {
		t.Fatalf("Replay = %+v, want %+v", ev.Replay, want)
	}
}

func TestParseCoordinates(t *testing.T) {
	topic, p, o, err := eventkit.ParseCoordinates(eventkit.FormatCoordinates("a-b.c", 7, 99))
	if err != nil || topic != "a-b.c" || p != 7 || o != 99 {
		t.Fatalf("got %q %d %d %v", topic, p, o, err)
	}
	for _, bad := range []string{"", "t", "t/1", "/1/2", "t/x/2", "t/1/-2", "t/-1/2"} {
		if _, _, _, err := eventkit.ParseCoordinates(bad); err == nil {
			t.Errorf("ParseCoordinates(%q) accepted", bad)
		}
	}
}

func BenchmarkDecodeHeaders(b *testing.B) {
	hs := (&eventkit.Event{ID: "0192d6e4-7a3b-7c61-9a7e-3b1f2c4d5e6f", Source: "/bench", Type: "bench.event",
		Time: time.Now(), ContentType: "application/json"}).EncodeHeaders(nil)
	b.ReportAllocs()
	var ev eventkit.Event
	for b.Loop() {
		ev.DecodeHeaders(hs)
	}
}

// An attribute that decoding refused is still there, raw, for those that
// must not take it for a missing one.
func TestAttributeOrRaw(t *testing.T) {
	var ev eventkit.Event
	ev.DecodeHeaders([]eventkit.Header{{Key: eventkit.HeaderID, Value: []byte("id-\xff")}, {Key: eventkit.HeaderSource, Value: []byte("/s")}})
	if ev.ID != "" || ev.AttributeOrRaw(ev.ID, eventkit.HeaderID) != "id-\xff" {
		t.Errorf("id %q, raw %q", ev.ID, ev.AttributeOrRaw(ev.ID, eventkit.HeaderID))
	}
	if got := ev.AttributeOrRaw(ev.Source, eventkit.HeaderSource); got != "/s" {
		t.Errorf("source %q, want the decoded /s", got)
	}
	if got := ev.AttributeOrRaw(ev.Subject, eventkit.HeaderSubject); got != "" {
		t.Errorf("subject %q of a record without one", got)
	}
}
