// Command storebench measures the consumer agent with the idempotency
// middleware on each store against the agent without it, in the same run,
// and prints a table of events/s and ratios.
//
//	go run ./bench/storebench                     # 1M events of 200 B, 5 rounds
//	go run ./bench/storebench -records 200000 -rounds 3
//
// Every scenario runs the same agent (8 partitions, a no-op handler,
// Unordered with Concurrency 1024); only the middleware differs. The broker
// runs in a child process (this same binary) so that its garbage and the
// consumer's do not mix; each round gives every store a fresh, empty
// database; scenarios run interleaved, round after round, and the table
// reports medians, because a 2-core machine is noisy. PostgreSQL is a
// throwaway cluster started from the server binaries on the machine (see
// internal/pgtest); without them its row is left out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/bench/internal/benchkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/pgtest"
	"github.com/eventkit/eventkit/postgres"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	topic      = "bench.store"
	partitions = 8
	keys       = 10_000
)

func main() {
	records := flag.Int("records", 1_000_000, "events in the topic")
	size := flag.Int("size", 200, "event value size in bytes")
	rounds := flag.Int("rounds", 5, "rounds of every scenario")
	serve := flag.Bool("serve-broker", false, "internal: run the broker child")
	only := flag.String("only", "", "comma-separated parts of scenario names to run (default all)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured rounds to this file")
	flag.Parse()
	if *serve {
		benchkit.Exit("broker", benchkit.ServeBroker(map[string]int32{topic: partitions}, *records, *size, keys))
		return
	}
	benchkit.Exit("storebench", benchkit.Profiled(*cpuProfile, func(p *benchkit.Profile) error {
		return run(*records, *size, *rounds, *only, p)
	}))
}

func startBroker(records, size int) (addr string, stop func(), err error) {
	return benchkit.StartChild("-serve-broker", "-records", strconv.Itoa(records), "-size", strconv.Itoa(size))
}

// store opens a fresh, empty store for one run and returns what closes it;
// a nil store means no middleware.
type store func(ctx context.Context) (idempotency.Store, func(), error)

type scenario struct {
	name, target string
	open         store
	// absolute is a target in events/s; otherwise the target is a ratio
	// to the base.
	absolute float64
	ratio    float64
}

const baseName = "no store"

func run(records, size, rounds int, only string, prof *benchkit.Profile) error {
	fmt.Fprintf(os.Stderr, "seeding %d events of %d B into %s (%d partitions)...\n", records, size, topic, partitions)
	addr, stop, err := startBroker(records, size)
	if err != nil {
		return err
	}
	defer stop()
	ctx := context.Background()

	scenarios := []scenario{
		{name: baseName, open: func(context.Context) (idempotency.Store, func(), error) { return nil, func() {}, nil }},
		{name: "memory", target: "≥ 0.5 of no store", ratio: 0.5, open: func(context.Context) (idempotency.Store, func(), error) {
			return idempotency.NewMemoryStore(), func() {}, nil
		}},
		{name: "SQLite", target: "≥ 100000 events/s", absolute: 100_000, open: openSQLite("")},
		// A database that holds the idempotency table alone does better
		// with larger pages: keys grow at the end of the table, and a
		// commit writes fewer, fuller pages to the WAL.
		{name: "SQLite, 64 KiB pages", target: "≥ 100000 events/s", absolute: 100_000, open: openSQLite("?_pragma=page_size(65536)")},
	}
	pg, err := pgtest.Start(ctx)
	switch {
	case err == nil:
		defer pg.Stop()
		scenarios = append(scenarios, scenario{name: "PostgreSQL", target: "reported", open: openPostgres(pg)})
	case errors.Is(err, pgtest.ErrNotInstalled):
		fmt.Fprintln(os.Stderr, "PostgreSQL not installed: its row is left out")
	default:
		return err
	}
	if only != "" {
		want := strings.Split(only, ",")
		scenarios = slices.DeleteFunc(scenarios, func(s scenario) bool {
			return !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(s.name, w) })
		})
	}

	// One unmeasured pass warms the broker's caches and the heaps.
	for i, s := range scenarios {
		if _, err := measure(ctx, s, addr, fmt.Sprintf("bench-warmup-%d", i), records); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	prof.Start()
	defer prof.Stop()
	rates := make([][]float64, len(scenarios))
	for r := range rounds {
		for i, s := range scenarios {
			d, err := measure(ctx, s, addr, fmt.Sprintf("bench-%d-%d", r, i), records)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			rate := float64(records) / d.Seconds()
			rates[i] = append(rates[i], rate)
			fmt.Fprintf(os.Stderr, "round %d  %-12s %10.0f events/s\n", r+1, s.name, rate)
		}
	}

	base := 0.0
	for i, s := range scenarios {
		if s.name == baseName {
			base = benchkit.Median(rates[i])
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "| store\t| events/s (median of %d)\t| ratio to no store\t| target\t| met\t|\n", rounds)
	fmt.Fprintf(w, "|---\t|---:\t|---:\t|---\t|---\t|\n")
	for i, s := range scenarios {
		m := benchkit.Median(rates[i])
		ratio, met := "—", "—"
		if base > 0 {
			ratio = fmt.Sprintf("%.2f", m/base)
		}
		switch {
		case s.absolute > 0:
			met = yes(m >= s.absolute)
		case s.ratio > 0 && base > 0:
			met = yes(m/base >= s.ratio)
		}
		fmt.Fprintf(w, "| %s\t| %.0f\t| %s\t| %s\t| %s\t|\n", s.name, m, ratio, s.target, met)
	}
	return w.Flush()
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// openSQLite opens a fresh database file with params (a URI query, or
// nothing) added to its name.
func openSQLite(params string) store {
	return func(ctx context.Context) (idempotency.Store, func(), error) {
		dir, err := os.MkdirTemp("", "eventkit-storebench-")
		if err != nil {
			return nil, nil, err
		}
		db, err := sqlite.Open(ctx, "file:"+filepath.Join(dir, "eventkit.db")+params)
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, err
		}
		s := sqlite.NewIdempotencyStore(db)
		return s, func() { s.Close(); db.Close(); os.RemoveAll(dir) }, nil
	}
}

func openPostgres(pg *pgtest.Cluster) store {
	return func(ctx context.Context) (idempotency.Store, func(), error) {
		dsn, err := pg.CreateDatabase(ctx)
		if err != nil {
			return nil, nil, err
		}
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, nil, err
		}
		s := postgres.NewIdempotencyStore(db)
		return s, func() { s.Close(); db.Close() }, nil
	}
}

// measure consumes every event of the topic with a fresh group and a fresh
// store, and returns the time from the first event to the last one
// handled.
func measure(ctx context.Context, s scenario, addr, group string, n int) (time.Duration, error) {
	st, closeStore, err := s.open(ctx)
	if err != nil {
		return 0, err
	}
	defer closeStore()
	var h eventkit.Handler = eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error { return nil })
	if st != nil {
		h = eventkit.Chain(h, idempotency.Middleware(st))
	}
	return benchkit.TimeAgent(ctx, n, 10*time.Minute, h,
		consumer.Brokers(addr), consumer.Group(group), consumer.Topics(topic),
		consumer.ClientOpts(kgo.FetchMaxBytes(8<<20)),
		// A store's group-commit batch holds what is in flight, so many
		// events in flight make its transactions few and large.
		consumer.Ordering(consumer.Unordered), consumer.Concurrency(1024))
}
