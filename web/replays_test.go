package web_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/eventkit/eventkit/web"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// condWait bounds every wait for a condition of these tests.
const condWait = 60 * time.Second

// replayFixture is a fixture whose server replays through a running
// Runner to an embedded broker and reads its consumer groups.
type replayFixture struct {
	*fixture
	b      *kafka.Broker
	cl     *kgo.Client
	runner *replay.Runner
}

func newReplayFixture(t *testing.T, topics ...string) *replayFixture {
	t.Helper()
	rf := &replayFixture{b: testkit.Broker(t, 2, topics...)}
	rf.cl = testkit.Client(t, rf.b.Addr())
	rf.fixture = newFixtureWith(t, func(f *fixture) []web.Opt {
		rf.runner = replay.NewRunner(rf.cl, f.archive, sqlite.NewJobStore(f.db),
			replay.Audit(f.audit), replay.Logger(testkit.Logger(t)), replay.CheckpointInterval(20*time.Millisecond),
			replay.RunnerID("lookback-under-test"))
		return []web.Opt{web.Replays(rf.runner), web.Admin(kadm.NewClient(rf.cl))}
	})
	testkit.Go(t, rf.runner.Run)
	<-rf.runner.Ready()
	return rf
}

// archivePast archives n CloudEvents of topic, an hour old (a job replays
// what is older than its start), on 2 partitions.
func (rf *replayFixture) archivePast(topic string, n int) {
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	rs := make([]lookback.Record, n)
	for i := range rs {
		ev := eventkit.Event{ID: fmt.Sprintf("%s-%d", topic, i), Source: "/test", Type: "order.placed", ContentType: "application/json",
			Headers: []eventkit.Header{{Key: "tenant", Value: []byte("acme")}}}
		rs[i] = lookback.NewRecord(topic, int32(i%2), int64(i/2), base.Add(time.Duration(i)*time.Millisecond),
			[]byte(fmt.Sprintf("k%d", i)), fmt.Appendf(nil, `{"n":%d}`, i), ev.EncodeHeaders(nil))
	}
	rf.append(rs...)
}

// jobJSON is a replay job as the tests read it.
type jobJSON struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Matched int64  `json:"matched"`
	Sent    int64  `json:"sent"`
	Failed  int64  `json:"failed"`
	Mode    string `json:"mode"`
	By      string `json:"created_by"`
	Target  struct {
		Topic string `json:"topic"`
		Group string `json:"group"`
	} `json:"target"`
}

// post sends body to path as token and decodes a 2xx answer into v.
func (f *fixture) post(method, path, token, body string, wantStatus int, v any) {
	f.t.Helper()
	status, b := f.do(method, path, token, strings.NewReader(body))
	if status != wantStatus {
		f.t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, status, b, wantStatus)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			f.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// waitJob waits until the job has status.
func (f *fixture) waitJob(id, status string) jobJSON {
	f.t.Helper()
	var j jobJSON
	testkit.Eventually(f.t, condWait, func() error {
		j = jobJSON{}
		f.getJSON("/api/v1/replays/"+id, &j)
		if j.Status != status {
			return fmt.Errorf("job %s is %s (%d of %d sent), want %s", id, j.Status, j.Sent, j.Matched, status)
		}
		return nil
	})
	return j
}

// replayed checks that topic holds n copies made by job, with the replay
// headers, and returns them by origin.
func (rf *replayFixture) replayed(t *testing.T, topic, job, mode string, n int) {
	t.Helper()
	origins := make(map[string]bool)
	for _, r := range testkit.ReadAll(t, rf.b.Addr(), topic) {
		h := make(map[string]string)
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h[eventkit.HeaderReplayID] != job {
			continue
		}
		if h[eventkit.HeaderReplayMode] != mode || h["tenant"] != "acme" {
			t.Errorf("copy on %s/%d/%d has headers %v, want mode %s and the original's", topic, r.Partition, r.Offset, h, mode)
		}
		origins[h[eventkit.HeaderReplayOrigin]] = true
	}
	if len(origins) != n {
		t.Errorf("%s holds copies of %d events from job %s, want %d", topic, len(origins), job, n)
	}
}

// TestReplayToTheZeroInstant: a "to" of the zero instant bounds the filter;
// it does not lift the bound, which would replay everything.
func TestReplayToTheZeroInstant(t *testing.T) {
	rf := newReplayFixture(t, "orders", "copies")
	rf.archivePast("orders", 3)
	var dry struct {
		Matched int64 `json:"matched"`
	}
	rf.post("POST", "/api/v1/replays", operatorToken,
		`{"filter": {"topic": "orders", "to": "0001-01-01T00:00:00Z"}, "target": {"group": "billing"}, "dry_run": true}`, 200, &dry)
	if dry.Matched != 0 {
		t.Fatalf("dry run to the zero instant: matched %d, want 0", dry.Matched)
	}
}

// TestReplayFromTheFuture: a filter that starts after now matches nothing,
// and starting it does as its dry run said (a job of nothing), instead of
// a 400 for a "to" the client never gave.
func TestReplayFromTheFuture(t *testing.T) {
	rf := newReplayFixture(t, "orders")
	rf.archivePast("orders", 4)
	from := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	var dry struct {
		Matched int64 `json:"matched"`
	}
	rf.post("POST", "/api/v1/replays", operatorToken, `{"filter": {"from": "`+from+`"}, "target": {"group": "g"}, "dry_run": true}`, 200, &dry)
	if dry.Matched != 0 {
		t.Fatalf("dry run matched %d, want 0", dry.Matched)
	}
	var j jobJSON
	rf.post("POST", "/api/v1/replays", operatorToken, `{"filter": {"from": "`+from+`"}, "target": {"group": "g"}}`, 202, &j)
	if j = rf.waitJob(j.ID, "done"); j.Matched != 0 || j.Sent != 0 {
		t.Fatalf("job %+v, want done with nothing matched", j)
	}
}

// TestReplayAPI replays from the archive through HTTP: a dry run, a replay
// to a group's replay topic and one to a topic, the job list, cancel, and
// the statuses for what does not fit.
func TestReplayAPI(t *testing.T) {
	rf := newReplayFixture(t, "orders", "copies")
	rf.archivePast("orders", 30)
	rf.archivePast("other", 5)

	var dry struct {
		Matched int64   `json:"matched"`
		Sample  []event `json:"sample"`
	}
	rf.post("POST", "/api/v1/replays", operatorToken,
		`{"filter": {"topic": "orders", "headers": {"tenant": "acme"}}, "target": {"group": "billing"}, "dry_run": true}`, 200, &dry)
	if dry.Matched != 30 || len(dry.Sample) != 10 || dry.Sample[0].Topic != "orders" || dry.Sample[0].ID == "" {
		t.Fatalf("dry run: matched %d, %d samples (%+v), want 30 and 10 events", dry.Matched, len(dry.Sample), dry.Sample)
	}
	if n := len(testkit.ReadAll(t, rf.b.Addr(), "orders")); n != 0 {
		t.Fatalf("a dry run produced %d records", n)
	}

	var toGroup jobJSON
	rf.post("POST", "/api/v1/replays", operatorToken, `{"filter": {"topic": "orders"}, "target": {"group": "billing"}}`, 202, &toGroup)
	if toGroup.ID == "" || toGroup.Mode != "reprocess" || toGroup.Target.Group != "billing" || toGroup.By != "otto" {
		t.Fatalf("started job %+v", toGroup)
	}
	if done := rf.waitJob(toGroup.ID, "done"); done.Sent != 30 || done.Matched != 30 || done.Failed != 0 {
		t.Fatalf("job to the group ended %+v, want 30 sent", done)
	}
	rf.replayed(t, eventkit.ReplayTopic("billing"), toGroup.ID, "reprocess", 30)

	var toTopic jobJSON
	rf.post("POST", "/api/v1/replays", operatorToken,
		`{"filter": {"topic": "orders", "partition": 1}, "target": {"topic": "copies"}, "mode": "deduplicate", "rate": 0}`, 202, &toTopic)
	if done := rf.waitJob(toTopic.ID, "done"); done.Sent != 15 {
		t.Fatalf("job to the topic ended %+v, want 15 sent", done)
	}
	rf.replayed(t, "copies", toTopic.ID, "deduplicate", 15)

	var list struct {
		Replays []jobJSON `json:"replays"`
	}
	rf.getJSON("/api/v1/replays", &list)
	if len(list.Replays) != 2 || list.Replays[0].ID != toTopic.ID || list.Replays[1].ID != toGroup.ID {
		t.Fatalf("list %+v, want both jobs, newest first", list.Replays)
	}

	// A slow job cancels; a finished one does not.
	var slow jobJSON
	rf.post("POST", "/api/v1/replays", operatorToken, `{"filter": {"topic": "orders"}, "target": {"group": "slow"}, "rate": 1}`, 202, &slow)
	// Its page says which process runs it, for an operator who wonders
	// whether a running job runs anywhere.
	if status, page := rf.page(viewerToken, "/replays/"+slow.ID); status != 200 || !strings.Contains(page, `id="runner">lookback-under-test, its lease renewed until`) {
		t.Errorf("page of a running job: %d, want its runner named:\n%s", status, page)
	}
	var cancelled jobJSON
	rf.post("DELETE", "/api/v1/replays/"+slow.ID, operatorToken, "", 200, &cancelled)
	if cancelled.Status != "cancelled" || cancelled.Sent >= 30 {
		t.Fatalf("cancelled job %+v", cancelled)
	}
	for _, id := range []string{slow.ID, toGroup.ID} {
		if status, b := rf.do("DELETE", "/api/v1/replays/"+id, operatorToken, nil); status != 409 || !json.Valid(b) {
			t.Errorf("DELETE of finished job: %d %s, want 409", status, b)
		}
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/replays/nope"}, {"DELETE", "/api/v1/replays/nope"}, {"GET", "/api/v1/replays/" + url.PathEscape("../x")},
	} {
		if status, b := rf.do(c.method, c.path, operatorToken, nil); status != 404 || !json.Valid(b) {
			t.Errorf("%s %s: %d %s, want 404", c.method, c.path, status, b)
		}
	}

	// Every change is in the audit log with what it asked for and its
	// counts; the runner adds its own start and end of each job.
	entries, err := rf.audit.List(t.Context(), lookback.AuditQuery{Limit: lookback.MaxLimit, Action: "POST /api/v1/replays"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 4 {
		t.Fatalf("%d audit entries for POST /api/v1/replays, want 4", len(entries))
	}
	for _, e := range entries {
		var d map[string]any
		if err := json.Unmarshal([]byte(e.Detail), &d); err != nil || d["filter"] == nil || d["target"] == nil || d["matched"] == nil || e.Actor != "otto" {
			t.Errorf("audit entry %+v: detail without filter, target and count (%v)", e, err)
		}
	}
}

// TestReplayBadInput sends malformed bodies: each is a 4xx with a JSON
// error, none a 500, and none starts a job.
func TestReplayBadInput(t *testing.T) {
	rf := newReplayFixture(t, "orders")
	rf.archivePast("orders", 4)
	for _, c := range []struct {
		path, body string
		want       int
	}{
		{"/api/v1/replays", ``, 400},
		{"/api/v1/replays", `{`, 400},
		{"/api/v1/replays", `[]`, 400},
		{"/api/v1/replays", `null`, 400},
		{"/api/v1/replays", `{"target": {"group": "g"}} {}`, 400},
		{"/api/v1/replays", `{"target": {"group": "g"}, "nope": 1}`, 400},
		{"/api/v1/replays", `{"target": {"group": "g", "nope": 1}}`, 400},
		{"/api/v1/replays", `{"filter": {"nope": 1}, "target": {"group": "g"}}`, 400},
		{"/api/v1/replays", `{"filter": {"from": "yesterday"}, "target": {"group": "g"}}`, 400},
		{"/api/v1/replays", `{"filter": {"partition": -1}, "target": {"group": "g"}}`, 400},
		{"/api/v1/replays", `{"filter": {"partition": "one"}, "target": {"group": "g"}}`, 400},
		{"/api/v1/replays", `{"target": {}}`, 400},
		{"/api/v1/replays", `{"target": {"group": "g", "topic": "t"}}`, 400},
		{"/api/v1/replays", `{"target": {"group": "g"}, "mode": "twice"}`, 400},
		{"/api/v1/replays", `{"target": {"group": "g"}, "rate": -1}`, 400},
		{"/api/v1/replays", `{"target": {"group": "g"}, "rate": "fast"}`, 400},
		{"/api/v1/replays", `{"target": {"topic": "missing"}}`, 400},
		{"/api/v1/replays", `{"target": {"group": "g"}, "filter": {"ids": [""]}}`, 400},
		{"/api/v1/replays", `{"target": {"group": "g"}, "dry_run": true, "filter": {"key": "` + strings.Repeat("k", 2<<20) + `"}}`, 413},
		{"/api/v1/groups/g/offsets", `{`, 400},
		{"/api/v1/groups/g/offsets", `{"to_time": "yesterday"}`, 400},
		{"/api/v1/groups/g/offsets", `{"to_latest": true, "nope": 1}`, 400},
		{"/api/v1/groups/g/offsets", `{"to_offset": "x"}`, 400},
		{"/api/v1/groups/g/offsets", `{"topics": ["x"], "partitions": [99999999999]}`, 400},
		{"/api/v1/groups/g/offsets", `{"group": "other", "to_latest": true}`, 400},
		{"/api/v1/groups/g/offsets", `{"to_latest": true} x`, 400},
		{"/api/v1/groups/g/offsets", `{"to_latest": true, "to_earliest": true}`, 400},
		{"/api/v1/groups/g/offsets", `{"to_latest": true, "dry_run": true}`, 404}, // no such group
		{"/api/v1/groups/g/offsets", strings.Repeat(" ", 2<<20), 413},
	} {
		status, b := rf.do("POST", c.path, operatorToken, strings.NewReader(c.body))
		if status != c.want || !json.Valid(b) {
			body := c.body
			if len(body) > 80 {
				body = body[:80] + "…"
			}
			t.Errorf("POST %s %s: %d %s, want %d with a JSON error", c.path, body, status, b, c.want)
		}
	}
	var list struct {
		Replays []jobJSON `json:"replays"`
	}
	rf.getJSON("/api/v1/replays", &list)
	if len(list.Replays) != 0 {
		t.Errorf("malformed requests started jobs: %+v", list.Replays)
	}

	// A refused replay is audited with what it asked for, as a refused
	// reset is with its request.
	rf.post("POST", "/api/v1/replays", operatorToken, `{"filter": {"topic": "orders"}, "target": {"group": "billing"}, "rate": -5}`, 400, nil)
	var audit struct {
		Entries []struct {
			Action  string         `json:"action"`
			Outcome string         `json:"outcome"`
			Detail  map[string]any `json:"detail"`
		} `json:"entries"`
	}
	rf.getJSON("/api/v1/audit?action="+url.QueryEscape("POST /api/v1/replays")+"&limit=1", &audit)
	if len(audit.Entries) != 1 {
		t.Fatalf("audit entries %+v", audit.Entries)
	}
	d, _ := json.Marshal(audit.Entries[0].Detail)
	if !strings.Contains(string(d), `"target":{"group":"billing"}`) || !strings.Contains(string(d), `"filter":{"topic":"orders"}`) || !strings.Contains(string(d), `"rate":-5`) {
		t.Errorf("refused replay audited as %s %s, without what it asked for", audit.Entries[0].Outcome, d)
	}
}

// TestReplayUnavailable: a server without a runner or an admin client
// answers their routes with 503 and a JSON error.
func TestReplayUnavailable(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/replays"}, {"POST", "/api/v1/replays"}, {"DELETE", "/api/v1/replays/x"},
		{"GET", "/api/v1/groups"}, {"GET", "/api/v1/groups/g"}, {"POST", "/api/v1/groups/g/offsets"},
	} {
		if status, b := f.do(c.method, c.path, operatorToken, strings.NewReader(`{}`)); status != 503 || !json.Valid(b) {
			t.Errorf("%s %s: %d %s, want 503 with a JSON error", c.method, c.path, status, b)
		}
	}
}

// commit commits offsets for group on topic, partition by partition.
func (rf *replayFixture) commit(group, topic string, at ...int64) {
	rf.t.Helper()
	offs := make(kadm.Offsets)
	for p, o := range at {
		offs.Add(kadm.Offset{Topic: topic, Partition: int32(p), At: o, LeaderEpoch: -1})
	}
	if err := kadm.NewClient(rf.cl).CommitAllOffsets(rf.t.Context(), group, offs); err != nil {
		rf.t.Fatal(err)
	}
}

type groupDetail struct {
	Group      string `json:"group"`
	State      string `json:"state"`
	Members    int    `json:"members"`
	Lag        int64  `json:"lag"`
	Partitions []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Committed int64  `json:"committed"`
		End       int64  `json:"end"`
		Lag       int64  `json:"lag"`
	} `json:"partitions"`
}

type planJSON struct {
	Executed bool `json:"executed"`
	Plan     []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Current   int64  `json:"current"`
		New       int64  `json:"new"`
		LagBefore int64  `json:"lag_before"`
		LagAfter  int64  `json:"lag_after"`
	} `json:"plan"`
}

// produceOrders puts n records on orders, alternating partitions, with
// timestamps a minute apart from base.
func (rf *replayFixture) produceOrders(n int, base time.Time) {
	rf.t.Helper()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Topic: "orders", Partition: int32(i % 2), Value: []byte("v"), Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}
	cl := testkit.Client(rf.t, rf.b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	testkit.Produce(rf.t, cl, rs...)
}

// TestGroupsAPI lists groups with their lag, shows one group's lag per
// partition, and resets its offsets: a dry run that changes nothing, then
// for real, and refused while the group has a member.
func TestGroupsAPI(t *testing.T) {
	rf := newReplayFixture(t, "orders")
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	rf.produceOrders(20, base) // 10 a partition
	rf.commit("billing", "orders", 7, 4)

	var list struct {
		Groups []struct {
			Group   string `json:"group"`
			State   string `json:"state"`
			Members int    `json:"members"`
			Lag     int64  `json:"lag"`
		} `json:"groups"`
	}
	rf.getJSON("/api/v1/groups", &list)
	if len(list.Groups) != 1 || list.Groups[0].Group != "billing" || list.Groups[0].Lag != 9 || list.Groups[0].Members != 0 || list.Groups[0].State != "Empty" {
		t.Fatalf("groups %+v, want billing, empty, lag 3+6", list.Groups)
	}
	var g groupDetail
	rf.getJSON("/api/v1/groups/billing", &g)
	if g.Lag != 9 || len(g.Partitions) != 2 || g.Partitions[0].Committed != 7 || g.Partitions[0].End != 10 || g.Partitions[0].Lag != 3 ||
		g.Partitions[1].Committed != 4 || g.Partitions[1].Lag != 6 {
		t.Fatalf("group billing %+v", g)
	}
	if status, b := rf.do("GET", "/api/v1/groups/nobody", viewerToken, nil); status != 404 || !json.Valid(b) {
		t.Fatalf("unknown group: %d %s, want 404", status, b)
	}

	var plan planJSON
	rf.post("POST", "/api/v1/groups/billing/offsets", operatorToken, `{"to_earliest": true, "dry_run": true}`, 200, &plan)
	if plan.Executed || len(plan.Plan) != 2 || plan.Plan[0].Current != 7 || plan.Plan[0].New != 0 || plan.Plan[0].LagAfter != 10 {
		t.Fatalf("dry run %+v", plan)
	}
	rf.getJSON("/api/v1/groups/billing", &g)
	if g.Partitions[0].Committed != 7 {
		t.Fatalf("a dry run moved the group to %d", g.Partitions[0].Committed)
	}
	rf.post("POST", "/api/v1/groups/billing/offsets", operatorToken, `{"shift_by": -2, "topics": ["orders"], "partitions": [0]}`, 200, &plan)
	if !plan.Executed || len(plan.Plan) != 1 || plan.Plan[0].New != 5 {
		t.Fatalf("shift %+v", plan)
	}
	// Partition 0 got records 0, 2, 4…, one a 2 minutes: the 4th is at
	// base+6m.
	at := base.Add(6 * time.Minute).Format(time.RFC3339)
	rf.post("POST", "/api/v1/groups/billing/offsets", operatorToken, `{"to_time": "`+at+`"}`, 200, &plan)
	rf.getJSON("/api/v1/groups/billing", &g)
	if !plan.Executed || g.Partitions[0].Committed != 3 || g.Partitions[1].Committed != 3 {
		t.Fatalf("to time %s: plan %+v, group %+v, want both partitions at 3", at, plan, g)
	}

	// A time before 1970 is before every record: Kafka must not read it
	// as one of its named offsets (-1 is latest).
	rf.post("POST", "/api/v1/groups/billing/offsets", operatorToken, `{"to_time": "1969-12-31T23:59:59.999Z", "dry_run": true}`, 200, &plan)
	if len(plan.Plan) != 2 || plan.Plan[0].New != 0 || plan.Plan[1].New != 0 {
		t.Errorf("to a time before 1970: %+v, want both partitions at 0", plan)
	}
	for _, body := range []string{`{"topics": ["nosuch"], "to_latest": true}`, `{"topics": ["orders"], "partitions": [99], "to_latest": true}`} {
		if status, b := rf.do("POST", "/api/v1/groups/billing/offsets", operatorToken, strings.NewReader(body)); status != 400 || !json.Valid(b) {
			t.Errorf("reset %s: %d %s, want 400", body, status, b)
		}
	}

	_ = testkit.Client(t, rf.b.Addr(), kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
		kgo.SessionTimeout(10*time.Second), kgo.RebalanceTimeout(8*time.Second))
	testkit.Eventually(t, condWait, func() error { // the member joins in the background
		status, b := rf.do("POST", "/api/v1/groups/billing/offsets", operatorToken, strings.NewReader(`{"to_latest": true}`))
		if status != 409 {
			return fmt.Errorf("reset with a member: %d %s, want 409", status, b)
		}
		return nil
	})
	rf.getJSON("/api/v1/groups", &list)
	if list.Groups[0].Members != 1 {
		t.Errorf("groups %+v, want billing with its member", list.Groups)
	}

	// A group that does not exist yet: 404 unless its topics are named,
	// then its starting offsets are set.
	if status, b := rf.do("POST", "/api/v1/groups/fresh/offsets", operatorToken, strings.NewReader(`{"to_latest": true}`)); status != 404 || !json.Valid(b) {
		t.Errorf("new group without topics: %d %s, want 404", status, b)
	}
	rf.post("POST", "/api/v1/groups/fresh/offsets", operatorToken, `{"topics": ["orders"], "to_time": "`+at+`"}`, 200, &plan)
	rf.getJSON("/api/v1/groups/fresh", &g)
	if !plan.Executed || len(plan.Plan) != 2 || plan.Plan[0].Current != -1 || g.Partitions[0].Committed != 3 || g.Partitions[1].Committed != 3 {
		t.Fatalf("new group: plan %+v, group %+v, want both partitions at 3", plan, g)
	}
}
