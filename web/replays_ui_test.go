package web_test

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/eventkit/eventkit/internal/testkit"
)

// TestReplayUIInChromium signs in as an operator, previews a replay to a
// group, starts it and watches its page refresh itself until the job is
// done, in a real browser.
func TestReplayUIInChromium(t *testing.T) {
	rf := newReplayFixture(t, "orders")
	rf.archivePast("orders", 6)
	ctx := browser(t)
	step := func(what string, err error) { t.Helper(); must(t, what, err) }
	signIn(t, ctx, rf.srv.URL+"/replays", operatorToken)
	step("fill the form", chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("replay-form")),
		chromedp.SendKeys(chromedp.ID("f-topic"), "orders"),
		chromedp.SendKeys(chromedp.ID("r-target"), "billing"),
		chromedp.SendKeys(chromedp.ID("r-rate"), "3"), // slow enough to show it running
	))
	_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("preview")))
	step("preview", err)
	step("see the preview", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("matched"))))
	matched, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("matched")))
	step("read the count", err)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#sample tbody tr").length`))
	step("count the sample", err)
	if !strings.Contains(matched, "6 events match") || rows != 6 {
		t.Fatalf("preview shows %q with %d sample rows, want 6 events", matched, rows)
	}

	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("start")))
	step("start", err)
	// The page reloads itself every 2 s while the job runs; reading it
	// while it reloads fails, and is read again.
	var sent string
	sawRunning := false
	testkit.Eventually(t, condWait, func() error {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`["status", "sent"].map(id => (document.getElementById(id) || {}).textContent || "")`))
		if err != nil {
			return err
		}
		sawRunning = sawRunning || len(got) == 2 && got[0] == "running"
		if len(got) != 2 || got[0] != "done" {
			return fmt.Errorf("job page shows %q, want done", got)
		}
		sent = got[1]
		return nil
	})
	t.Logf("the job page showed the job running before done: %v", sawRunning)
	if sent != "6" {
		t.Errorf("job page shows %s sent, want 6", sent)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	step("location", err)
	if !strings.Contains(location, "/replays/") {
		t.Errorf("after Start the browser is at %s, want the job's page", location)
	}
}

// TestOffsetResetForm drives the group page's reset form as a browser
// would post it: the dry run shows the plan and changes nothing, Execute
// wants the confirmation, refuses a plan that changed since it was shown,
// and then moves the offsets.
func TestOffsetResetForm(t *testing.T) {
	rf := newReplayFixture(t, "orders")
	rf.produceOrders(8, time.Now().Add(-time.Hour))
	rf.commit("billing", "orders", 3, 2)
	post := func(who string, v url.Values) (int, string) {
		status, body := rf.send("POST", "/groups/billing/offsets", strings.NewReader(v.Encode()), func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(session(who))
		})
		return status, string(body)
	}
	committed := func() []int64 {
		var g groupDetail
		rf.getJSON("/api/v1/groups/billing", &g)
		var out []int64
		for _, p := range g.Partitions {
			out = append(out, p.Committed)
		}
		return out
	}

	status, page := post(operatorToken, url.Values{"action": {"plan"}, "to": {"earliest"}})
	if status != 200 || !strings.Contains(page, `id="execute"`) || !strings.Contains(page, "Plan (nothing changed yet)") {
		t.Fatalf("dry run: %d %s", status, page)
	}
	if got := committed(); got[0] != 3 || got[1] != 2 {
		t.Fatalf("the dry run moved the group to %v", got)
	}
	seen := regexp.MustCompile(`name="seen" value="([^"]*)"`).FindStringSubmatch(page)
	if seen == nil {
		t.Fatal("the plan page carries no plan to execute")
	}
	execute := url.Values{"action": {"execute"}, "to": {"earliest"}, "seen": {html.UnescapeString(seen[1])}}
	if status, page := post(operatorToken, execute); status != 400 || !strings.Contains(page, "confirmation") {
		t.Errorf("execute without the confirmation: %d, want 400", status)
	}
	execute.Set("confirm", "yes")
	stale := url.Values{"action": {"execute"}, "to": {"earliest"}, "confirm": {"yes"}, "seen": {"[]"}}
	if status, page := post(operatorToken, stale); status != 409 || !strings.Contains(page, "changed since the dry run") {
		t.Errorf("execute of a plan that changed: %d, want 409", status)
	}
	if got := committed(); got[0] != 3 || got[1] != 2 {
		t.Fatalf("refused executions moved the group to %v", got)
	}
	if status, _ := post(viewerToken, execute); status != 403 {
		t.Errorf("execute as a viewer: %d, want 403", status)
	}
	if status, page := post(operatorToken, execute); status != 200 || !strings.Contains(page, "Executed") {
		t.Fatalf("execute: %d %s", status, page)
	}
	if got := committed(); got[0] != 0 || got[1] != 0 {
		t.Fatalf("after the reset the group is at %v, want the earliest", got)
	}
	if status, page := post(operatorToken, url.Values{"action": {"plan"}, "to": {"time"}, "value": {"yesterday"}}); status != 400 || !strings.Contains(page, "RFC 3339") {
		t.Errorf("a bad time: %d, want 400 with the reason", status)
	}

	// A group name is one path segment of its links, whatever it holds.
	rf.commit("team/a b?", "orders", 1)
	link := "/groups/" + url.PathEscape("team/a b?")
	if status, page := rf.page(viewerToken, "/groups"); status != 200 || !strings.Contains(page, `href="`+link+`"`) {
		t.Fatalf("groups page: %d, no link %s in %s", status, link, page)
	}
	if status, page := rf.page(viewerToken, link); status != 200 || !strings.Contains(page, `action="`+link+`/offsets"`) {
		t.Errorf("GET %s: %d %s", link, status, page)
	}
}

// TestReplayForm: a viewer sees the form disabled and why; a form the
// server refuses comes back filled in with the reason, and starts nothing.
func TestReplayForm(t *testing.T) {
	rf := newReplayFixture(t, "orders")
	rf.archivePast("orders", 2)
	if status, page := rf.page(viewerToken, "/replays"); status != 200 || !strings.Contains(page, `id="viewer-note"`) || !strings.Contains(page, "disabled") {
		t.Errorf("viewer's replays page: %d, want the form disabled with a note", status)
	}
	if status, page := rf.page(operatorToken, "/replays"); status != 200 || strings.Contains(page, `id="viewer-note"`) {
		t.Errorf("operator's replays page: %d, want the form enabled", status)
	}
	for _, c := range []struct{ form, reason string }{
		{"action=preview&topic=orders&target=billing&rate=fast", "rate"},
		{"action=start&topic=orders&target=", "no target"},
		{"action=preview&from=yesterday&target=billing", "from"},
		{"action=start&target_kind=topic&target=missing", "missing"},
	} {
		status, body := rf.send("POST", "/replays", strings.NewReader(c.form), func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(session(operatorToken))
		})
		if page := string(body); status != 400 || !strings.Contains(page, c.reason) || !strings.Contains(page, `id="replay-form"`) {
			t.Errorf("POST /replays %s: %d, want 400 with the form and %q", c.form, status, c.reason)
		}
	}
	// Each refusal is audited with what the form asked for: its fields
	// when they do not read as a replay, else the replay.
	var audit struct {
		Entries []struct {
			Detail map[string]any `json:"detail"`
		} `json:"entries"`
	}
	rf.getJSON("/api/v1/audit?action="+url.QueryEscape("POST /replays"), &audit)
	if len(audit.Entries) != 4 {
		t.Fatalf("%d audit entries of refused forms, want 4", len(audit.Entries))
	}
	for _, e := range audit.Entries {
		if e.Detail["form"] == nil && e.Detail["target"] == nil {
			t.Errorf("refused form audited without what it asked for: %v", e.Detail)
		}
	}
	if status, _ := rf.page(operatorToken, "/replays/nope"); status != 404 {
		t.Errorf("unknown job page: %d, want 404", status)
	}
}

// page GETs a UI page signed in with token.
func (f *fixture) page(token, path string) (int, string) {
	f.t.Helper()
	status, body := f.send("GET", path, nil, func(r *http.Request) {
		r.AddCookie(session(token))
	})
	return status, string(body)
}

// A replay's filter in the form keeps a value of spaces: dropped, it would
// widen the replay to the whole topic.
func TestReplayFormKeepsAKeyOfSpaces(t *testing.T) {
	rf := newReplayFixture(t, "orders")
	rf.archivePast("orders", 3)
	form := url.Values{"action": {"preview"}, "topic": {"orders"}, "key": {"  "}, "target": {"billing"}}.Encode()
	status, body := rf.send("POST", "/replays", strings.NewReader(form), func(r *http.Request) {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(session(operatorToken))
	})
	if page := string(body); status != http.StatusOK || !strings.Contains(page, `id="matched">0 events match`) {
		t.Errorf("preview of key %q: %d, want 0 events match: %s", "  ", status, page)
	}
}
