package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/sqlite"
)

// archiveDB writes n archived events of topic orders (ids e-0…, type
// order.placed for even i, order.cancelled for odd) into a new SQLite
// database and returns its --db.
func archiveDB(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lookback.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	recs := make([]lookback.Record, n)
	for i := range recs {
		typ := "order.placed"
		if i%2 == 1 {
			typ = "order.cancelled"
		}
		ev := eventkit.Event{ID: "e-" + strconv.Itoa(i), Source: "/shop", Type: typ}
		recs[i] = lookback.NewRecord("orders", 0, int64(i), at.Add(time.Duration(i)*time.Second), []byte("k"), []byte("v"), ev.EncodeHeaders(nil))
	}
	if err := sqlite.NewArchive(db).Append(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	return "sqlite://" + path
}

func TestReplay(t *testing.T) {
	dsn := archiveDB(t, 20)
	b := testkit.Broker(t, 2, "orders", "copies")
	cl := testkit.Client(t, b.Addr())

	t.Run("to a topic", func(t *testing.T) {
		r := run(t, []string{"EVENTKIT_BROKERS=" + b.Addr(), "EVENTKIT_DB=" + dsn}, "",
			"replay", "--filter", "topic=orders,type=order.placed", "--filter", "from=2024-05-01T10:00:04Z", "--to-topic", "copies")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var job struct {
			ID, Status, Mode      string
			Matched, Sent, Failed int64
			Target                map[string]string
			CreatedBy             string `json:"created_by"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &job); err != nil {
			t.Fatalf("stdout %q: %v", r.stdout, err)
		}
		// e-4, e-6, …, e-18
		if job.Status != "done" || job.Matched != 8 || job.Sent != 8 || job.Mode != "deduplicate" || job.Target["topic"] != "copies" || !strings.HasPrefix(job.CreatedBy, "cli") {
			t.Fatalf("job %+v", job)
		}
		if want := "replay " + job.ID + " done: matched 8, sent 8, failed 0, to topic copies (deduplicate)\n"; r.stderr != want {
			t.Fatalf("stderr %q, want %q", r.stderr, want)
		}
		recs := testkit.ReadAll(t, b.Addr(), "copies")
		if len(recs) != 8 {
			t.Fatalf("%d records on copies, want 8", len(recs))
		}
		for _, rec := range recs {
			ev := kafka.EventOf(rec)
			if ev.Type != "order.placed" || ev.Replay == nil || ev.Replay.ID != job.ID || ev.Replay.OriginTopic != "orders" {
				t.Fatalf("copy %+v, replay %+v", ev, ev.Replay)
			}
		}
	})

	t.Run("to a group", func(t *testing.T) {
		r := run(t, nil, "", "replay", "--db", dsn, "--brokers", b.Addr(), "--ids", "e-1,e-2", "--to-group", "billing", "--rate", "100")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		if !strings.Contains(r.stdout, `"mode":"reprocess"`) || !strings.Contains(r.stdout, `"sent":2`) {
			t.Fatalf("stdout %s", r.stdout)
		}
		ends := testkit.EndOffsets(t, cl, eventkit.ReplayTopic("billing"))
		if len(ends) != 2 || ends[0]+ends[1] != 2 {
			t.Fatalf("billing's replay topic: end offsets %v, want 2 partitions like orders holding 2 records", ends)
		}
	})

	t.Run("dry run", func(t *testing.T) {
		before := testkit.EndOffsets(t, cl, "copies")
		r := run(t, nil, "", "replay", "--db", dsn, "--brokers", b.Addr(), "--filter", "type=order.cancelled", "--to-topic", "copies", "--dry-run")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if lines[0] != "dry run: 10 events match; nothing sent" || len(lines) != 12 || !strings.HasPrefix(lines[2], "orders/0/1 ") {
			t.Fatalf("printed\n%s", r.stdout)
		}
		if after := testkit.EndOffsets(t, cl, "copies"); after[0] != before[0] || after[1] != before[1] {
			t.Fatalf("dry run produced: %v → %v", before, after)
		}
	})

	t.Run("dry run is never taken from the environment", func(t *testing.T) {
		before := testkit.EndOffsets(t, cl, "copies")
		r := run(t, []string{"EVENTKIT_DRY_RUN=true"}, "", "replay", "--db", dsn, "--brokers", b.Addr(), "--ids", "e-3", "--to-topic", "copies")
		if r.code != 0 || !strings.Contains(r.stdout, `"sent":1`) {
			t.Fatalf("exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
		}
		if after := testkit.EndOffsets(t, cl, "copies"); after[0]+after[1] != before[0]+before[1]+1 {
			t.Fatalf("end offsets %v → %v, want one more record", before, after)
		}
	})

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown filter key", []string{"--filter", "topik=orders", "--to-topic", "copies"},
			`--filter: unknown key "topik"; want topic, partition, key, type, id, source, subject, from, to or header`},
		{"malformed time", []string{"--filter", "from=yesterday", "--to-topic", "copies"}, `from "yesterday": want an RFC 3339 time`},
		{"header without a value", []string{"--filter", "header=tenant", "--to-topic", "copies"}, "want NAME:VALUE"},
		{"repeated key", []string{"--filter", "type=a,type=b", "--to-topic", "copies"}, `parameter "type" given 2 times`},
		{"no target", []string{"--filter", "topic=orders"}, "no target"},
		{"two targets", []string{"--to-topic", "copies", "--to-group", "g"}, "two targets"},
		{"unknown mode", []string{"--to-topic", "copies", "--mode", "again"}, `mode "again"`},
		{"rate not a number", []string{"--to-topic", "copies", "--rate", "NaN"}, "rate NaN: want 0 (no limit) or a finite number"},
		{"rate without end", []string{"--to-topic", "copies", "--rate", "Inf"}, "rate +Inf: want 0 (no limit) or a finite number"},
		{"bad db", []string{"--to-topic", "copies", "--db", "mysql://x"}, "want sqlite://PATH or postgres://"},
		{"empty id", []string{"--to-topic", "copies", "--ids", "e-1,,e-2"}, "ids: empty id"},
		{"too many ids", []string{"--to-topic", "copies", "--ids", strings.Repeat("x,", lookback.MaxIDs) + "x"}, fmt.Sprintf("ids: %d given", lookback.MaxIDs+1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"replay", "--db", dsn, "--brokers", b.Addr()}, c.args...)
			r := run(t, nil, "", args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, c.want) || !strings.HasPrefix(r.stderr, "eventkit replay: ") {
				t.Fatalf("exit %d, stderr %q; want exit 2 saying %q", r.code, r.stderr, c.want)
			}
		})
	}
}

// TestReplayThroughLookback has a lookback service run the replay, through
// its API with an operator's token: the same job, progress and exit status
// as with --db, the audit under the token's name, and a viewer refused.
func TestReplayThroughLookback(t *testing.T) {
	dsn := archiveDB(t, 20)
	b := testkit.Broker(t, 2, "orders", "copies")
	cl := testkit.Client(t, b.Addr())
	const operator, viewer = "alice-secret-0123456789", "bob-secret-0123456789"
	listen := freeAddr(t)
	p := startEnv(t, []string{"EVENTKIT_TOKENS=alice:operator:" + operator + ",bob:viewer:" + viewer},
		"lookback", "serve", "--brokers", b.Addr(), "--db", dsn, "--listen", listen, "--retention", "0")
	p.until("ready")
	base := "http://" + listen

	t.Run("dry run", func(t *testing.T) {
		r := run(t, nil, "", "replay", "--lookback", base, "--token", operator, "--filter", "type=order.cancelled", "--to-topic", "copies", "--dry-run")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != 0 || lines[0] != "dry run: 10 events match; nothing sent" || len(lines) != 12 || !strings.HasPrefix(lines[2], "orders/0/1 ") {
			t.Fatalf("exit %d, printed\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	// The filter sent to lookback selects what --db would: both matches on
	// one header name (no event carries both types), not the last alone.
	t.Run("every header match", func(t *testing.T) {
		r := run(t, nil, "", "replay", "--lookback", base, "--token", operator, "--filter", "header=ce_type:order.placed,header=ce_type:order.cancelled", "--to-topic", "copies", "--dry-run")
		if r.code != 0 || r.stdout != "dry run: 0 events match; nothing sent\n" {
			t.Fatalf("exit %d, printed\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("to a topic", func(t *testing.T) {
		r := run(t, []string{"EVENTKIT_TOKEN=" + operator}, "", "replay", "--lookback", base, "--filter", "topic=orders,type=order.placed", "--to-topic", "copies")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var job struct {
			ID, Status, Mode string
			Matched, Sent    int64
			CreatedBy        string `json:"created_by"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &job); err != nil {
			t.Fatalf("stdout %q: %v", r.stdout, err)
		}
		if job.Status != "done" || job.Matched != 10 || job.Sent != 10 || job.Mode != "deduplicate" || job.CreatedBy != "alice" {
			t.Fatalf("job %+v", job)
		}
		if want := "replay " + job.ID + " done: matched 10, sent 10, failed 0, to topic copies (deduplicate)\n"; r.stderr != want {
			t.Fatalf("stderr %q, want %q", r.stderr, want)
		}
		if ends := testkit.EndOffsets(t, cl, "copies"); ends[0]+ends[1] != 10 {
			t.Fatalf("copies end offsets %v, want 10 records", ends)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		api, err := newLookbackAPI(base, operator)
		if err != nil {
			t.Fatal(err)
		}
		ctx := t.Context()
		j, err := api.Start(ctx, replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Group: "slow"}, Rate: 1})
		if err != nil || j.Status != replay.Running {
			t.Fatalf("start: %+v, %v", j, err)
		}
		if j, err = api.Cancel(ctx, j.ID); err != nil || j.Status != replay.Cancelled {
			t.Fatalf("cancel: %+v, %v", j, err)
		}
		if _, err := api.Cancel(ctx, j.ID); !errors.Is(err, replay.ErrJobFinished) {
			t.Fatalf("second cancel: %v, want ErrJobFinished", err)
		}
	})

	for _, c := range []struct {
		name string
		code int
		args []string
		want string
	}{
		{"viewer", exitError, []string{"--lookback", base, "--token", viewer, "--to-topic", "copies"}, "403 Forbidden"},
		{"wrong token", exitError, []string{"--lookback", base, "--token", "nope", "--to-topic", "copies"}, "check --token"},
		{"no token", exitUsage, []string{"--lookback", base, "--to-topic", "copies"}, "needs an operator's token"},
		{"not a URL", exitUsage, []string{"--lookback", "127.0.0.1:1", "--token", operator, "--to-topic", "copies"}, "want the service's address"},
		{"both", exitUsage, []string{"--lookback", base, "--db", dsn, "--to-topic", "copies"}, "both --db and --lookback"},
		{"neither", exitUsage, []string{"--to-topic", "copies"}, "no archive: give --db"},
		{"resume", exitUsage, []string{"--lookback", base, "--token", operator, "--resume", "x"}, "--resume works with --db"},
		{"key not UTF-8", exitUsage, []string{"--lookback", base, "--token", operator, "--filter", "key=\xff", "--to-topic", "copies"}, "key: not UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, nil, "", append([]string{"replay"}, c.args...)...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d saying %q", r.code, r.stderr, c.code, c.want)
			}
		})
	}
	if code := p.signal(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr: %s", code, p.stderr.String())
	}
}

// A replay whose command was killed stays held by it until its lease
// expires: --resume says that it waits, then takes the job over and
// finishes it, every event on the target once.
func TestReplayResumeAfterKill(t *testing.T) {
	const n = 100
	dsn := archiveDB(t, n)
	b := testkit.Broker(t, 1, "orders", "copies")
	db, err := sqlite.Open(context.Background(), strings.TrimPrefix(dsn, "sqlite://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	jobs := sqlite.NewJobStore(db)

	killed := start(t, "replay", "--db", dsn, "--brokers", b.Addr(), "--filter", "topic=orders", "--to-topic", "copies", "--rate", "25",
		"--lease-ttl", "3s")
	// Killed once a checkpoint is stored, so that the resumed job starts
	// there and reads back what was sent after it.
	var id string
	testkit.Eventually(t, waitLimit, func() error {
		running, err := jobs.Jobs(context.Background(), replay.Running)
		if err != nil || len(running) != 1 || running[0].Sent == 0 {
			return fmt.Errorf("running jobs %+v, %v; want one with a checkpoint", running, err)
		}
		id = running[0].ID
		return nil
	})
	killed.signal(syscall.SIGKILL)

	r := run(t, nil, "", "replay", "--db", dsn, "--brokers", b.Addr(), "--resume", id, "--lease-ttl", "300ms")
	if r.code != 0 || !strings.Contains(r.stdout, `"status":"done"`) || !strings.Contains(r.stdout, `"sent":100`) {
		t.Fatalf("exit %d, stdout %s, stderr %s", r.code, r.stdout, r.stderr)
	}
	if want := "replay " + id + ": waiting for the lease of "; !strings.HasPrefix(r.stderr, want) || !strings.Contains(r.stderr, " to expire at ") {
		t.Fatalf("stderr %q, want it to start %q…to expire at", r.stderr, want)
	}
	byOrigin := make(map[string]int)
	for _, rec := range testkit.ReadAll(t, b.Addr(), "copies") {
		if ev := kafka.EventOf(rec); ev.Replay != nil && ev.Replay.ID == id {
			byOrigin[ev.Replay.Origin]++
		}
	}
	if len(byOrigin) != n {
		t.Fatalf("%d origins on the target, want %d", len(byOrigin), n)
	}
	for o, c := range byOrigin {
		if c != 1 {
			t.Errorf("origin %s sent %d times", o, c)
		}
	}
}

// Progress to a log (not a terminal) is a line now and then, each new one
// a line of its own, and nothing before the first interval is up.
func TestProgressToALog(t *testing.T) {
	var b strings.Builder
	p := &progress{w: &b, logEvery: time.Hour}
	p.next = time.Now().Add(p.logEvery)
	p.show(replay.Job{ID: "j", Matched: 10, Sent: 1})
	if b.Len() != 0 {
		t.Fatalf("printed before its interval: %q", b.String())
	}
	p.next = time.Time{} // the interval is up
	p.show(replay.Job{ID: "j", Matched: 10, Sent: 4})
	p.show(replay.Job{ID: "j", Matched: 10, Sent: 5}) // within the next interval
	p.done(replay.Job{ID: "j", Status: replay.Done, Matched: 10, Sent: 10, Target: replay.Target{Topic: "copies"}, Mode: eventkit.Deduplicate})
	want := "replay j: 4/10 sent, 0 failed (40%)\nreplay j done: matched 10, sent 10, failed 0, to topic copies (deduplicate)\n"
	if b.String() != want {
		t.Errorf("printed %q, want %q", b.String(), want)
	}
}
