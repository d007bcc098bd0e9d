package lookback_test

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit/lookback"
)

func TestParseQuery(t *testing.T) {
	ascCursor := lookback.EncodeCursor(lookback.Asc, lookback.Position{Timestamp: time.Unix(1, 0), Topic: "payments", Partition: 1, Offset: 7})
	p := int32(2)
	from := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	to := from.Add(time.Hour)
	for _, tc := range []struct {
		name, raw string
		want      lookback.Query
	}{
		{"empty", "", lookback.Query{Limit: lookback.DefaultLimit}},
		{"blank fields are no filter", "topic=&key=&header=&limit=", lookback.Query{Limit: lookback.DefaultLimit}},
		{"every filter",
			"topic=payments&partition=2&key=acct-42&type=t&id=i&subject=s&source=/src&from=2025-01-02T03:04:05Z&to=2025-01-02T04:04:05Z&header=a:1&header=b:x:y&limit=10&order=asc&cursor=" + ascCursor,
			lookback.Query{
				Filter: lookback.Filter{
					Topic: "payments", Partition: &p, Key: []byte("acct-42"), Type: "t", ID: "i", Subject: "s", Source: "/src",
					From: from, To: to,
					Headers: []lookback.HeaderMatch{{Name: "a", Value: []byte("1")}, {Name: "b", Value: []byte("x:y")}},
				},
				Order: lookback.Asc, Limit: 10, Cursor: ascCursor,
			}},
		{"header with empty value", "header=a:", lookback.Query{Limit: lookback.DefaultLimit,
			Filter: lookback.Filter{Headers: []lookback.HeaderMatch{{Name: "a", Value: []byte{}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := url.ParseQuery(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			got, err := lookback.ParseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			again, err := lookback.ParseQuery(got.Values())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("Values does not round-trip: %+v, %v", again, err)
			}
		})
	}
}

func TestParseQueryRefuses(t *testing.T) {
	for _, tc := range []struct{ raw, says string }{
		{"topics=a", `unknown parameter "topics"`},
		{"topic=a&topic=b", `"topic" given 2 times`},
		{"from=yesterday", "RFC 3339"},
		{"to=2025-01-02", "RFC 3339"},
		{"from=2025-01-02T00:00:00Z&to=2025-01-01T00:00:00Z", "from is after to"},
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"partition=-1", "partition"},
		{"partition=99999999999", "partition"},
		{"partition=x", "partition"},
		{"header=nocolon", "NAME:VALUE"},
		{"header=:v", "NAME:VALUE"},
		{"order=up", "asc or desc"},
		{"cursor=" + url.QueryEscape("a b"), "cursor"},
		{"cursor=abc", "cursor"},
		{"cursor=" + lookback.EncodeCursor(lookback.Desc, lookback.Position{Topic: "a\x00b"}), "cursor: malformed"},
		{"cursor=" + lookback.EncodeCursor(lookback.Desc, lookback.Position{Topic: "\xff"}), "cursor: malformed"},
		{"order=asc&cursor=" + lookback.EncodeCursor(lookback.Desc, lookback.Position{Topic: "t"}), "other order"},
		{"cursor=" + strings.Repeat("c", 2000), "cursor"},
		{"key=%ff", "not UTF-8"},
		{"type=a%00b", "NUL"},
		{"source=" + strings.Repeat("s", 5000), "at most"},
		{strings.Repeat("header=a:b&", 17), "header filters"},
	} {
		t.Run(tc.raw[:min(len(tc.raw), 40)], func(t *testing.T) {
			v, err := url.ParseQuery(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			_, err = lookback.ParseQuery(v)
			if !errors.Is(err, lookback.ErrBadQuery) {
				t.Fatalf("got %v, want ErrBadQuery", err)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
		})
	}
}

func TestDecodeFilter(t *testing.T) {
	f, err := lookback.DecodeFilter([]byte(`{"topic":"t","partition":1,"key":"","ids":["a","b"],"from":"2025-01-02T03:04:05Z","headers":{"z":"1","a":"2"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Topic != "t" || *f.Partition != 1 || f.Key == nil || len(f.Key) != 0 || len(f.IDs) != 2 || f.From.IsZero() {
		t.Errorf("got %+v", f)
	}
	if len(f.Headers) != 2 || f.Headers[0].Name != "a" {
		t.Errorf("headers %+v, want sorted by name", f.Headers)
	}
	back, err := f.JSON().Filter()
	if err != nil || !reflect.DeepEqual(back, f) {
		t.Errorf("JSON does not round-trip: %+v, %v", back, err)
	}
	for _, bad := range []string{
		`{"topic":"t","unknown":1}`,
		`{"partition":-1}`,
		`{"partition":"1"}`,
		`{"from":"now"}`,
		`{"ids":[""]}`,
		`{"headers":{"":"v"}}`,
		`{"topic":"t"} {}`,
		`[]`,
		`{"topic":"a\u0000b"}`,
		`{"headers":{"a":[]}}`,
		`{"headers":{"a":null}}`,
		`{"headers":{"a":[null]}}`,
		`{"headers":{"a":["x",null]}}`,
		`{"headers":{"a":1}}`,
		`{"headers":{"a":["x",1]}}`,
	} {
		if _, err := lookback.DecodeFilter([]byte(bad)); !errors.Is(err, lookback.ErrBadQuery) {
			t.Errorf("%s: got %v, want ErrBadQuery", bad, err)
		}
	}
}

// Two matches on one header name (header=tenant:a&header=tenant:b: a
// record must carry both) survive the JSON form a replay is sent in,
// instead of the last one alone, which would select more.
func TestFilterJSONKeepsEveryHeaderMatch(t *testing.T) {
	v, _ := url.ParseQuery("header=tenant:a&header=tenant:b&header=region:eu")
	q, err := lookback.ParseQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(q.Filter.JSON())
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"headers":{"region":"eu","tenant":["a","b"]}}`; string(data) != want {
		t.Errorf("JSON form %s, want %s", data, want)
	}
	back, err := lookback.DecodeFilter(data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Headers, []lookback.HeaderMatch{
		{Name: "region", Value: []byte("eu")}, {Name: "tenant", Value: []byte("a")}, {Name: "tenant", Value: []byte("b")},
	}) {
		t.Errorf("decoded headers %q", back.Headers)
	}
}

// A filter with text that is not UTF-8 has no faithful JSON form: CheckJSON
// says so, rather than let a replay sent to lookback select other records.
func TestFilterCheckJSON(t *testing.T) {
	if err := (lookback.Filter{Topic: "t", Key: []byte("k"), Headers: []lookback.HeaderMatch{{Name: "a", Value: []byte("é")}}}).CheckJSON(); err != nil {
		t.Errorf("UTF-8 filter refused: %v", err)
	}
	for name, f := range map[string]lookback.Filter{
		"key":          {Key: []byte{0xff}},
		"header value": {Headers: []lookback.HeaderMatch{{Name: "a", Value: []byte{0xfe, 0}}}},
		"header name":  {Headers: []lookback.HeaderMatch{{Name: "\xff", Value: []byte("v")}}},
		"source":       {Source: "\xc3"},
		"ids":          {IDs: []string{"ok", "\xff"}},
		// Each half alone is not UTF-8; joined they would read as "é".
		"header halves": {Headers: []lookback.HeaderMatch{{Name: "a\xc3", Value: []byte{0xa9}}}},
	} {
		if err := f.CheckJSON(); !errors.Is(err, lookback.ErrBadQuery) {
			t.Errorf("%s not UTF-8: got %v, want ErrBadQuery", name, err)
		}
	}
}

func TestParseAuditQuery(t *testing.T) {
	q, err := lookback.ParseAuditQuery(url.Values{"actor": {"alice"}, "limit": {"5"}, "before": {"42"}})
	if err != nil || q.Actor != "alice" || q.Limit != 5 || q.Before != 42 {
		t.Fatalf("got %+v, %v", q, err)
	}
	for _, bad := range []string{"who=a", "limit=0", "before=-1", "before=x", "actor=a&actor=b"} {
		v, _ := url.ParseQuery(bad)
		if _, err := lookback.ParseAuditQuery(v); !errors.Is(err, lookback.ErrBadQuery) {
			t.Errorf("%s: got %v, want ErrBadQuery", bad, err)
		}
	}
}

// FuzzParseQuery feeds raw query strings to the parser: it never panics,
// every error wraps ErrBadQuery, and what it accepts round-trips through
// Values.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"",
		"topic=payments&key=acct-42&limit=50",
		"partition=0&from=2025-01-02T03:04:05Z&to=2025-01-02T03:04:05.123456789+02:00",
		"header=a:b&header=c:d:e&order=asc&cursor=AQEAAAAAAAAAAQAAAAAAAAAAAAAAB3BheW1lbnRz",
		"cursor=AQAAAAAAAAAAAQAAAAAAAAAAAAAAB3BheW1lbnRz",
		"limit=1000&order=desc",
		"topic=x'%20OR%201=1--&key=%27;DROP%20TABLE%20records;--",
		"from=9999-12-31T23:59:59Z",
		"header=%ff:%00",
		"partition=2147483648",
		"a=%zz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // not a query string at all: net/url refuses it before we see it
		}
		q, err := lookback.ParseQuery(v)
		if err != nil {
			if !errors.Is(err, lookback.ErrBadQuery) {
				t.Fatalf("%q: error %v does not wrap ErrBadQuery", raw, err)
			}
			return
		}
		if q.Limit < 1 || q.Limit > lookback.MaxLimit {
			t.Fatalf("%q: limit %d accepted", raw, q.Limit)
		}
		again, err := lookback.ParseQuery(q.Values())
		if err != nil {
			t.Fatalf("%q: Values %v does not parse: %v", raw, q.Values(), err)
		}
		if !again.From.Equal(q.From) || !again.To.Equal(q.To) || again.Topic != q.Topic || string(again.Key) != string(q.Key) ||
			len(again.Headers) != len(q.Headers) || again.Cursor != q.Cursor || again.Limit != q.Limit || again.Order != q.Order {
			t.Fatalf("%q: round trip gives %+v, want %+v", raw, again, q)
		}
	})
}
