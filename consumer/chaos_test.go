package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestChaos runs 3–4 agents of one group over a topic of 6–8 partitions while
// events are produced, and starts and stops them at random moments: graceful
// stops, cancellations right after the start (often mid-join) and kills from
// a handler. Handlers fail with Retry (transiently), Warn, or take a while.
// Throughout, a separate client reads the group's committed offsets and
// checks that nothing was committed past an event not yet done; at the end,
// that every event was done, the group stands at the log end and, under
// ByPartition and ByKey, that events were first done in order.
//
// The seed comes from EVENTKIT_CHAOS_SEED (default 1) and the length of
// each ordering's schedule from EVENTKIT_CHAOS_DURATION (default 4s); the
// schedule and every handler's outcome derive from the seed, the
// interleaving from the scheduler. A longer hunt:
//
//	EVENTKIT_CHAOS_SEED=7 EVENTKIT_CHAOS_DURATION=30s go test -race -run TestChaos ./consumer
func TestChaos(t *testing.T) {
	seed := uint64(1)
	if s := os.Getenv("EVENTKIT_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("EVENTKIT_CHAOS_SEED=%q: %v", s, err)
		}
		seed = v
	}
	dur := 4 * time.Second
	if s := os.Getenv("EVENTKIT_CHAOS_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("EVENTKIT_CHAOS_DURATION=%q: %v", s, err)
		}
		dur = d
	}
	for _, order := range []consumer.Order{consumer.ByPartition, consumer.ByKey, consumer.Unordered} {
		t.Run(order.String(), func(t *testing.T) {
			t.Logf("seed %d", seed)
			runChaos(t, seed, order, dur)
		})
	}
}

const chaosTopic = "chaos"

// chaosOutcome is what a handler does with one attempt of one event.
type chaosOutcome uint8

const (
	outSuccess chaosOutcome = iota
	outWarn
	outRetry
)

// chaosLedger records every done handling (success or Warn) per event.
type chaosLedger struct {
	mu    sync.Mutex
	seq   int64
	first map[string]int64 // id -> sequence number of its first done handling
	by    map[string][]int // id -> agents that did it, in order
	done  map[int32]map[int64]bool
	// prefix[p] is the lowest offset of p not done yet: everything below it is.
	prefix map[int32]int64
	calls  int
}

func newLedger() *chaosLedger {
	return &chaosLedger{
		first: make(map[string]int64), by: make(map[string][]int),
		done: make(map[int32]map[int64]bool), prefix: make(map[int32]int64),
	}
}

func (l *chaosLedger) call() {
	l.mu.Lock()
	l.calls++
	l.mu.Unlock()
}

func (l *chaosLedger) record(agent int, ev *eventkit.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq++
	if _, ok := l.first[ev.ID]; !ok {
		l.first[ev.ID] = l.seq
	}
	l.by[ev.ID] = append(l.by[ev.ID], agent)
	d := l.done[ev.Partition]
	if d == nil {
		d = make(map[int64]bool)
		l.done[ev.Partition] = d
	}
	d[ev.Offset] = true
	for d[l.prefix[ev.Partition]] {
		l.prefix[ev.Partition]++
	}
}

func (l *chaosLedger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.first)
}

// checkCommitted returns an error naming the first partition whose committed
// offset lies past an event not done yet.
func (l *chaosLedger) checkCommitted(committed map[int32]int64, offsetID func(int32, int64) string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for p, c := range committed {
		if pre := l.prefix[p]; c > pre {
			errs = append(errs, fmt.Errorf("partition %d committed at %d, but offset %d (id %s) was not done yet (done by %v so far)",
				p, c, pre, offsetID(p, pre), l.by[offsetID(p, pre)]))
		}
	}
	return errors.Join(errs...)
}

// produced is where each produced event landed.
type produced struct {
	mu    sync.Mutex
	at    map[string][2]int64 // id -> partition, offset
	ids   map[int32]map[int64]string
	keyOf map[string]string
}

func (p *produced) id(part int32, off int64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if id, ok := p.ids[part][off]; ok {
		return id
	}
	return "?"
}

// chaosAgent is one Run of an agent.
type chaosAgent struct {
	id   int
	kill atomic.Bool // the next handler call returns Kill
	mode string      // how it is being stopped, once it is

	c      *consumer.Consumer
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned, once done is closed
}

func runChaos(t *testing.T, seed uint64, order consumer.Order, dur time.Duration) {
	rng := rand.New(rand.NewPCG(seed, uint64(order)+1))
	parts := int32(6 + rng.IntN(3))
	maxAgents := 3 + rng.IntN(2)
	keys := 20 + rng.IntN(60)
	t.Logf("order %s: %d partitions, up to %d agents, %d keys", order, parts, maxAgents, keys)

	b := testkit.Broker(t, parts, chaosTopic)
	prodCl := testkit.Client(t, b.Addr())
	admCl := testkit.Client(t, b.Addr())
	adm := kadm.NewClient(admCl)

	var warnLog testkit.Buffer
	logger := slog.New(slog.NewTextHandler(&warnLog, &slog.HandlerOptions{Level: slog.LevelWarn}))

	ledger := newLedger()
	prod := &produced{at: make(map[string][2]int64), ids: make(map[int32]map[int64]string), keyOf: make(map[string]string)}

	// decide is a pure function of the seed, the event and the attempt, so
	// that outcomes do not depend on which agent gets the event.
	decide := func(id string, attempt int) (chaosOutcome, time.Duration) {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d/%s/%d", seed, id, attempt)
		r := rand.New(rand.NewPCG(h.Sum64(), seed))
		var d time.Duration
		if r.IntN(4) == 0 {
			d = time.Duration(r.IntN(3000)) * time.Microsecond
		}
		switch x := r.IntN(100); {
		case x < 12 && attempt < 4: // transient: gone by the fourth attempt
			return outRetry, d
		case x < 17:
			return outWarn, d
		}
		return outSuccess, d
	}

	handler := func(a *chaosAgent) eventkit.Handler {
		return eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
			ledger.call()
			if a.kill.CompareAndSwap(true, false) {
				return eventkit.Kill(errors.New("chaos: killed"))
			}
			out, d := decide(ev.ID, consumer.Attempt(ctx))
			if d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return ctx.Err() // unflagged: retried
				}
			}
			switch out {
			case outRetry:
				return eventkit.Retry(errors.New("chaos: transient"))
			case outWarn:
				ledger.record(a.id, ev) // Warn is done
				return eventkit.Warn(errors.New("chaos: warned"))
			}
			ledger.record(a.id, ev)
			return nil
		})
	}

	var (
		agentsMu sync.Mutex
		running  []*chaosAgent
		nextID   int
		stops    sync.WaitGroup
		stopErrs = make(chan error, 1000)
	)
	start := func() *chaosAgent {
		agentsMu.Lock()
		defer agentsMu.Unlock()
		nextID++
		a := &chaosAgent{id: nextID}
		c, err := consumer.New(handler(a), append(testkit.AgentOpts(t, b, "g", chaosTopic),
			consumer.Ordering(order),
			consumer.Concurrency(4),
			consumer.MaxInFlight(16),
			consumer.ReplayTopic(false),
			consumer.ControlPlane(false),
			consumer.Logger(logger.With("agent", a.id)),
		)...)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		a.c, a.cancel, a.done = c, cancel, make(chan struct{})
		go func() {
			defer close(a.done)
			a.err = c.Run(ctx)
		}()
		t.Cleanup(func() { cancel(); <-a.done })
		running = append(running, a)
		return a
	}
	// stop takes a out of the running set and stops it in the background
	// the way mode says; stopErrs gets what went wrong.
	stop := func(a *chaosAgent, mode string) {
		agentsMu.Lock()
		running = slices.DeleteFunc(running, func(x *chaosAgent) bool { return x == a })
		agentsMu.Unlock()
		a.mode = mode
		stops.Add(1)
		go func() {
			defer stops.Done()
			if mode == "kill" {
				a.kill.Store(true)
				select {
				case <-a.done:
				case <-time.After(5 * time.Second):
					// No event reached it (no partitions): cancel instead.
				}
			}
			a.cancel()
			select {
			case <-a.done:
			case <-time.After(time.Minute):
				stopErrs <- fmt.Errorf("agent %d (%s): Run did not return within a minute", a.id, mode)
				return
			}
			err := a.err
			switch {
			case mode == "kill" && err != nil && !errors.Is(err, consumer.ErrKilled):
				stopErrs <- fmt.Errorf("agent %d (kill): %v", a.id, err)
			case mode != "kill" && err != nil:
				stopErrs <- fmt.Errorf("agent %d (%s): %v", a.id, mode, err)
			}
		}()
	}

	// The producer writes keyed events in random batches until told to stop.
	total := 0
	prodDone := make(chan struct{})
	prodStop := make(chan struct{})
	prodRng := rand.New(rand.NewPCG(seed, 100+uint64(order)))
	go func() {
		defer close(prodDone)
		for {
			select {
			case <-prodStop:
				return
			case <-time.After(time.Duration(prodRng.IntN(40)) * time.Millisecond):
			}
			n := 1 + prodRng.IntN(20)
			rs := make([]*kgo.Record, n)
			for i := range rs {
				id := "e-" + strconv.Itoa(total+i)
				key := "k" + strconv.Itoa(prodRng.IntN(keys))
				rs[i] = kafka.RecordOf(chaosTopic, &eventkit.Event{
					ID: id, Source: "/chaos", Type: "chaos.event", Key: []byte(key),
					Data: []byte(id), ContentType: "text/plain",
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			res := prodCl.ProduceSync(ctx, rs...)
			cancel()
			if err := res.FirstErr(); err != nil {
				stopErrs <- fmt.Errorf("produce: %w", err)
				return
			}
			prod.mu.Lock()
			for _, r := range res {
				id := string(r.Record.Value)
				prod.at[id] = [2]int64{int64(r.Record.Partition), r.Record.Offset}
				if prod.ids[r.Record.Partition] == nil {
					prod.ids[r.Record.Partition] = make(map[int64]string)
				}
				prod.ids[r.Record.Partition][r.Record.Offset] = id
				prod.keyOf[id] = string(r.Record.Key)
			}
			prod.mu.Unlock()
			total += n
		}
	}()

	// The watcher reads the committed offsets from outside and checks them
	// against what was done when it looks: done events only accumulate, so
	// reading the commit first and the ledger second never flags a commit
	// that was right when it was made.
	var (
		violations []error
		rewinds    []string
		checks     atomic.Int64
	)
	watchStop := make(chan struct{})
	watchDone := make(chan struct{})
	last := make(map[int32]int64)
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-watchStop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := adm.FetchOffsets(ctx, "g")
			cancel()
			if err != nil {
				continue // the group may not exist yet
			}
			committed := make(map[int32]int64)
			resp.Each(func(o kadm.OffsetResponse) {
				if o.Topic == chaosTopic && o.Err == nil && o.At >= 0 {
					committed[o.Partition] = o.At
				}
			})
			checks.Add(1)
			if err := ledger.checkCommitted(committed, prod.id); err != nil && len(violations) < 20 {
				violations = append(violations, err)
			}
			for p, c := range committed {
				if c < last[p] && len(rewinds) < 20 {
					rewinds = append(rewinds, fmt.Sprintf("partition %d: %d -> %d", p, last[p], c))
				}
				last[p] = c
			}
		}
	}()

	// The schedule.
	var starts, graceful, early, kills int
	start()
	deadline := time.Now().Add(dur)
	for time.Now().Before(deadline) {
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond) // chaos pacing, not synchronisation
		agentsMu.Lock()
		n := len(running)
		var victim *chaosAgent
		if n > 0 {
			victim = running[rng.IntN(n)]
		}
		agentsMu.Unlock()
		switch x := rng.IntN(10); {
		case n < maxAgents && (x < 4 || n < 2):
			a := start()
			starts++
			if rng.IntN(4) == 0 { // cancelled while it joins, or just after
				time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
				stop(a, "early")
				early++
			}
		case victim != nil && x < 8:
			stop(victim, "graceful")
			graceful++
		case victim != nil:
			stop(victim, "kill")
			kills++
		}
	}
	close(prodStop)
	select {
	case <-prodDone:
	case <-time.After(30 * time.Second):
		t.Fatal("producer did not stop")
	}
	t.Logf("schedule: %d starts, %d graceful stops, %d early cancels, %d kills; %d events", starts+1, graceful, early, kills, total)

	// The last agent drains everything; then every agent is stopped.
	agentsMu.Lock()
	if len(running) == 0 {
		agentsMu.Unlock()
		start()
	} else {
		agentsMu.Unlock()
	}
	ends := testkit.EndOffsets(t, admCl, chaosTopic)
	drained := func() error {
		if n := ledger.distinct(); n < total {
			return fmt.Errorf("%d of %d events done", n, total)
		}
		got := testkit.Committed(t, admCl, "g")[chaosTopic]
		for p, end := range ends {
			if got[p] != end {
				return fmt.Errorf("committed %v, want %v", got, ends)
			}
		}
		return nil
	}
	if err := testkit.Within(30*time.Second, drained); err != nil {
		t.Errorf("not drained within 30s: %v", err)
		ledger.mu.Lock()
		t.Logf("done prefix per partition %v; log ends %v", ledger.prefix, ends)
		ledger.mu.Unlock()
		agentsMu.Lock()
		for _, a := range running {
			st := a.c.Status()
			t.Logf("agent %d: in flight %d, partitions %+v, halted %+v", a.id, st.InFlight, st.Partitions, st.Halted)
		}
		agentsMu.Unlock()
	}
	agentsMu.Lock()
	rest := slices.Clone(running)
	agentsMu.Unlock()
	for _, a := range rest {
		stop(a, "final")
	}
	waited := make(chan struct{})
	go func() { stops.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(90 * time.Second):
		t.Fatal("agents did not stop")
	}
	close(watchStop)
	<-watchDone
	close(stopErrs)
	for err := range stopErrs {
		t.Error(err)
	}

	// (3) nothing was ever committed past an event not done.
	for _, v := range violations {
		t.Errorf("commit ahead of processing: %v", v)
	}
	if checks.Load() < 10 {
		t.Errorf("only %d commit checks ran", checks.Load())
	}
	// (2) the group stands at the log end.
	final := testkit.Committed(t, admCl, "g")[chaosTopic]
	for p := range parts {
		if final[p] != ends[p] {
			t.Errorf("partition %d: committed %d, log end %d", p, final[p], ends[p])
		}
	}
	if err := ledger.checkCommitted(final, prod.id); err != nil {
		t.Errorf("final commit ahead of processing: %v", err)
	}
	// (1) every event was done at least once.
	ledger.mu.Lock()
	defer ledger.mu.Unlock()
	prod.mu.Lock()
	defer prod.mu.Unlock()
	var lost []string
	for id := range prod.at {
		if _, ok := ledger.first[id]; !ok {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		t.Errorf("%d events never done: %v", len(lost), lost[:min(len(lost), 20)])
	}
	// (4) first done handlings in offset order, per partition or per key.
	if order != consumer.Unordered {
		lane := func(id string) string {
			if order == consumer.ByKey {
				return prod.keyOf[id]
			}
			return strconv.FormatInt(prod.at[id][0], 10)
		}
		byLane := make(map[string][]string)
		for id := range prod.at {
			byLane[lane(id)] = append(byLane[lane(id)], id)
		}
		bad := 0
		for l, ids := range byLane {
			slices.SortFunc(ids, func(a, b string) int { return int(prod.at[a][1] - prod.at[b][1]) })
			for i := 1; i < len(ids); i++ {
				a, b := ids[i-1], ids[i]
				fa, oka := ledger.first[a]
				fb, okb := ledger.first[b]
				if oka && okb && fa > fb && bad < 10 {
					bad++
					t.Errorf("%s %s: %s (offset %d, by %v) first done after %s (offset %d, by %v)", order, l,
						a, prod.at[a][1], ledger.by[a], b, prod.at[b][1], ledger.by[b])
				}
			}
		}
	}
	dups := 0
	for _, by := range ledger.by {
		dups += len(by) - 1
	}
	t.Logf("%d events, %d handler calls, %d done handlings beyond the first, %d commit checks", len(prod.at), ledger.calls, dups, checks.Load())
	if len(rewinds) > 0 {
		t.Logf("committed offsets moved back (duplicates, not loss): %v", rewinds)
	}
	if lines := warnLog.String(); t.Failed() || strings.Contains(lines, "partitions lost") {
		t.Logf("agents' warnings:\n%s", tail(lines, 60))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
