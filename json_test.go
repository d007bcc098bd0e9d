package eventkit_test

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventkit"
)

func TestEventJSON(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name string
		ev   eventkit.Event
		has  []string // substrings of the JSON form
	}{
		{"json data", eventkit.Event{Topic: "t", Partition: 1, Offset: 2, Timestamp: ts, ID: "a", Key: []byte("k"), Data: []byte(`{"x":1}`)},
			[]string{`"data":{"x":1}`, `"data_encoding":"json"`, `"key":"k"`}},
		{"text data is base64", eventkit.Event{Timestamp: ts, Data: []byte("hello")},
			[]string{`"data":"aGVsbG8="`, `"data_encoding":"base64"`, `"key":null`}},
		{"binary key and headers", eventkit.Event{Timestamp: ts, Key: []byte{0xff}, Headers: []eventkit.Header{{Key: "h", Value: []byte{0xfe}}}, Data: []byte("1")},
			[]string{`"key":"/w=="`, `"key_encoding":"base64"`, `"headers":{"h":"/g=="}`, `"headers_encoding":"base64"`}},
		{"null value", eventkit.Event{Timestamp: ts}, []string{`"data":null`}},
		// JSON text is UTF-8: a value that is JSON but for bytes that are
		// not is sent base64, byte for byte, and the answer stays UTF-8.
		{"json but not UTF-8", eventkit.Event{Timestamp: ts, Data: []byte("{\"s\":\"\xff\xfe\"}")},
			[]string{`"data":"eyJzIjoi//4ifQ=="`, `"data_encoding":"base64"`}},
		// Names that are not UTF-8 would come out of JSON alike, as one key.
		{"header names not UTF-8", eventkit.Event{Timestamp: ts, Headers: []eventkit.Header{{Key: "\xff\xfe", Value: []byte("a")}, {Key: "\xfe\xff", Value: []byte("b")}}, Data: []byte("1")},
			[]string{`"headers":{"//4=":"a","/v8=":"b"}`, `"header_names_encoding":"base64"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(&tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.has {
				if !strings.Contains(string(b), s) {
					t.Errorf("%s lacks %s", b, s)
				}
			}
			var back eventkit.Event
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if tt.ev.Headers == nil {
				back.Headers = nil
			}
			if !utf8.Valid(b) {
				t.Errorf("the JSON form is not UTF-8: %q", b)
			}
			slices.SortFunc(back.Headers, func(a, b eventkit.Header) int { return strings.Compare(a.Key, b.Key) })
			slices.SortFunc(tt.ev.Headers, func(a, b eventkit.Header) int { return strings.Compare(a.Key, b.Key) })
			if !reflect.DeepEqual(back, tt.ev) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", back, tt.ev)
			}
		})
	}
}

// A cut payload is its start, in base64 whatever it is, marked as cut.
func TestMarshalJSONCut(t *testing.T) {
	ev := &eventkit.Event{Topic: "t", Data: []byte(`{"a":"0123456789"}`)}
	b, err := ev.MarshalJSONCut(4)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Data          string `json:"data"`
		DataEncoding  string `json:"data_encoding"`
		DataTruncated bool   `json:"data_truncated"`
		DataSize      int    `json:"data_size"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	if j.Data != base64.StdEncoding.EncodeToString([]byte(`{"a"`)) || j.DataEncoding != "base64" || !j.DataTruncated || j.DataSize != 18 {
		t.Errorf("cut event: %s", b)
	}
	if whole, _ := ev.MarshalJSONCut(18); strings.Contains(string(whole), "data_truncated") {
		t.Errorf("a payload within the bound was cut: %s", whole)
	}
}
