package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/eventkit/eventkit/web"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	viewerToken   = "viewer-secret-0123456789"
	operatorToken = "operator-secret-0123456789"
)

// fixture is a server over a fresh SQLite archive, on a real listener.
type fixture struct {
	t       *testing.T
	db      *sqlite.DB
	archive *sqlite.Archive
	audit   *sqlite.AuditLog
	srv     *httptest.Server
	server  *web.Server
	reg     *prometheus.Registry
}

func newFixture(t *testing.T, opts ...web.Opt) *fixture {
	t.Helper()
	return newFixtureWith(t, nil, opts...)
}

// newFixtureWith is newFixture with the options more gives once the
// fixture's database is open, such as a replay runner over its archive.
func newFixtureWith(t *testing.T, more func(*fixture) []web.Opt, opts ...web.Opt) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "lookback.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	audit := sqlite.NewAuditLog(db)
	t.Cleanup(func() { audit.Close() })
	f := &fixture{t: t, db: db, archive: sqlite.NewArchive(db), audit: audit, reg: prometheus.NewRegistry()}
	tokens, err := web.NewTokens(
		web.Token{Name: "vera", Role: web.Viewer, Secret: viewerToken},
		web.Token{Name: "otto", Role: web.Operator, Secret: operatorToken},
	)
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]web.Opt{web.Logger(testkit.Logger(t)), web.Metrics(f.reg, f.reg), web.ListDataMax(64)}, opts...)
	if more != nil {
		opts = append(opts, more(f)...)
	}
	f.server = web.New(f.archive, f.audit, tokens, opts...)
	f.srv = httptest.NewServer(f.server)
	t.Cleanup(f.srv.Close)
	return f
}

// append archives records.
func (f *fixture) append(rs ...lookback.Record) {
	f.t.Helper()
	if err := f.archive.Append(context.Background(), rs, nil); err != nil {
		f.t.Fatal(err)
	}
}

// do sends method path with token (none when empty) and body, and returns
// the status and body.
func (f *fixture) do(method, path, token string, body io.Reader) (int, []byte) {
	f.t.Helper()
	return f.send(method, path, body, func(req *http.Request) {
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
	})
}

// send sends method path with body, after prepare has set the request up;
// it does not follow redirects.
func (f *fixture) send(method, path string, body io.Reader, prepare func(*http.Request)) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	prepare(req)
	cl := *f.srv.Client()
	cl.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := cl.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// getJSON GETs path as the viewer, wants 200 and decodes the answer into v.
func (f *fixture) getJSON(path string, v any) {
	f.t.Helper()
	status, b := f.do("GET", path, viewerToken, nil)
	if status != http.StatusOK {
		f.t.Fatalf("GET %s: %d %s", path, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		f.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// rows counts the rows of every lookback table but the audit log, which
// records the requests themselves.
func (f *fixture) rows() map[string]int64 {
	f.t.Helper()
	out := make(map[string]int64)
	for _, table := range []string{"lookback_events", "lookback_headers", "lookback_partitions", "lookback_links"} {
		var n int64
		if err := f.db.Reader().QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
			f.t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// event is the JSON of one event as the tests read it.
type event struct {
	Topic           string            `json:"topic"`
	Partition       int32             `json:"partition"`
	Offset          int64             `json:"offset"`
	Timestamp       time.Time         `json:"timestamp"`
	Key             *string           `json:"key"`
	KeyEncoding     string            `json:"key_encoding"`
	Headers         map[string]string `json:"headers"`
	HeadersEncoding string            `json:"headers_encoding"`
	ID              string            `json:"id"`
	Type            string            `json:"type"`
	Source          string            `json:"source"`
	Subject         string            `json:"subject"`
	Time            *time.Time        `json:"time"`
	ContentType     string            `json:"content_type"`
	Data            json.RawMessage   `json:"data"`
	DataEncoding    string            `json:"data_encoding"`
	DataTruncated   bool              `json:"data_truncated"`
	DataSize        int               `json:"data_size"`
	Replays         []struct {
		ReplayID string `json:"replay_id"`
		Mode     string `json:"mode"`
		Topic    string `json:"topic"`
		Offset   int64  `json:"offset"`
	} `json:"replays"`
}

type eventsPage struct {
	Events     []event `json:"events"`
	NextCursor *string `json:"next_cursor"`
}

var t0 = time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)

// cloudEvent is an archived CloudEvent on topic at offset, i ms after t0.
func cloudEvent(topic string, partition int32, offset int64, key, typ string, value string, extra ...eventkit.Header) lookback.Record {
	ev := &eventkit.Event{
		ID: topic + "-" + itoa(offset), Type: typ, Source: "/test/" + topic, Subject: "subj-" + itoa(offset%3),
		Time: t0.Add(time.Duration(offset) * time.Millisecond), ContentType: "application/json", Data: []byte(value),
	}
	hs := append(ev.EncodeHeaders(nil), extra...)
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	return lookback.NewRecord(topic, partition, offset, t0.Add(time.Duration(offset)*time.Millisecond), k, []byte(value), hs)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// lookbackAuditAll lists the whole audit log of a test.
var lookbackAuditAll = lookback.AuditQuery{Limit: lookback.MaxLimit}

// session is the UI's session cookie for token, as the sign-in sets it.
func session(token string) *http.Cookie {
	return &http.Cookie{Name: "eventkit_session", Value: base64.RawURLEncoding.EncodeToString([]byte(token))}
}

// postSignIn posts the sign-in form of the server at base with token and next,
// and returns the answer, redirect not followed.
func postSignIn(t *testing.T, base, token, next string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/login", strings.NewReader(url.Values{"token": {token}, "next": {next}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	cl := http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
