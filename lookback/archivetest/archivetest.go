// Package archivetest is the suite every [lookback.Archive] and
// [lookback.AuditLog] must pass: idempotent appends, every filter against a
// reference implementation in both orders, cursor pages that keep their
// place while records arrive, links, topic statistics, retention, hostile
// filter values and malformed cursors.
//
//	func TestArchive(t *testing.T) {
//		archivetest.Run(t, func(t *testing.T) lookback.Archive {
//			return newArchiveForTest(t) // fresh and empty; closed by t.Cleanup
//		})
//	}
package archivetest

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
)

// t0 is the suite's clock origin. Timestamps are whole microseconds apart
// at most, which every database keeps exactly.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs the archive suite; newArchive returns a fresh, empty archive for
// each case.
func Run(t *testing.T, newArchive func(t *testing.T) lookback.Archive) {
	cases := []struct {
		name string
		fn   func(t *testing.T, a lookback.Archive)
	}{
		{"AppendGetIdempotent", testAppendGet},
		{"Filters", testFilters},
		{"PagesKeepTheirPlace", testPagesKeepPlace},
		{"Links", testLinks},
		{"Topics", testTopics},
		{"BareRecords", testBare},
		{"PagesOfLargeRecords", testLargePages},
		{"DeleteBeforeRemovesOnlyOld", testDeleteBefore},
		{"TimesPastNanoseconds", testFarTimes},
		{"TimeHeaderSpellings", testTimeHeaders},
		{"HostileFilterValues", testHostile},
		{"BadQueries", testBadQueries},
		{"ConcurrentAppends", testConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newArchive(t)) })
	}
}

// RunAudit runs the audit log suite; newLog returns a fresh, empty log for
// each case.
func RunAudit(t *testing.T, newLog func(t *testing.T) lookback.AuditLog) {
	t.Run("RecordListPage", func(t *testing.T) { testAudit(t, newLog(t)) })
	t.Run("ConcurrentRecords", func(t *testing.T) { testAuditConcurrent(t, newLog(t)) })
	t.Run("LongNames", func(t *testing.T) { testAuditLongNames(t, newLog(t)) })
}

// testAuditLongNames records entries whose actor and action are longer
// than a database index entry may be (PostgreSQL refuses one over about
// 2.7 kB, after compression): each is recorded, its actor and action
// clipped, and the entries of its batch with it.
func testAuditLongNames(t *testing.T, l lookback.AuditLog) {
	ctx := ctxOf(t)
	// Incompressible: PostgreSQL compresses a long index entry first.
	r := rand.New(rand.NewPCG(1, 2))
	long := make([]byte, 8000)
	for i := range long {
		long[i] = 'a' + byte(r.IntN(26))
	}
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			e := lookback.AuditEntry{At: t0, Actor: "alice", Role: "operator", Action: "denied", Target: strconv.Itoa(i), Outcome: "ok"}
			if i == 0 {
				e.Actor, e.Action = string(long), "é"+string(long)
			}
			if _, err := l.Record(ctx, e); err != nil {
				t.Errorf("entry %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	es, err := l.List(ctx, lookback.AuditQuery{Limit: 100})
	if err != nil || len(es) != 16 {
		t.Fatalf("%d entries listed, want 16: %v", len(es), err)
	}
	for _, e := range es {
		if e.Target != "0" {
			continue
		}
		if len(e.Actor) > 256 || !strings.HasPrefix(string(long), strings.TrimSuffix(e.Actor, "…")) || !utf8.ValidString(e.Action) || len(e.Action) > 256 {
			t.Errorf("long entry recorded with actor %d bytes, action %q", len(e.Actor), e.Action)
		}
	}
	// Asked for by its whole name, as a tokens file names it.
	es, err = l.List(ctx, lookback.AuditQuery{Actor: string(long), Action: "é" + string(long), Limit: 10})
	if err != nil || len(es) != 1 || es[0].Target != "0" {
		t.Errorf("entries of the long actor and action: %d, %v; want the one", len(es), err)
	}
}

func ctxOf(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// ev describes a test record; rec turns it into the record ingest would
// archive, attributes decoded from the headers.
type ev struct {
	topic   string
	part    int32
	off     int64
	at      time.Duration // after t0
	key     []byte
	id      string
	typ     string
	source  string
	subject string
	extra   []eventkit.Header
}

func (e ev) rec() lookback.Record {
	var hs []eventkit.Header
	add := func(k, v string) {
		if v != "" {
			hs = append(hs, eventkit.Header{Key: k, Value: []byte(v)})
		}
	}
	add(eventkit.HeaderID, e.id)
	add(eventkit.HeaderSource, e.source)
	add(eventkit.HeaderType, e.typ)
	if e.id != "" {
		add(eventkit.HeaderSpecVersion, eventkit.SpecVersion)
		add(eventkit.HeaderTime, t0.Add(e.at).Format(time.RFC3339Nano))
	}
	add(eventkit.HeaderSubject, e.subject)
	add(eventkit.HeaderContentType, "application/json")
	hs = append(hs, e.extra...)
	value := fmt.Appendf(nil, `{"n":%d}`, e.off)
	return lookback.NewRecord(e.topic, e.part, e.off, t0.Add(e.at), e.key, value, hs)
}

func recs(evs ...ev) []lookback.Record {
	out := make([]lookback.Record, len(evs))
	for i, e := range evs {
		out[i] = e.rec()
	}
	return out
}

func mustAppend(t *testing.T, a lookback.Archive, rs []lookback.Record, ls []lookback.ReplayLink) {
	t.Helper()
	if err := a.Append(ctxOf(t), rs, ls); err != nil {
		t.Fatalf("append: %v", err)
	}
}

func hdr(k, v string) eventkit.Header { return eventkit.Header{Key: k, Value: []byte(v)} }

// sameRecord reports how got differs from want, or "".
func sameRecord(got, want lookback.Record) string {
	switch {
	case got.Topic != want.Topic || got.Partition != want.Partition || got.Offset != want.Offset:
		return fmt.Sprintf("coordinates %s/%d/%d, want %s/%d/%d", got.Topic, got.Partition, got.Offset, want.Topic, want.Partition, want.Offset)
	case !got.Timestamp.Equal(want.Timestamp):
		return fmt.Sprintf("timestamp %v, want %v", got.Timestamp, want.Timestamp)
	case !bytes.Equal(got.Key, want.Key) || (got.Key == nil) != (want.Key == nil):
		return fmt.Sprintf("key %q, want %q", got.Key, want.Key)
	case !bytes.Equal(got.Value, want.Value):
		return fmt.Sprintf("value %q, want %q", got.Value, want.Value)
	case got.ID != want.ID || got.Type != want.Type || got.Source != want.Source || got.Subject != want.Subject || got.ContentType != want.ContentType:
		return fmt.Sprintf("attributes %q %q %q %q %q, want %q %q %q %q %q", got.ID, got.Type, got.Source, got.Subject, got.ContentType,
			want.ID, want.Type, want.Source, want.Subject, want.ContentType)
	case !got.Time.Equal(want.Time):
		return fmt.Sprintf("time %v, want %v", got.Time, want.Time)
	case len(got.Headers) != len(want.Headers):
		return fmt.Sprintf("headers %v, want %v", got.Headers, want.Headers)
	}
	for i := range got.Headers {
		if got.Headers[i].Key != want.Headers[i].Key || !bytes.Equal(got.Headers[i].Value, want.Headers[i].Value) {
			return fmt.Sprintf("header %d %v, want %v", i, got.Headers[i], want.Headers[i])
		}
	}
	return ""
}

func testAppendGet(t *testing.T, a lookback.Archive) {
	ctx := ctxOf(t)
	rs := recs(
		ev{topic: "orders", part: 0, off: 0, at: 1, key: []byte("k1"), id: "a", typ: "order.created", source: "/shop", subject: "s1",
			extra: []eventkit.Header{hdr("traceparent", "00-abc-def-01"), {Key: "empty", Value: nil}, hdr("dup", "1"), hdr("dup", "2")}},
		ev{topic: "orders", part: 1, off: 7, at: 2},
	)
	// A malformed record: a ce_time that does not parse, a non-UTF-8 type.
	bad := lookback.NewRecord("orders", 0, 1, t0.Add(3), nil, []byte{0xff, 0x00},
		[]eventkit.Header{hdr("ce_id", "x"), hdr("ce_time", "yesterday"), {Key: "ce_type", Value: []byte{0xff}}})
	// Oversized keys, attributes and header values, and NUL bytes where a
	// database might want text: still archived, still found.
	big := bytes.Repeat([]byte("k\x00"), 3000)
	huge := lookback.NewRecord("orders", 0, 3, t0.Add(4), big, nil, []eventkit.Header{
		hdr("ce_id", strings.Repeat("i", 5000)), hdr("ce_source", "/s"), hdr("ce_type", "t\x00t"), hdr("ce_specversion", "1.0"),
		hdr("ce_subject", strings.Repeat("é", 3000)), {Key: "blob\x00", Value: bytes.Repeat([]byte{0xff}, 6000)}})
	// A key that is the first 255 bytes of the oversized one: a filter
	// matches whole keys, never a key's beginning, on either side of the
	// 256 bytes PostgreSQL's index holds.
	prefix := lookback.NewRecord("orders", 0, 4, t0.Add(5), big[:255], nil, nil)
	rs = append(rs, bad, huge, prefix)
	// The same record twice in one batch is stored once.
	mustAppend(t, a, append(slices.Clone(rs), rs[0]), nil)
	for _, want := range rs {
		got, err := a.Get(ctx, want.Topic, want.Partition, want.Offset)
		if err != nil {
			t.Fatalf("get %s/%d/%d: %v", want.Topic, want.Partition, want.Offset, err)
		}
		if d := sameRecord(got, want); d != "" {
			t.Errorf("get %s/%d/%d: %s", want.Topic, want.Partition, want.Offset, d)
		}
	}
	// Appending again, even with other contents, leaves the records as
	// they were.
	changed := slices.Clone(rs)
	for i := range changed {
		changed[i].Value = []byte("changed")
	}
	mustAppend(t, a, changed, nil)
	if n, err := a.Count(ctx, lookback.Filter{}); err != nil || n != int64(len(rs)) {
		t.Fatalf("count after re-append = %d, %v; want %d", n, err, len(rs))
	}
	got, err := a.Get(ctx, "orders", 0, 0)
	if err != nil || !bytes.Equal(got.Value, rs[0].Value) {
		t.Fatalf("re-append changed the record: %q, %v", got.Value, err)
	}
	for _, c := range []struct {
		topic string
		part  int32
		off   int64
	}{{"orders", 0, 2}, {"orders", 2, 0}, {"other", 0, 0}} {
		if _, err := a.Get(ctx, c.topic, c.part, c.off); !errors.Is(err, lookback.ErrNotFound) {
			t.Errorf("get %s/%d/%d = %v, want ErrNotFound", c.topic, c.part, c.off, err)
		}
	}
	if err := a.Append(ctx, nil, nil); err != nil {
		t.Errorf("empty append: %v", err)
	}
	for _, f := range []lookback.Filter{
		{Key: big}, {ID: huge.ID}, {Type: "t\x00t"}, {Subject: huge.Subject},
		{Headers: []lookback.HeaderMatch{{Name: "blob\x00", Value: huge.Headers[5].Value}}},
	} {
		if n, err := a.Count(ctx, f); err != nil || n != 1 {
			t.Errorf("count of the oversized record by %.40q: %d, %v", fmt.Sprint(f), n, err)
		}
	}
	for _, c := range []struct {
		key  []byte
		want int64
	}{{big[:255], 1}, {big[:254], 0}, {big[:256], 0}, {big[:3000], 0}, {big, 1}} {
		if n, err := a.Count(ctx, lookback.Filter{Key: c.key}); err != nil || n != c.want {
			t.Errorf("count by a key of %d bytes: %d, %v; want %d", len(c.key), n, err, c.want)
		}
	}
}

// dataset is the records the filter cases run against: three topics, two
// partitions, text and binary keys, records without CloudEvents headers,
// extension headers and timestamps that tie.
func dataset() []lookback.Record {
	var evs []ev
	topics := []string{"orders", "payments", "shipments"}
	for i := range 60 {
		e := ev{
			topic: topics[i%3], part: int32(i % 2), off: int64(i / 6),
			at:      time.Duration(i/2) * time.Millisecond, // pairs tie on the timestamp
			id:      "id-" + strconv.Itoa(i),
			typ:     []string{"created", "updated", "deleted"}[i%3*(i%5)%3],
			source:  "/svc/" + strconv.Itoa(i%4),
			subject: "subject-" + strconv.Itoa(i%7),
			extra:   []eventkit.Header{hdr("tenant", "t"+strconv.Itoa(i%3)), hdr("region", []string{"eu", "us"}[i%2])},
		}
		switch {
		case i%10 == 0:
			e.key = []byte{0x00, 0xff, byte(i % 20), '\''}
		case i%4 != 3:
			e.key = []byte("acct-" + strconv.Itoa(i%5))
		}
		if i%11 == 5 { // not a CloudEvent at all
			e.id, e.typ, e.source, e.subject = "", "", "", ""
		}
		if i%13 == 0 {
			e.extra = append(e.extra, eventkit.Header{Key: "bin", Value: []byte{0xfe, 0x00, 0x01}})
		}
		evs = append(evs, e)
	}
	// Offsets within a partition must be unique: make them so.
	next := map[[2]any]int64{}
	for i := range evs {
		k := [2]any{evs[i].topic, evs[i].part}
		evs[i].off = next[k]
		next[k]++
	}
	return recs(evs...)
}

// matches is the reference implementation of a filter.
func matches(f lookback.Filter, r *lookback.Record) bool {
	switch {
	case f.Topic != "" && r.Topic != f.Topic,
		f.Partition != nil && r.Partition != *f.Partition,
		f.Key != nil && !bytes.Equal(r.Key, f.Key),
		f.Type != "" && r.Type != f.Type,
		f.ID != "" && r.ID != f.ID,
		len(f.IDs) > 0 && !slices.Contains(f.IDs, r.ID),
		f.Subject != "" && r.Subject != f.Subject,
		f.Source != "" && r.Source != f.Source,
		!f.From.IsZero() && r.Timestamp.Before(f.From),
		!f.To.IsZero() && r.Timestamp.After(f.To):
		return false
	}
	for _, m := range f.Headers {
		if !slices.ContainsFunc(r.Headers, func(h eventkit.Header) bool { return h.Key == m.Name && bytes.Equal(h.Value, m.Value) }) {
			return false
		}
	}
	return true
}

func compareRecords(a, b lookback.Record) int {
	return cmp.Or(a.Timestamp.Compare(b.Timestamp), cmp.Compare(a.Topic, b.Topic),
		cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
}

// expect returns the coordinates the records matching f should come in.
func expect(all []lookback.Record, f lookback.Filter, o lookback.Order, after *lookback.Position) []string {
	var out []lookback.Record
	for i := range all {
		if !matches(f, &all[i]) {
			continue
		}
		if after != nil {
			c := compareRecords(all[i], lookback.Record{Timestamp: after.Timestamp, Topic: after.Topic, Partition: after.Partition, Offset: after.Offset})
			if (o == lookback.Asc && c <= 0) || (o == lookback.Desc && c >= 0) {
				continue
			}
		}
		out = append(out, all[i])
	}
	slices.SortFunc(out, compareRecords)
	if o == lookback.Desc {
		slices.Reverse(out)
	}
	return coords(out)
}

func coords(rs []lookback.Record) []string {
	out := make([]string, len(rs))
	for i := range rs {
		out[i] = eventkit.FormatCoordinates(rs[i].Topic, rs[i].Partition, rs[i].Offset)
	}
	return out
}

// queryAll pages through q and returns every record.
func queryAll(t *testing.T, a lookback.Archive, q lookback.Query) []lookback.Record {
	t.Helper()
	var out []lookback.Record
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("more than 1000 pages: the cursor does not advance")
		}
		p, err := a.Query(ctxOf(t), q)
		if err != nil {
			t.Fatalf("query %+v: %v", q, err)
		}
		if len(p.Records) > q.PageSize() {
			t.Fatalf("page of %d records, limit %d", len(p.Records), q.PageSize())
		}
		out = append(out, p.Records...)
		if p.NextCursor == "" {
			return out
		}
		q.Cursor = p.NextCursor
	}
}

func ptr[T any](v T) *T { return &v }

func testFilters(t *testing.T, a lookback.Archive) {
	all := dataset()
	mustAppend(t, a, all, nil)
	ms := time.Millisecond
	cases := []struct {
		name string
		f    lookback.Filter
	}{
		{"all", lookback.Filter{}},
		{"topic", lookback.Filter{Topic: "payments"}},
		// Counted from the per-partition counts when the range holds the
		// whole topic, bounds included, and record by record otherwise.
		{"topic, a range that holds all of it", lookback.Filter{Topic: "payments", From: t0, To: t0.Add(29 * ms)}},
		{"topic, a range short of its last", lookback.Filter{Topic: "payments", From: t0, To: t0.Add(28 * ms)}},
		{"topic, a range after its first", lookback.Filter{Topic: "payments", From: t0.Add(ms), To: t0.Add(29 * ms)}},
		{"nothing: a topic never archived", lookback.Filter{Topic: "nowhere"}},
		{"partition", lookback.Filter{Partition: ptr(int32(1))}},
		{"topic and partition", lookback.Filter{Topic: "orders", Partition: ptr(int32(0))}},
		{"key", lookback.Filter{Key: []byte("acct-2")}},
		{"binary key", lookback.Filter{Key: []byte{0x00, 0xff, 10, '\''}}},
		{"type", lookback.Filter{Type: "updated"}},
		{"id", lookback.Filter{ID: "id-17"}},
		{"ids", lookback.Filter{IDs: []string{"id-1", "id-2", "id-40", "id-nope"}}},
		{"subject", lookback.Filter{Subject: "subject-3"}},
		{"source", lookback.Filter{Source: "/svc/1"}},
		{"from inclusive", lookback.Filter{From: t0.Add(20 * ms)}},
		{"to inclusive", lookback.Filter{To: t0.Add(5 * ms)}},
		{"from and to", lookback.Filter{From: t0.Add(3 * ms), To: t0.Add(9 * ms)}},
		{"one instant", lookback.Filter{From: t0.Add(7 * ms), To: t0.Add(7 * ms)}},
		// Bounds past what Unix nanoseconds hold (1678–2262).
		{"from and to far out", lookback.Filter{From: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)}},
		{"nothing: to long ago", lookback.Filter{To: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"nothing: from far ahead", lookback.Filter{From: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"header", lookback.Filter{Headers: []lookback.HeaderMatch{{Name: "tenant", Value: []byte("t1")}}}},
		{"two headers all match", lookback.Filter{Headers: []lookback.HeaderMatch{
			{Name: "tenant", Value: []byte("t2")}, {Name: "region", Value: []byte("eu")}}}},
		{"binary header", lookback.Filter{Headers: []lookback.HeaderMatch{{Name: "bin", Value: []byte{0xfe, 0x00, 0x01}}}}},
		{"binding header", lookback.Filter{Headers: []lookback.HeaderMatch{{Name: "ce_type", Value: []byte("deleted")}}}},
		{"ce_time header", lookback.Filter{Headers: []lookback.HeaderMatch{{Name: "ce_time", Value: []byte(t0.Add(4 * ms).Format(time.RFC3339Nano))}}}},
		{"specversion header", lookback.Filter{Headers: []lookback.HeaderMatch{{Name: "ce_specversion", Value: []byte("1.0")}}}},
		{"nothing: header value of another name", lookback.Filter{Headers: []lookback.HeaderMatch{{Name: "tenant", Value: []byte("eu")}}}},
		{"everything", lookback.Filter{Topic: "orders", Key: []byte("acct-0"), Type: "created", Source: "/svc/1",
			From: t0, To: t0.Add(time.Second), Headers: []lookback.HeaderMatch{{Name: "tenant", Value: []byte("t0")}}}},
		{"nothing", lookback.Filter{Topic: "orders", ID: "id-1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, o := range []lookback.Order{lookback.Asc, lookback.Desc} {
				want := expect(all, c.f, o, nil)
				if !strings.HasPrefix(c.name, "nothing") && len(want) == 0 {
					t.Fatalf("the case matches nothing in the dataset")
				}
				for _, limit := range []int{0, 4} {
					got := coords(queryAll(t, a, lookback.Query{Filter: c.f, Order: o, Limit: limit}))
					if !slices.Equal(got, want) {
						t.Errorf("order %d limit %d:\n got %v\nwant %v", o, limit, got, want)
					}
				}
			}
			n, err := a.Count(ctxOf(t), c.f)
			if want := len(expect(all, c.f, lookback.Asc, nil)); err != nil || n != int64(want) {
				t.Errorf("count = %d, %v; want %d", n, err, want)
			}
		})
	}
	// Records come back whole from a query too.
	p, err := a.Query(ctxOf(t), lookback.Query{Filter: lookback.Filter{ID: "id-13"}})
	if err != nil || len(p.Records) != 1 {
		t.Fatalf("query id-13: %v, %v", p.Records, err)
	}
	want := all[slices.IndexFunc(all, func(r lookback.Record) bool { return r.ID == "id-13" })]
	if d := sameRecord(p.Records[0], want); d != "" {
		t.Errorf("queried record: %s", d)
	}
}

func testPagesKeepPlace(t *testing.T, a lookback.Archive) {
	for _, o := range []lookback.Order{lookback.Asc, lookback.Desc} {
		t.Run(fmt.Sprint("order ", o), func(t *testing.T) {
			topic := "paged-" + strconv.Itoa(int(o))
			var evs []ev
			for i := range 20 {
				evs = append(evs, ev{topic: topic, part: int32(i % 2), off: int64(i), at: time.Duration(10+i) * time.Millisecond, id: strconv.Itoa(i)})
			}
			all := recs(evs...)
			mustAppend(t, a, all, nil)
			f := lookback.Filter{Topic: topic}
			q := lookback.Query{Filter: f, Order: o, Limit: 5}
			first, err := a.Query(ctxOf(t), q)
			if err != nil || len(first.Records) != 5 || first.NextCursor == "" {
				t.Fatalf("first page: %d records, cursor %q, %v", len(first.Records), first.NextCursor, err)
			}
			last := lookback.PositionOf(&first.Records[4])
			// Records arrive between pages: older ones, newer ones, and one
			// that ties with the last record of the page on the timestamp.
			arrived := recs(
				ev{topic: topic, part: 0, off: 100, at: 0, id: "old"},
				ev{topic: topic, part: 1, off: 101, at: time.Hour, id: "new"},
				ev{topic: topic, part: 0, off: 102, at: last.Timestamp.Sub(t0), id: "tie"},
				ev{topic: topic, part: 1, off: 103, at: 15 * time.Millisecond, id: "middle"},
			)
			mustAppend(t, a, arrived, nil)
			all = append(all, arrived...)
			rest := coords(queryAll(t, a, lookback.Query{Filter: f, Order: o, Limit: 5, Cursor: first.NextCursor}))
			if want := expect(all, f, o, &last); !slices.Equal(rest, want) {
				t.Errorf("pages after the first:\n got %v\nwant %v", rest, want)
			}
			if seen := append(coords(first.Records), rest...); len(seen) != len(slices.Compact(slices.Sorted(slices.Values(seen)))) {
				t.Errorf("a record came twice: %v", seen)
			}
		})
	}
}

func testLinks(t *testing.T, a lookback.Archive) {
	ctx := ctxOf(t)
	orig := recs(ev{topic: "orders", part: 0, off: 5, at: time.Millisecond, id: "a"}, ev{topic: "orders", part: 0, off: 6, at: 2 * time.Millisecond, id: "b"})
	link := func(id string, off int64, at time.Duration) lookback.ReplayLink {
		return lookback.ReplayLink{ReplayID: id, Mode: eventkit.Reprocess, OriginTopic: "orders", OriginPartition: 0, OriginOffset: 5,
			Topic: "eventkit.replay.g", Partition: 0, Offset: off, Timestamp: t0.Add(at)}
	}
	ls := []lookback.ReplayLink{link("r2", 1, time.Hour), link("r1", 0, time.Minute)}
	mustAppend(t, a, orig, ls)
	mustAppend(t, a, nil, ls[:1]) // again: stored once
	got, err := a.Links(ctx, "orders", 0, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ReplayID != "r1" || got[1].ReplayID != "r2" {
		t.Fatalf("links = %+v, want r1 then r2", got)
	}
	if g, w := got[0], ls[1]; g.Mode != w.Mode || g.Topic != w.Topic || g.Offset != w.Offset || !g.Timestamp.Equal(w.Timestamp) ||
		g.OriginTopic != w.OriginTopic || g.OriginPartition != w.OriginPartition || g.OriginOffset != w.OriginOffset {
		t.Errorf("link = %+v, want %+v", g, w)
	}
	if got, err := a.Links(ctx, "orders", 0, 6); err != nil || len(got) != 0 {
		t.Errorf("links of a record never replayed = %v, %v", got, err)
	}
	// A replayed record is a link, not a record.
	if _, err := a.Get(ctx, "eventkit.replay.g", 0, 0); !errors.Is(err, lookback.ErrNotFound) {
		t.Errorf("get of a replayed copy = %v, want ErrNotFound", err)
	}
	if n, _ := a.Count(ctx, lookback.Filter{}); n != 2 {
		t.Errorf("count = %d, want the 2 originals", n)
	}
}

func testTopics(t *testing.T, a lookback.Archive) {
	ctx := ctxOf(t)
	if ts, err := a.Topics(ctx); err != nil || len(ts) != 0 {
		t.Fatalf("topics of an empty archive = %v, %v", ts, err)
	}
	all := dataset()
	mustAppend(t, a, all, nil)
	mustAppend(t, a, all[:10], nil)
	got, err := a.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]*lookback.TopicStats{}
	parts := map[string]map[int32]bool{}
	for _, r := range all {
		s := want[r.Topic]
		if s == nil {
			s = &lookback.TopicStats{Topic: r.Topic, First: r.Timestamp, Last: r.Timestamp}
			want[r.Topic], parts[r.Topic] = s, map[int32]bool{}
		}
		s.Count++
		parts[r.Topic][r.Partition] = true
		s.Partitions = int32(len(parts[r.Topic]))
		if r.Timestamp.Before(s.First) {
			s.First = r.Timestamp
		}
		if r.Timestamp.After(s.Last) {
			s.Last = r.Timestamp
		}
	}
	if len(got) != len(want) {
		t.Fatalf("topics = %+v, want %d", got, len(want))
	}
	for i, g := range got {
		w := want[g.Topic]
		if w == nil || g.Count != w.Count || g.Partitions != w.Partitions || !g.First.Equal(w.First) || !g.Last.Equal(w.Last) {
			t.Errorf("topic %+v, want %+v", g, w)
		}
		if i > 0 && got[i-1].Topic >= g.Topic {
			t.Errorf("topics not by name: %q before %q", got[i-1].Topic, g.Topic)
		}
	}
}

// A bare query answers the same records with what Kafka carries only, over
// one topic or all of them, in either order, including a tombstone (no
// value), an empty value and a record without headers; a record's slices
// are its own, however the store shares their memory.
func testBare(t *testing.T, a lookback.Archive) {
	edge := []lookback.Record{
		lookback.NewRecord("edge", 0, 0, t0, []byte("k"), nil, nil),
		lookback.NewRecord("edge", 0, 1, t0, []byte("k"), []byte{}, []eventkit.Header{{Key: "empty"}}),
		lookback.NewRecord("edge", 0, 2, t0, nil, []byte("v"), nil),
		// The widest partition number: a store that packs it with other bits
		// must not overflow.
		lookback.NewRecord("edge", math.MaxInt32, 3, t0, []byte{}, []byte("v"), nil),
	}
	mustAppend(t, a, append(dataset(), edge...), nil)
	withID := false
	for _, q := range []lookback.Query{
		{Filter: lookback.Filter{Topic: "orders"}, Order: lookback.Asc, Limit: 4},
		{Order: lookback.Desc, Limit: 7},
	} {
		full := queryAll(t, a, q)
		q.Bare = true
		bare := queryAll(t, a, q)
		if len(full) == 0 || len(bare) != len(full) {
			t.Fatalf("%d bare records, %d full ones", len(bare), len(full))
		}
		for i, b := range bare {
			f := full[i]
			withID = withID || f.ID != ""
			kafka := lookback.Record{Topic: f.Topic, Partition: f.Partition, Offset: f.Offset, Timestamp: f.Timestamp, Key: f.Key, Value: f.Value, Headers: f.Headers}
			if !reflect.DeepEqual(b, kafka) {
				t.Errorf("bare record\n %+v\nwant\n %+v", b, kafka)
			}
		}
		// Appending to one record's slices leaves every other record as it was.
		for i := range bare {
			bare[i].Key = append(bare[i].Key, '!')
			bare[i].Value = append(bare[i].Value, '!')
			bare[i].Headers = append(bare[i].Headers, eventkit.Header{Key: "x"})
		}
		for i, b := range bare {
			f := full[i]
			if !bytes.Equal(b.Key, append(slices.Clip(f.Key), '!')) || !bytes.Equal(b.Value, append(slices.Clip(f.Value), '!')) ||
				len(b.Headers) != len(f.Headers)+1 || (len(f.Headers) > 0 && !reflect.DeepEqual(b.Headers[:len(f.Headers)], f.Headers)) {
				t.Fatalf("record %d changed by an append to another: %+v, was %+v", i, b, f)
			}
		}
	}
	if !withID {
		t.Error("no record with CloudEvents fields to leave out")
	}
	// A page of large records spans several of the arrays its records'
	// bytes share, and one record is larger than any of them.
	var wide []lookback.Record
	for i := range 6 {
		v := bytes.Repeat([]byte{'a' + byte(i)}, 30_000+i*20_000)
		wide = append(wide, lookback.NewRecord("wide", 0, int64(i), t0.Add(time.Duration(i)), []byte{byte(i)}, v,
			[]eventkit.Header{{Key: "n", Value: []byte{'0' + byte(i)}}}))
	}
	mustAppend(t, a, wide, nil)
	for _, bare := range []bool{true, false} {
		got := queryAll(t, a, lookback.Query{Filter: lookback.Filter{Topic: "wide"}, Order: lookback.Asc, Limit: lookback.MaxLimit, Bare: bare})
		if len(got) != len(wide) {
			t.Fatalf("bare %t: %d wide records, want %d", bare, len(got), len(wide))
		}
		for i, g := range got {
			if w := wide[i]; !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || !reflect.DeepEqual(g.Headers, w.Headers) {
				t.Errorf("bare %t: wide record %d read back changed", bare, i)
			}
		}
	}
	edgeQ := lookback.Query{Filter: lookback.Filter{Topic: "edge"}, Order: lookback.Asc, Bare: true}
	for _, q := range []lookback.Query{edgeQ, {Filter: lookback.Filter{From: t0, To: t0}, Order: lookback.Asc, Bare: true}} {
		var got []lookback.Record
		for _, r := range queryAll(t, a, q) {
			if r.Topic == "edge" {
				got = append(got, r)
			}
		}
		if len(got) != 4 || got[0].Value != nil || got[1].Value == nil || len(got[1].Value) != 0 || got[2].Key != nil || got[2].Headers != nil ||
			got[3].Key == nil || len(got[3].Key) != 0 || got[3].Partition != math.MaxInt32 || got[3].Offset != 3 {
			t.Errorf("%+v: edge records read back as %+v: a nil key or value must stay nil (a tombstone), an empty one empty", q.Filter, got)
		}
	}
}

// testLargePages: a page of large records ends at lookback.PageBytes,
// before its limit, and says that more follow; the last page does not.
func testLargePages(t *testing.T, a lookback.Archive) {
	value := bytes.Repeat([]byte("v"), lookback.PageBytes/3+1) // three reach PageBytes
	// Nine fill three pages, the last of which ends the query; ten leave
	// one for a fourth.
	for _, n := range []int{9, 10} {
		topic := "large-" + strconv.Itoa(n)
		var recs []lookback.Record
		for i := range n {
			recs = append(recs, lookback.NewRecord(topic, 0, int64(i), t0.Add(time.Duration(i)), nil, value, nil))
		}
		mustAppend(t, a, recs, nil)
		for _, o := range []lookback.Order{lookback.Asc, lookback.Desc} {
			q := lookback.Query{Filter: lookback.Filter{Topic: topic}, Order: o, Limit: lookback.MaxLimit, Bare: true}
			var got []int64
			for {
				p, err := a.Query(ctxOf(t), q)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Records) == 0 || len(p.Records) > 3 {
					t.Fatalf("%s order %d: a page of %d records of %d B", topic, o, len(p.Records), len(value))
				}
				for _, r := range p.Records {
					got = append(got, r.Offset)
				}
				if p.NextCursor == "" {
					break
				}
				q.Cursor = p.NextCursor
			}
			if o == lookback.Desc {
				slices.Reverse(got)
			}
			if len(got) != n || !slices.IsSorted(got) || got[0] != 0 || got[n-1] != int64(n-1) {
				t.Errorf("%s order %d: offsets %v, want the %d records once each, in order", topic, o, got, n)
			}
		}
	}
}

// testFarTimes: a record stamped after 2262 (milliseconds sent as
// microseconds, say) is kept at the end of what Unix nanoseconds hold,
// after every other record, and retention leaves it alone; it must not
// wrap around to some time before the retention cut.
func testFarTimes(t *testing.T, a lookback.Archive) {
	ctx := ctxOf(t)
	far := lookback.Record{Topic: "orders", Partition: 0, Offset: 1, Timestamp: time.Date(55000, 1, 1, 0, 0, 0, 0, time.UTC),
		Value: []byte("far"), ID: "far", Time: time.Date(55000, 1, 1, 0, 0, 0, 0, time.UTC)}
	near := lookback.Record{Topic: "orders", Partition: 0, Offset: 2, Timestamp: t0, Value: []byte("near"), ID: "near"}
	mustAppend(t, a, []lookback.Record{far, near}, nil)
	if _, err := a.DeleteBefore(ctx, t0.Add(time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	got, err := a.Get(ctx, "orders", 0, 1)
	if err != nil {
		t.Fatalf("the far record after retention: %v", err)
	}
	if end := time.Unix(0, math.MaxInt64); !got.Timestamp.Equal(end) || !got.Time.Equal(end) {
		t.Errorf("far record stamped %s (time %s), want the end of the range, %s", got.Timestamp, got.Time, end)
	}
	if _, err := a.Get(ctx, "orders", 0, 2); !errors.Is(err, lookback.ErrNotFound) {
		t.Errorf("the record before the cut: %v, want it deleted", err)
	}
}

// testTimeHeaders filters on ce_time headers: the ce_time column holds
// an instant, and a header filter matches a spelling, byte for byte.
func testTimeHeaders(t *testing.T, a lookback.Archive) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	withTime := func(off int64, ceTimes ...string) lookback.Record {
		hs := []eventkit.Header{hdr(eventkit.HeaderID, fmt.Sprint("t", off)), hdr(eventkit.HeaderSource, "/s"),
			hdr(eventkit.HeaderType, "t"), hdr(eventkit.HeaderSpecVersion, eventkit.SpecVersion)}
		for _, v := range ceTimes {
			hs = append(hs, hdr(eventkit.HeaderTime, v))
		}
		return lookback.NewRecord("times", 0, off, t0.Add(time.Duration(off)), nil, []byte("v"), hs)
	}
	all := []lookback.Record{
		withTime(0, "2030-01-02T03:04:05Z"),
		withTime(1, "2030-01-02T04:04:05+01:00"), // the same instant, spelled otherwise
		withTime(2, "2030-01-02T03:04:05.000Z"),
		withTime(3, "2030-01-02T03:04:05Z", "2031-01-01T00:00:00Z"), // two of them
		withTime(4, "2031-01-01T00:00:00Z", "2030-01-02T03:04:05Z"),
		withTime(5, "2500-01-01T00:00:00Z"), // past what Unix nanoseconds hold
		withTime(6, "2600-01-01T00:00:00Z"),
		withTime(7, "yesterday"),
		lookback.NewRecord("times", 0, 8, t0, nil, nil, []eventkit.Header{{Key: "empty", Value: []byte{}}}),
	}
	mustAppend(t, a, all, nil)
	if !all[0].Time.Equal(at) {
		t.Fatalf("record 0 has time %s, want %s", all[0].Time, at)
	}
	for _, c := range []struct {
		name, value string
		want        []string
	}{
		{"canonical", "2030-01-02T03:04:05Z", []string{"times/0/0", "times/0/3", "times/0/4"}},
		{"an offset", "2030-01-02T04:04:05+01:00", []string{"times/0/1"}},
		{"fractional zeros", "2030-01-02T03:04:05.000Z", []string{"times/0/2"}},
		{"the second of two", "2031-01-01T00:00:00Z", []string{"times/0/3", "times/0/4"}},
		{"after 2262", "2500-01-01T00:00:00Z", []string{"times/0/5"}},
		{"not a time", "yesterday", []string{"times/0/7"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := lookback.Filter{Headers: []lookback.HeaderMatch{{Name: eventkit.HeaderTime, Value: []byte(c.value)}}}
			if want := expect(all, f, lookback.Asc, nil); !slices.Equal(want, c.want) {
				t.Fatalf("the reference matches %v, the case says %v", want, c.want)
			}
			if got := coords(queryAll(t, a, lookback.Query{Filter: f, Order: lookback.Asc})); !slices.Equal(got, c.want) {
				t.Errorf("query: got %v, want %v", got, c.want)
			}
			if n, err := a.Count(ctxOf(t), f); err != nil || n != int64(len(c.want)) {
				t.Errorf("count = %d, %v; want %d", n, err, len(c.want))
			}
		})
	}
	// A header's value is never NULL: a nil value asks for an empty one.
	for _, v := range [][]byte{nil, {}} {
		f := lookback.Filter{Headers: []lookback.HeaderMatch{{Name: "empty", Value: v}}}
		if got := coords(queryAll(t, a, lookback.Query{Filter: f})); !slices.Equal(got, []string{"times/0/8"}) {
			t.Errorf("header empty with value %#v: got %v, want times/0/8", v, got)
		}
	}
}

func testDeleteBefore(t *testing.T, a lookback.Archive) {
	ctx := ctxOf(t)
	all := dataset()
	cut := t0.Add(10 * time.Millisecond)
	ls := []lookback.ReplayLink{
		{ReplayID: "old", OriginTopic: "orders", Topic: "eventkit.replay.g", Offset: 0, Timestamp: cut.Add(-time.Nanosecond), Mode: eventkit.Reprocess},
		{ReplayID: "kept", OriginTopic: "orders", Topic: "eventkit.replay.g", Offset: 1, Timestamp: cut, Mode: eventkit.Reprocess},
	}
	mustAppend(t, a, all, ls)
	var old, kept []lookback.Record
	for _, r := range all {
		if r.Timestamp.Before(cut) {
			old = append(old, r)
		} else {
			kept = append(kept, r)
		}
	}
	// With a limit, the oldest go first, a chunk at a time.
	n, err := a.DeleteBefore(ctx, cut, 3)
	if err != nil || n != 3 {
		t.Fatalf("delete with limit 3 = %d, %v", n, err)
	}
	// Which of the records that tie on a timestamp go first is the
	// store's choice; none may outlive an older one.
	slices.SortFunc(old, compareRecords)
	var gone []time.Time
	for _, r := range old {
		if _, err := a.Get(ctx, r.Topic, r.Partition, r.Offset); errors.Is(err, lookback.ErrNotFound) {
			gone = append(gone, r.Timestamp)
		} else if r.Timestamp.Before(old[2].Timestamp) {
			t.Errorf("%s/%d/%d is still there, older than a deleted one", r.Topic, r.Partition, r.Offset)
		}
	}
	if len(gone) != 3 || gone[2].After(old[2].Timestamp) {
		t.Errorf("deleted %v, want the 3 oldest", gone)
	}
	total := n
	for {
		n, err := a.DeleteBefore(ctx, cut, 7)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if want := int64(len(old) + 1); total != want {
		t.Errorf("deleted %d, want %d records and 1 link", total, want)
	}
	got := coords(queryAll(t, a, lookback.Query{Order: lookback.Asc, Limit: 1000}))
	if want := expect(kept, lookback.Filter{}, lookback.Asc, nil); !slices.Equal(got, want) {
		t.Errorf("left after retention:\n got %v\nwant %v", got, want)
	}
	links, err := a.Links(ctx, "orders", 0, 0)
	if err != nil || len(links) != 1 || links[0].ReplayID != "kept" {
		t.Errorf("links left = %+v, %v; want only the one at the cut", links, err)
	}
	// Filters on what is left still answer right, header filters included.
	for _, f := range []lookback.Filter{
		{Headers: []lookback.HeaderMatch{{Name: "tenant", Value: []byte("t1")}}},
		{Key: []byte("acct-1")},
	} {
		if got, want := coords(queryAll(t, a, lookback.Query{Filter: f})), expect(kept, f, lookback.Desc, nil); !slices.Equal(got, want) {
			t.Errorf("filter %+v after retention:\n got %v\nwant %v", f, got, want)
		}
	}
	stats, err := a.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var count int64
	for _, s := range stats {
		count += s.Count
		if s.First.Before(cut) {
			t.Errorf("topic %s still starts at %v, before the cut", s.Topic, s.First)
		}
	}
	if count != int64(len(kept)) {
		t.Errorf("topic counts sum to %d, want %d", count, len(kept))
	}
	// Everything, without a limit.
	if n, err := a.DeleteBefore(ctx, t0.Add(time.Hour), 0); err != nil || n != int64(len(kept)+1) {
		t.Errorf("delete everything = %d, %v; want %d", n, err, len(kept)+1)
	}
	if stats, err := a.Topics(ctx); err != nil || len(stats) != 0 {
		t.Errorf("topics of an emptied archive = %+v, %v", stats, err)
	}
}

// hostile are values that would change or widen a statement built by
// pasting them into SQL, or match more than themselves as patterns.
var hostile = []string{
	`' OR '1'='1`, `' OR 1=1 --`, `"; DROP TABLE lookback_events; --`, `'); DELETE FROM lookback_events; --`,
	`%`, `_`, `*`, `\`, `\x00`, "a\x00b", `$1`, `?`, `' UNION SELECT * FROM lookback_audit --`,
}

func testHostile(t *testing.T, a lookback.Archive) {
	ctx := ctxOf(t)
	all := dataset()
	mustAppend(t, a, all, nil)
	before, err := a.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range hostile {
		fs := []lookback.Filter{
			{Topic: s}, {Key: []byte(s)}, {Type: s}, {ID: s}, {IDs: []string{s, s + "x"}}, {Subject: s}, {Source: s},
			{Headers: []lookback.HeaderMatch{{Name: s, Value: []byte(s)}}},
			{Headers: []lookback.HeaderMatch{{Name: "tenant", Value: []byte(s)}}},
			{Headers: []lookback.HeaderMatch{{Name: "ce_type", Value: []byte(s)}}},
		}
		for _, f := range fs {
			p, err := a.Query(ctx, lookback.Query{Filter: f})
			if err != nil || len(p.Records) != 0 {
				t.Errorf("filter %+v: %d records, %v; want none", f, len(p.Records), err)
			}
			if n, err := a.Count(ctx, f); err != nil || n != 0 {
				t.Errorf("count %+v = %d, %v; want 0", f, n, err)
			}
		}
		if _, err := a.Get(ctx, s, 0, 0); !errors.Is(err, lookback.ErrNotFound) {
			t.Errorf("get %q = %v, want ErrNotFound", s, err)
		}
		if ls, err := a.Links(ctx, s, 0, 0); err != nil || len(ls) != 0 {
			t.Errorf("links %q = %v, %v", s, ls, err)
		}
	}
	after, err := a.Topics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := a.Count(ctx, lookback.Filter{}); err != nil || n != int64(len(all)) || !slices.Equal(before, after) {
		t.Errorf("the archive changed: count %d (%v), topics %+v, were %d, %+v", n, err, after, len(all), before)
	}
}

func testBadQueries(t *testing.T, a lookback.Archive) {
	ctx := ctxOf(t)
	mustAppend(t, a, dataset(), nil)
	p, err := a.Query(ctx, lookback.Query{Limit: 2, Order: lookback.Asc})
	if err != nil || p.NextCursor == "" {
		t.Fatalf("first page: %v", err)
	}
	cases := []struct {
		name string
		q    lookback.Query
	}{
		{"garbage cursor", lookback.Query{Cursor: "not a cursor!"}},
		{"base64 of nothing", lookback.Query{Cursor: "AAAA"}},
		{"truncated cursor", lookback.Query{Order: lookback.Asc, Cursor: p.NextCursor[:12]}},
		{"cursor of the other order", lookback.Query{Order: lookback.Desc, Cursor: p.NextCursor}},
		{"negative limit", lookback.Query{Limit: -1}},
		{"limit too large", lookback.Query{Limit: lookback.MaxLimit + 1}},
		{"unknown order", lookback.Query{Order: 7}},
		{"negative partition", lookback.Query{Filter: lookback.Filter{Partition: ptr(int32(-1))}}},
		{"header without a name", lookback.Query{Filter: lookback.Filter{Headers: []lookback.HeaderMatch{{Value: []byte("x")}}}}},
		{"from after to", lookback.Query{Filter: lookback.Filter{From: t0.Add(time.Second), To: t0}}},
	}
	for _, c := range cases {
		if _, err := a.Query(ctx, c.q); !errors.Is(err, lookback.ErrBadQuery) {
			t.Errorf("%s: %v, want ErrBadQuery", c.name, err)
		}
	}
	if _, err := a.Count(ctx, lookback.Filter{Partition: ptr(int32(-1))}); !errors.Is(err, lookback.ErrBadQuery) {
		t.Errorf("count with a negative partition: %v, want ErrBadQuery", err)
	}
}

func testConcurrent(t *testing.T, a lookback.Archive) {
	all := dataset()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 4 {
		wg.Go(func() {
			// Overlapping batches: every record is appended by two writers.
			for i := w * 15; i < w*15+30 && i < len(all); i += 5 {
				if err := a.Append(ctxOf(t), all[i:min(i+5, len(all))], nil); err != nil {
					errs <- err
					return
				}
				if _, err := a.Query(ctxOf(t), lookback.Query{Limit: 10}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n, err := a.Count(ctxOf(t), lookback.Filter{}); err != nil || n != int64(len(all)) {
		t.Errorf("count = %d, %v; want %d", n, err, len(all))
	}
	stats, err := a.Topics(ctxOf(t))
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, s := range stats {
		sum += s.Count
	}
	if sum != int64(len(all)) {
		t.Errorf("topic counts sum to %d, want %d", sum, len(all))
	}
}

func testAudit(t *testing.T, l lookback.AuditLog) {
	ctx := ctxOf(t)
	if es, err := l.List(ctx, lookback.AuditQuery{}); err != nil || len(es) != 0 {
		t.Fatalf("empty log lists %v, %v", es, err)
	}
	var ids []int64
	for i := range 25 {
		e := lookback.AuditEntry{
			At: t0.Add(time.Duration(i) * time.Second), Actor: []string{"alice", "bob"}[i%2], Role: "operator",
			Action: []string{"replay.start", "offsets.reset", "denied"}[i%3], Target: "group-" + strconv.Itoa(i),
			Detail: `{"n":` + strconv.Itoa(i) + `}`, Outcome: "ok",
		}
		if i == 24 {
			e.At = time.Time{} // stamped by the log
			e.Actor = hostile[2]
		}
		id, err := l.Record(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			t.Fatalf("id %d after %d: ids must grow", id, ids[len(ids)-1])
		}
		ids = append(ids, id)
	}
	es, err := l.List(ctx, lookback.AuditQuery{Limit: 1})
	if err != nil || len(es) != 1 || es[0].ID != ids[24] || es[0].Actor != hostile[2] || es[0].At.IsZero() {
		t.Fatalf("newest = %+v, %v", es, err)
	}
	// Pages of 10 of alice's entries, newest first.
	var got []int64
	q := lookback.AuditQuery{Actor: "alice", Limit: 5}
	for {
		page, err := l.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			got = append(got, e.ID)
			if e.Actor != "alice" {
				t.Errorf("entry of %q in alice's list", e.Actor)
			}
		}
		q.Before = page[len(page)-1].ID
	}
	var want []int64
	for i := 22; i >= 0; i -= 2 {
		want = append(want, ids[i])
	}
	if !slices.Equal(got, want) {
		t.Errorf("alice's entries %v, want %v", got, want)
	}
	es, err = l.List(ctx, lookback.AuditQuery{Action: "denied", Before: ids[10]})
	if err != nil || len(es) != 3 || es[0].ID != ids[8] || es[0].Detail != `{"n":8}` || !es[0].At.Equal(t0.Add(8*time.Second)) ||
		es[0].Target != "group-8" || es[0].Role != "operator" || es[0].Outcome != "ok" {
		t.Errorf("denied before #10 = %+v, %v", es, err)
	}
	for _, s := range hostile {
		if es, err := l.List(ctx, lookback.AuditQuery{Actor: s, Action: s}); err != nil || len(es) != 0 {
			t.Errorf("list %q = %v, %v", s, es, err)
		}
	}
	if _, err := l.List(ctx, lookback.AuditQuery{Limit: lookback.MaxLimit + 1}); !errors.Is(err, lookback.ErrBadQuery) {
		t.Errorf("limit too large: %v, want ErrBadQuery", err)
	}
}

// testAuditConcurrent records from many goroutines at once, as a flood of
// denied requests does: every entry is stored once, under the id its
// Record returned, whatever batch it was written in.
func testAuditConcurrent(t *testing.T, l lookback.AuditLog) {
	ctx := ctxOf(t)
	const callers, each = 16, 20
	ids := make([][]int64, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				id, err := l.Record(ctx, lookback.AuditEntry{
					At: t0, Actor: "caller-" + strconv.Itoa(c), Action: "denied", Target: strconv.Itoa(i), Outcome: "denied: no token",
				})
				if err != nil {
					t.Error(err)
					return
				}
				ids[c] = append(ids[c], id)
			}
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	for c := range callers {
		es, err := l.List(ctx, lookback.AuditQuery{Actor: "caller-" + strconv.Itoa(c), Limit: each + 1})
		if err != nil || len(es) != each {
			t.Fatalf("caller %d: %d entries listed, want %d: %v", c, len(es), each, err)
		}
		for i, e := range es {
			// Newest first: the caller's last Record is listed first.
			want := ids[c][each-1-i]
			if e.ID != want || e.Target != strconv.Itoa(each-1-i) {
				t.Errorf("caller %d entry %d = id %d target %q, want id %d target %d", c, i, e.ID, e.Target, want, each-1-i)
			}
			if seen[e.ID] {
				t.Errorf("id %d given twice", e.ID)
			}
			seen[e.ID] = true
		}
	}
}
