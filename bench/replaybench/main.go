// Command replaybench measures archive replay: a replay job from the
// SQLite and the PostgreSQL archive to a topic, without a rate limit,
// against raw franz-go producing the same records to the same broker in
// the same run, and prints a markdown table.
//
//	go run ./bench/replaybench                       # 1M events of 200 B, 3 rounds
//	go run ./bench/replaybench -records 200000 -rounds 3
//	go run ./bench/replaybench -only SQLite          # the base and the SQLite rows
//
// The broker runs in a child process (this same binary) so that its garbage
// and the replay's do not mix; every run writes to a fresh 8-partition
// topic, deleted afterwards, so that the broker's memory stays flat.
// Scenarios run interleaved, round after round, and the table reports
// medians, because a 2-core machine is noisy. The archives are filled by
// bulk Append, then settled (checkpointed; PostgreSQL also vacuumed and
// analysed), so that no background work of a fill runs during the rounds.
// PostgreSQL is a throwaway cluster (internal/pgtest) with
// fsync off; its row is left out where no server is installed.
package main

import (
	"context"
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
	"github.com/eventkit/eventkit/internal/pgtest"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/postgres"
	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const partitions = 8

func main() {
	records := flag.Int("records", 1_000_000, "archived events to replay")
	size := flag.Int("size", 200, "event value size in bytes")
	rounds := flag.Int("rounds", 3, "rounds of every scenario")
	flag.IntVar(&readers, "readers", 0, "archive queries a job runs at once (0: the Runner's default)")
	serve := flag.Bool("serve-broker", false, "internal: run the broker child")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured rounds to this file")
	flag.StringVar(&only, "only", "", "measure only the scenarios whose name holds this text, and the base")
	flag.Parse()
	if *serve {
		benchkit.Exit("broker", serveBroker())
		return
	}
	benchkit.Exit("replaybench", benchkit.Profiled(*cpuProfile, func(p *benchkit.Profile) error {
		return run(*records, *size, *rounds, p)
	}))
}

var (
	readers int
	only    string
)

// The scenarios of an archive in the store named so.
func jobName(store string) string  { return "replay job from " + store + ", no rate limit" }
func readName(store string) string { return store + " archive pages read, no Kafka" }

// wanted reports whether -only keeps a scenario of the store named so.
func wanted(store string) bool {
	return strings.Contains(jobName(store), only) || strings.Contains(readName(store), only)
}

func serveBroker() error {
	b, err := kafka.StartBroker(kafka.BrokerConfig{})
	if err != nil {
		return err
	}
	defer b.Close()
	benchkit.Serve(b.Addr())
	return nil
}

// scenario writes every record to topic and returns how long that took.
type scenario struct {
	name   string
	target string
	base   string
	run    func(ctx context.Context, cl *kgo.Client, topic string) (time.Duration, error)
}

const rawName = "raw franz-go produce"

func run(records, size, rounds int, prof *benchkit.Profile) error {
	ctx := context.Background()
	addr, stop, err := benchkit.StartChild("-serve-broker")
	if err != nil {
		return err
	}
	defer stop()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	recs := archived(records, size)
	scenarios := []scenario{{name: rawName, run: raw(recs)}}

	dir, err := os.MkdirTemp("", "replaybench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Filling an archive takes longer than its rounds: none is filled for
	// the rows -only leaves out.
	if wanted("SQLite") {
		sdb, err := sqlite.Open(ctx, filepath.Join(dir, "lookback.db"))
		if err != nil {
			return err
		}
		defer sdb.Close()
		fmt.Fprintf(os.Stderr, "archiving %d events of %d B in SQLite...\n", records, size)
		if err := fill(ctx, sqlite.NewArchive(sdb), recs); err != nil {
			return err
		}
		if _, err := sdb.Writer().ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			return err
		}
		scenarios = append(scenarios, scenario{name: jobName("SQLite"), target: "≥ 300000/s", base: rawName,
			run: job(sqlite.NewArchive(sdb), sqlite.NewJobStore(sdb))},
			scenario{name: readName("SQLite"), base: rawName, run: read(sqlite.NewArchive(sdb))})
	}

	if wanted("PostgreSQL") {
		if pg, err := pgtest.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "no PostgreSQL, its row is left out:", err)
		} else {
			defer pg.Stop()
			dsn, err := pg.CreateDatabase(ctx)
			if err != nil {
				return err
			}
			pdb, err := postgres.Open(ctx, dsn)
			if err != nil {
				return err
			}
			defer pdb.Close()
			fmt.Fprintf(os.Stderr, "archiving %d events of %d B in PostgreSQL...\n", records, size)
			if err := fill(ctx, postgres.NewArchive(pdb), recs); err != nil {
				return err
			}
			// The work a bulk fill leaves the server (autovacuum, analyze, the
			// checkpoint) is done now, not during the rounds of other rows.
			for _, stmt := range []string{"VACUUM ANALYZE", "CHECKPOINT"} {
				if _, err := pdb.Pool().Exec(ctx, stmt); err != nil {
					return err
				}
			}
			scenarios = append(scenarios, scenario{name: jobName("PostgreSQL"), target: "≥ 300000/s", base: rawName,
				run: job(postgres.NewArchive(pdb), postgres.NewJobStore(pdb))},
				scenario{name: readName("PostgreSQL"), base: rawName, run: read(postgres.NewArchive(pdb))})
		}
	}

	scenarios = slices.DeleteFunc(scenarios, func(s scenario) bool { return s.name != rawName && !strings.Contains(s.name, only) })
	measure := func(name string, s scenario) (float64, error) {
		topic := "bench.replay." + name
		if err := kafka.EnsureTopic(ctx, adm, topic, partitions); err != nil {
			return 0, err
		}
		defer adm.DeleteTopics(ctx, topic)
		d, err := s.run(ctx, cl, topic)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", s.name, err)
		}
		return float64(records) / d.Seconds(), nil
	}
	for i, s := range scenarios { // one unmeasured pass warms caches and heaps
		if _, err := measure(fmt.Sprintf("warmup.%d", i), s); err != nil {
			return err
		}
	}
	rates := make([][]float64, len(scenarios))
	prof.Start()
	for r := range rounds {
		for i, s := range scenarios {
			rate, err := measure(fmt.Sprintf("%d.%d", r, i), s)
			if err != nil {
				prof.Stop()
				return err
			}
			rates[i] = append(rates[i], rate)
			fmt.Fprintf(os.Stderr, "round %d  %-44s %10.0f events/s\n", r+1, s.name, rate)
		}
	}
	prof.Stop()

	medians := map[string]float64{}
	for i, s := range scenarios {
		medians[s.name] = benchkit.Median(rates[i])
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "| %d events of %d B to an %d-partition topic\t| events/s (median of %d)\t| ratio\t| base\t| target\t|\n", records, size, partitions, rounds)
	fmt.Fprintf(w, "|---\t|---:\t|---:\t|---\t|---\t|\n")
	for _, s := range scenarios {
		ratio := "—"
		if base := medians[s.base]; base > 0 {
			ratio = fmt.Sprintf("%.2f", medians[s.name]/base)
		}
		fmt.Fprintf(w, "| %s\t| %.0f\t| %s\t| %s\t| %s\t|\n", s.name, medians[s.name], ratio, s.base, s.target)
	}
	return w.Flush()
}

// archived returns n records as lookback's ingest stores them: CloudEvents
// headers, 10k keys, values of size bytes, one a millisecond.
func archived(n, size int) []lookback.Record {
	value := make([]byte, size)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	t0 := time.Now().Add(-48 * time.Hour)
	recs := make([]lookback.Record, n)
	for i := range recs {
		ev := eventkit.Event{ID: "e-" + strconv.Itoa(i), Source: "/bench", Type: "bench.event", ContentType: "text/plain"}
		recs[i] = lookback.NewRecord("bench.events", int32(i%partitions), int64(i/partitions), t0.Add(time.Duration(i)*time.Millisecond),
			[]byte("k"+strconv.Itoa(i%10000)), value, ev.EncodeHeaders(nil))
	}
	return recs
}

func fill(ctx context.Context, a lookback.Archive, recs []lookback.Record) error {
	const batch = 4096
	for i := 0; i < len(recs); i += batch {
		if err := a.Append(ctx, recs[i:min(i+batch, len(recs))], nil); err != nil {
			return err
		}
	}
	return nil
}

// raw is the base: franz-go producing the same keys, values and headers
// asynchronously, as fast as the broker takes them.
func raw(recs []lookback.Record) func(context.Context, *kgo.Client, string) (time.Duration, error) {
	return func(ctx context.Context, cl *kgo.Client, topic string) (time.Duration, error) {
		rs := make([]*kgo.Record, len(recs))
		for i := range recs {
			hs := make([]kgo.RecordHeader, len(recs[i].Headers))
			for j, h := range recs[i].Headers {
				hs[j] = kgo.RecordHeader(h)
			}
			rs[i] = &kgo.Record{Topic: topic, Key: recs[i].Key, Value: recs[i].Value, Headers: hs}
		}
		t0 := time.Now()
		errc := make(chan error, 1)
		for _, r := range rs {
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			})
		}
		if err := cl.Flush(ctx); err != nil {
			return 0, err
		}
		d := time.Since(t0)
		select {
		case err := <-errc:
			return 0, err
		default:
			return d, nil
		}
	}
}

// job replays the whole archive to topic and times it from Start to the
// job's end.
func job(a lookback.Archive, store replay.JobStore) func(context.Context, *kgo.Client, string) (time.Duration, error) {
	return func(ctx context.Context, cl *kgo.Client, topic string) (time.Duration, error) {
		var opts []replay.Opt
		if readers > 0 {
			opts = append(opts, replay.Readers(readers))
		}
		r := replay.NewRunner(cl, a, store, opts...)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- r.Run(runCtx) }()
		defer func() { stop(); <-done }()
		<-r.Ready()
		t0 := time.Now()
		j, err := r.Start(ctx, replay.Spec{Filter: lookback.Filter{Topic: "bench.events"}, Target: replay.Target{Topic: topic}}, replay.Actor{Name: "bench"})
		if err != nil {
			return 0, err
		}
		if j, err = r.Wait(ctx, j.ID); err != nil {
			return 0, err
		}
		d := time.Since(t0)
		if j.Status != replay.Done || j.Sent != j.Matched {
			return 0, fmt.Errorf("job ended %s with %d of %d sent", j.Status, j.Sent, j.Matched)
		}
		return d, nil
	}
}

// read pages through the archive as a job does, producing nothing: the
// ceiling the archive sets on a replay.
func read(a lookback.Archive) func(context.Context, *kgo.Client, string) (time.Duration, error) {
	return func(ctx context.Context, _ *kgo.Client, _ string) (time.Duration, error) {
		t0 := time.Now()
		q := lookback.Query{Filter: lookback.Filter{Topic: "bench.events", To: time.Now()}, Order: lookback.Asc, Limit: lookback.MaxLimit, Bare: true}
		for {
			page, err := a.Query(ctx, q)
			if err != nil {
				return 0, err
			}
			if page.NextCursor == "" {
				return time.Since(t0), nil
			}
			q.Cursor = page.NextCursor
		}
	}
}
