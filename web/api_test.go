package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/web"
)

func TestEventShapes(t *testing.T) {
	f := newFixture(t)
	big := `{"blob":"` + strings.Repeat("x", 200) + `"}`
	bin := lookback.NewRecord("raw", 0, 0, t0, []byte{0xff, 0x01}, []byte{0x00, 0xfe},
		[]eventkit.Header{{Key: "h", Value: []byte{0xc3, 0x28}}, {Key: "plain", Value: []byte("p")}})
	f.append(
		cloudEvent("orders", 0, 1, "acct-1", "order.created", `{"amount": 5}`),
		cloudEvent("orders", 0, 2, "", "order.created", "not json"),
		cloudEvent("orders", 0, 3, "acct-2", "order.created", big),
		bin,
	)
	get := func(path string) event {
		var e event
		f.getJSON(path, &e)
		return e
	}
	t.Run("json payload", func(t *testing.T) {
		e := get("/api/v1/events/orders/0/1")
		if e.DataEncoding != "json" || string(e.Data) != `{"amount":5}` {
			t.Errorf("data %s (%s), want the JSON itself", e.Data, e.DataEncoding)
		}
		if e.Key == nil || *e.Key != "acct-1" || e.KeyEncoding != "" {
			t.Errorf("key %v %q", e.Key, e.KeyEncoding)
		}
		if e.ID != "orders-1" || e.Type != "order.created" || e.Source != "/test/orders" || e.ContentType != "application/json" || e.Time == nil {
			t.Errorf("attributes %+v", e)
		}
		if e.Headers["ce_id"] != "orders-1" {
			t.Errorf("headers %v, want every header", e.Headers)
		}
	})
	t.Run("text payload is base64, no key is null", func(t *testing.T) {
		e := get("/api/v1/events/orders/0/2")
		if e.DataEncoding != "base64" || string(e.Data) != `"`+base64.StdEncoding.EncodeToString([]byte("not json"))+`"` {
			t.Errorf("data %s (%s)", e.Data, e.DataEncoding)
		}
		if e.Key != nil {
			t.Errorf("key %q, want null", *e.Key)
		}
	})
	t.Run("binary key and headers", func(t *testing.T) {
		e := get("/api/v1/events/raw/0/0")
		if e.KeyEncoding != "base64" || *e.Key != base64.StdEncoding.EncodeToString([]byte{0xff, 0x01}) {
			t.Errorf("key %q %q", *e.Key, e.KeyEncoding)
		}
		if e.HeadersEncoding != "base64" || e.Headers["plain"] != base64.StdEncoding.EncodeToString([]byte("p")) {
			t.Errorf("headers %v %q", e.Headers, e.HeadersEncoding)
		}
	})
	t.Run("large payload cut in lists, whole in detail", func(t *testing.T) {
		var page eventsPage
		f.getJSON("/api/v1/events?key=acct-2", &page)
		if len(page.Events) != 1 || !page.Events[0].DataTruncated || page.Events[0].DataSize != len(big) {
			t.Fatalf("list: %+v", page.Events)
		}
		// The start of the payload, in base64: a cut JSON value is not JSON.
		var cut string
		if l := page.Events[0]; l.DataEncoding != "base64" || json.Unmarshal(l.Data, &cut) != nil || cut != base64.StdEncoding.EncodeToString([]byte(big[:64])) {
			t.Errorf("list: data %s, encoding %q; want the first 64 bytes in base64", l.Data, l.DataEncoding)
		}
		e := get("/api/v1/events/orders/0/3")
		if e.DataTruncated || e.DataEncoding != "json" || len(e.Data) != len(big) {
			t.Errorf("detail: truncated=%v encoding=%s len=%d", e.DataTruncated, e.DataEncoding, len(e.Data))
		}
	})
	t.Run("replay links", func(t *testing.T) {
		link := lookback.ReplayLink{ReplayID: "r1", Mode: eventkit.Reprocess, OriginTopic: "orders", OriginPartition: 0, OriginOffset: 1,
			Topic: "eventkit.replay.g", Partition: 0, Offset: 0, Timestamp: t0}
		if err := f.archive.Append(context.Background(), nil, []lookback.ReplayLink{link}); err != nil {
			t.Fatal(err)
		}
		e := get("/api/v1/events/orders/0/1")
		if len(e.Replays) != 1 || e.Replays[0].ReplayID != "r1" || e.Replays[0].Mode != "reprocess" || e.Replays[0].Topic != "eventkit.replay.g" {
			t.Errorf("replays %+v", e.Replays)
		}
	})
	t.Run("unknown event", func(t *testing.T) {
		status, body := f.do("GET", "/api/v1/events/orders/0/99", viewerToken, nil)
		if status != http.StatusNotFound || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%d %s, want 404 with a JSON error", status, body)
		}
	})
}

func TestTopicsAndAudit(t *testing.T) {
	f := newFixture(t)
	f.append(cloudEvent("a", 0, 1, "k", "t", "{}"), cloudEvent("a", 1, 2, "k", "t", "{}"), cloudEvent("b", 0, 3, "k", "t", "{}"))
	var topics struct {
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions int32  `json:"partitions"`
			Count      int64  `json:"count"`
			First      string `json:"first"`
			Last       string `json:"last"`
		} `json:"topics"`
	}
	f.getJSON("/api/v1/topics", &topics)
	if len(topics.Topics) != 2 || topics.Topics[0].Topic != "a" || topics.Topics[0].Count != 2 || topics.Topics[0].Partitions != 2 || topics.Topics[0].First == "" {
		t.Errorf("topics %+v", topics.Topics)
	}

	// Three operator requests and one denied: four entries, by name only.
	for range 3 {
		f.do("GET", "/api/v1/topics", operatorToken, nil)
	}
	f.do("GET", "/api/v1/topics", "wrong-token-0123456789", nil)
	var audit struct {
		Entries []struct {
			ID      int64  `json:"id"`
			Actor   string `json:"actor"`
			Action  string `json:"action"`
			Outcome string `json:"outcome"`
		} `json:"entries"`
		NextBefore int64 `json:"next_before"`
	}
	f.getJSON("/api/v1/audit?limit=3", &audit)
	if len(audit.Entries) != 3 || audit.NextBefore == 0 {
		t.Fatalf("audit page %+v", audit)
	}
	if e := audit.Entries[0]; e.Actor != "anonymous" || e.Outcome != "denied: unknown token" || e.Action != "GET /api/v1/topics" {
		t.Errorf("newest entry %+v", e)
	}
	if e := audit.Entries[1]; e.Actor != "otto" || e.Outcome != "ok" {
		t.Errorf("operator entry %+v", e)
	}
	var older struct {
		Entries []json.RawMessage `json:"entries"`
	}
	f.getJSON("/api/v1/audit?before="+itoa(audit.NextBefore), &older)
	if len(older.Entries) != 1 {
		t.Errorf("second page has %d entries, want 1", len(older.Entries))
	}
	_, raw := f.do("GET", "/api/v1/audit?limit=1000", viewerToken, nil)
	for _, secret := range []string{operatorToken, viewerToken, "wrong-token"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit log holds a token: %s", raw)
		}
	}
}

func TestProbesAndMetrics(t *testing.T) {
	var notReady atomic.Bool
	f := newFixture(t, web.Ready(func(context.Context) error {
		if notReady.Load() {
			return context.DeadlineExceeded
		}
		return nil
	}))
	if status, _ := f.do("GET", "/healthz", "", nil); status != 200 {
		t.Errorf("healthz %d", status)
	}
	if status, _ := f.do("GET", "/readyz", "", nil); status != 200 {
		t.Errorf("readyz %d", status)
	}
	notReady.Store(true)
	if status, _ := f.do("GET", "/readyz", "", nil); status != 503 {
		t.Errorf("readyz while not ready: %d", status)
	}
	f.do("GET", "/api/v1/events?limit=0", viewerToken, nil)
	_, body := f.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`eventkit_http_requests_total{code="400",method="get",route="/api/v1/events"} 1`,
		`eventkit_http_request_duration_seconds_count{code="503",method="get",route="/readyz"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// panicking is an archive whose queries panic.
type panicking struct{ lookback.Archive }

func (panicking) Query(context.Context, lookback.Query) (lookback.Page, error) { panic("boom") }

func TestPanicIs500(t *testing.T) {
	f := newFixture(t)
	tokens, _ := web.NewTokens(web.Token{Name: "vera", Role: web.Viewer, Secret: viewerToken})
	srv := httptest.NewServer(web.New(panicking{f.archive}, f.audit, tokens))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 500 || body.Error != "internal error" {
		t.Errorf("%d %q, want 500 internal error", resp.StatusCode, body.Error)
	}
	// The server still serves.
	if status, _ := f.do("GET", "/healthz", "", nil); status != 200 {
		t.Errorf("healthz after a panic: %d", status)
	}
}

func TestTokens(t *testing.T) {
	ts, err := web.ParseTokensFile(strings.NewReader("# who role token\nalice operator aaaaaaaaaaaaaaaaaaaa  # on call\n\n\tbob viewer bbbbbbbbbbbbbbbbbbbb\n"))
	if err != nil || len(ts) != 2 || ts[0].Name != "alice" || ts[0].Role != web.Operator || ts[1].Secret != "bbbbbbbbbbbbbbbbbbbb" {
		t.Fatalf("file: %+v, %v", ts, err)
	}
	es, err := web.ParseTokensEnv("carol:viewer:cccccccccccccccccccc, dan:operator:dd:dddddddddddddddddd")
	if err != nil || len(es) != 2 || es[1].Secret != "dd:dddddddddddddddddd" {
		t.Fatalf("env: %+v, %v", es, err)
	}
	if _, err := web.NewTokens(append(ts, es...)...); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]web.Token{
		"short":         {{Name: "a", Role: web.Viewer, Secret: "short"}},
		"same name":     {ts[0], {Name: "alice", Role: web.Viewer, Secret: "zzzzzzzzzzzzzzzzzzzzzz"}},
		"same secret":   {ts[0], {Name: "other", Role: web.Viewer, Secret: ts[0].Secret}},
		"no role":       {{Name: "a", Secret: "zzzzzzzzzzzzzzzzzzzzzz"}},
		"name with ':'": {{Name: "a:b", Role: web.Viewer, Secret: "zzzzzzzzzzzzzzzzzzzzzz"}},
	} {
		if _, err := web.NewTokens(bad...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, bad := range []string{"alice admin aaaaaaaaaaaaaaaaaaaa", "alice operator", "a b c d"} {
		if _, err := web.ParseTokensFile(strings.NewReader(bad)); err == nil {
			t.Errorf("file %q: accepted", bad)
		}
	}
	if _, err := web.LoadTokens("", ""); err == nil {
		t.Error("no tokens: accepted")
	}
}

// A tokens file or variable with its columns swapped puts the secret where
// the role goes: the error, printed to a log, must not quote it.
func TestTokenErrorsDoNotPrintTheSecret(t *testing.T) {
	const secret = "s3cr3t-0123456789abcdef"
	file := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(file, []byte("ops "+secret+" operator\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, load := range map[string]func() error{
		"file": func() error { _, err := web.LoadTokens(file, ""); return err },
		"env":  func() error { _, err := web.LoadTokens("", "ops:"+secret+":operator"); return err },
	} {
		err := load()
		if err == nil {
			t.Fatalf("%s: swapped columns accepted", name)
		}
		if strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "neither viewer nor operator") {
			t.Errorf("%s: %v; want the problem, without the secret", name, err)
		}
	}
}
