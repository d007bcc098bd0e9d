package idempotency

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// memoryShards spreads keys over locks, so that the agent's workers do not
// queue on one mutex.
const memoryShards = 64

// memoryPruneEvery is how often a shard drops its expired records. A shard
// prunes itself during a claim, on the claim's clock, so the store needs no
// goroutine.
const memoryPruneEvery = time.Minute

// MemoryStore is a [Store] in the process's memory, for tests, single-node
// deployments that accept losing the state on restart, and benchmarks. It
// is also a [Pruner].
type MemoryStore struct {
	seed   maphash.Seed
	shards [memoryShards]memoryShard
}

type memoryShard struct {
	mu        sync.Mutex
	records   map[string]*record
	nextPrune time.Time
	_         [64]byte // keep shards on separate cache lines
}

// record is one key's state.
type record struct {
	state     State
	owner     string
	token     int64
	attempt   int
	until     time.Time
	doneAt    time.Time
	expire    time.Time
	result    []byte
	takenOver bool
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	m := &MemoryStore{seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].records = make(map[string]*record)
	}
	return m
}

func (m *MemoryStore) shard(key string) *memoryShard {
	return &m.shards[maphash.String(m.seed, key)%memoryShards]
}

// Claim implements [Store].
func (m *MemoryStore) Claim(_ context.Context, r ClaimRequest) (Outcome, error) {
	s := m.shard(r.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Now.After(s.nextPrune) {
		s.pruneLocked(r.Now, -1)
		s.nextPrune = r.Now.Add(memoryPruneEvery)
	}
	rec := s.records[r.Key]
	if rec == nil {
		rec = &record{}
		s.records[r.Key] = rec
	}
	return rec.claim(r), nil
}

// Complete implements [Store].
func (m *MemoryStore) Complete(_ context.Context, c Claim, d Completion) error {
	return m.update(c.Key, func(rec *record) error { return rec.complete(c, d) })
}

// Release implements [Store].
func (m *MemoryStore) Release(_ context.Context, c Claim) error {
	return m.update(c.Key, func(rec *record) error { return rec.release(c) })
}

// update applies fn to key's record under its shard's lock; a mark of an
// absent key is fenced.
func (m *MemoryStore) update(key string, fn func(*record) error) error {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.records[key]
	if rec == nil {
		return ErrFenced
	}
	return fn(rec)
}

// Prune implements [Pruner].
func (m *MemoryStore) Prune(_ context.Context, now time.Time, limit int) (int, error) {
	n := 0
	for i := range m.shards {
		if limit >= 0 && n >= limit {
			break
		}
		s := &m.shards[i]
		s.mu.Lock()
		left := -1
		if limit >= 0 {
			left = limit - n
		}
		n += s.pruneLocked(now, left)
		s.mu.Unlock()
	}
	return n, nil
}

// pruneLocked removes up to limit (all when negative) expired records.
func (s *memoryShard) pruneLocked(now time.Time, limit int) int {
	n := 0
	for k, rec := range s.records {
		if n == limit {
			break
		}
		if rec.expired(now) {
			delete(s.records, k)
			n++
		}
	}
	return n
}

// claim applies a claim request to the record; a zero record is absent.
func (rec *record) claim(r ClaimRequest) Outcome {
	switch rec.state {
	case Done:
		return Outcome{Status: AlreadyDone, DoneAt: rec.doneAt, Result: rec.result}
	case Claimed:
		if rec.until.After(r.Now) {
			return Outcome{Status: HeldElsewhere, Claim: rec.asClaim(r.Key)}
		}
	}
	rec.takenOver = rec.state == Claimed
	rec.state = Claimed
	rec.owner = r.Owner
	rec.token++
	rec.attempt++
	rec.until = r.Until
	rec.expire = r.Expire
	return Outcome{Status: Acquired, Claim: rec.asClaim(r.Key), TakenOver: rec.takenOver}
}

func (rec *record) holds(c Claim) bool { return rec.owner == c.Owner && rec.token == c.Token }

func (rec *record) complete(c Claim, d Completion) error {
	switch {
	case rec.state == Claimed && rec.holds(c):
		rec.state = Done
		rec.doneAt = d.At
		rec.expire = d.Expire
		if d.Result != nil {
			rec.result = append([]byte(nil), d.Result...)
		}
		return nil
	case rec.state == Done && rec.holds(c):
		return nil // marked already, by a transactional variant
	}
	return ErrFenced
}

func (rec *record) release(c Claim) error {
	if rec.state != Claimed || !rec.holds(c) {
		return ErrFenced
	}
	rec.state = Released
	return nil
}

// expired reports whether the record may be pruned: past its expiry, with
// no live lease.
func (rec *record) expired(now time.Time) bool {
	return rec.expire.Before(now) && (rec.state != Claimed || !rec.until.After(now))
}

func (rec *record) asClaim(key string) Claim {
	return Claim{Key: key, Owner: rec.owner, Token: rec.token, Attempt: rec.attempt, Deadline: rec.until}
}
