package replay_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/twmb/franz-go/pkg/kgo"
)

// env is an embedded broker, an archive with its job store and audit log in
// one SQLite database, and a running Runner.
type env struct {
	b      *kafka.Broker
	cl     *kgo.Client
	db     *sqlite.DB
	dbPath string
	arch   *sqlite.Archive
	jobs   *sqlite.JobStore
	audit  *sqlite.AuditLog
	r      *replay.Runner
}

var ops = replay.Actor{Name: "ops", Role: "operator"}

func newEnv(t *testing.T, partitions int32, topics []string, opts ...replay.Opt) *env {
	t.Helper()
	e := newIdleEnv(t, partitions, topics)
	e.r = e.runner(t, opts...)
	e.run(t, e.r)
	return e
}

// newIdleEnv is newEnv without a Runner, for tests that run their own.
func newIdleEnv(t *testing.T, partitions int32, topics []string) *env {
	t.Helper()
	e := &env{b: testkit.Broker(t, partitions, topics...)}
	e.cl = testkit.Client(t, e.b.Addr())
	e.dbPath = filepath.Join(t.TempDir(), "lookback.db")
	e.db = openSQLite(t, e.dbPath)
	e.arch, e.jobs, e.audit = sqlite.NewArchive(e.db), sqlite.NewJobStore(e.db), sqlite.NewAuditLog(e.db)
	t.Cleanup(func() { e.audit.Close() })
	return e
}

func (e *env) runner(t *testing.T, opts ...replay.Opt) *replay.Runner {
	return e.runnerOn(t, e.jobs, opts...)
}

// runnerOn is a Runner on the env's archive that keeps its jobs in store.
func (e *env) runnerOn(t *testing.T, store replay.JobStore, opts ...replay.Opt) *replay.Runner {
	return replay.NewRunner(e.cl, e.arch, store, append([]replay.Opt{
		replay.Audit(e.audit), replay.Logger(testkit.Logger(t)), replay.CheckpointInterval(20 * time.Millisecond),
	}, opts...)...)
}

// run runs r until the test ends (or Stop), once it has resumed the stored
// jobs.
func (e *env) run(t *testing.T, r *replay.Runner) *testkit.Running {
	t.Helper()
	run := testkit.Go(t, r.Run)
	<-r.Ready()
	return run
}

func openSQLite(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// archive reads topic back from the broker and archives every record, as
// lookback's ingest would.
func (e *env) archive(t *testing.T, topic string) []lookback.Record {
	t.Helper()
	var recs []lookback.Record
	for _, r := range testkit.ReadAll(t, e.b.Addr(), topic) {
		hs := make([]eventkit.Header, len(r.Headers))
		for i, h := range r.Headers {
			hs[i] = eventkit.Header(h)
		}
		recs = append(recs, lookback.NewRecord(r.Topic, r.Partition, r.Offset, r.Timestamp, r.Key, r.Value, hs))
	}
	if err := e.arch.Append(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	return recs
}

// synthetic archives n records of topic "orders" on 3 partitions that the
// broker never saw, with keys, trace headers (W3C's and the CloudEvents
// extension's) and a stale replay header.
func (e *env) synthetic(t *testing.T, n int) {
	t.Helper()
	now := time.Now().Add(-time.Hour)
	recs := make([]lookback.Record, n)
	for i := range recs {
		ev := eventkit.Event{ID: "e-" + strconv.Itoa(i), Source: "/test", Type: "order.placed", Headers: []eventkit.Header{
			{Key: "tenant", Value: []byte("acme")},
			{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
			{Key: "ce_traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")},
			{Key: "ce_tracestate", Value: []byte("vendor=x")},
			{Key: eventkit.HeaderReplayID, Value: []byte("an-earlier-replay")},
		}}
		recs[i] = lookback.NewRecord("orders", int32(i%3), int64(i/3), now.Add(time.Duration(i)*time.Millisecond),
			[]byte("k"+strconv.Itoa(i%50)), []byte("v"+strconv.Itoa(i)), ev.EncodeHeaders(nil))
	}
	if err := e.arch.Append(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
}

func (e *env) start(t *testing.T, spec replay.Spec) replay.Job {
	t.Helper()
	j, err := e.r.Start(context.Background(), spec, ops)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func (e *env) wait(t *testing.T, id string) replay.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	j, err := e.r.Wait(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// ended returns the job once it has ended, wherever it runs.
func ended(t *testing.T, r *replay.Runner, id string) replay.Job {
	t.Helper()
	var j replay.Job
	testkit.Eventually(t, 30*time.Second, func() error {
		var err error
		if j, err = r.Get(context.Background(), id); err == nil && j.Status == replay.Running {
			err = fmt.Errorf("still running, %d sent", j.Sent)
		}
		return err
	})
	return j
}

// sentOnce checks that the job ended done with all n records sent, and that
// topic holds exactly one copy of each: one record per (replay id, origin).
func (e *env) sentOnce(t *testing.T, j replay.Job, topic string, n int) {
	t.Helper()
	if j.Status != replay.Done || j.Sent != int64(n) || j.Failed != 0 || j.Matched != int64(n) {
		t.Fatalf("job ended %+v, want done with %d sent", j, n)
	}
	byOrigin, _ := copies(t, e.b.Addr(), topic, j.ID)
	if len(byOrigin) != n {
		t.Fatalf("%d origins on the target, want %d", len(byOrigin), n)
	}
	for o, c := range byOrigin {
		if c != 1 {
			t.Errorf("origin %s sent %d times", o, c)
		}
	}
}

// copies counts the records of replay job id on topic by origin.
func copies(t *testing.T, addr, topic, id string) (map[string]int, []*kgo.Record) {
	t.Helper()
	byOrigin := make(map[string]int)
	var mine []*kgo.Record
	for _, r := range testkit.ReadAll(t, addr, topic) {
		ev := kafka.EventOf(r)
		if ev.Replay != nil && ev.Replay.ID == id {
			byOrigin[ev.Replay.Origin]++
			mine = append(mine, r)
		}
	}
	return byOrigin, mine
}

// effects counts handler calls per group and event id.
type effects struct {
	mu       sync.Mutex
	calls    map[string]map[string]int // group → id → calls
	replayed map[string][]*eventkit.Replay
}

func newEffects() *effects {
	return &effects{calls: make(map[string]map[string]int), replayed: make(map[string][]*eventkit.Replay)}
}

func (f *effects) handler(group string) eventkit.Handler {
	return eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.calls[group] == nil {
			f.calls[group] = make(map[string]int)
		}
		f.calls[group][ev.ID]++
		if ev.Replay != nil {
			r := *ev.Replay
			f.replayed[group] = append(f.replayed[group], &r)
		}
		return nil
	})
}

func (f *effects) of(group string) (calls map[string]int, total int, replayed []*eventkit.Replay) {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls = make(map[string]int)
	for id, n := range f.calls[group] {
		calls[id] = n
		total += n
	}
	return calls, total, append([]*eventkit.Replay(nil), f.replayed[group]...)
}

// agent runs a consumer of group on orders with the idempotency middleware
// over the env's SQLite database.
func (e *env) agent(t *testing.T, f *effects, group string) *testkit.Running {
	t.Helper()
	store := sqlite.NewIdempotencyStore(e.db)
	t.Cleanup(func() { store.Close() })
	h := eventkit.Chain(f.handler(group), idempotency.Middleware(store))
	c := testkit.Agent(t, e.b, group, "orders", h, consumer.StartAt(kgo.NewOffset().AtStart()))
	return testkit.Go(t, c.Run)
}

func produceOrders(t *testing.T, cl *kgo.Client, n int) {
	t.Helper()
	testkit.Produce(t, cl, testkit.Events("orders", "o", n, func(i int) []byte { return []byte("acct-" + strconv.Itoa(i%7)) })...)
}

// A replay to group A reaches A's handler only, once more for each matched
// event although A already processed it (reprocess), with Event.Replay set;
// B's replay topic stays empty.
func TestReplayToGroup(t *testing.T) {
	e := newEnv(t, 3, []string{"orders"})
	f := newEffects()
	produceOrders(t, e.cl, 30)
	e.agent(t, f, "A")
	e.agent(t, f, "B")
	for _, g := range []string{"A", "B"} {
		testkit.Eventually(t, 30*time.Second, func() error {
			if _, n, _ := f.of(g); n != 30 {
				return fmt.Errorf("group %s handled %d of 30", g, n)
			}
			return nil
		})
	}
	e.archive(t, "orders")

	ids := []string{"o-1", "o-4", "o-9", "o-22"}
	j := e.start(t, replay.Spec{Filter: lookback.Filter{Topic: "orders", IDs: ids}, Target: replay.Target{Group: "A"}})
	if j.Mode != eventkit.Reprocess || j.Matched != 4 {
		t.Fatalf("job %+v: want reprocess (a group's default) and 4 matched", j)
	}
	if j = e.wait(t, j.ID); j.Status != replay.Done || j.Sent != 4 || j.Failed != 0 {
		t.Fatalf("job ended %+v", j)
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		if _, n, _ := f.of("A"); n != 34 {
			return fmt.Errorf("group A handled %d, want 30 + 4 replayed", n)
		}
		return nil
	})
	calls, _, replayed := f.of("A")
	for _, id := range ids {
		if calls[id] != 2 {
			t.Errorf("group A handled %s %d times, want 2", id, calls[id])
		}
	}
	for _, r := range replayed {
		if r.ID != j.ID || r.Mode != eventkit.Reprocess || r.OriginTopic != "orders" {
			t.Errorf("replay info %+v", r)
		}
	}
	// The copies went to A's replay topic only; nothing can reach B.
	for p, end := range testkit.EndOffsets(t, e.cl, eventkit.ReplayTopic("B")) {
		if end != 0 {
			t.Fatalf("B's replay topic partition %d has %d records", p, end)
		}
	}
	if _, n, _ := f.of("B"); n != 30 {
		t.Fatalf("group B handled %d, want its 30", n)
	}
	if n := len(testkit.EndOffsets(t, e.cl, eventkit.ReplayTopic("A"))); n != 3 {
		t.Fatalf("A's replay topic has %d partitions, want 3 like orders", n)
	}
}

// A replay to a topic in deduplicate mode (its default) changes nothing for
// a group that processed the events, and a new group processes each event
// once although the topic holds it twice.
func TestReplayToTopicDeduplicates(t *testing.T) {
	e := newEnv(t, 3, []string{"orders"})
	f := newEffects()
	produceOrders(t, e.cl, 30)
	e.agent(t, f, "old")
	testkit.Eventually(t, 30*time.Second, func() error {
		if _, n, _ := f.of("old"); n != 30 {
			return fmt.Errorf("handled %d of 30", n)
		}
		return nil
	})
	e.archive(t, "orders")

	j := e.start(t, replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Topic: "orders"}})
	if j.Mode != eventkit.Deduplicate {
		t.Fatalf("mode %s, want deduplicate (a topic's default)", j.Mode)
	}
	if j = e.wait(t, j.ID); j.Status != replay.Done || j.Sent != 30 {
		t.Fatalf("job ended %+v", j)
	}
	e.agent(t, f, "new")
	for _, g := range []string{"old", "new"} {
		testkit.Eventually(t, 30*time.Second, func() error {
			_, err := testkit.Lag(t, e.cl, g, "orders")
			return err
		})
		calls, n, _ := f.of(g)
		if n != 30 || len(calls) != 30 {
			t.Fatalf("group %s handled %d calls for %d events, want 30 once each", g, n, len(calls))
		}
	}
}

// A job whose process is killed mid-way resumes in the next Runner and
// sends every matched event exactly once: one record per (replay id,
// origin) on the target, whether it reads slices ahead in parallel or one
// page ahead.
func TestResumeAfterKill(t *testing.T) {
	for _, readers := range []int{2, 1} {
		t.Run(fmt.Sprintf("readers=%d", readers), func(t *testing.T) { testResumeAfterKill(t, readers) })
	}
}

func testResumeAfterKill(t *testing.T, readers int) {
	e := newEnv(t, 3, []string{"orders", "copies"})
	const n = 3000
	e.synthetic(t, n)

	cmd := exec.Command(os.Args[0], "-test.run=^TestResumeChild$")
	cmd.Env = append(os.Environ(), "REPLAY_CHILD_DB="+e.dbPath, "REPLAY_CHILD_BROKER="+e.b.Addr(), "REPLAY_CHILD_READERS="+strconv.Itoa(readers))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatalf("child exited before starting its job: %v", lines.Err())
	}
	id := lines.Text()

	// Kill only once a checkpoint is stored and records were produced
	// after it, so that the resumed job must find those on the target.
	testkit.Eventually(t, 30*time.Second, func() error {
		j, err := e.jobs.Job(context.Background(), id)
		if err != nil {
			return err
		}
		var onTarget int64
		for _, end := range testkit.EndOffsets(t, e.cl, "copies") {
			onTarget += end
		}
		if j.Sent < 300 || onTarget <= j.Sent {
			return fmt.Errorf("checkpointed %d sent, %d on the target", j.Sent, onTarget)
		}
		return nil
	})
	// SIGKILL: no deferred code, no final checkpoint, no goodbye to the
	// broker.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	before, _ := e.jobs.Job(context.Background(), id)

	t.Logf("checkpoint at the kill: %d sent", before.Sent)

	// The killed child's lease stays until it expires; a short TTL has
	// this Runner look for it often.
	r := e.runner(t, replay.LeaseTTL(300*time.Millisecond), replay.PageSize(50), replay.Readers(readers))
	testkit.Go(t, r.Run)
	e.sentOnce(t, ended(t, r, id), "copies", n)
}

// TestResumeChild is the process TestResumeAfterKill kills: it starts a
// slow job, prints its id, and runs until killed. Its short lease lets
// another Runner take the job over soon after.
func TestResumeChild(t *testing.T) {
	dbPath := os.Getenv("REPLAY_CHILD_DB")
	if dbPath == "" {
		t.Skip("run by TestResumeAfterKill")
	}
	db := openSQLite(t, dbPath)
	cl := testkit.Client(t, os.Getenv("REPLAY_CHILD_BROKER"))
	// Pages of 50 make slices of 400 records: a job of 3000 reads several
	// ahead with more than one reader.
	readers, _ := strconv.Atoi(os.Getenv("REPLAY_CHILD_READERS"))
	r := replay.NewRunner(cl, sqlite.NewArchive(db), sqlite.NewJobStore(db), replay.CheckpointInterval(20*time.Millisecond),
		replay.LeaseTTL(2*time.Second), replay.PageSize(50), replay.Readers(readers))
	run := testkit.Go(t, r.Run)
	<-r.Ready()
	j, err := r.Start(context.Background(), replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Topic: "copies"}, Rate: 1000}, ops)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(j.ID)
	<-run.Done()
}

// A job reads slices of its time range ahead in parallel and sends them
// in order: the copies come out in the archive's own order, whether the
// records are spread out, bunched on one timestamp, or far apart.
func TestReplayKeepsArchiveOrder(t *testing.T) {
	e := newEnv(t, 1, []string{"copies"}, replay.PageSize(20), replay.Readers(3))
	t0 := time.Now().Add(-2 * time.Hour)
	var recs []lookback.Record
	for i := range 3000 {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		switch {
		case i >= 2000:
			at = t0.Add(time.Duration(i) * time.Second)
		case i >= 1000:
			at = t0.Add(time.Second)
		}
		recs = append(recs, lookback.NewRecord("orders", int32(i%3), int64(i/3), at, []byte("k"+strconv.Itoa(i%50)), []byte("v"), nil))
	}
	if err := e.arch.Append(context.Background(), recs, nil); err != nil {
		t.Fatal(err)
	}
	j := e.wait(t, e.start(t, replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Topic: "copies"}}).ID)
	if j.Status != replay.Done || j.Sent != 3000 {
		t.Fatalf("job %+v, want done with 3000 sent", j)
	}
	var want []string
	q := lookback.Query{Filter: lookback.Filter{Topic: "orders"}, Order: lookback.Asc, Limit: lookback.MaxLimit}
	for {
		p, err := e.arch.Query(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for i := range p.Records {
			want = append(want, eventkit.FormatCoordinates(p.Records[i].Topic, p.Records[i].Partition, p.Records[i].Offset))
		}
		if q.Cursor = p.NextCursor; q.Cursor == "" {
			break
		}
	}
	_, mine := copies(t, e.b.Addr(), "copies", j.ID)
	got := make([]string, len(mine))
	for i, r := range mine {
		got[i] = kafka.EventOf(r).Replay.Origin
	}
	if !slices.Equal(got, want) {
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Fatalf("copy %d is of %s, want %s (%d copies, %d archived)", i, got[i], want[i], len(got), len(want))
			}
		}
		t.Fatalf("%d copies, %d archived", len(got), len(want))
	}
}

// The limiter holds the rate: measured from the produced records' own
// timestamps, 10,000 records at 2,000/s take 5 s of record time within
// 10%. The rate is far below what the broker takes, so the limiter, not
// the machine, sets the pace. The copies keep key, value and headers,
// without trace context and earlier replay headers.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, 1, []string{"copies"})
	const n, perSecond = 10000, 2000
	e.synthetic(t, n)
	j := e.start(t, replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Topic: "copies"}, Rate: perSecond})
	if j = e.wait(t, j.ID); j.Status != replay.Done || j.Sent != n {
		t.Fatalf("job ended %+v", j)
	}
	_, recs := copies(t, e.b.Addr(), "copies", j.ID)
	if len(recs) != n {
		t.Fatalf("%d copies, want %d", len(recs), n)
	}
	first, last := recs[0].Timestamp, recs[0].Timestamp
	for _, r := range recs {
		first, last = minTime(first, r.Timestamp), maxTime(last, r.Timestamp)
	}
	got := float64(n-1) / last.Sub(first).Seconds()
	if got < perSecond*0.9 || got > perSecond*1.1 {
		t.Fatalf("replayed at %.0f records/s (%d records in %v), want %d within 10%%", got, n, last.Sub(first), perSecond)
	}

	ev := kafka.EventOf(recs[0])
	if string(ev.Key) == "" || string(ev.Data) == "" || ev.ID == "" || ev.Type != "order.placed" {
		t.Fatalf("copy lost its key, value or attributes: %+v", ev)
	}
	if v, _ := ev.Header("tenant"); string(v) != "acme" {
		t.Fatalf("copy lost header tenant: %v", ev.Headers)
	}
	for _, h := range []string{"traceparent", "ce_traceparent", "ce_tracestate"} {
		if _, ok := ev.Header(h); ok {
			t.Fatalf("copy kept the original's %s", h)
		}
	}
	if ev.Replay.ID != j.ID || ev.Replay.Mode != eventkit.Deduplicate {
		t.Fatalf("copy's replay %+v, headers %v", ev.Replay, ev.Headers)
	}
	if n := countHeader(ev.Headers, eventkit.HeaderReplayID); n != 1 {
		t.Fatalf("copy has %d replay id headers, want its own only", n)
	}
}

func countHeader(hs []eventkit.Header, key string) (n int) {
	for _, h := range hs {
		if h.Key == key {
			n++
		}
	}
	return n
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Once Cancel returns, the job is cancelled and none of its records can
// reach the target any more: a sentinel written after it is the last
// record, and the job's records before it are exactly the ones it counted
// as sent.
func TestCancel(t *testing.T) {
	e := newEnv(t, 1, []string{"copies"})
	e.synthetic(t, 2000)
	j := e.start(t, replay.Spec{Filter: lookback.Filter{Topic: "orders"}, Target: replay.Target{Topic: "copies"}, Rate: 200})
	testkit.Eventually(t, 30*time.Second, func() error {
		if got, _ := e.r.Get(context.Background(), j.ID); got.Sent < 100 {
			return fmt.Errorf("sent %d", got.Sent)
		}
		return nil
	})
	ctx := context.Background()
	j, err := e.r.Cancel(ctx, j.ID, ops)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != replay.Cancelled || j.FinishedAt == nil || j.Sent >= j.Matched {
		t.Fatalf("cancelled job %+v", j)
	}
	testkit.Produce(t, e.cl, &kgo.Record{Topic: "copies", Value: []byte("sentinel")})
	all := testkit.ReadAll(t, e.b.Addr(), "copies")
	if last := all[len(all)-1]; string(last.Value) != "sentinel" {
		t.Fatalf("last record %q at %d, want the sentinel", last.Value, last.Offset)
	}
	if _, mine := copies(t, e.b.Addr(), "copies", j.ID); int64(len(mine)) != j.Sent || len(all) != len(mine)+1 {
		t.Fatalf("%d copies before the sentinel, %d records in all, job counted %d sent", len(mine), len(all), j.Sent)
	}
	if _, err := e.r.Cancel(ctx, j.ID, ops); !errors.Is(err, replay.ErrJobFinished) {
		t.Fatalf("second cancel: %v, want ErrJobFinished", err)
	}
	entries, err := e.audit.List(ctx, lookback.AuditQuery{Action: "replay.cancel"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Outcome == "cancelled" || entries[1].Outcome != "cancelled" || entries[1].Actor != "ops" {
		t.Fatalf("audit of the cancels: %+v", entries)
	}
}

// A dry run counts and samples, and produces nothing.
func TestDryRun(t *testing.T) {
	e := newEnv(t, 1, []string{"copies"})
	e.synthetic(t, 300)
	spec := replay.Spec{Filter: lookback.Filter{Topic: "orders", Partition: ptr(int32(1))}, Target: replay.Target{Topic: "copies"}, DryRun: true}
	matched, sample, err := e.r.DryRun(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if matched != 100 || len(sample) != 10 || sample[0].Partition != 1 || sample[0].Offset != 0 {
		t.Fatalf("dry run: %d matched, sample of %d starting %+v", matched, len(sample), sample[0])
	}
	if _, err := e.r.Start(context.Background(), spec, ops); !errors.Is(err, replay.ErrInvalidSpec) {
		t.Fatalf("Start of a dry run: %v, want ErrInvalidSpec", err)
	}
	if ends := testkit.EndOffsets(t, e.cl, "copies"); ends[0] != 0 {
		t.Fatalf("dry run produced %d records", ends[0])
	}
	if jobs, _ := e.r.List(context.Background()); len(jobs) != 0 {
		t.Fatalf("dry run made jobs %+v", jobs)
	}
}

func TestStartRefusesBadSpecs(t *testing.T) {
	e := newEnv(t, 1, []string{"copies"})
	for name, spec := range map[string]replay.Spec{
		"no target":     {},
		"two targets":   {Target: replay.Target{Topic: "copies", Group: "g"}},
		"unknown mode":  {Target: replay.Target{Topic: "copies"}, Mode: "again"},
		"negative rate": {Target: replay.Target{Topic: "copies"}, Rate: -1},
		"missing topic": {Target: replay.Target{Topic: "nope"}},
		"from after to": {Target: replay.Target{Topic: "copies"}, Filter: lookback.Filter{From: time.Now(), To: time.Now().Add(-time.Hour)}},
		"bad partition": {Target: replay.Target{Topic: "copies"}, Filter: lookback.Filter{Partition: ptr(int32(-1))}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := e.r.Start(context.Background(), spec, ops); !errors.Is(err, replay.ErrInvalidSpec) {
				t.Fatalf("Start: %v, want ErrInvalidSpec", err)
			}
		})
	}
}

// A parked record (a dead-letter copy, here of a replayed copy) sent again
// is a copy like any other: without the dead-letter headers, which would
// make lookback archive it as a parked record of its own instead of
// linking it to what it copies.
func TestCopiesOfParkedRecordsAreCopies(t *testing.T) {
	e := newEnv(t, 1, []string{"copies"})
	ev := eventkit.Event{ID: "e-1", Source: "/test", Type: "order.placed"}
	hs := append(ev.EncodeHeaders(nil),
		eventkit.Header{Key: eventkit.HeaderReplayID, Value: []byte("earlier")},
		eventkit.Header{Key: eventkit.HeaderReplayMode, Value: []byte("reprocess")},
		eventkit.Header{Key: eventkit.HeaderReplayOrigin, Value: []byte("orders/0/0")},
		eventkit.Header{Key: consumer.HeaderDeadLetterOrigin, Value: []byte("eventkit.replay.A/0/0")},
		eventkit.Header{Key: consumer.HeaderDeadLetterCause, Value: []byte("bad event")},
		eventkit.Header{Key: consumer.HeaderDeadLetterGroup, Value: []byte("A")})
	if err := e.arch.Append(t.Context(), []lookback.Record{lookback.NewRecord("orders.dlq", 0, 0, time.Now().Add(-time.Hour), []byte("k"), []byte("v"), hs)}, nil); err != nil {
		t.Fatal(err)
	}
	j := e.start(t, replay.Spec{Filter: lookback.Filter{Topic: "orders.dlq"}, Target: replay.Target{Topic: "copies"}})
	if j = e.wait(t, j.ID); j.Status != replay.Done || j.Sent != 1 {
		t.Fatalf("job ended %+v", j)
	}
	_, recs := copies(t, e.b.Addr(), "copies", j.ID)
	if len(recs) != 1 {
		t.Fatalf("%d copies, want 1", len(recs))
	}
	cp := kafka.EventOf(recs[0])
	for _, h := range cp.Headers {
		if strings.HasPrefix(h.Key, eventkit.HeaderDeadLetterPrefix) {
			t.Errorf("copy kept %s: %v", h.Key, cp.Headers)
		}
	}
	if link, ok := lookback.LinkOf(cp); !ok || link.OriginTopic != "orders.dlq" || link.ReplayID != j.ID {
		t.Errorf("lookback reads the copy as link %+v (%v), want a link to orders.dlq/0/0", link, ok)
	}
}
