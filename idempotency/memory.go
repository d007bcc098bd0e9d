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
//
// A store holds a record for every event of the retention period, millions
// of them on a busy node, so records are laid out for the garbage collector
// and the cache: a shard's map is keyed by a 128-bit hash of the key (two
// seeds of hash/maphash) and holds records with no pointer either (times
// as Unix nanoseconds, the owner as an index into the shard's few owners),
// so the collector never scans it. Two keys of one hash would be one
// record; among a million keys the odds are about one in 10^27. The rare
// results live in a map of their own.
type MemoryStore struct {
	seeds  [2]maphash.Seed
	shards [memoryShards]memoryShard
}

// memoryKey is a key's 128-bit hash.
type memoryKey [2]uint64

type memoryShard struct {
	mu        sync.Mutex
	records   map[memoryKey]record
	results   map[memoryKey][]byte // of done records that have one
	owners    []string             // record.owner indexes this
	ownerIDs  map[string]uint32
	nextPrune time.Time
	_         [64]byte // keep shards on separate cache lines
}

// record is one key's state; the zero record is absent.
type record struct {
	until     int64 // lease deadline, Unix ns
	doneAt    int64 // Unix ns
	expire    int64 // Unix ns
	token     int64
	attempt   int
	owner     uint32
	state     State
	takenOver bool
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore {
	m := &MemoryStore{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	for i := range m.shards {
		s := &m.shards[i]
		s.records = make(map[memoryKey]record)
		s.results = make(map[memoryKey][]byte)
		s.ownerIDs = make(map[string]uint32)
	}
	return m
}

// shard returns key's hash and the shard that holds it.
func (m *MemoryStore) shard(key string) (memoryKey, *memoryShard) {
	k := memoryKey{maphash.String(m.seeds[0], key), maphash.String(m.seeds[1], key)}
	return k, &m.shards[k[0]%memoryShards]
}

// Claim implements [Store].
func (m *MemoryStore) Claim(_ context.Context, r ClaimRequest) (Outcome, error) {
	if err := CheckClaim(r); err != nil {
		return Outcome{}, err
	}
	k, s := m.shard(r.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Now.After(s.nextPrune) {
		s.pruneLocked(r.Now, -1)
		s.nextPrune = r.Now.Add(memoryPruneEvery)
	}
	rec := s.records[k]
	switch rec.state {
	case Done:
		return Outcome{Status: AlreadyDone, DoneAt: time.Unix(0, rec.doneAt), Result: s.results[k]}, nil
	case Claimed:
		if rec.until > r.Now.UnixNano() {
			return Outcome{Status: HeldElsewhere, Claim: s.asClaim(r.Key, rec)}, nil
		}
	}
	rec.takenOver = rec.state == Claimed
	rec.state = Claimed
	rec.owner = s.ownerID(r.Owner)
	rec.token = max(rec.token+1, r.Now.UnixNano()) // see Claim.Token
	rec.attempt++
	rec.until = r.Until.UnixNano()
	rec.expire = r.Expire.UnixNano()
	s.records[k] = rec
	// The caller's Until is returned as given, not as read back.
	c := Claim{Key: r.Key, Owner: r.Owner, Token: rec.token, Attempt: rec.attempt, Deadline: r.Until}
	return Outcome{Status: Acquired, Claim: c, TakenOver: rec.takenOver}, nil
}

// Complete implements [Store].
func (m *MemoryStore) Complete(_ context.Context, c Claim, d Completion) error {
	k, s := m.shard(c.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[k]
	switch {
	case ok && rec.state == Claimed && s.holds(rec, c):
		rec.state = Done
		rec.doneAt = d.At.UnixNano()
		rec.expire = d.Expire.UnixNano()
		s.records[k] = rec
		if d.Result != nil {
			s.results[k] = append([]byte(nil), d.Result...)
		}
		return nil
	case ok && rec.state == Done && s.holds(rec, c):
		return nil // marked already, by a transactional variant
	}
	return ErrFenced
}

// Release implements [Store].
func (m *MemoryStore) Release(_ context.Context, c Claim) error {
	return m.changeHeld(c, func(rec *record) { rec.state = Released })
}

// changeHeld applies change to the record c holds, or refuses with
// ErrFenced when c no longer holds it.
func (m *MemoryStore) changeHeld(c Claim, change func(*record)) error {
	k, s := m.shard(c.Key)
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.records[k]
	if !ok || rec.state != Claimed || !s.holds(rec, c) {
		return ErrFenced
	}
	change(&rec)
	s.records[k] = rec
	return nil
}

// ResetAttempts implements [AttemptResetter].
func (m *MemoryStore) ResetAttempts(_ context.Context, c Claim) error {
	return m.changeHeld(c, func(rec *record) { rec.attempt = 1 })
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
	t := now.UnixNano()
	n := 0
	for k, rec := range s.records {
		if n == limit {
			break
		}
		// Past its expiry, with no live lease.
		if rec.expire < t && (rec.state != Claimed || rec.until <= t) {
			delete(s.records, k)
			delete(s.results, k)
			n++
		}
	}
	return n
}

// ownerID interns owner: a shard sees one owner per node that claimed in it.
func (s *memoryShard) ownerID(owner string) uint32 {
	id, ok := s.ownerIDs[owner]
	if !ok {
		id = uint32(len(s.owners))
		s.owners = append(s.owners, owner)
		s.ownerIDs[owner] = id
	}
	return id
}

func (s *memoryShard) holds(rec record, c Claim) bool {
	return rec.token == c.Token && s.owners[rec.owner] == c.Owner
}

func (s *memoryShard) asClaim(key string, rec record) Claim {
	return Claim{Key: key, Owner: s.owners[rec.owner], Token: rec.token, Attempt: rec.attempt, Deadline: time.Unix(0, rec.until)}
}
