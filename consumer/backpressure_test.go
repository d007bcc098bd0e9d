package consumer_test

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
)

// With a backlog of a million records and a slow handler, the agent holds at
// most MaxInFlight records and its memory stays flat however much of the
// backlog it works through. The broker runs in a process of its own so that
// only the agent is measured.
func TestBackpressureBoundsMemory(t *testing.T) {
	const backlog, maxInFlight = 1_000_000, 10_000
	addr := testkit.BrokerProcess(t, "orders", 8, backlog, 200, 0)

	var n atomic.Int64
	slow := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		n.Add(1)
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
		}
		return nil
	})
	c, err := consumer.New(slow, consumer.Brokers(addr), consumer.Group("g"), consumer.Topics("orders"),
		consumer.ClientOpts(testkit.ClientOpts()...), consumer.Ordering(consumer.ByKey), consumer.Concurrency(64),
		consumer.MaxInFlight(maxInFlight))
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	run := testkit.Go(t, c.Run)

	// phase runs until `until` events are handled, sampling the records in
	// flight, and returns the live heap then (after a collection, so that
	// garbage does not blur the figure).
	inFlight := 0
	phase := func(until int64) uint64 {
		testkit.Eventually(t, 2*time.Minute, func() error {
			inFlight = max(inFlight, c.Status().InFlight)
			return atLeast(int(until), func() int { return int(n.Load()) }, "handled")()
		})
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	early := phase(20_000)
	late := phase(100_000)
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	mib := func(b uint64) float64 { return float64(b) / (1 << 20) }
	t.Logf("backlog %d records of 200 B: live heap %.0f MiB before, %.0f MiB after 20k events, %.0f MiB after 100k; at most %d records in flight; peak RSS of the test process %s",
		backlog, mib(base.HeapAlloc), mib(early), mib(late), inFlight, vmHWM())
	if inFlight > maxInFlight {
		t.Fatalf("%d records in flight, MaxInFlight is %d", inFlight, maxInFlight)
	}
	// Flat: five times deeper into the backlog needs no more memory.
	if late > early+(32<<20) {
		t.Fatalf("live heap grew from %.0f to %.0f MiB as the agent went deeper into the backlog", mib(early), mib(late))
	}
	if late > base.HeapAlloc+(128<<20) {
		t.Fatalf("live heap grew by %.0f MiB for %d records in flight", mib(late-base.HeapAlloc), maxInFlight)
	}
}

// vmHWM reads the process's peak resident set size from /proc.
func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return strconv.Itoa(kb>>10) + " MiB"
		}
	}
	return "unknown"
}
