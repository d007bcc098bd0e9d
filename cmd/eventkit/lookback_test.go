package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/eventkit/eventkit/internal/testkit"
)

// TestLookbackServe runs `eventkit lookback serve` as an operator would:
// tokens from a file and the environment, a SQLite archive, SIGTERM to
// stop.
func TestLookbackServe(t *testing.T) {
	_, broker := startBroker(t, "--topics", "orders")
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# on call\nalice operator alice-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	p := startEnv(t, []string{"EVENTKIT_TOKENS=bob:viewer:bob-secret-0123456789", "EVENTKIT_DB=sqlite://" + filepath.Join(dir, "lookback.db")},
		"lookback", "serve", "--brokers", broker, "--listen", listen, "--tokens-file", tokens)
	if out := p.until("ready"); out[0] != "lookback: http://"+listen {
		t.Fatalf("printed %q, want the address first", out)
	}
	base := "http://" + listen
	for _, c := range []struct {
		path, token string
		want        int
	}{
		{"/healthz", "", 200},
		{"/api/v1/topics", "", 401},
		{"/api/v1/topics", "bob-secret-0123456789", 200},
		{"/api/v1/audit", "alice-secret-0123456789", 200},
		{"/api/v1/events?limit=0", "bob-secret-0123456789", 400},
		{"/api/v1/groups/billing/status", "bob-secret-0123456789", 200}, // 503 without the status board
	} {
		if got, _ := httpGet(t, base+c.path, c.token); got != c.want {
			t.Errorf("GET %s: %d, want %d", c.path, got, c.want)
		}
	}
	// What is produced shows through the API.
	mustRun(t, `{"amount":1}`+"\n", "produce", "--brokers", broker, "--topic", "orders", "--key", "acct-9")
	testkit.Eventually(t, waitLimit, func() error {
		_, body := httpGet(t, base+"/api/v1/events?key=acct-9", "bob-secret-0123456789")
		if !strings.Contains(body, `"data":{"amount":1}`) {
			return fmt.Errorf("events: %s", body)
		}
		return nil
	})
	// The archived event replays to a group through the API, and the
	// groups show, the ingest's own among them.
	job := startReplay(t, base, "alice-secret-0123456789", `{"filter": {"key": "acct-9"}, "target": {"group": "billing"}}`)
	testkit.Eventually(t, waitLimit, func() error {
		_, body := httpGet(t, base+"/api/v1/replays/"+job.ID, "bob-secret-0123456789")
		if !strings.Contains(body, `"status":"done"`) || !strings.Contains(body, `"sent":1`) {
			return fmt.Errorf("job: %s", body)
		}
		return nil
	})
	if code, body := httpGet(t, base+"/api/v1/groups", "bob-secret-0123456789"); code != 200 || !strings.Contains(body, `"group":"eventkit-lookback"`) {
		t.Errorf("GET /api/v1/groups: %d %s", code, body)
	}
	if code := p.signal(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM, want 0; stderr: %s", code, p.stderr.String())
	}
	if strings.Contains(p.stderr.String(), "secret") {
		t.Errorf("a token reached the log: %s", p.stderr.String())
	}
}

// httpGet GETs url with a bearer token (none when empty) and returns the
// status and body.
func httpGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	cl := http.Client{Timeout: waitLimit}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// TestLookbackResumesReplay stops lookback while a replay it started runs,
// starts it again on the same database, and finds every matched event
// replayed exactly once.
func TestLookbackResumesReplay(t *testing.T) {
	_, broker := startBroker(t, "--topics", "orders")
	db := "sqlite://" + filepath.Join(t.TempDir(), "lookback.db")
	env := []string{"EVENTKIT_TOKENS=alice:operator:alice-secret-0123456789"}
	listen := freeAddr(t)
	serve := func() *proc {
		p := startEnv(t, env, "lookback", "serve", "--brokers", broker, "--db", db, "--listen", listen)
		p.until("ready")
		return p
	}
	p := serve()
	base := "http://" + listen
	const n = 8
	mustRun(t, strings.Repeat(`{"amount":1}`+"\n", n), "produce", "--brokers", broker, "--topic", "orders")
	testkit.Eventually(t, waitLimit, func() error {
		_, body := httpGet(t, base+"/api/v1/events?topic=orders&limit=100", "alice-secret-0123456789")
		if c := strings.Count(body, `"amount":1`); c != n {
			return fmt.Errorf("%d of %d archived", c, n)
		}
		return nil
	})
	job := startReplay(t, base, "alice-secret-0123456789", `{"filter": {"topic": "orders"}, "target": {"group": "billing"}, "rate": 2}`)
	jobState := func() string {
		_, body := httpGet(t, base+"/api/v1/replays/"+job.ID, "alice-secret-0123456789")
		return body
	}
	testkit.Eventually(t, waitLimit, func() error { // part of it sent, part still to go
		if body := jobState(); strings.Contains(body, `"sent":0,`) || !strings.Contains(body, `"status":"running"`) {
			return fmt.Errorf("job: %s", body)
		}
		return nil
	})
	if code := p.signal(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr: %s", code, p.stderr.String())
	}

	p = serve()
	testkit.Eventually(t, waitLimit, func() error {
		if body := jobState(); !strings.Contains(body, `"status":"done"`) {
			return fmt.Errorf("job after the restart: %s", body)
		}
		return nil
	})
	copies := make(map[string]int)
	for _, r := range testkit.ReadAll(t, broker, "eventkit.replay.billing") {
		for _, h := range r.Headers {
			if h.Key == "eventkit-replay-origin" {
				copies[string(h.Value)]++
			}
		}
	}
	if len(copies) != n {
		t.Errorf("copies of %d events, want %d", len(copies), n)
	}
	for origin, c := range copies {
		if c != 1 {
			t.Errorf("%s replayed %d times, want once", origin, c)
		}
	}
	if code := p.signal(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr: %s", code, p.stderr.String())
	}
}

// replayJob is the part of a replay job these tests read.
type replayJob struct{ ID, Status string }

// startReplay starts a replay through lookback's API at base, wanting 202.
func startReplay(t *testing.T, base, token, body string) replayJob {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/api/v1/replays", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: waitLimit}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var job replayJob
	if err := json.NewDecoder(resp.Body).Decode(&job); resp.StatusCode != 202 || err != nil || job.ID == "" {
		t.Fatalf("POST /api/v1/replays %s: %d %+v %v", body, resp.StatusCode, job, err)
	}
	return job
}
