package strictjson_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/strictjson"
)

type inner struct {
	Topic string `json:"topic"`
}

type Base struct {
	Group string `json:"-"`
	Shift *int64 `json:"shift_by,omitempty"`
}

type body struct {
	Base
	Filter  inner             `json:"filter"`
	Items   []inner           `json:"items"`
	Headers map[string]string `json:"headers"`
	At      *time.Time        `json:"at"`
	Any     any               `json:"any"`
	DryRun  bool              `json:"dry_run"`
	Plain   int
}

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // in the error; "" for none
	}{
		{`{"filter": {"topic": "t"}, "items": [{"topic": "a"}], "headers": {"a": "1", "A": "2"}, "shift_by": 3, "dry_run": true, "Plain": 1}`, ""},
		{`{"at": "2025-01-02T03:04:05Z", "any": {"x": [1, {"y": 2}]}}`, ""},
		{`{"Filter": {"topic": "t"}}`, `unknown field "Filter"`},
		{`{"filter": {"Topic": "t"}}`, `unknown field "filter.Topic"`},
		{`{"items": [{"topic": "a"}, {"TOPIC": "b"}]}`, `unknown field "items[1].TOPIC"`},
		{`{"SHIFT_BY": 1}`, `unknown field "SHIFT_BY"`},
		{`{"plain": 1}`, `unknown field "plain"`},
		{`{"Group": "g"}`, `unknown field "Group"`},
		{`{"dry_run": true, "dry_run": false}`, `field "dry_run" given twice`},
		{`{"filter": {"topic": "a", "topic": ""}}`, `field "filter.topic" given twice`},
		{`{"headers": {"a": "1", "a": "2"}}`, `field "headers.a" given twice`},
		{`{"any": {"x": 1, "x": 2}}`, `field "any.x" given twice`},
		{`{"nope": 1}`, `unknown field "nope"`},
		{`{"dry_run": true} {}`, `data after the value`},
		{`{"dry_run": true}}`, `data after the value`},
		{`{"dry_run": "yes"}`, `cannot unmarshal`},
	} {
		var b body
		err := strictjson.Decode(strings.NewReader(c.in), &b)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.in, err, c.want)
		}
	}
}

func TestDecodeEmptyAndTooLarge(t *testing.T) {
	var b body
	if err := strictjson.Decode(strings.NewReader(" \n"), &b); err != io.EOF {
		t.Errorf("empty body: %v, want io.EOF", err)
	}
	r := http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(strings.NewReader(`{"filter": {"topic": "`+strings.Repeat("t", 100)+`"}}`)), 10)
	if err := strictjson.Decode(r, &b); !errors.As(err, new(*http.MaxBytesError)) {
		t.Errorf("body over the limit: %v, want the reader's *http.MaxBytesError", err)
	}
}

func ExampleDecode() {
	var req struct {
		DryRun bool `json:"dry_run"`
	}
	fmt.Println(strictjson.Decode(strings.NewReader(`{"dry_run": true, "DRY_RUN": false}`), &req))
	// Output: unknown field "DRY_RUN" (names are case-sensitive)
}
