// Command reportsbench measures the payments reports service: how fast it
// ingests transfer events into SQLite (against a raw franz-go consumer of
// the same topic, in the same run), and how long its report queries take
// over a million transfers.
//
//	go run ./bench/reportsbench                      # 1M events, 3 rounds, 1M transfers queried
//	go run ./bench/reportsbench -events 200000 -rounds 1 -transfers 200000
//
// The broker runs in a child process (this same binary) so that its garbage
// and the service's do not mix. Ingest scenarios run interleaved, round
// after round, and the table reports medians.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/bench/internal/benchkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/examples/payments/reports"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	accounts   = 1000
	partitions = 8
	days       = 90
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	n := flag.Int("events", 1_000_000, "transfer events to ingest (half created, half settled)")
	rounds := flag.Int("rounds", 3, "rounds of every ingest scenario")
	transfers := flag.Int("transfers", 1_000_000, "transfers in the database the queries run on")
	queries := flag.Int("queries", 2000, "queries of each kind")
	serve := flag.Bool("serve-broker", false, "internal: run the broker child")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	if *serve {
		benchkit.Exit("broker", serveBroker(*n))
		return
	}
	benchkit.Exit("reportsbench", benchkit.Profiled(*cpuProfile, func(p *benchkit.Profile) error {
		p.Start()
		defer p.Stop()
		return run(*n, *rounds, *transfers, *queries)
	}))
}

// transferAt returns transfer i of a deterministic history: 1000 accounts,
// 90 days, one in ten failed.
func transferAt(i int, rng *rand.Rand) events.Transfer {
	from := rng.IntN(accounts)
	created := epoch.Add(time.Duration(rng.Int64N(int64(days * 24 * time.Hour)))).Truncate(time.Microsecond)
	settled := created.Add(time.Duration(rng.IntN(3600)) * time.Second)
	t := events.Transfer{
		ID: fmt.Sprintf("t%09d", i), From: fmt.Sprintf("a%04d", from), To: fmt.Sprintf("a%04d", (from+1+rng.IntN(accounts-1))%accounts),
		AmountMinor: 100 + rng.Int64N(1_000_000), Currency: []string{"EUR", "USD", "GBP"}[rng.IntN(3)],
		Status: events.StatusCompleted, CreatedAt: created, SettledAt: &settled,
	}
	if rng.IntN(10) == 0 {
		t.Status, t.Reason = events.StatusFailed, "declined"
	}
	return t
}

// serveBroker runs the embedded broker with n transfer events, prints
// "ready ADDR" and waits for stdin to close.
func serveBroker(n int) error {
	b, err := kafka.StartBroker(kafka.BrokerConfig{Partitions: partitions, Topics: []string{events.TopicTransfers, events.TopicAccounts}})
	if err != nil {
		return err
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(100000))
	if err != nil {
		return err
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	var produceErr error
	for i := range n / 2 {
		t := transferAt(i, rng)
		settled := t
		t.Status, t.SettledAt, t.Reason = events.StatusPending, nil, ""
		typ := map[string]string{events.StatusCompleted: events.TransferCompleted, events.StatusFailed: events.TransferFailed}[settled.Status]
		for j, e := range []struct {
			typ string
			t   events.Transfer
		}{{events.TransferCreated, t}, {typ, settled}} {
			data, _ := json.Marshal(e.t)
			ev := &eventkit.Event{ID: fmt.Sprintf("%s-%d", t.ID, j), Source: events.Source, Type: e.typ, Time: e.t.CreatedAt,
				ContentType: "application/json", Key: []byte(t.ID), Data: data, SpecVersion: eventkit.SpecVersion}
			cl.Produce(ctx, kafka.RecordOf(events.TopicTransfers, ev), func(_ *kgo.Record, err error) {
				if err != nil && produceErr == nil {
					produceErr = err
				}
			})
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	if produceErr != nil {
		return produceErr
	}
	fmt.Println("ready", b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func run(n, rounds, transfers, queries int) error {
	n -= n % 2
	fmt.Fprintf(os.Stderr, "seeding %d transfer events on %d partitions...\n", n, partitions)
	addr, stop, err := benchkit.StartChild("-serve-broker", "-events", strconv.Itoa(n))
	if err != nil {
		return err
	}
	defer stop()
	tmp, err := os.MkdirTemp("", "reportsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	scenarios := []struct {
		name string
		run  func(addr, group, dir string, n int) (time.Duration, error)
	}{
		{"raw franz-go group consumer, no store", raw},
		{"reports ingest, SQLite, idempotent", ingest},
	}
	rates := make([][]float64, len(scenarios))
	for r := range rounds {
		for i, s := range scenarios {
			dir := filepath.Join(tmp, fmt.Sprintf("r%d-%d", r, i))
			_ = os.MkdirAll(dir, 0o755)
			d, err := s.run(addr, fmt.Sprintf("bench-%d-%d", r, i), dir, n)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			rates[i] = append(rates[i], float64(n)/d.Seconds())
			fmt.Fprintf(os.Stderr, "round %d  %-40s %10.0f events/s\n", r+1, s.name, rates[i][r])
			_ = os.RemoveAll(dir)
		}
	}

	fmt.Fprintf(os.Stderr, "writing %d transfers for the queries...\n", transfers)
	lat, err := queryLatency(addr, filepath.Join(tmp, "q"), transfers, queries)
	if err != nil {
		return err
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "| ingest of %d transfer events\t| events/s (median of %d)\t| ratio\t| target\t|\n", n, rounds)
	fmt.Fprintf(w, "|---\t|---:\t|---:\t|---\t|\n")
	base := benchkit.Median(rates[0])
	for i, s := range scenarios {
		ratio := "—"
		target := ""
		if i > 0 {
			ratio, target = fmt.Sprintf("%.2f", benchkit.Median(rates[i])/base), "≥ 100000 events/s"
		}
		fmt.Fprintf(w, "| %s\t| %.0f\t| %s\t| %s\t|\n", s.name, benchkit.Median(rates[i]), ratio, target)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| query over %d transfers (HTTP, %d each)\t| p50\t| p99\t| target\t|\n", transfers, queries)
	fmt.Fprintf(w, "|---\t|---:\t|---:\t|---\t|\n")
	for _, q := range lat {
		fmt.Fprintf(w, "| %s\t| %v\t| %v\t| p99 < 50ms\t|\n", q.name, q.p50.Round(time.Microsecond), q.p99.Round(time.Microsecond))
	}
	return w.Flush()
}

// raw is the baseline: franz-go's own group consumer, fetching as much at a
// time as the agent does (8 MiB).
func raw(addr, group, _ string, n int) (time.Duration, error) {
	return benchkit.RawConsume(context.Background(), addr, events.TopicTransfers, group, n, kgo.FetchMaxBytes(8<<20))
}

// ingest runs the reports service on a fresh database until every event
// is written, and times it from the first write seen to the last.
func ingest(addr, group, dir string, n int) (time.Duration, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := reports.New(ctx, reports.Config{
		Brokers: []string{addr}, DBPath: filepath.Join(dir, "reports.db"), TransfersURL: "http://127.0.0.1:1",
		Group: group, AgentOpts: []consumer.Opt{consumer.ControlPlane(false), consumer.ReplayTopic(false)},
	})
	if err != nil {
		return 0, err
	}
	errc := make(chan error, 1)
	var start time.Time
	go func() { errc <- svc.Run(ctx) }()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Minute)
	for svc.Stats().Written < int64(n) {
		select {
		case err := <-errc:
			return 0, fmt.Errorf("Run returned early: %v", err)
		case <-deadline:
			return 0, fmt.Errorf("wrote %d of %d events in 10 minutes", svc.Stats().Written, n)
		case <-tick.C:
		}
		if start.IsZero() && svc.Stats().Written > 0 {
			start = time.Now()
		}
	}
	d := time.Since(start)
	cancel()
	return d, <-errc
}

type latency struct {
	name     string
	p50, p99 time.Duration
}

// queryLatency fills a reports database with transfers directly (the
// ingest is measured above), then times each report over HTTP.
func queryLatency(addr, dir string, transfers, queries int) ([]latency, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "reports.db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// New migrates the schema; the rows then go in through the database.
	svc, err := reports.New(ctx, reports.Config{
		Brokers: []string{addr}, DBPath: path, TransfersURL: "http://127.0.0.1:1", Group: "bench-queries",
		// The group reads nothing: the queries run on rows written directly.
		AgentOpts: []consumer.Opt{consumer.StartAt(kgo.NewOffset().AtEnd()), consumer.ControlPlane(false), consumer.ReplayTopic(false)},
	})
	if err != nil {
		return nil, err
	}
	if err := fill(ctx, path, transfers); err != nil {
		return nil, err
	}
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(ctx) }()
	defer func() { cancel(); <-errc }()

	rng := rand.New(rand.NewPCG(3, 4))
	cursors := []string{""}
	kinds := []struct {
		name string
		url  func() string
		seen func(body []byte)
	}{
		{"per-account volume, 30-day range", func() string {
			from := epoch.Add(time.Duration(rng.IntN(days-30)) * 24 * time.Hour)
			return fmt.Sprintf("/accounts/a%04d/volume?from=%s&to=%s", rng.IntN(accounts), from.Format(time.RFC3339), from.Add(30*24*time.Hour).Format(time.RFC3339))
		}, nil},
		{"daily totals by currency, 90 days", func() string { return "/totals/daily?from=2026-01-01&to=2026-03-31" }, nil},
		{"failed transfers, page of 50 at any depth", func() string {
			return "/transfers/failed?limit=50&cursor=" + cursors[rng.IntN(len(cursors))]
		}, func(body []byte) {
			var p reports.FailedPage
			if json.Unmarshal(body, &p) == nil && p.NextCursor != "" && len(cursors) < 10000 {
				cursors = append(cursors, p.NextCursor)
			}
		}},
	}
	var out []latency
	for _, k := range kinds {
		ds := make([]time.Duration, 0, queries)
		for range queries {
			t0 := time.Now()
			resp, err := http.Get(svc.URL() + k.url())
			if err != nil {
				return nil, err
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			ds = append(ds, time.Since(t0))
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("%s: %s: %s", k.name, resp.Status, body)
			}
			if k.seen != nil {
				k.seen(body)
			}
		}
		slices.Sort(ds)
		out = append(out, latency{k.name, ds[len(ds)/2], ds[len(ds)*99/100]})
	}
	return out, nil
}

// fill writes transfers rows and their daily totals as ingest would.
func fill(ctx context.Context, path string, n int) error {
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		return err
	}
	defer db.Close()
	rng := rand.New(rand.NewPCG(5, 6))
	const batch = 10000
	for i := 0; i < n; i += batch {
		tx, err := db.BeginTx(ctx)
		if err != nil {
			return err
		}
		ins, err := tx.PrepareContext(ctx, `INSERT INTO transfers (id, account, counterparty, amount_minor, currency, status, created_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		for j := i; j < min(i+batch, n); j++ {
			t := transferAt(j, rng)
			if _, err := ins.ExecContext(ctx, t.ID, t.From, t.To, t.AmountMinor, t.Currency, t.Status, t.CreatedAt.UnixMicro(), sql.NullInt64{Int64: t.SettledAt.UnixMicro(), Valid: true}); err != nil {
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	_, err = db.Writer().ExecContext(ctx, `INSERT INTO daily_totals (day, currency, transfers, amount_minor)
		SELECT strftime('%Y-%m-%d', completed_at / 1000000, 'unixepoch'), currency, count(*), sum(amount_minor)
		FROM transfers WHERE status = 'completed' GROUP BY 1, 2`)
	return err
}
