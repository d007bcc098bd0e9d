package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/eventkit/eventkit"
)

// screenshotPath is the picture of the events browser the docs show.
const screenshotPath = "../docs/screenshots/lookback-events.png"

// chromium returns the browser's path, skipping the test when there is
// none, unless in CI, which must run it.
func chromium(t *testing.T) string {
	for _, p := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is missing: scripts/install-deps.sh installs it")
	}
	t.Skip("chromium is missing: scripts/install-deps.sh installs it")
	return ""
}

// browser starts a headless Chromium that the test's cleanup stops. The
// flags keep it off the network: without them it tries to reach update and
// sync services and waits for them.
func browser(t *testing.T) context.Context {
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true), // tests run as root here
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("font-render-hinting", "none"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	// One deadline bounds every wait of the test; no step sleeps.
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// must fails t with what when err is set: one browser step.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// signIn opens url, which sends the browser to the sign-in form first, and
// signs in with token. The click that loads the page behind the form runs
// under RunResponse, which returns once that page has loaded: a wait on the
// old page could see the old elements, or lose its target to the
// navigation.
func signIn(t *testing.T, ctx context.Context, url, token string) {
	t.Helper()
	must(t, "open "+url, chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), token),
	))
	_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("signin")))
	must(t, "sign in", err)
}

// TestUIInChromium signs in, filters the events browser by key, opens an
// event and reads its payload, in a real browser.
func TestUIInChromium(t *testing.T) {
	f := newFixture(t)
	for i := range 12 {
		topic := []string{"orders", "payments", "shipments"}[i%3]
		key := fmt.Sprintf("acct-%d", i%4)
		value := fmt.Sprintf(`{"account":%q,"amount":%d,"currency":"EUR"}`, key, 100+i)
		f.append(cloudEvent(topic, int32(i%2), int64(i), key, topic[:len(topic)-1]+".created", value,
			eventkit.Header{Key: "tenant", Value: []byte("acme")}))
	}
	ctx := browser(t)
	step := func(what string, err error) { t.Helper(); must(t, what, err) }
	signIn(t, ctx, f.srv.URL+"/events", viewerToken)
	step("type a key", chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.ID("events")),
		chromedp.SendKeys(chromedp.ID("f-key"), "acct-1"),
	))
	_, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("search")))
	step("search", err)
	step("see the results", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("events"))))
	keys, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#events tbody tr td:nth-child(3)")].map(td => td.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("filtered by key acct-1: rows with keys %q, want 3", keys)
	}
	for _, k := range keys {
		if k != "acct-1" {
			t.Fatalf("filtered by key acct-1: row with key %q", k)
		}
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}

	_, err = chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS("#events tbody tr td a")))
	step("open an event", err)
	step("see the payload", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("payload"))))
	payload, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("payload")))
	if err != nil {
		t.Fatal(err)
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(location, "/events/") || !strings.Contains(payload, `"account": "acct-1"`) || !strings.Contains(payload, "\n  ") {
		t.Errorf("event page %s shows payload %q, want acct-1's, pretty-printed", location, payload)
	}
	saveScreenshot(t, shot)
}

// saveScreenshot writes shot to screenshotPath unless the picture there
// already looks the same.
func saveScreenshot(t *testing.T, shot []byte) { saveScreenshotAt(t, screenshotPath, shot) }

// saveScreenshotAt writes shot to path unless the picture there already
// looks the same: rewriting it on every run would leave the work tree
// changed after each test run for a picture nobody can tell apart.
func saveScreenshotAt(t *testing.T, path string, shot []byte) {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err == nil {
		diff, err := pixelDiff(old, shot)
		if err != nil {
			t.Fatal(err)
		}
		if diff < 0.005 {
			return
		}
		t.Logf("screenshot: %.1f%% of the pixels changed; writing %s", 100*diff, path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pixelDiff returns the share of pixels that differ between two PNGs, 1
// when their sizes differ.
func pixelDiff(a, b []byte) (float64, error) {
	ia, err := png.Decode(bytes.NewReader(a))
	if err != nil {
		return 0, fmt.Errorf("decode the old screenshot: %w", err)
	}
	ib, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, fmt.Errorf("decode the new screenshot: %w", err)
	}
	if ia.Bounds() != ib.Bounds() {
		return 1, nil
	}
	r := ia.Bounds()
	var differ int
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			if !samePixel(ia, ib, x, y) {
				differ++
			}
		}
	}
	return float64(differ) / float64(r.Dx()*r.Dy()), nil
}

func samePixel(a, b image.Image, x, y int) bool {
	r1, g1, b1, a1 := a.At(x, y).RGBA()
	r2, g2, b2, a2 := b.At(x, y).RGBA()
	return r1 == r2 && g1 == g2 && b1 == b2 && a1 == a2
}
