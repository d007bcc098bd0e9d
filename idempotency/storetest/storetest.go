// Package storetest is the suite every [idempotency.Store] must pass: the
// state machine, attempt counts across releases, lease takeover and
// fencing, retention, hostile keys, and exactly one side effect per key
// under racing owners.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) idempotency.Store {
//			return newStoreForTest(t) // fresh and empty; closed by t.Cleanup
//		})
//	}
//
// Times are passed in every request, so the suite runs the clock by hand:
// no test sleeps. A store that can mark done inside a transaction of its
// own database should be handed over wrapped as an [Effecter], so that the
// race is checked against rows of a real side-effect table.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/idempotency"
)

// Effecter is a store that can perform a side effect and mark its claim
// done in one transaction, and count the side effects afterwards.
type Effecter interface {
	idempotency.Store
	// Effect writes one side-effect row for c.Key and marks c done in the
	// same transaction; it fails with [idempotency.ErrFenced] (writing
	// nothing) when c no longer holds the key.
	Effect(ctx context.Context, c idempotency.Claim) error
	// Effects counts the side-effect rows per key.
	Effects(ctx context.Context) (map[string]int, error)
}

// t0 is the suite's clock origin: whole seconds, so that every store keeps
// the times exactly.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	lease     = 10 * time.Second
	retention = time.Hour
)

// Run runs the suite; newStore returns a fresh, empty store for each case.
func Run(t *testing.T, newStore func(t *testing.T) idempotency.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s idempotency.Store)
	}{
		{"FreshClaimAcquires", testFreshClaim},
		{"DoneIsSkippedWithResult", testDoneSkipped},
		{"LiveLeaseIsHeldEvenForItsOwner", testLiveLeaseHeld},
		{"ReleaseKeepsAttemptCount", testReleaseKeepsAttempt},
		{"ResetAttemptsCountsFromOne", testResetAttempts},
		{"ExpiredLeaseTakenOverStaleOwnerFenced", testTakeoverFencing},
		{"StaleClaimAfterReclaimFenced", testStaleAfterReclaim},
		{"LeaseLiveToTheNanosecond", testLeaseToTheNanosecond},
		{"CompleteIsIdempotentReleaseAfterDoneRefused", testCompleteTwice},
		{"UnknownKeyFenced", testUnknownKey},
		{"PruneRemovesOnlyExpired", testPrune},
		{"TokenGrowsAcrossAPrune", testTokenAcrossPrune},
		{"TransactionalMarkKeepsTheResult", testResultOfTransactionalMark},
		{"BadKeys", testBadKeys},
		{"KeysNoStoreKeepsRefused", testRefusedKeys},
		{"RacingOwnersOneEffectPerKey", testRace},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newStore(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func req(key, owner string, now time.Time) idempotency.ClaimRequest {
	return idempotency.ClaimRequest{Key: key, Owner: owner, Now: now, Until: now.Add(lease), Expire: now.Add(retention)}
}

func done(at time.Time, result []byte) idempotency.Completion {
	return idempotency.Completion{At: at, Expire: at.Add(retention), Result: result}
}

func claim(t *testing.T, s idempotency.Store, r idempotency.ClaimRequest, want idempotency.Status) idempotency.Outcome {
	t.Helper()
	out, err := s.Claim(ctx(t), r)
	if err != nil {
		t.Fatalf("claim %q by %s: %v", r.Key, r.Owner, err)
	}
	if out.Status != want {
		t.Fatalf("claim %q by %s: status %v, want %v (%+v)", r.Key, r.Owner, out.Status, want, out)
	}
	return out
}

func mustErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: %v, want %v", what, err, want)
	}
}

func testFreshClaim(t *testing.T, s idempotency.Store) {
	out := claim(t, s, req("k", "a", t0), idempotency.Acquired)
	c := out.Claim
	if c.Key != "k" || c.Owner != "a" || c.Attempt != 1 || c.Token < 1 || !c.Deadline.Equal(t0.Add(lease)) || out.TakenOver {
		t.Fatalf("fresh claim %+v (taken over %v)", c, out.TakenOver)
	}
}

func testDoneSkipped(t *testing.T, s idempotency.Store) {
	c := claim(t, s, req("k", "a", t0), idempotency.Acquired).Claim
	if err := s.Complete(ctx(t), c, done(t0.Add(time.Second), []byte("receipt-7"))); err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"a", "b"} {
		out := claim(t, s, req("k", owner, t0.Add(time.Minute)), idempotency.AlreadyDone)
		if !out.DoneAt.Equal(t0.Add(time.Second)) || string(out.Result) != "receipt-7" {
			t.Fatalf("done outcome %+v", out)
		}
	}
	// Long after the lease, a done key stays done.
	claim(t, s, req("k", "c", t0.Add(50*time.Minute)), idempotency.AlreadyDone)
}

func testLiveLeaseHeld(t *testing.T, s idempotency.Store) {
	claim(t, s, req("k", "a", t0), idempotency.Acquired)
	out := claim(t, s, req("k", "b", t0.Add(lease-time.Second)), idempotency.HeldElsewhere)
	if out.Claim.Owner != "a" || !out.Claim.Deadline.Equal(t0.Add(lease)) {
		t.Fatalf("held outcome names %+v, want owner a until %v", out.Claim, t0.Add(lease))
	}
	// The same owner handling a duplicate at another offset must wait too.
	claim(t, s, req("k", "a", t0.Add(time.Second)), idempotency.HeldElsewhere)
}

func testReleaseKeepsAttempt(t *testing.T, s idempotency.Store) {
	var last idempotency.Claim
	for attempt := 1; attempt <= 3; attempt++ {
		owner := fmt.Sprintf("owner-%d", attempt%2)
		c := claim(t, s, req("k", owner, t0.Add(time.Duration(attempt)*time.Second)), idempotency.Acquired).Claim
		if c.Attempt != attempt || c.Token <= last.Token {
			t.Fatalf("claim %d: attempt %d token %d (previous token %d)", attempt, c.Attempt, c.Token, last.Token)
		}
		if err := s.Release(ctx(t), c); err != nil {
			t.Fatal(err)
		}
		last = c
	}
	c := claim(t, s, req("k", "z", t0.Add(time.Minute)), idempotency.Acquired).Claim
	if c.Attempt != 4 {
		t.Fatalf("attempt after three releases = %d, want 4", c.Attempt)
	}
	if err := s.Complete(ctx(t), c, done(t0.Add(time.Minute), nil)); err != nil {
		t.Fatal(err)
	}
}

// testResetAttempts: after a resume the middleware counts the held key's
// attempts from 1 again; the next claim, by any owner, counts on from
// there. A claim that no longer holds the key cannot reset it.
func testResetAttempts(t *testing.T, s idempotency.Store) {
	r, ok := s.(idempotency.AttemptResetter)
	if !ok {
		t.Fatal("the store has no ResetAttempts")
	}
	for i := 1; i <= 3; i++ {
		c := claim(t, s, req("k", "a", t0.Add(time.Duration(i)*time.Second)), idempotency.Acquired).Claim
		if i == 3 {
			if err := r.ResetAttempts(ctx(t), c); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Release(ctx(t), c); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			mustErr(t, "reset by a released claim", r.ResetAttempts(ctx(t), c), idempotency.ErrFenced)
		}
	}
	if c := claim(t, s, req("k", "b", t0.Add(time.Minute)), idempotency.Acquired).Claim; c.Attempt != 2 {
		t.Fatalf("attempt after a reset and a release = %d, want 2", c.Attempt)
	}
	mustErr(t, "reset of an unknown key", r.ResetAttempts(ctx(t), idempotency.Claim{Key: "nope", Owner: "a", Token: 1}), idempotency.ErrFenced)
}

func testTakeoverFencing(t *testing.T, s idempotency.Store) {
	a := claim(t, s, req("k", "a", t0), idempotency.Acquired).Claim
	// One tick before the deadline the lease is live; at the deadline it
	// has ended.
	claim(t, s, req("k", "b", t0.Add(lease-time.Millisecond)), idempotency.HeldElsewhere)
	out := claim(t, s, req("k", "b", t0.Add(lease)), idempotency.Acquired)
	b := out.Claim
	if !out.TakenOver || b.Owner != "b" || b.Attempt != 2 || b.Token <= a.Token {
		t.Fatalf("takeover %+v (taken over %v), stale %+v", b, out.TakenOver, a)
	}
	mustErr(t, "stale owner's complete", s.Complete(ctx(t), a, done(t0.Add(lease), nil)), idempotency.ErrFenced)
	mustErr(t, "stale owner's release", s.Release(ctx(t), a), idempotency.ErrFenced)
	claim(t, s, req("k", "c", t0.Add(lease+time.Second)), idempotency.HeldElsewhere)
	if err := s.Complete(ctx(t), b, done(t0.Add(lease+time.Second), nil)); err != nil {
		t.Fatalf("new owner's complete: %v", err)
	}
	claim(t, s, req("k", "c", t0.Add(lease+2*time.Second)), idempotency.AlreadyDone)
}

// A lease is live until its deadline, to the nanosecond, whatever the
// precision the store keeps times in.
func testLeaseToTheNanosecond(t *testing.T, s idempotency.Store) {
	r := req("k", "a", t0)
	r.Until = t0.Add(lease + 700*time.Nanosecond)
	a := claim(t, s, r, idempotency.Acquired).Claim
	claim(t, s, req("k", "b", t0.Add(lease+300*time.Nanosecond)), idempotency.HeldElsewhere)
	if err := s.Complete(ctx(t), a, done(t0.Add(lease+300*time.Nanosecond), nil)); err != nil {
		t.Fatalf("the owner of a live lease completes: %v", err)
	}
}

func testStaleAfterReclaim(t *testing.T, s idempotency.Store) {
	a := claim(t, s, req("k", "a", t0), idempotency.Acquired).Claim
	if err := s.Release(ctx(t), a); err != nil {
		t.Fatal(err)
	}
	// The same owner claims again: only the new token may complete.
	a2 := claim(t, s, req("k", "a", t0.Add(time.Second)), idempotency.Acquired).Claim
	mustErr(t, "complete with the released token", s.Complete(ctx(t), a, done(t0, nil)), idempotency.ErrFenced)
	if err := s.Complete(ctx(t), a2, done(t0.Add(time.Second), nil)); err != nil {
		t.Fatal(err)
	}
}

func testCompleteTwice(t *testing.T, s idempotency.Store) {
	c := claim(t, s, req("k", "a", t0), idempotency.Acquired).Claim
	for i := range 2 {
		if err := s.Complete(ctx(t), c, done(t0.Add(time.Second), nil)); err != nil {
			t.Fatalf("complete %d: %v", i+1, err)
		}
	}
	mustErr(t, "release after done", s.Release(ctx(t), c), idempotency.ErrFenced)
	claim(t, s, req("k", "b", t0.Add(time.Minute)), idempotency.AlreadyDone)
}

func testUnknownKey(t *testing.T, s idempotency.Store) {
	ghost := idempotency.Claim{Key: "never-claimed", Owner: "a", Token: 1, Attempt: 1, Deadline: t0.Add(lease)}
	mustErr(t, "complete", s.Complete(ctx(t), ghost, done(t0, nil)), idempotency.ErrFenced)
	mustErr(t, "release", s.Release(ctx(t), ghost), idempotency.ErrFenced)
}

func testPrune(t *testing.T, s idempotency.Store) {
	p, ok := s.(idempotency.Pruner)
	if !ok {
		t.Skip("store does not prune")
	}
	// Records made at t0 expire at t0+retention; "fresh" ones a day later.
	// The fresh ones are made first: a store may prune on its own during a
	// claim, on the claim's clock, and a claim a day later would take the
	// old records before Prune counts them.
	later := t0.Add(24 * time.Hour)
	fresh := claim(t, s, req("done-fresh", "a", later), idempotency.Acquired).Claim
	if err := s.Complete(ctx(t), fresh, done(later, nil)); err != nil {
		t.Fatal(err)
	}
	// A live lease is never pruned, even with an expiry in the past.
	live := req("live", "a", later)
	live.Expire = t0
	claim(t, s, live, idempotency.Acquired)
	old := func(key string) idempotency.Claim { return claim(t, s, req(key, "a", t0), idempotency.Acquired).Claim }
	if err := s.Complete(ctx(t), old("done-old"), done(t0, nil)); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx(t), old("released-old")); err != nil {
		t.Fatal(err)
	}
	old("abandoned-old") // its owner crashed: the lease ended long ago

	now := later.Add(time.Second)
	n1, err := p.Prune(ctx(t), now, 1)
	if err != nil || n1 != 1 {
		t.Fatalf("prune with limit 1 = %d, %v; want 1", n1, err)
	}
	n2, err := p.Prune(ctx(t), now, 100)
	if err != nil || n1+n2 != 3 {
		t.Fatalf("pruned %d+%d (%v), want 3: done-old, released-old, abandoned-old", n1, n2, err)
	}
	// Pruned keys are absent again: a fresh claim starts at attempt 1.
	for _, k := range []string{"done-old", "released-old", "abandoned-old"} {
		if c := claim(t, s, req(k, "b", now), idempotency.Acquired).Claim; c.Attempt != 1 {
			t.Fatalf("%s after prune: attempt %d, want 1", k, c.Attempt)
		}
	}
	claim(t, s, req("done-fresh", "b", now), idempotency.AlreadyDone)
	claim(t, s, req("live", "b", now), idempotency.HeldElsewhere)
}

// BadEvents are events whose keys stress a store: no id, a huge id, bytes
// that are not UTF-8, SQL metacharacters, separators and escapes.
func BadEvents() []*eventkit.Event {
	huge := strings.Repeat("id-", 1500) // 4.5 KiB
	rawSource := func(b string) *eventkit.Event {
		return &eventkit.Event{ID: "same-id", Headers: []eventkit.Header{{Key: eventkit.HeaderSource, Value: []byte(b)}}}
	}
	return []*eventkit.Event{
		{Topic: "orders", Partition: 3, Offset: 17},
		{Topic: "orders", Partition: 3, Offset: 18},
		{ID: huge, Source: "/s"},
		{ID: huge + "x", Source: "/s"},
		{ID: "same-id", Source: "/s"},
		rawSource("\xff\xfe"),
		rawSource("\xff\xfd"),
		{ID: "same-id", Source: "%FF%FE"},
		{ID: "'; DROP TABLE idempotency; --", Source: `"quoted" \ backslash`},
		{ID: "a|b", Source: "c"},
		{ID: "b", Source: "c|a"},
		{ID: "nul\x00byte", Source: "tab\tand\nnewline"},
		{ID: "ünïcødé ✓", Source: "/ü"},
		{ID: "same-id", Source: "/s", Replay: &eventkit.Replay{ID: "r1", Mode: eventkit.Reprocess}},
		{ID: "same-id", Source: "/s", Replay: &eventkit.Replay{ID: "r2", Mode: eventkit.Reprocess}},
	}
}

// A claim stuck past its lease and its record's expiry, the record pruned
// and the key claimed again by the same owner (another worker, a
// redelivery): the stuck claim's Complete must not match the new claim.
func testTokenAcrossPrune(t *testing.T, s idempotency.Store) {
	p, ok := s.(idempotency.Pruner)
	if !ok {
		t.Skip("store does not prune")
	}
	r := req("k", "a", t0)
	r.Expire = t0.Add(time.Second) // a retention shorter than the lease
	stale := claim(t, s, r, idempotency.Acquired).Claim
	later := t0.Add(lease + time.Minute)
	if n, err := p.Prune(ctx(t), later, 100); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want the stuck claim's record", n, err)
	}
	fresh := claim(t, s, req("k", "a", later), idempotency.Acquired).Claim
	if fresh.Token <= stale.Token {
		t.Fatalf("token %d after the prune, %d before: want it larger", fresh.Token, stale.Token)
	}
	mustErr(t, "the stuck claim's complete", s.Complete(ctx(t), stale, done(later, nil)), idempotency.ErrFenced)
	if err := s.Complete(ctx(t), fresh, done(later, nil)); err != nil {
		t.Fatal(err)
	}
}

// A handler that marks its claim done in its own transaction keeps the
// result it set, as the middleware's own mark does.
func testResultOfTransactionalMark(t *testing.T, s idempotency.Store) {
	eff, ok := s.(Effecter)
	if !ok {
		t.Skip("store has no transactional mark")
	}
	h := eventkit.Chain(eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		idempotency.SetResult(ctx, []byte("receipt-7"))
		c, _ := idempotency.ClaimFrom(ctx)
		return eff.Effect(ctx, c)
	}), idempotency.Middleware(s, idempotency.Group("g")))
	ev := &eventkit.Event{ID: "e-1", Source: "/test"}
	if err := h.Handle(ctx(t), ev); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	out := claim(t, s, req(idempotency.Key("g", ev), "b", now), idempotency.AlreadyDone)
	if string(out.Result) != "receipt-7" {
		t.Fatalf("result %q, want the handler's receipt-7", out.Result)
	}
}

func testBadKeys(t *testing.T, s idempotency.Store) {
	seen := map[string]int{}
	for i, ev := range BadEvents() {
		k := idempotency.Key("group", ev)
		if j, dup := seen[k]; dup {
			t.Fatalf("events %d and %d share key %q", j, i, k)
		}
		seen[k] = i
		if len(k) > idempotency.MaxKeyLen {
			t.Fatalf("key of event %d is %d bytes", i, len(k))
		}
		c := claim(t, s, req(k, "a", t0), idempotency.Acquired).Claim
		if c.Key != k {
			t.Fatalf("claim key %q, want %q", c.Key, k)
		}
		if err := s.Complete(ctx(t), c, done(t0, nil)); err != nil {
			t.Fatalf("complete %q: %v", k, err)
		}
	}
	for k := range seen {
		claim(t, s, req(k, "b", t0.Add(time.Second)), idempotency.AlreadyDone)
	}
}

// Keys and owners that not every store can keep are refused alike by all,
// and by Complete and Release as claims no one holds.
func testRefusedKeys(t *testing.T, s idempotency.Store) {
	for _, r := range []idempotency.ClaimRequest{
		req("", "a", t0), req("bad\xff", "a", t0), req("a\x00b", "a", t0), req(strings.Repeat("k", idempotency.MaxKeyLen+1), "a", t0),
		req("k", "", t0), req("k", "owner\xff", t0),
	} {
		if _, err := s.Claim(ctx(t), r); !errors.Is(err, idempotency.ErrBadKey) {
			t.Errorf("claim of key %.20q by %q: %v, want ErrBadKey", r.Key, r.Owner, err)
		}
		c := idempotency.Claim{Key: r.Key, Owner: r.Owner, Token: 1, Attempt: 1, Deadline: t0.Add(lease)}
		mustErr(t, "complete", s.Complete(ctx(t), c, done(t0, nil)), idempotency.ErrFenced)
		mustErr(t, "release", s.Release(ctx(t), c), idempotency.ErrFenced)
	}
	claim(t, s, req("k", "a", t0), idempotency.Acquired)
}

// testRace runs 8 goroutines for 2 owners over the same keys. A fifth of
// the first attempts fail and release; the rest perform the side effect.
// Every key must end with exactly one.
func testRace(t *testing.T, s idempotency.Store) {
	const (
		workers = 8
		keys    = 200
	)
	eff, transactional := s.(Effecter)
	var (
		mu     sync.Mutex
		counts = map[string]int{}
		failed = map[string]bool{}
	)
	effect := func(c idempotency.Claim) error {
		if transactional {
			return eff.Effect(ctx(t), c)
		}
		mu.Lock()
		counts[c.Key]++
		mu.Unlock()
		return s.Complete(ctx(t), c, done(t0, nil))
	}
	failFirst := func(key string) bool {
		mu.Lock()
		defer mu.Unlock()
		if strings.HasSuffix(key, "0") && !failed[key] {
			failed[key] = true
			return true
		}
		return false
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("owner-%d", w%2)
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			pending := make([]string, keys)
			for i := range pending {
				pending[i] = fmt.Sprintf("key-%d", i)
			}
			for len(pending) > 0 {
				rng.Shuffle(len(pending), func(i, j int) { pending[i], pending[j] = pending[j], pending[i] })
				next := pending[:0]
				for _, k := range pending {
					out, err := s.Claim(context.Background(), req(k, owner, t0))
					if err != nil {
						errs <- err
						return
					}
					switch out.Status {
					case idempotency.AlreadyDone:
						continue
					case idempotency.HeldElsewhere:
						next = append(next, k)
						continue
					}
					if failFirst(k) {
						err = s.Release(context.Background(), out.Claim)
					} else {
						err = effect(out.Claim)
					}
					if err != nil {
						errs <- fmt.Errorf("%s %s: %w", owner, k, err)
						return
					}
					next = append(next, k) // see it done
				}
				pending = next
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if transactional {
		var err error
		if counts, err = eff.Effects(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range keys {
		if k := fmt.Sprintf("key-%d", i); counts[k] != 1 {
			t.Errorf("%s: %d side effects, want 1", k, counts[k])
		}
	}
	if len(counts) != keys {
		t.Errorf("side effects for %d keys, want %d", len(counts), keys)
	}
}
