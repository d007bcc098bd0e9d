// Command lookbackbench measures lookback's archive: the ingest rate from
// Kafka into SQLite and PostgreSQL against a raw franz-go group consumer on
// the same broker in the same run, the stores' own append rate without
// Kafka, and query latency by key, by id and by time range over a large
// archive, and prints a markdown table.
//
//	go run ./bench/lookbackbench                                  # 500k records of 200 B, 3 rounds, 10M archived
//	go run ./bench/lookbackbench -records 200000 -archive-events 1000000
//	go run ./bench/lookbackbench -only ingest                     # skip the query part
//	go run ./bench/lookbackbench -only query -store PostgreSQL    # one store only
//
// The broker runs in a child process (this same binary) so that its garbage
// and the ingest's do not mix. Ingest scenarios run interleaved, round after
// round, and the table reports medians, because a 2-core machine is noisy.
// The query archive is built by bulk Append, not through Kafka, to keep it
// quick. PostgreSQL is a throwaway cluster (internal/pgtest) with fsync off;
// its rows are left out where no server is installed.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/bench/internal/benchkit"
	"github.com/eventkit/eventkit/internal/pgtest"
	"github.com/eventkit/eventkit/internal/testkit/seed"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/postgres"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	topic      = "bench.events" // 8 partitions
	partitions = 8
	keys       = 10_000
)

func main() {
	records := flag.Int("records", 500_000, "records in the topic that every ingest round consumes")
	size := flag.Int("size", 200, "record value size in bytes")
	rounds := flag.Int("rounds", 3, "rounds of every ingest scenario")
	archived := flag.Int("archive-events", 10_000_000, "events in the archive that queries run over")
	queries := flag.Int("queries", 2000, "queries of each kind")
	only := flag.String("only", "", `"ingest" or "query" to run one part only`)
	storeName := flag.String("store", "", `"SQLite" or "PostgreSQL" to measure one store only`)
	dir := flag.String("dir", "", "directory for the SQLite files (default a temporary one)")
	serve := flag.Bool("serve-broker", false, "internal: run the broker child")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured ingest rounds to this file")
	flag.Parse()
	if *serve {
		benchkit.Exit("broker", serveBroker(*records, *size))
		return
	}
	benchkit.Exit("lookbackbench", benchkit.Profiled(*cpuProfile, func(p *benchkit.Profile) error {
		return run(*records, *size, *rounds, *archived, *queries, *only, *storeName, *dir, p)
	}))
}

func run(records, size, rounds, archived, queries int, only, storeName, dir string, prof *benchkit.Profile) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "lookbackbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	ctx := context.Background()
	pg, err := pgtest.Start(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "no PostgreSQL, its rows are left out:", err)
		pg = nil
	} else {
		defer pg.Stop()
	}
	stores := []store{{name: "SQLite", open: openSQLite(dir)}}
	if pg != nil {
		stores = append(stores, store{name: "PostgreSQL", open: openPostgres(pg)})
	}
	if storeName != "" {
		stores = slices.DeleteFunc(stores, func(s store) bool { return !strings.EqualFold(s.name, storeName) })
		if len(stores) == 0 {
			return fmt.Errorf("-store %q: want SQLite or PostgreSQL (and PostgreSQL installed)", storeName)
		}
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	defer w.Flush()
	if only == "" || only == "ingest" {
		if err := ingestPart(ctx, w, stores, records, size, rounds, prof); err != nil {
			return err
		}
	}
	if only == "" || only == "query" {
		if err := queryPart(ctx, w, stores, archived, size, queries); err != nil {
			return err
		}
	}
	return nil
}

// store opens a fresh, empty archive.
type store struct {
	name string
	open func(ctx context.Context) (lookback.Archive, func(), error)
}

func openSQLite(dir string) func(context.Context) (lookback.Archive, func(), error) {
	n := 0
	return func(ctx context.Context) (lookback.Archive, func(), error) {
		n++
		path := filepath.Join(dir, fmt.Sprintf("archive-%d.db", n))
		db, err := sqlite.Open(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		return sqlite.NewArchive(db), func() {
			db.Close()
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(path + suffix)
			}
		}, nil
	}
}

func openPostgres(c *pgtest.Cluster) func(context.Context) (lookback.Archive, func(), error) {
	return func(ctx context.Context) (lookback.Archive, func(), error) {
		dsn, err := c.CreateDatabase(ctx)
		if err != nil {
			return nil, nil, err
		}
		db, err := postgres.Open(ctx, dsn)
		if err != nil {
			return nil, nil, err
		}
		return postgres.NewArchive(db), db.Close, nil
	}
}

// serveBroker runs the embedded broker with the topic filled, prints
// "ready ADDR" and waits for stdin to close.
func serveBroker(records, size int) error {
	b, err := kafka.StartBroker(kafka.BrokerConfig{})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.CreateTopic(topic, partitions); err != nil {
		return err
	}
	if err := seed.Events(b.Addr(), topic, records, size, keys); err != nil {
		return err
	}
	fmt.Println("ready", b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func startBroker(records, size int) (addr string, stop func(), err error) {
	return benchkit.StartChild("-serve-broker", "-records", strconv.Itoa(records), "-size", strconv.Itoa(size))
}

type scenario struct {
	name, target, base string
	// run consumes or appends n records and returns the time they took.
	run func(ctx context.Context, addr, group string, n int) (time.Duration, error)
}

const rawName = "raw franz-go group consumer"

func ingestPart(ctx context.Context, w io.Writer, stores []store, records, size, rounds int, prof *benchkit.Profile) error {
	fmt.Fprintf(os.Stderr, "seeding %d records of %d B into %s (%d partitions)...\n", records, size, topic, partitions)
	addr, stop, err := startBroker(records, size)
	if err != nil {
		return err
	}
	defer stop()
	scenarios := []scenario{{name: rawName, run: raw}}
	targets := map[string]string{"SQLite": "≥ 250000/s", "PostgreSQL": "≥ 150000/s"}
	for _, s := range stores {
		scenarios = append(scenarios,
			scenario{name: "ingest into " + s.name, target: targets[s.name], base: rawName, run: ingest(s)},
			scenario{name: s.name + " Append of 4096-record batches, no Kafka", base: rawName, run: bulk(s, size)},
		)
	}
	rates := make([][]float64, len(scenarios))
	prof.Start()
	for r := range rounds {
		for i, s := range scenarios {
			d, err := s.run(ctx, addr, fmt.Sprintf("bench-%d-%d", r, i), records)
			if err != nil {
				prof.Stop()
				return fmt.Errorf("%s: %w", s.name, err)
			}
			rate := float64(records) / d.Seconds()
			rates[i] = append(rates[i], rate)
			fmt.Fprintf(os.Stderr, "round %d  %-52s %10.0f records/s\n", r+1, s.name, rate)
		}
	}
	prof.Stop()
	medians := map[string]float64{}
	for i, s := range scenarios {
		medians[s.name] = benchkit.Median(rates[i])
	}
	fmt.Fprintf(w, "| ingest, %d records of %d B\t| records/s (median of %d)\t| ratio\t| base\t| target\t|\n", records, size, rounds)
	fmt.Fprintf(w, "|---\t|---:\t|---:\t|---\t|---\t|\n")
	for _, s := range scenarios {
		ratio := "—"
		if base := medians[s.base]; base > 0 {
			ratio = fmt.Sprintf("%.3f", medians[s.name]/base)
		}
		fmt.Fprintf(w, "| %s\t| %.0f\t| %s\t| %s\t| %s\t|\n", s.name, medians[s.name], ratio, s.base, s.target)
	}
	fmt.Fprintln(w)
	return nil
}

// raw is the baseline: franz-go's own group consumer.
func raw(ctx context.Context, addr, group string, n int) (time.Duration, error) {
	return benchkit.RawConsume(ctx, addr, topic, group, n, kgo.FetchMaxBytes(8<<20))
}

// counting times an archive from the start of its first Append to the end
// of the Append that brings it to n records.
type counting struct {
	lookback.Archive
	n          int64
	seen       atomic.Int64
	start, end atomic.Int64
	done       chan struct{}
}

func (c *counting) Append(ctx context.Context, rs []lookback.Record, ls []lookback.ReplayLink) error {
	c.start.CompareAndSwap(0, time.Now().UnixNano())
	if err := c.Archive.Append(ctx, rs, ls); err != nil {
		return err
	}
	if c.seen.Add(int64(len(rs))) == c.n {
		c.end.Store(time.Now().UnixNano())
		close(c.done)
	}
	return nil
}

// ingest runs lookback's ingest into a fresh archive of s until it has
// archived every record.
func ingest(s store) func(ctx context.Context, addr, group string, n int) (time.Duration, error) {
	return func(ctx context.Context, addr, group string, n int) (time.Duration, error) {
		a, closeStore, err := s.open(ctx)
		if err != nil {
			return 0, err
		}
		defer closeStore()
		c := &counting{Archive: a, n: int64(n), done: make(chan struct{})}
		in, err := lookback.NewIngest(c, lookback.Brokers(addr), lookback.Group(group), lookback.Topics("^"+topic+"$"),
			lookback.Retention(0), lookback.Registerer(prometheus.NewRegistry()))
		if err != nil {
			return 0, err
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		errc := make(chan error, 1)
		go func() { errc <- in.Run(ctx) }()
		select {
		case <-c.done:
		case err := <-errc:
			return 0, fmt.Errorf("Run returned early: %v", err)
		case <-time.After(10 * time.Minute):
			return 0, fmt.Errorf("archived %d of %d records in 10 minutes", c.seen.Load(), n)
		}
		cancel()
		if err := <-errc; err != nil {
			return 0, err
		}
		return time.Duration(c.end.Load() - c.start.Load()), nil
	}
}

// bulk appends n generated records to a fresh archive of s, without Kafka:
// what the store itself can take.
func bulk(s store, size int) func(ctx context.Context, addr, group string, n int) (time.Duration, error) {
	return func(ctx context.Context, _, _ string, n int) (time.Duration, error) {
		a, closeStore, err := s.open(ctx)
		if err != nil {
			return 0, err
		}
		defer closeStore()
		g := newGen(size, time.Now())
		start := time.Now()
		if err := g.fill(ctx, a, n, nil); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}
}

// gen makes records like the ones seed writes: CloudEvents with five
// binding headers, keyed over 10k keys, 100 µs apart, over 8 partitions.
type gen struct {
	values [][]byte
	base   time.Time
	next   int
}

const spacing = 100 * time.Microsecond

func newGen(size int, base time.Time) *gen {
	rng := rand.New(rand.NewPCG(1, 2))
	g := &gen{values: make([][]byte, 1024), base: base}
	for i := range g.values {
		g.values[i] = make([]byte, size)
		for j := range g.values[i] {
			g.values[i][j] = 'a' + byte(rng.IntN(26))
		}
	}
	return g
}

func (g *gen) record(i int) lookback.Record {
	id := "e-" + strconv.Itoa(i)
	hs := []eventkit.Header{
		{Key: eventkit.HeaderID, Value: []byte(id)}, {Key: eventkit.HeaderSource, Value: []byte("/seed")},
		{Key: eventkit.HeaderType, Value: []byte("bench.event")}, {Key: eventkit.HeaderSpecVersion, Value: []byte("1.0")},
		{Key: eventkit.HeaderContentType, Value: []byte("text/plain")},
	}
	return lookback.NewRecord(topic, int32(i%partitions), int64(i/partitions), g.base.Add(time.Duration(i)*spacing),
		[]byte("k"+strconv.Itoa(i%keys)), g.values[i%len(g.values)], hs)
}

// fill appends n more records in batches of 4096, reporting progress.
func (g *gen) fill(ctx context.Context, a lookback.Archive, n int, progress func(done int)) error {
	const batch = 4096
	rs := make([]lookback.Record, 0, batch)
	for done := 0; done < n; {
		rs = rs[:0]
		for range min(batch, n-done) {
			rs = append(rs, g.record(g.next))
			g.next++
		}
		if err := a.Append(ctx, rs, nil); err != nil {
			return err
		}
		done += len(rs)
		if progress != nil {
			progress(done)
		}
	}
	return nil
}

func queryPart(ctx context.Context, w io.Writer, stores []store, archived, size, queries int) error {
	fmt.Fprintf(w, "| query over %d archived events, page of 100\t| p50\t| p99\t| target\t|\n", archived)
	fmt.Fprintf(w, "|---\t|---:\t|---:\t|---\t|\n")
	for _, s := range stores {
		a, closeStore, err := s.open(ctx)
		if err != nil {
			return err
		}
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		g := newGen(size, base)
		start := time.Now()
		err = g.fill(ctx, a, archived, func(done int) {
			if done%(1<<20) < 4096 || done == archived {
				el := time.Since(start)
				fmt.Fprintf(os.Stderr, "%s: %d of %d archived in %v (%.0f/s)\n", s.name, done, archived, el.Round(time.Second), float64(done)/el.Seconds())
			}
		})
		if err != nil {
			closeStore()
			return err
		}
		rng := rand.New(rand.NewPCG(3, 4))
		span := time.Duration(archived) * spacing
		kinds := []struct {
			name string
			q    func() lookback.Query
		}{
			{"by key (newest 100 of ~" + strconv.Itoa(max(archived/keys, 1)) + ")", func() lookback.Query {
				return lookback.Query{Filter: lookback.Filter{Key: []byte("k" + strconv.Itoa(rng.IntN(keys)))}}
			}},
			{"by id", func() lookback.Query {
				return lookback.Query{Filter: lookback.Filter{ID: "e-" + strconv.Itoa(rng.IntN(archived))}}
			}},
			{"by time range (1 s window, oldest first)", func() lookback.Query {
				from := base.Add(time.Duration(rng.Int64N(int64(span))))
				return lookback.Query{Order: lookback.Asc, Filter: lookback.Filter{From: from, To: from.Add(time.Second)}}
			}},
		}
		for _, k := range kinds {
			lat := make([]time.Duration, 0, queries)
			for i := range queries + queries/10 {
				q := k.q()
				t0 := time.Now()
				p, err := a.Query(ctx, q)
				d := time.Since(t0)
				if err != nil {
					closeStore()
					return fmt.Errorf("%s %s: %w", s.name, k.name, err)
				}
				if len(p.Records) == 0 {
					closeStore()
					return fmt.Errorf("%s %s: no records for %+v", s.name, k.name, q.Filter)
				}
				if i >= queries/10 { // the first tenth warms the caches
					lat = append(lat, d)
				}
			}
			slices.Sort(lat)
			p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
			fmt.Fprintf(os.Stderr, "%s %s: p50 %v p99 %v\n", s.name, k.name, p50, p99)
			fmt.Fprintf(w, "| %s %s\t| %.2f ms\t| %.2f ms\t| p99 < 10 ms\t|\n", s.name, k.name, ms(p50), ms(p99))
		}
		closeStore()
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
