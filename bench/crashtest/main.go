// Command crashtest shows that a side effect recorded in the same
// transaction as the idempotency store's done mark happens exactly once per
// event, however often the consumer process dies.
//
//	go run ./bench/crashtest                              # 100k events, 20 kills, SQLite then PostgreSQL
//	go run ./bench/crashtest -events 5000 -kills 3 -stores sqlite
//
// For each store it starts an embedded broker in a child process, produces
// the events (1% of them sent twice: the same ce_source and ce_id again at
// a later offset), and runs a consumer child that inserts one side-effect
// row per event and marks the event done in one transaction (CompleteTx).
// It kills the consumer with SIGKILL when the side-effect rows reach each
// of -kills thresholds drawn from a seeded random source, restarting it
// every time, then lets the last one finish and checks: one row per
// distinct event, none missing, and the group's committed offsets at the
// end of every partition. It prints the figures and exits 1 when a check
// fails.
//
// PostgreSQL runs as a throwaway cluster from the server binaries installed
// on the machine (see internal/pgtest).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

func main() {
	var (
		cfg        config
		serve      = flag.Bool("serve-broker", false, "internal: run the broker child")
		consume    = flag.Bool("consume", false, "internal: run the consumer child")
		brokers    = flag.String("brokers", "", "internal: the consumer child's broker")
		dsn        = flag.String("dsn", "", "internal: the consumer child's database")
		store      = flag.String("store", "", "internal: the consumer child's store")
		stores     = flag.String("stores", "sqlite,postgres", "comma-separated stores to run: sqlite, postgres")
		partitions = flag.Int("partitions", 8, "partitions of the topic")
	)
	flag.IntVar(&cfg.events, "events", 100_000, "distinct events to produce")
	flag.IntVar(&cfg.size, "size", 200, "event payload size in bytes")
	flag.Float64Var(&cfg.dupPercent, "duplicates", 1, "percentage of events sent a second time at a later offset")
	flag.IntVar(&cfg.kills, "kills", 20, "times to kill -9 the consumer")
	flag.Uint64Var(&cfg.seed, "seed", 1, "seed of the duplicates and the kill moments")
	flag.DurationVar(&cfg.lease, "lease", 2*time.Second, "the middleware's lease TTL: how long a killed consumer's claims hold their events")
	flag.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "give up on a store's run after this long")
	flag.Parse()
	cfg.partitions = int32(*partitions)

	var err error
	switch {
	case *serve:
		err = serveBroker(cfg.partitions)
	case *consume:
		err = runConsumer(*store, *brokers, *dsn, cfg.lease)
	default:
		err = validate(cfg, *stores)
		for _, s := range strings.Split(*stores, ",") {
			if err != nil {
				break
			}
			err = runStore(cfg, s)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		os.Exit(1)
	}
}

// config is one run's size.
type config struct {
	events, size, kills int
	partitions          int32
	dupPercent          float64
	seed                uint64
	lease, timeout      time.Duration
}

func validate(cfg config, stores string) error {
	switch {
	case cfg.events < 1:
		return fmt.Errorf("-events %d: want at least 1", cfg.events)
	case cfg.kills < 0 || cfg.kills >= cfg.events:
		return fmt.Errorf("-kills %d: want 0 to %d (fewer than the events)", cfg.kills, cfg.events-1)
	case cfg.dupPercent < 0 || cfg.dupPercent > 100:
		return fmt.Errorf("-duplicates %v: want a percentage, 0 to 100", cfg.dupPercent)
	case cfg.partitions < 1:
		return fmt.Errorf("-partitions %d: want at least 1", cfg.partitions)
	case cfg.lease <= 0:
		return fmt.Errorf("-lease %v: want a positive duration", cfg.lease)
	}
	for _, s := range strings.Split(stores, ",") {
		if _, ok := backends[s]; !ok {
			return fmt.Errorf("-stores: unknown store %q (want sqlite or postgres)", s)
		}
	}
	return nil
}
