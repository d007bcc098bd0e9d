package payments_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/examples/payments"
	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/examples/payments/reports"
	"github.com/eventkit/eventkit/examples/payments/transfers"
	"github.com/eventkit/eventkit/internal/pgtest"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"go.uber.org/goleak"
)

// TestReportsAgreeWithTransfers runs the platform with every drill on
// (duplicates and malformed records from transfers, failed first attempts
// in reports), stops it mid-stream, switches account.updated from v1 to v2
// across the restart, and checks that every report equals what transfers'
// own state says, and that every malformed record was parked.
func TestReportsAgreeWithTransfers(t *testing.T) { testReportsAgree(t, "") }

// TestReportsAgreeWithTransfersPostgres is the same with reports on
// PostgreSQL; it skips where no PostgreSQL server is installed.
func TestReportsAgreeWithTransfersPostgres(t *testing.T) { testReportsAgree(t, pgtest.DSN(t)) }

// testReportsAgree runs the test above with reports on SQLite, or on
// PostgreSQL at pgDSN.
func testReportsAgree(t *testing.T, pgDSN string) {
	checkLeaks(t)
	b := testkit.Broker(t, 3)
	dir := t.TempDir()
	var tick atomic.Int64
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	cfg := payments.Config{
		Brokers:         []string{b.Addr()},
		DataDir:         dir,
		ReportsPostgres: pgDSN,
		// 37 minutes a call spreads the transfers over several days.
		Now:            func() time.Time { return start.Add(time.Duration(tick.Add(1)) * 37 * time.Minute) },
		AccountVersion: 1,
		TransfersDrill: transfers.Drill{Malformed: 0.1, Duplicate: 0.2},
		ReportsDrill:   reports.Drill{Fraction: 0.2, Flag: eventkit.FlagRetry},
		ClientOpts:     testkit.ClientOpts(),
		AgentOpts:      testkit.AgentTimings(t),
		Logger:         testkit.Logger(t),
	}
	w := &world{t: t}

	// Run 1: account.updated v1.
	p := startPlatform(t, cfg)
	w.transfersURL = p.TransfersURL()
	w.open("Ada Lovelace", "GB")
	w.open("Grace Hopper", "US")
	w.open("Emmy Noether", "DE")
	w.open("Marie Curie", "FR")
	w.traffic(24)
	w.patch(0, `{"holder": {"name": "Augusta Ada King"}}`)
	w.patch(2, `{"status": "frozen"}`)
	// Stopped without waiting: reports has not caught up, and the outbox
	// may still hold events. The count is read once nothing more can be
	// produced: a round in flight at the stop may still land.
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	malformed := p.Transfers.Stats().Malformed

	// Run 2: the same data, account.updated v2.
	cfg.AccountVersion = 2
	p = startPlatform(t, cfg)
	w.transfersURL = p.TransfersURL()
	w.patch(0, `{"holder": {"name": "Ada King"}, "kyc": {"risk_tier": "low"}}`)
	w.patch(1, `{"holder": {"address": {"country": "CA"}}}`)
	w.open("Lise Meitner", "AT")
	w.traffic(24)
	w.patch(4, `{"nickname": "lise"}`)

	w.waitAgree(p.ReportsURL())
	testkit.Eventually(t, 30*time.Second, func() error {
		want := malformed + p.Transfers.Stats().Malformed
		if got := int64(len(testkit.ReadAll(t, b.Addr(), reports.DefaultDeadLetter))); got != want {
			return fmt.Errorf("%d records parked, want the %d malformed ones", got, want)
		}
		return nil
	})
	for _, r := range testkit.ReadAll(t, b.Addr(), reports.DefaultDeadLetter) {
		ev := kafka.EventOf(r)
		cause, _ := ev.Header(consumer.HeaderDeadLetterCause)
		origin, _ := ev.Header(consumer.HeaderDeadLetterOrigin)
		if len(cause) == 0 || len(origin) == 0 {
			t.Fatalf("parked record without cause or origin: %v", r.Headers)
		}
	}
	if s := p.Transfers.Stats(); s.Duplicated == 0 || s.Malformed == 0 {
		t.Fatalf("drills did not run: %+v", s)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}

	// Run 3: a restart with nothing new changes no answer.
	p = startPlatform(t, cfg)
	w.transfersURL = p.TransfersURL()
	w.waitAgree(p.ReportsURL())
	w.badRequests(p.ReportsURL())
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
}

// checkLeaks fails the test if a goroutine it started outlives it. Call it
// first, so that its cleanup runs after every other: the broker and the
// test's clients are gone by then too.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func checkLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		goleak.VerifyNone(t, before)
	})
}

func startPlatform(t *testing.T, cfg payments.Config) *payments.Platform {
	t.Helper()
	p, err := payments.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	return p
}

// world drives the transfers API and remembers what it created.
type world struct {
	t            *testing.T
	transfersURL string
	accounts     []string
	transfers    []string
	n            int
}

func (w *world) open(name, country string) {
	var a transfers.Account
	w.call("POST", w.transfersURL+"/accounts", fmt.Sprintf(`{"holder": {"name": %q, "address": {"country": %q}}}`, name, country), http.StatusCreated, &a)
	w.accounts = append(w.accounts, a.ID)
}

func (w *world) patch(i int, body string) {
	w.call("PATCH", w.transfersURL+"/accounts/"+w.accounts[i], body, http.StatusOK, nil)
}

// traffic creates n transfers between active accounts and settles most of
// them: two of three complete, one fails, every fifth stays pending.
func (w *world) traffic(n int) {
	for range n {
		w.n++
		from, to := w.accounts[w.n%len(w.accounts)], w.accounts[(w.n+1)%len(w.accounts)]
		if from == w.accounts[2] || to == w.accounts[2] { // frozen after run 1 starts
			to = w.accounts[(w.n+3)%len(w.accounts)]
			from = w.accounts[(w.n+1)%len(w.accounts)]
			if from == w.accounts[2] || to == w.accounts[2] || from == to {
				continue
			}
		}
		var tr events.Transfer
		w.call("POST", w.transfersURL+"/transfers", fmt.Sprintf(`{"from": %q, "to": %q, "amount_minor": %d, "currency": %q}`,
			from, to, 100*w.n+7, []string{"EUR", "USD"}[w.n%2]), http.StatusCreated, &tr)
		w.transfers = append(w.transfers, tr.ID)
		switch {
		case w.n%5 == 0:
		case w.n%3 == 0:
			w.call("POST", w.transfersURL+"/transfers/"+tr.ID+"/fail", `{"reason": "declined"}`, http.StatusOK, nil)
		default:
			w.call("POST", w.transfersURL+"/transfers/"+tr.ID+"/complete", "", http.StatusOK, nil)
		}
	}
}

func (w *world) call(method, url, body string, want int, out any) {
	w.t.Helper()
	if err := call(method, url, body, want, out); err != nil {
		w.t.Fatal(err)
	}
}

func call(method, url, body string, want int, out any) error {
	req, err := http.NewRequest(method, url, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// expected computes every report from transfers' own answers.
type expected struct {
	accounts map[string]*reports.Account
	sent     map[string][]reports.Amount
	days     []reports.Day
	failed   []string
}

func (w *world) expected() (*expected, error) {
	e := &expected{accounts: map[string]*reports.Account{}, sent: map[string][]reports.Amount{}}
	for _, id := range w.accounts {
		var a transfers.Account
		if err := call("GET", w.transfersURL+"/accounts/"+id, "", http.StatusOK, &a); err != nil {
			return nil, err
		}
		e.accounts[id] = &reports.Account{ID: a.ID, HolderName: a.Holder.Name, Country: a.Holder.Address.Country,
			Status: a.Status, Language: &a.Preferences.Language, Version: a.Version, UpdatedAt: a.UpdatedAt}
		e.sent[id] = []reports.Amount{}
	}
	var (
		failed []events.Transfer
		days   = map[[2]string]*reports.Day{}
	)
	for _, id := range w.transfers {
		var tr events.Transfer
		if err := call("GET", w.transfersURL+"/transfers/"+id, "", http.StatusOK, &tr); err != nil {
			return nil, err
		}
		switch tr.Status {
		case events.StatusFailed:
			failed = append(failed, tr)
		case events.StatusCompleted:
			e.sent[tr.From] = addTo(e.sent[tr.From], tr.Currency, tr.AmountMinor)
			k := [2]string{tr.SettledAt.UTC().Format("2006-01-02"), tr.Currency}
			if days[k] == nil {
				days[k] = &reports.Day{Day: k[0], Amount: reports.Amount{Currency: k[1]}}
			}
			days[k].Transfers++
			days[k].AmountMinor += tr.AmountMinor
		}
	}
	for _, d := range days {
		e.days = append(e.days, *d)
	}
	slices.SortFunc(e.days, func(a, b reports.Day) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Currency, b.Currency))
	})
	slices.SortFunc(failed, func(a, b events.Transfer) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(b.ID, a.ID))
	})
	for _, f := range failed {
		e.failed = append(e.failed, f.ID)
	}
	return e, nil
}

func addTo(as []reports.Amount, cur string, amount int64) []reports.Amount {
	i := slices.IndexFunc(as, func(a reports.Amount) bool { return a.Currency == cur })
	if i < 0 {
		as = append(as, reports.Amount{Currency: cur})
		slices.SortFunc(as, func(a, b reports.Amount) int { return cmp.Compare(a.Currency, b.Currency) })
		i = slices.IndexFunc(as, func(a reports.Amount) bool { return a.Currency == cur })
	}
	as[i].Transfers++
	as[i].AmountMinor += amount
	return as
}

// waitAgree waits until every report equals what transfers says.
func (w *world) waitAgree(reportsURL string) {
	w.t.Helper()
	want, err := w.expected()
	if err != nil {
		w.t.Fatal(err)
	}
	testkit.Eventually(w.t, 60*time.Second, func() error {
		for _, id := range w.accounts {
			var v reports.Volume
			q := "?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
			if err := call("GET", reportsURL+"/accounts/"+id+"/volume"+q, "", http.StatusOK, &v); err != nil {
				return err
			}
			if !reflect.DeepEqual(v.Account, want.accounts[id]) {
				return fmt.Errorf("account %s: reports has %+v, transfers %+v", id, v.Account, want.accounts[id])
			}
			if !reflect.DeepEqual(v.Sent, want.sent[id]) {
				return fmt.Errorf("account %s sent %+v, transfers says %+v", id, v.Sent, want.sent[id])
			}
		}
		var days struct{ Days []reports.Day }
		if err := call("GET", reportsURL+"/totals/daily?from=2026-01-01&to=2026-12-31", "", http.StatusOK, &days); err != nil {
			return err
		}
		if !reflect.DeepEqual(days.Days, want.days) {
			return fmt.Errorf("daily totals %+v, transfers says %+v", days.Days, want.days)
		}
		var failed []string
		for cursor := ""; ; {
			var page reports.FailedPage
			if err := call("GET", reportsURL+"/transfers/failed?limit=4&cursor="+url.QueryEscape(cursor), "", http.StatusOK, &page); err != nil {
				return err
			}
			for _, f := range page.Transfers {
				failed = append(failed, f.ID)
			}
			if cursor = page.NextCursor; cursor == "" {
				break
			}
		}
		if !slices.Equal(failed, want.failed) {
			return fmt.Errorf("failed transfers %v, transfers says %v", failed, want.failed)
		}
		return nil
	})
	// One report on demand asks transfers for what reports does not keep.
	var v reports.Volume
	w.call("GET", reportsURL+"/accounts/"+w.accounts[0]+"/volume?expand=holder", "", http.StatusOK, &v)
	var h transfers.Holder
	if err := json.Unmarshal(v.Holder, &h); err != nil || h.Name != want.accounts[w.accounts[0]].HolderName {
		w.t.Fatalf("expanded holder %s: %v", v.Holder, err)
	}
}

func (w *world) badRequests(reportsURL string) {
	for _, tc := range []struct{ name, path string }{
		{"bad from", "/accounts/x/volume?from=yesterday"},
		{"empty range", "/accounts/x/volume?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"},
		{"bad expand", "/accounts/x/volume?expand=everything"},
		{"bad day", "/totals/daily?from=yesterday"},
		{"reversed days", "/totals/daily?from=2026-02-01&to=2026-01-01"},
		{"bad currency", "/totals/daily?from=2026-01-01&to=2026-01-02&currency=euro"},
		{"bad limit", "/transfers/failed?limit=0"},
		{"bad cursor", "/transfers/failed?cursor=%21%21"},
		// A parameter that does not decode is not dropped for its default.
		{"undecodable to", "/accounts/x/volume?from=2026-01-01T00:00:00Z&to=%ZZ"},
		{"undecodable from", "/totals/daily?from=%ZZ"},
		{"undecodable limit", "/transfers/failed?limit=%ZZ"},
		// RFC 3339, but year 10000 in UTC, which no answer could spell.
		{"to past 9999", "/accounts/x/volume?from=2026-01-01T00:00:00Z&to=9999-12-31T23:59:59-01:00"},
		{"from before year 1", "/accounts/x/volume?from=0000-12-31T23:59:59Z"},
	} {
		w.t.Run(tc.name, func(t *testing.T) {
			var e struct{ Error string }
			if err := call("GET", reportsURL+tc.path, "", http.StatusBadRequest, &e); err != nil || e.Error == "" {
				t.Fatalf("%v %q", err, e.Error)
			}
		})
	}
	var e struct{ Error string }
	if err := call("GET", reportsURL+"/accounts/nope/volume?expand=holder", "", http.StatusNotFound, &e); err != nil {
		w.t.Fatal(err)
	}
}
