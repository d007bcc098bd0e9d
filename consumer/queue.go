package consumer

import "sync"

// laneQueue holds the lanes ready to run, first in first out, for the
// workers. It has no bound of its own: a lane is queued once at most, so
// the records in flight bound it. A bounded queue (a channel) could fill
// up, records of held partitions being outside MaxInFlight, and a worker
// queueing its own lane again would then wait for itself, the poll loop
// behind it.
type laneQueue struct {
	mu    sync.Mutex
	lanes []*lane
	head  int           // lanes[head:] are queued
	wake  chan struct{} // a token while lanes may be queued and a worker may sleep
}

func newLaneQueue() *laneQueue { return &laneQueue{wake: make(chan struct{}, 1)} }

func (q *laneQueue) push(l *lane) {
	q.mu.Lock()
	if q.head > 0 && q.head >= len(q.lanes)/2 {
		// Reuse the room popped lanes left, at an amortised copy each.
		n := copy(q.lanes, q.lanes[q.head:])
		clear(q.lanes[n:])
		q.lanes, q.head = q.lanes[:n], 0
	}
	q.lanes = append(q.lanes, l)
	q.mu.Unlock()
	q.signal()
}

// pop returns the first lane, or nil when none is queued.
func (q *laneQueue) pop() *lane {
	q.mu.Lock()
	if q.head == len(q.lanes) {
		q.mu.Unlock()
		return nil
	}
	l := q.lanes[q.head]
	q.lanes[q.head] = nil
	q.head++
	more := q.head < len(q.lanes)
	if !more {
		q.lanes, q.head = q.lanes[:0], 0
	}
	q.mu.Unlock()
	if more {
		q.signal() // another worker may be asleep with lanes left
	}
	return l
}

func (q *laneQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
