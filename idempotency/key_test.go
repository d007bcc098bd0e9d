package idempotency_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/idempotency"
)

// decoded builds an event the way the agent does: from record headers and
// coordinates, so that malformed headers end up where the binding puts them.
func decoded(topic string, partition int32, offset int64, hs ...eventkit.Header) *eventkit.Event {
	ev := &eventkit.Event{}
	ev.DecodeHeaders(hs)
	ev.Topic, ev.Partition, ev.Offset = topic, partition, offset
	return ev
}

func ce(id, source string) []eventkit.Header {
	return []eventkit.Header{
		{Key: eventkit.HeaderID, Value: []byte(id)},
		{Key: eventkit.HeaderSource, Value: []byte(source)},
		{Key: eventkit.HeaderType, Value: []byte("t")},
		{Key: eventkit.HeaderSpecVersion, Value: []byte("1.0")},
	}
}

func replay(id string, mode eventkit.ReplayMode, origin string) []eventkit.Header {
	return []eventkit.Header{
		{Key: eventkit.HeaderReplayID, Value: []byte(id)},
		{Key: eventkit.HeaderReplayMode, Value: []byte(mode)},
		{Key: eventkit.HeaderReplayOrigin, Value: []byte(origin)},
	}
}

func TestKeyReplays(t *testing.T) {
	const replayTopic = "eventkit.replay.ledger"
	withID := decoded("orders", 2, 40, ce("e-1", "/shop")...)
	idLess := decoded("orders", 2, 41)
	cases := []struct {
		name string
		ev   *eventkit.Event
		// same names the event whose key ev must share; "" for a new key.
		same *eventkit.Event
	}{
		{"ce_id, deduplicate replay keeps the original's key",
			decoded(replayTopic, 0, 7, append(ce("e-1", "/shop"), replay("r1", eventkit.Deduplicate, "orders/2/40")...)...), withID},
		{"ce_id, reprocess replay is new",
			decoded(replayTopic, 0, 8, append(ce("e-1", "/shop"), replay("r1", eventkit.Reprocess, "orders/2/40")...)...), nil},
		{"no ce_id, deduplicate replay keys on the origin",
			decoded(replayTopic, 0, 9, replay("r1", eventkit.Deduplicate, "orders/2/41")...), idLess},
		{"no ce_id, reprocess replay keys on the origin and the replay id",
			decoded(replayTopic, 0, 10, replay("r1", eventkit.Reprocess, "orders/2/41")...), nil},
		{"no ce_id, another reprocess replay of the same origin",
			decoded(replayTopic, 1, 10, replay("r2", eventkit.Reprocess, "orders/2/41")...), nil},
		{"no ce_id, unparsable origin falls back to the replayed record",
			decoded(replayTopic, 0, 11, replay("r1", eventkit.Deduplicate, "not-coordinates")...), nil},
		{"no ce_id, another offset", decoded("orders", 2, 42), nil},
	}
	seen := map[string]string{
		idempotency.Key("ledger", withID): "original with ce_id",
		idempotency.Key("ledger", idLess): "original without ce_id",
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.ev.Replay == nil && strings.Contains(c.name, "replay") {
				t.Fatalf("test event is not a replay: %+v", c.ev)
			}
			k := idempotency.Key("ledger", c.ev)
			if c.same != nil {
				if want := idempotency.Key("ledger", c.same); k != want {
					t.Fatalf("key %q, want the original's %q", k, want)
				}
				return
			}
			if other, dup := seen[k]; dup {
				t.Fatalf("key %q already belongs to %s", k, other)
			}
			seen[k] = c.name
			// Redelivery of the same record keeps its key.
			again := *c.ev
			if k2 := idempotency.Key("ledger", &again); k2 != k {
				t.Fatalf("redelivered: key %q, first %q", k2, k)
			}
		})
	}
	if a, b := idempotency.Key("ledger", withID), idempotency.Key("audit", withID); a == b {
		t.Fatalf("two groups share key %q", a)
	}
}

func TestKeyHugeIDs(t *testing.T) {
	huge := strings.Repeat("x", 2048)
	a := idempotency.Key("g", decoded("t", 0, 1, ce(huge+"a", "/s")...))
	b := idempotency.Key("g", decoded("t", 0, 2, ce(huge+"b", "/s")...))
	for _, k := range []string{a, b} {
		if len(k) > idempotency.MaxKeyLen {
			t.Fatalf("key of %d bytes, want at most %d", len(k), idempotency.MaxKeyLen)
		}
		if !strings.HasPrefix(k, "g|ce|/s|xxxx") || !strings.Contains(k, "%sha256:") {
			t.Fatalf("shortened key %q: want a readable prefix and the digest", k)
		}
	}
	if a == b {
		t.Fatalf("ids differing past the cut share key %q", a)
	}
	// A short id that spells out what a shortened key looks like stays
	// distinct: '%' is escaped in fields.
	mimic := idempotency.Key("g", decoded("t", 0, 3, ce(a[len("g|ce|/s|"):], "/s")...))
	if mimic == a {
		t.Fatalf("an id copying a shortened key collides with it: %q", a)
	}
	// A multi-byte character at the cut is not split.
	k := idempotency.Key("g", decoded("t", 0, 4, ce(strings.Repeat("ü", 1024), "/s")...))
	if !utf8.ValidString(k) {
		t.Fatalf("shortened key is not UTF-8: %q", k)
	}
}

func TestKeyNotUTF8(t *testing.T) {
	cases := []struct {
		name, id, source, want string
		malformed              bool
	}{
		{"source", "e-1", "/s\xff\xfe", "g|ce|/s%FF%FE|e-1", true},
		{"id", "e-\xc3", "/s", "g|ce|/s|e-%C3", true},
		{"separator and escape in fields", "a|b%", "/s", "g|ce|/s|a%7Cb%25", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := decoded("t", 0, 1, ce(c.id, c.source)...)
			if (ev.DecodeErr != nil) != c.malformed {
				t.Fatalf("decode error %v, want one: %v", ev.DecodeErr, c.malformed)
			}
			if k := idempotency.Key("g", ev); k != c.want {
				t.Fatalf("key %q, want %q", k, c.want)
			}
		})
	}
	t.Run("an id without a source is keyed by its coordinates", func(t *testing.T) {
		// Two malformed events from producers that set no source: an id is
		// unique within a source only, so they are two events.
		hs := []eventkit.Header{{Key: eventkit.HeaderID, Value: []byte("1")}, {Key: eventkit.HeaderType, Value: []byte("t")},
			{Key: eventkit.HeaderSpecVersion, Value: []byte("1.0")}}
		a, b := idempotency.Key("g", decoded("t", 0, 1, hs...)), idempotency.Key("g", decoded("t", 0, 2, hs...))
		if a != "g|at|t/0/1" || b != "g|at|t/0/2" {
			t.Fatalf("keys %q and %q, want each event's coordinates", a, b)
		}
	})
	t.Run("different ids never collide", func(t *testing.T) {
		ids := []string{"\xff", "\xfe", "\xff\xfe", "\xfe\xff", "%FF", "\xc3", "\xc3\xa9"[:1] + "x", "é"}
		seen := map[string]string{}
		for i, id := range ids {
			k := idempotency.Key("g", decoded("t", 0, int64(i), ce(id, "/s\xff")...))
			if !utf8.ValidString(k) || strings.ContainsRune(k, 0) {
				t.Fatalf("key %q of id %q: want UTF-8 without NUL", k, id)
			}
			if other, dup := seen[k]; dup {
				t.Fatalf("ids %q and %q share key %q", other, id, k)
			}
			seen[k] = id
		}
	})
}
