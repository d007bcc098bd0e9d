package web_test

import (
	"fmt"
	"strings"
	"testing"

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
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	step("open the replays", chromedp.Do(ctx,
		chromedp.Navigate(rf.srv.URL+"/replays"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), operatorToken),
	))
	_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("signin")))
	step("sign in", err)
	step("fill the form", chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("replay-form")),
		chromedp.SendKeys(chromedp.ID("r-topic"), "orders"),
		chromedp.SendKeys(chromedp.ID("r-target"), "billing"),
		chromedp.SendKeys(chromedp.ID("r-rate"), "3"), // slow enough to show it running
	))
	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("preview")))
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
