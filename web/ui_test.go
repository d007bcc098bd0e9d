package web_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"image"
	"image/png"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/chromedp"
	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/eventkit/eventkit/web"
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

// The sign-in's next page stays on this server, whatever a browser makes
// of it: it reads a backslash as a slash and drops tabs and line breaks.
func TestSignInStaysOnThisServer(t *testing.T) {
	f := newFixture(t)
	for _, next := range []string{`/./\evil.example`, `/a/../\evil.example`, "/\t/evil.example", "/\n/evil.example", "//evil.example", "https://evil.example/"} {
		resp := postSignIn(t, f.srv.URL, viewerToken, next)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/events" {
			t.Errorf("sign-in with next=%q: %d to %q, want 303 to /events", next, resp.StatusCode, loc)
		}
	}
}

// A token the API takes signs in to the UI too, whatever bytes it holds
// that a cookie cannot.
func TestSignInWithAnyToken(t *testing.T) {
	secret := `semi;colon"quote\back-0123456789-ü`
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "lookback.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	audit := sqlite.NewAuditLog(db)
	t.Cleanup(func() { audit.Close() })
	tokens, err := web.NewTokens(web.Token{Name: "ann", Role: web.Viewer, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(sqlite.NewArchive(db), audit, tokens, web.Logger(testkit.Logger(t))))
	t.Cleanup(srv.Close)
	resp := postSignIn(t, srv.URL, secret, "/topics")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/topics" {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	req, err := http.NewRequest("GET", srv.URL+"/topics", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	page, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != http.StatusOK || page.Request.URL.Path != "/topics" {
		t.Errorf("signed in, GET /topics ends at %s with %d: the cookie does not hold the token", page.Request.URL.Path, page.StatusCode)
	}
}

// The event page links the events with the same key only when that link
// finds them: a key of spaces is a filter like any other, and a key the
// events browser cannot take (a NUL byte, too long) gets no link.
func TestSameKeyLink(t *testing.T) {
	f := newFixture(t)
	f.append(
		cloudEvent("orders", 0, 1, " ", "t", `{"n":1}`),
		cloudEvent("orders", 0, 2, "other-key", "t", `{"n":2}`),
		cloudEvent("orders", 0, 3, "a\x00b", "t", `{"n":3}`),
		cloudEvent("orders", 0, 4, strings.Repeat("k", 5000), "t", `{"n":4}`),
	)
	keyLink := func(path string) string {
		status, page := f.page(viewerToken, path)
		if status != http.StatusOK {
			t.Fatalf("%s: %d", path, status)
		}
		m := regexp.MustCompile(`<dt>Key</dt><dd><a href="([^"]*)"`).FindStringSubmatch(page)
		if m == nil {
			return ""
		}
		return html.UnescapeString(m[1])
	}
	link := keyLink("/events/orders/0/1")
	if link == "" {
		t.Fatal("no link for the key of one space")
	}
	status, list := f.page(viewerToken, link)
	if status != http.StatusOK || !strings.Contains(list, "/events/orders/0/1") || strings.Contains(list, "/events/orders/0/2") {
		t.Errorf("GET %s: %d, want the event with key \" \" and no other", link, status)
	}
	for _, path := range []string{"/events/orders/0/3", "/events/orders/0/4"} {
		if link := keyLink(path); link != "" {
			t.Errorf("%s links %.60q…, which the events browser refuses", path, link)
		}
	}
}

// Header names that are not UTF-8 show as base64, as their values do: two
// such names stay apart, and the page stays UTF-8 as it says.
func TestHeaderNamesNotUTF8(t *testing.T) {
	f := newFixture(t)
	f.append(lookback.NewRecord("orders", 0, 1, t0, []byte("k"), []byte(`{}`), []eventkit.Header{
		{Key: "\xff\xfe", Value: []byte("a")}, {Key: "\xfe\xff", Value: []byte("b")},
	}))
	status, page := f.page(viewerToken, "/events/orders/0/1")
	if status != http.StatusOK || !utf8.ValidString(page) || !strings.Contains(page, "base64://4") || !strings.Contains(page, "base64:/v8") {
		t.Errorf("event page: %d, UTF-8 %t, want both names in base64", status, utf8.ValidString(page))
	}
}

// A payload that is JSON but for bytes that are not UTF-8 is no JSON text:
// the event page shows it base64, and stays UTF-8 itself.
func TestEventPageJSONNotUTF8(t *testing.T) {
	f := newFixture(t)
	f.append(lookback.NewRecord("orders", 0, 1, t0, []byte("k"), []byte("{\"s\":\"\xff\xfe\"}"), nil))
	status, page := f.page(viewerToken, "/events/orders/0/1")
	if status != http.StatusOK || !utf8.ValidString(page) || !strings.Contains(page, "eyJzIjoi//4ifQ==") {
		t.Errorf("event page: %d, UTF-8 %t, payload shown base64 %t", status, utf8.ValidString(page), strings.Contains(page, "eyJzIjoi//4ifQ=="))
	}
}
