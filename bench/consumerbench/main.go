// Command consumerbench measures the consumer agent against a raw franz-go
// group consumer on the same broker, in the same run, and prints a table of
// records/s and ratios.
//
//	go run ./bench/consumerbench            # 1M records of 200 B, 5 rounds
//	go run ./bench/consumerbench -records 200000 -rounds 3
//
// The broker runs in a child process (this same binary) so that its garbage
// and the consumer's do not mix. Scenarios run interleaved, round after
// round, and the table reports medians, because a 2-core machine is noisy.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/bench/internal/benchkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	records := flag.Int("records", 1_000_000, "records per topic")
	size := flag.Int("size", 200, "record value size in bytes")
	rounds := flag.Int("rounds", 5, "rounds of every scenario")
	serve := flag.Bool("serve-broker", false, "internal: run the broker child")
	only := flag.String("only", "", "comma-separated parts of scenario names to run (default all)")
	fetchMB := flag.Int("fetch-max-mib", 8, "franz-go FetchMaxBytes in MiB, the same for every scenario")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measured rounds to this file")
	flag.Parse()
	fetchMax = int32(*fetchMB) << 20
	if *serve {
		benchkit.Exit("broker", benchkit.ServeBroker(map[string]int32{wideTopic: 8, ioTopic: 1}, *records, *size, keys))
		return
	}
	benchkit.Exit("consumerbench", benchkit.Profiled(*cpuProfile, func(p *benchkit.Profile) error {
		return run(*records, *size, *rounds, *only, p)
	}))
}

var (
	sleptNanos, sleeps atomic.Int64
	fetchMax           int32
)

const (
	wideTopic = "bench.wide" // 8 partitions, 10k keys
	ioTopic   = "bench.io"   // 1 partition, 10k keys
	keys      = 10_000
)

func startBroker(records, size int) (addr string, stop func(), err error) {
	return benchkit.StartChild("-serve-broker", "-records", strconv.Itoa(records), "-size", strconv.Itoa(size))
}

type scenario struct {
	name   string
	topic  string
	target string
	// run consumes every record of topic with a fresh group and returns
	// the time from the first record to the last one handled.
	run func(ctx context.Context, addr, topic, group string, n int) (time.Duration, error)
	// base names the scenario whose median the ratio divides by.
	base string
}

const (
	rawName     = "raw franz-go"
	ceilingName = "ceiling: 256 goroutines, 1 ms sleep, no Kafka"
)

func run(records, size, rounds int, only string, prof *benchkit.Profile) error {
	fmt.Fprintf(os.Stderr, "seeding %d records of %d B into %s (8 partitions) and %s (1 partition)...\n", records, size, wideTopic, ioTopic)
	addr, stop, err := startBroker(records, size)
	if err != nil {
		return err
	}
	defer stop()

	noop := eventkit.HandlerFunc(func(context.Context, *eventkit.Event) error { return nil })
	sleep := eventkit.HandlerFunc(func(ctx context.Context, _ *eventkit.Event) error {
		t0 := time.Now()
		time.Sleep(time.Millisecond)
		sleptNanos.Add(int64(time.Since(t0)))
		sleeps.Add(1)
		return nil
	})
	scenarios := []scenario{
		{name: rawName, topic: wideTopic, run: raw},
		{name: "agent ByPartition, no-op", topic: wideTopic, target: "≥ 0.8", base: rawName, run: agent(noop, consumer.Ordering(consumer.ByPartition))},
		{name: "agent ByKey, no-op", topic: wideTopic, target: "≥ 0.5", base: rawName, run: agent(noop, consumer.Ordering(consumer.ByKey))},
		{name: "agent Unordered, no-op", topic: wideTopic, base: rawName, run: agent(noop, consumer.Ordering(consumer.Unordered))},
		// 256 slots × 1 ms would be 256k/s if a 1 ms sleep took 1 ms; on
		// these machines it takes longer, so the ceiling is measured: the
		// same sleeps on 256 bare goroutines, without Kafka.
		{name: ceilingName, run: ceiling(sleep, 256)},
		{name: "agent ByKey, 1 ms I/O, Concurrency 256, 1 partition", topic: ioTopic, target: "≥ 0.8", base: ceilingName,
			run: agent(sleep, consumer.Ordering(consumer.ByKey), consumer.Concurrency(256))},
	}
	if only != "" {
		want := strings.Split(only, ",")
		scenarios = slices.DeleteFunc(scenarios, func(s scenario) bool {
			return !slices.ContainsFunc(want, func(w string) bool { return strings.Contains(s.name, w) })
		})
	}

	rates := make([][]float64, len(scenarios))
	// busy is, per scenario with a sleeping handler, throughput ÷
	// (256 / mean handler latency) of each round: the share of slots kept
	// busy, whatever a 1 ms sleep costs on this machine.
	busy := make([][]float64, len(scenarios))
	ctx := context.Background()
	// One unmeasured pass warms the broker's caches and both heaps.
	for i, s := range scenarios {
		if _, err := s.run(ctx, addr, s.topic, fmt.Sprintf("bench-warmup-%d", i), records); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	prof.Start()
	defer prof.Stop()
	for r := range rounds {
		for i, s := range scenarios {
			group := fmt.Sprintf("bench-%d-%d", r, i)
			d, err := s.run(ctx, addr, s.topic, group, records)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			rate := float64(records) / d.Seconds()
			rates[i] = append(rates[i], rate)
			fmt.Fprintf(os.Stderr, "round %d  %-52s %10.0f records/s\n", r+1, s.name, rate)
			if n := sleeps.Swap(0); n > 0 {
				mean := time.Duration(sleptNanos.Swap(0) / n)
				fmt.Fprintf(os.Stderr, "         mean handler latency %v, busy slots %.1f of 256\n", mean, rate*mean.Seconds())
				busy[i] = append(busy[i], rate*mean.Seconds()/256)
			}
		}
	}

	medians := map[string]float64{}
	for i, s := range scenarios {
		medians[s.name] = benchkit.Median(rates[i])
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "| scenario\t| records/s (median of %d)\t| ratio\t| base\t| target\t|\n", rounds)
	fmt.Fprintf(w, "|---\t|---:\t|---:\t|---\t|---\t|\n")
	for i, s := range scenarios {
		m := medians[s.name]
		ratio := "—"
		if base := medians[s.base]; base > 0 {
			ratio = fmt.Sprintf("%.2f", m/base)
		}
		fmt.Fprintf(w, "| %s\t| %.0f\t| %s\t| %s\t| %s\t|\n", s.name, m, ratio, s.base, s.target)
		if len(busy[i]) > 0 && s.name != ceilingName {
			fmt.Fprintf(w, "| %s\t| \t| %.2f\t| Concurrency ÷ measured handler latency\t| %s\t|\n", s.name, benchkit.Median(busy[i]), s.target)
		}
	}
	return w.Flush()
}

// raw is the baseline: franz-go's own group consumer.
func raw(ctx context.Context, addr, topic, group string, n int) (time.Duration, error) {
	return benchkit.RawConsume(ctx, addr, topic, group, n, kgo.FetchMaxBytes(fetchMax))
}

// ceiling runs h n times on workers goroutines, without Kafka: the most any
// consumer can get out of that many slots on this machine.
func ceiling(h eventkit.Handler, workers int) func(ctx context.Context, addr, topic, group string, n int) (time.Duration, error) {
	return func(ctx context.Context, _, _, _ string, n int) (time.Duration, error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		ev := &eventkit.Event{}
		start := time.Now()
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					_ = h.Handle(ctx, ev)
				}
			})
		}
		wg.Wait()
		return time.Since(start), nil
	}
}

// agent runs the consumer agent with h wrapped to time the first and last
// record.
func agent(h eventkit.Handler, opts ...consumer.Opt) func(ctx context.Context, addr, topic, group string, n int) (time.Duration, error) {
	return func(ctx context.Context, addr, topic, group string, n int) (time.Duration, error) {
		return benchkit.TimeAgent(ctx, n, 5*time.Minute, h, append([]consumer.Opt{
			consumer.Brokers(addr), consumer.Group(group), consumer.Topics(topic),
			consumer.ClientOpts(kgo.FetchMaxBytes(fetchMax)),
		}, opts...)...)
	}
}
