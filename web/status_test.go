package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/chromedp/chromedp"
	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// haltedScreenshot is the picture of a halted banner the runbook shows.
const haltedScreenshot = "../docs/screenshots/halted-partition.png"

// controlRig is lookback (ingest, status board, API and UI) beside one
// real agent of group g on orders, whose handler fails on e-2 until fixed.
type controlRig struct {
	*fixture
	cl    *kgo.Client
	fixed atomic.Bool
	mu    sync.Mutex
	done  map[string]bool // the events the handler succeeded on
}

func newControlRig(t *testing.T) *controlRig {
	b := testkit.Broker(t, 1, "orders")
	board, err := lookback.NewStatus([]string{b.Addr()}, lookback.StatusClientOpts(testkit.ClientOpts()...), lookback.StatusLogger(testkit.Logger(t)))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Go(t, board.Run)
	rig := &controlRig{fixture: newFixture(t, web.StatusBoard(board)), cl: testkit.Client(t, b.Addr()), done: map[string]bool{}}
	in, err := lookback.NewIngest(rig.archive, lookback.Brokers(b.Addr()), lookback.Logger(testkit.Logger(t)),
		lookback.Registerer(prometheus.NewRegistry()), lookback.AgentOpts(testkit.QuickAgent(t)...))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Go(t, in.Run)
	agent := testkit.Agent(t, b, "g", "orders", eventkit.HandlerFunc(func(_ context.Context, ev *eventkit.Event) error {
		if ev.ID == "e-2" && !rig.fixed.Load() {
			return errors.New("poison: amount is not a number")
		}
		rig.mu.Lock()
		defer rig.mu.Unlock()
		rig.done[ev.ID] = true
		return nil
	}), consumer.MaxRetries(1), consumer.HaltPolicy(consumer.PausePartition), consumer.StatusInterval(200*time.Millisecond))
	testkit.Go(t, agent.Run)
	testkit.Produce(t, rig.cl, testkit.Events("orders", "e", 5, nil)...)
	return rig
}

func (rig *controlRig) handled(id string) bool {
	rig.mu.Lock()
	defer rig.mu.Unlock()
	return rig.done[id]
}

type groupStatus struct {
	Group   string `json:"group"`
	Members []struct {
		MemberID   string                    `json:"member_id"`
		Host       string                    `json:"host"`
		Partitions []map[string]any          `json:"partitions"`
		Halted     []eventkit.HaltStatus     `json:"halted"`
		Commands   []eventkit.CommandOutcome `json:"commands"`
	} `json:"members"`
}

func (rig *controlRig) status() groupStatus {
	var st groupStatus
	rig.getJSON("/api/v1/groups/g/status", &st)
	return st
}

// halts lists the halted events the API shows for group g.
func (rig *controlRig) halts() []eventkit.HaltStatus {
	var hs []eventkit.HaltStatus
	for _, m := range rig.status().Members {
		hs = append(hs, m.Halted...)
	}
	return hs
}

// awaitHalt waits until the API shows e-2 halted, and the archive has it.
func (rig *controlRig) awaitHalt(t *testing.T) eventkit.HaltStatus {
	var h eventkit.HaltStatus
	testkit.Eventually(t, 30*time.Second, func() error {
		hs := rig.halts()
		if len(hs) != 1 {
			return fmt.Errorf("halts %+v, want one", hs)
		}
		h = hs[0]
		_, err := rig.archive.Get(context.Background(), "orders", 0, 2)
		return err
	})
	if h.Topic != "orders" || h.Partition != 0 || h.Offset != 2 || h.ID != "e-2" || !strings.Contains(h.Cause, "poison") || h.Attempts != 2 || h.Since.IsZero() {
		t.Fatalf("halt %+v", h)
	}
	// An agent reports a halt at once, not at its next tick.
	if late := time.Since(h.Since); late > 5*time.Second {
		t.Errorf("the halt showed %v after it happened, want within 5s", late)
	}
	return h
}

func (rig *controlRig) command(verb, token, body string) (int, []byte) {
	return rig.do("POST", "/api/v1/groups/g/partitions/orders/0/"+verb, token, strings.NewReader(body))
}

// The Must-show: an agent halts on a poison event; the API shows it; a
// viewer may not skip, a stale skip is refused and changes nothing; an
// operator skips it from the UI in a real browser; the agent goes on and
// the audit log says who skipped what.
func TestHaltedPartitionSkippedFromTheUI(t *testing.T) {
	rig := newControlRig(t)
	rig.awaitHalt(t)

	if status, b := rig.command("skip", viewerToken, `{"offset": 2}`); status != http.StatusForbidden {
		t.Fatalf("viewer skip: %d %s", status, b)
	}
	if status, b := rig.command("skip", operatorToken, `{"offset": 1}`); status != http.StatusConflict || !strings.Contains(string(b), "not halted") {
		t.Fatalf("stale skip: %d %s", status, b)
	}
	for _, body := range []string{``, `{}`, `{"offset": -1}`, `{"offset": "2"}`, `{"offset": 2, "x": 1}`, `{"offset": 2}{}`, `{"offset": 2}}`, `{"offset": 2}]`, `[`} {
		if status, b := rig.command("skip", operatorToken, body); status != http.StatusBadRequest {
			t.Errorf("body %q: %d %s, want 400", body, status, b)
		}
	}
	if status, b := rig.do("POST", "/api/v1/groups/g/partitions/orders/x/skip", operatorToken, strings.NewReader(`{"offset": 2}`)); status != http.StatusBadRequest {
		t.Errorf("partition x: %d %s, want 400", status, b)
	}
	// In the UI a viewer sees the banner without the buttons, and may not
	// post them either.
	viewer := func(req *http.Request) { req.AddCookie(session(viewerToken)) }
	if status, b := rig.send("GET", "/groups/g/status", nil, viewer); status != http.StatusOK || !strings.Contains(string(b), "e-2") || strings.Contains(string(b), "Skip…") {
		t.Errorf("viewer's status page: %d, buttons shown or no banner: %s", status, b)
	}
	form := func(req *http.Request) {
		viewer(req)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if status, b := rig.send("POST", "/groups/g/partitions/orders/0/skip", strings.NewReader("offset=2"), form); status != http.StatusForbidden {
		t.Errorf("viewer's skip from the UI: %d %s", status, b)
	}
	if hs := rig.halts(); len(hs) != 1 || hs[0].Offset != 2 || rig.handled("e-3") {
		t.Fatalf("after refused commands: halts %+v, e-3 handled %v", hs, rig.handled("e-3"))
	}

	ctx := browser(t)
	step := func(what string, err error) { t.Helper(); must(t, what, err) }
	// The page refreshes itself every 2 s; paused, no reload races a click.
	signIn(t, ctx, rig.srv.URL+"/groups/g/status?refresh=off", operatorToken)
	step("see the banner", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("section.halted"))))
	link, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(a => [a.textContent, a.getAttribute("href")])(document.querySelector("section.halted a.event-link"))`))
	step("read the event link", err)
	cause, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("section.halted .cause")))
	step("read the cause", err)
	if len(link) != 2 || link[0] != "e-2" || link[1] != "/events/orders/0/2" || !strings.Contains(cause, "poison") {
		t.Fatalf("banner: link %q, cause %q", link, cause)
	}
	// The member id and the time change from run to run; fixed, the
	// picture only changes when the page does.
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("section.halted .since").textContent = "2030-05-06 03:02:01.000Z";
		document.querySelector("section.halted .member").textContent = "kgo-5c3e0f9a2b7d4e61"; true`))
	step("steady the banner", err)
	shot, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("section.halted")))
	step("screenshot", err)
	saveScreenshotAt(t, haltedScreenshot, shot)

	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("section.halted button.skip")))
	step("ask to skip", err)
	step("see the confirmation", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("confirm"))))
	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("confirm")))
	step("confirm", err)
	// The page reloads itself until the agent's outcome is in.
	step("see the outcome", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#command.applied"))))

	testkit.Eventually(t, 30*time.Second, func() error {
		if !rig.handled("e-3") || !rig.handled("e-4") || len(rig.halts()) != 0 {
			return fmt.Errorf("after the skip: e-3 %v, e-4 %v, halts %+v", rig.handled("e-3"), rig.handled("e-4"), rig.halts())
		}
		return nil
	})
	if rig.handled("e-2") {
		t.Error("the skipped event was handled")
	}
	testkit.WaitCommitted(t, rig.cl, "g", "orders", map[int32]int64{0: 5}, 30*time.Second)

	entries, err := rig.audit.List(context.Background(), lookbackAuditAll)
	if err != nil {
		t.Fatal(err)
	}
	var skipped, refused, denied bool
	for _, e := range entries {
		switch {
		case e.Action == "control.skip" && e.Actor == "otto" && e.Outcome == "sent" && e.Target == "g orders/0@2":
			skipped = true
		case e.Action == "control.skip" && e.Actor == "otto" && strings.HasPrefix(e.Outcome, "conflict") && e.Target == "g orders/0@1":
			refused = true
		case e.Actor == "vera" && strings.HasPrefix(e.Outcome, "denied") && strings.HasSuffix(e.Action, "/skip"):
			denied = true
		}
	}
	if !skipped || !refused || !denied {
		t.Errorf("audit log: skip %v, stale skip %v, viewer denied %v in %+v", skipped, refused, denied, entries)
	}
}

// Resume after a fix: the event is handled again, with a fresh budget, and
// succeeds.
func TestHaltedPartitionResumedAfterAFix(t *testing.T) {
	rig := newControlRig(t)
	rig.awaitHalt(t)
	rig.fixed.Store(true)
	status, b := rig.command("resume", operatorToken, `{"offset": 2}`)
	if status != http.StatusAccepted {
		t.Fatalf("resume: %d %s", status, b)
	}
	var out struct {
		CommandID string `json:"command_id"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.CommandID == "" {
		t.Fatalf("resume answer %s: %v", b, err)
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		for _, m := range rig.status().Members {
			for _, o := range m.Commands {
				if o.CommandID == out.CommandID && o.Applied && len(m.Halted) == 0 {
					return nil
				}
			}
		}
		return fmt.Errorf("no applied outcome of %s yet: %+v", out.CommandID, rig.status())
	})
	testkit.Eventually(t, 30*time.Second, func() error {
		if !rig.handled("e-2") || !rig.handled("e-4") {
			return errors.New("e-2 and e-4 not handled yet")
		}
		return nil
	})
	testkit.WaitCommitted(t, rig.cl, "g", "orders", map[int32]int64{0: 5}, 30*time.Second)
}

// Without a status board the control routes say so.
func TestStatusWithoutBoard(t *testing.T) {
	f := newFixture(t)
	if status, b := f.do("GET", "/api/v1/groups/g/status", viewerToken, nil); status != http.StatusServiceUnavailable || !strings.Contains(string(b), "status board") {
		t.Fatalf("status: %d %s", status, b)
	}
	if status, b := f.do("POST", "/api/v1/groups/g/partitions/orders/0/skip", operatorToken, strings.NewReader(`{"offset": 1}`)); status != http.StatusServiceUnavailable {
		t.Fatalf("skip: %d %s", status, b)
	}
}

// A member that dies without a word drops off the status page three of its
// intervals after its last report, by the board's clock; the partition it
// held shows under the member that took it over.
func TestDeadMemberLeavesTheStatusPage(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	board, err := lookback.NewStatus([]string{b.Addr()}, lookback.StatusClientOpts(testkit.ClientOpts()...), lookback.StatusClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	testkit.Go(t, board.Run)
	f := newFixture(t, web.StatusBoard(board))
	report := func(member string, partitions ...int32) {
		st := eventkit.AgentStatus{Group: "g", MemberID: member, Host: member + "-host", UpdatedAt: time.Now(), Interval: eventkit.Duration(time.Second)}
		for _, p := range partitions {
			st.Partitions = append(st.Partitions, eventkit.PartitionStatus{Topic: "orders", Partition: p, Committed: -1, End: -1})
		}
		data, _ := json.Marshal(st)
		testkit.Produce(t, cl, kafka.RecordOf(eventkit.StatusTopic, &eventkit.Event{
			ID: member + st.UpdatedAt.String(), Source: "/test", Type: eventkit.TypeAgentStatus, Key: []byte("g"), Data: data,
		}))
	}
	page := func() string {
		_, body := f.send("GET", "/groups/g/status?refresh=off", nil, func(req *http.Request) {
			req.AddCookie(session(viewerToken))
		})
		return string(body)
	}
	report("dying", 1)
	report("heir", 0)
	testkit.Eventually(t, 30*time.Second, func() error {
		if p := page(); !strings.Contains(p, "dying-host") || !strings.Contains(p, "heir-host") {
			return errors.New("both members not on the page yet")
		}
		return nil
	})
	mu.Lock()
	now = now.Add(3500 * time.Millisecond) // past three of their 1 s intervals
	mu.Unlock()
	report("heir", 0, 1) // the heir reports on; the dying member does not
	testkit.Eventually(t, 30*time.Second, func() error {
		p := page()
		if strings.Contains(p, "dying") || !strings.Contains(p, "<td>orders/1</td><td>heir</td>") {
			return fmt.Errorf("page still shows the dead member or not the heir's partition: %s", p)
		}
		return nil
	})
}

// A board that is not connected to Kafka yet (or any more) answers a
// command with 503, as a missing one does: the client may try again.
func TestStatusBoardNotRunning(t *testing.T) {
	board, err := lookback.NewStatus([]string{"127.0.0.1:1"}) // never run
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, web.StatusBoard(board))
	if status, b := f.do("POST", "/api/v1/groups/g/partitions/orders/0/skip", operatorToken, strings.NewReader(`{"offset": 1}`)); status != http.StatusServiceUnavailable || !json.Valid(b) {
		t.Fatalf("skip: %d %s, want 503", status, b)
	}
}

// silentBoard shows a group whose members never answer commands.
type silentBoard struct{}

func (silentBoard) Group(string) []eventkit.AgentStatus { return nil }
func (silentBoard) Outcome(string, string) (eventkit.CommandOutcome, bool) {
	return eventkit.CommandOutcome{}, false
}
func (silentBoard) OutcomeDue(string) time.Duration { return 15 * time.Second }
func (silentBoard) SendCommand(context.Context, string, eventkit.ControlCommand) (string, error) {
	return "", errors.New("not sent")
}

// A command no member answers (its partition had no owner when it came)
// shows as such once its outcome is overdue, rather than as pending for
// good.
func TestUnansweredCommand(t *testing.T) {
	later := time.Now().Add(time.Minute)
	f := newFixture(t, web.StatusBoard(silentBoard{}), web.Now(func() time.Time { return later }))
	id, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	status, page := f.page(viewerToken, "/groups/g/status?command="+id.String())
	if status != http.StatusOK || !strings.Contains(page, `class="command unanswered"`) || !strings.Contains(page, "no agent has reported an outcome") {
		t.Errorf("overdue command: %d, want it shown unanswered: %s", status, page)
	}
	// An id that does not tell its time stays pending.
	if status, page := f.page(viewerToken, "/groups/g/status?command=c1"); status != http.StatusOK || !strings.Contains(page, `class="command pending"`) {
		t.Errorf("command c1: %d, want it shown pending: %s", status, page)
	}
}
