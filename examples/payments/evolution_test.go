package payments_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/examples/payments"
	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/examples/payments/reports"
	"github.com/eventkit/eventkit/examples/payments/transfers"
	"github.com/eventkit/eventkit/internal/pgtest"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/prometheus/client_golang/prometheus"
)

// TestEvolutionBackfill is the README's "Evolving event C" walk-through:
// reports runs at schema 1 while transfers publishes account.updated in v1,
// then in v2; lookback archives all of it. Reports restarts at schema 2,
// whose migration adds accounts.language, NULL for every existing account;
// a replay of the archived account.updated to the reports group, in
// reprocess mode, fills it for every account with what transfers says,
// changes no other column, and reaches no one but reports.
func TestEvolutionBackfill(t *testing.T) { testEvolution(t, "") }

// TestEvolutionBackfillPostgres is the same with reports on PostgreSQL; it
// skips where no PostgreSQL server is installed.
func TestEvolutionBackfillPostgres(t *testing.T) { testEvolution(t, pgtest.DSN(t)) }

func testEvolution(t *testing.T, pgDSN string) {
	checkLeaks(t)
	ctx := t.Context()
	b := testkit.Broker(t, 3)
	dir := t.TempDir()
	cfg := payments.Config{
		Brokers:          []string{b.Addr()},
		DataDir:          dir,
		ReportsPostgres:  pgDSN,
		AccountVersion:   1,
		ReportsMigrateTo: 1, // reports as it was before it kept the language
		ClientOpts:       testkit.ClientOpts(),
		AgentOpts:        testkit.AgentTimings(t),
		Logger:           testkit.Logger(t),
	}
	p := startPlatform(t, cfg)
	if got := p.Reports.Schema(); got != 1 {
		t.Fatalf("reports at schema %d, want 1", got)
	}

	// Lookback archives every topic; started after transfers created its
	// topics so that it subscribes to them at once.
	ldb, err := sqlite.Open(ctx, filepath.Join(dir, "lookback.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ldb.Close() })
	archive, jobs := sqlite.NewArchive(ldb), sqlite.NewJobStore(ldb)
	in, err := lookback.NewIngest(archive,
		lookback.Brokers(b.Addr()),
		lookback.Logger(testkit.Logger(t)),
		lookback.Registerer(prometheus.NewRegistry()),
		lookback.AgentOpts(testkit.QuickAgent(t)...),
	)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Go(t, in.Run)

	// account.updated v1: accounts opened and changed, one with no
	// language at all.
	w := &world{t: t, transfersURL: p.TransfersURL()}
	published := 0 // account.updated events, one per call below
	open := func(name, country, lang string) {
		body := fmt.Sprintf(`{"holder": {"name": %q, "address": {"country": %q}}, "preferences": {"language": %q}}`, name, country, lang)
		var a transfers.Account
		w.call("POST", w.transfersURL+"/accounts", body, http.StatusCreated, &a)
		w.accounts = append(w.accounts, a.ID)
		published++
	}
	patch := func(i int, body string) { w.patch(i, body); published++ }
	open("Ada Lovelace", "GB", "en")
	open("Grace Hopper", "US", "en")
	open("Emmy Noether", "DE", "de")
	open("Marie Curie", "FR", "")
	patch(0, `{"preferences": {"language": "fr"}}`)
	patch(2, `{"status": "frozen"}`)
	w.traffic(6) // transfers too, so that the backfill is seen to leave them be

	// account.updated v2, without a restart of transfers.
	if err := p.Transfers.SetAccountVersion(2); err != nil {
		t.Fatal(err)
	}
	patch(0, `{"holder": {"name": "Ada King"}, "preferences": {"language": "de"}, "kyc": {"risk_tier": "low"}}`)
	patch(1, `{"holder": {"address": {"country": "CA"}}}`)
	open("Lise Meitner", "AT", "de")
	patch(4, `{"preferences": {"language": "sv"}}`)

	// Reports at schema 1 has every account at its newest version, and no
	// language.
	waitAccounts(t, w, p.ReportsURL(), func(a *reports.Account) { a.Language = nil })
	accountsOnly := lookback.Filter{Topic: events.TopicAccounts, Type: events.AccountUpdated}
	testkit.Eventually(t, 30*time.Second, func() error {
		n, err := archive.Count(ctx, accountsOnly)
		if err == nil && n != int64(published) {
			err = fmt.Errorf("%d account.updated archived, want %d", n, published)
		}
		return err
	})
	for _, schema := range []string{events.AccountSchemaV1, events.AccountSchemaV2} {
		f := accountsOnly
		f.Headers = []lookback.HeaderMatch{{Name: events.HeaderDataSchema, Value: []byte(schema)}}
		if n, err := archive.Count(ctx, f); err != nil || n == 0 {
			t.Fatalf("%d archived in %s: %v", n, schema, err)
		}
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}

	// Reports at schema 2: the migration adds the column, empty so far.
	cfg.AccountVersion, cfg.ReportsMigrateTo = 2, 0
	p = startPlatform(t, cfg)
	w.transfersURL = p.TransfersURL()
	if got := p.Reports.Schema(); got < 2 {
		t.Fatalf("reports at schema %d, want 2 or later", got)
	}
	waitAccounts(t, w, p.ReportsURL(), func(a *reports.Account) { a.Language = nil })

	// The backfill: every archived account.updated, to reports only.
	cl := testkit.Client(t, b.Addr())
	sources := map[string]map[int32]int64{}
	for _, topic := range []string{events.TopicAccounts, events.TopicTransfers} {
		sources[topic] = testkit.EndOffsets(t, cl, topic)
	}
	runner := replay.NewRunner(cl, archive, jobs, replay.Logger(testkit.Logger(t)))
	testkit.Go(t, runner.Run)
	<-runner.Ready()
	job, err := runner.Start(ctx, replay.Spec{
		Filter: accountsOnly,
		Target: replay.Target{Group: reports.DefaultGroup},
		Mode:   eventkit.Reprocess,
	}, replay.Actor{Name: "evolution-test", Role: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if job, err = runner.Wait(waitCtx, job.ID); err != nil {
		t.Fatal(err)
	}
	if job.Status != replay.Done || job.Sent != int64(published) || job.Failed != 0 {
		t.Fatalf("replay job %+v, want done with %d sent", job, published)
	}

	// Every account has its language, as transfers has it; the rest of
	// each row is as it was.
	waitAccounts(t, w, p.ReportsURL(), nil)

	// Only reports' replay topic got the copies: the source topics, which
	// transfers and every other group read, did not grow, and lookback
	// archived no account.updated twice.
	for topic, want := range sources {
		if got := testkit.EndOffsets(t, cl, topic); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s end offsets %v after the replay, want %v", topic, got, want)
		}
	}
	if got := len(testkit.ReadAll(t, b.Addr(), eventkit.ReplayTopic(reports.DefaultGroup))); got != published {
		t.Fatalf("%d records on reports' replay topic, want %d", got, published)
	}
	if n, err := archive.Count(ctx, accountsOnly); err != nil || n != int64(published) {
		t.Fatalf("%d account.updated archived after the replay, want %d: %v", n, published, err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
}

// waitAccounts waits until reports has every account of w as transfers'
// GET /accounts/{id} has it, after edit (which drops what the schema of the
// moment does not keep yet).
func waitAccounts(t *testing.T, w *world, reportsURL string, edit func(*reports.Account)) {
	t.Helper()
	want := map[string]*reports.Account{}
	for _, id := range w.accounts {
		var a transfers.Account
		w.call("GET", w.transfersURL+"/accounts/"+id, "", http.StatusOK, &a)
		r := &reports.Account{ID: a.ID, HolderName: a.Holder.Name, Country: a.Holder.Address.Country,
			Status: a.Status, Language: &a.Preferences.Language, Version: a.Version, UpdatedAt: a.UpdatedAt}
		if edit != nil {
			edit(r)
		}
		want[id] = r
	}
	testkit.Eventually(t, 30*time.Second, func() error {
		for _, id := range w.accounts {
			var v reports.Volume
			if err := call("GET", reportsURL+"/accounts/"+id+"/volume?from=2000-01-01T00:00:00Z", "", http.StatusOK, &v); err != nil {
				return err
			}
			if !reflect.DeepEqual(v.Account, want[id]) {
				return fmt.Errorf("account %s: reports has %s, transfers %s", id, show(v.Account), show(want[id]))
			}
		}
		return nil
	})
}

func show(a *reports.Account) string {
	if a == nil {
		return "nothing"
	}
	lang := "NULL"
	if a.Language != nil {
		lang = fmt.Sprintf("%q", *a.Language)
	}
	return fmt.Sprintf("%s v%d %s/%s/%s language %s", a.ID, a.Version, a.HolderName, a.Country, a.Status, lang)
}
