package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit/seed"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// pollEvery is how often the harness looks at the rows and offsets it
// waits for.
const pollEvery = 20 * time.Millisecond

// runStore runs the whole harness against one store and prints its figures.
func runStore(cfg config, store string) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "[%s] "+format+"\n", append([]any{store}, args...)...)
	}
	logf("starting the broker and the database")
	addr, stopBroker, err := startBroker(cfg.partitions)
	if err != nil {
		return err
	}
	defer stopBroker()
	dsn, db, stopDB, err := backends[store].prepare(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", store, err)
	}
	defer stopDB()

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(100_000), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	rng := rand.New(rand.NewPCG(cfg.seed, 0x5eed))
	records := plan(cfg, rng)
	logf("producing %d events, %d of them twice (%d records)", cfg.events, len(records)-cfg.events, len(records))
	if err := produce(ctx, cl, cfg, records); err != nil {
		return fmt.Errorf("produce: %w", err)
	}

	start := time.Now()
	args := []string{"-consume", "-store", store, "-brokers", addr, "-dsn", dsn, "-lease", cfg.lease.String()}
	var killedAt []int
	for i, at := range killPoints(cfg, rng) {
		p, err := spawn(nil, nil, args...)
		if err != nil {
			return err
		}
		// Each process makes some progress before it dies, so the run ends.
		rows, err := countRows(ctx, db)
		if err == nil {
			at = max(at, rows+1)
			err = waitFor(ctx, p, func() (bool, error) {
				rows, err = countRows(ctx, db)
				return rows >= at, err
			})
		}
		p.kill()
		if err != nil {
			return fmt.Errorf("before kill %d: %w", i+1, err)
		}
		killedAt = append(killedAt, rows)
		logf("kill -9 %d/%d at %d side-effect rows", i+1, cfg.kills, rows)
	}
	p, err := spawn(nil, nil, args...)
	if err != nil {
		return err
	}
	logf("last consumer running to the end of the log")
	var offsets string
	err = waitFor(ctx, p, func() (bool, error) {
		var atEnd bool
		atEnd, offsets, err = committedAtEnd(ctx, adm)
		return atEnd, err
	})
	if err != nil {
		p.kill()
		return fmt.Errorf("waiting for the group to commit the log's end (%s): %w", offsets, err)
	}
	if err := p.stop(time.Minute); err != nil {
		return fmt.Errorf("last consumer: %w", err)
	}
	elapsed := time.Since(start)
	atEnd, offsets, err := committedAtEnd(ctx, adm)
	if err != nil {
		return err
	}
	sum, err := summarise(ctx, db)
	if err != nil {
		return err
	}

	var problems []string
	if sum.events != cfg.events || sum.rows != cfg.events || sum.maxPerEvent != 1 {
		problems = append(problems, fmt.Sprintf("want one side-effect row for each of the %d events", cfg.events))
	}
	if !atEnd {
		problems = append(problems, "committed offsets are not at the log end")
	}
	verdict := "ok"
	if len(problems) > 0 {
		verdict = "FAILED: " + strings.Join(problems, "; ")
	}
	fmt.Printf(`crashtest %s: %s
  events        %d distinct, %d sent twice: %d records of %d B on %d partitions
  kills         %d (kill -9 at %s side-effect rows)
  side effects  %d rows for %d distinct events; max rows per event %d; missing %d
  duplicates    %d records absorbed (records − rows)
  offsets       %s
  elapsed       %v (consuming, restarts included)
`, store, verdict,
		cfg.events, len(records)-cfg.events, len(records), cfg.size, cfg.partitions,
		len(killedAt), joinInts(killedAt),
		sum.rows, sum.events, sum.maxPerEvent, cfg.events-sum.events,
		len(records)-sum.rows,
		offsets,
		elapsed.Round(time.Millisecond))
	if len(problems) > 0 {
		return errors.New(verdict)
	}
	return nil
}

// plan returns the event number of each record in produce order: every
// event once, and a share of them again at a random later position.
func plan(cfg config, rng *rand.Rand) []int {
	dups := int(float64(cfg.events) * cfg.dupPercent / 100)
	// after[i] lists the events re-sent right after event i's first send.
	after := make(map[int][]int, dups)
	for _, e := range rng.Perm(cfg.events)[:dups] {
		at := e + rng.IntN(cfg.events-e)
		after[at] = append(after[at], e)
	}
	out := make([]int, 0, cfg.events+dups)
	for i := range cfg.events {
		out = append(out, i)
		out = append(out, after[i]...)
	}
	return out
}

// killPoints returns the side-effect row counts at which to kill, sorted.
func killPoints(cfg config, rng *rand.Rand) []int {
	ks := make([]int, cfg.kills)
	for i := range ks {
		ks[i] = 1 + rng.IntN(cfg.events-1)
	}
	slices.Sort(ks)
	return ks
}

func produce(ctx context.Context, cl *kgo.Client, cfg config, records []int) error {
	payload := make([]byte, cfg.size)
	for i := range payload {
		payload[i] = 'a' + byte(i%26)
	}
	return seed.Produce(ctx, cl, len(records), func(pos int) *kgo.Record {
		r := kafka.RecordOf(topic, &eventkit.Event{
			ID: "e-" + strconv.Itoa(records[pos]), Source: "/crashtest", Type: "crashtest.event",
			ContentType: "text/plain", Data: payload,
		})
		r.Partition = int32(pos % int(cfg.partitions))
		return r
	})
}

// waitFor polls cond until it holds, failing when the consumer child exits
// or ctx ends first.
func waitFor(ctx context.Context, p *proc, cond func() (bool, error)) error {
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		ok, err := cond()
		if ok || err != nil {
			return err
		}
		select {
		case <-p.done:
			return fmt.Errorf("consumer exited: %v", p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func countRows(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM effects`).Scan(&n)
	return n, err
}

type summary struct{ rows, events, maxPerEvent int }

func summarise(ctx context.Context, db *sql.DB) (summary, error) {
	var s summary
	err := db.QueryRowContext(ctx, `SELECT count(*), coalesce(sum(n), 0), coalesce(max(n), 0)
		FROM (SELECT event, count(*) AS n FROM effects GROUP BY event) AS per_event`).Scan(&s.events, &s.rows, &s.maxPerEvent)
	return s, err
}

// committedAtEnd reports whether the group committed every partition up to
// its end offset, and describes both.
func committedAtEnd(ctx context.Context, adm *kadm.Client) (bool, string, error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return false, "", err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		err = nil // nothing committed yet
	}
	if err != nil {
		return false, "", err
	}
	var sumEnd, sumCommitted int64
	atEnd := true
	ends.Each(func(o kadm.ListedOffset) {
		sumEnd += o.Offset
		c, ok := committed.Lookup(topic, o.Partition)
		if !ok || c.At < o.Offset {
			atEnd = false
		}
		if ok && c.At > 0 {
			sumCommitted += c.At
		}
	})
	where := "every partition at its end"
	if !atEnd {
		where = "behind the end"
	}
	return atEnd, fmt.Sprintf("committed %d of %d (%s)", sumCommitted, sumEnd, where), nil
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
