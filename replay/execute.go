package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/time/rate"
)

// drainTimeout bounds how long a stopping job waits for its in-flight
// records; past it they are abandoned, left for a resumed job's scan to
// find.
const drainTimeout = 10 * time.Second

// readBackTimeout bounds a resumed job's read of its target from the
// checkpoint's floors to the end.
const readBackTimeout = 2 * time.Minute

// execute runs one job until it has sent everything, is cancelled, fails,
// is no longer this Runner's, or the Runner stops. It reports whether the
// job stopped still running and this Runner's, for Run to release.
func (r *Runner) execute(ctx context.Context, l *liveJob, resume bool) (left bool) {
	j := l.snapshot()
	log := r.cfg.logger.With("replay", j.ID)
	var already map[string]bool
	if resume {
		var err error
		if already, err = r.sentSince(ctx, j); err != nil {
			if ctx.Err() == nil {
				// Kept leased: it is tried again once the lease expires.
				log.Error("replay job not resumed: cannot read back its target", "err", err)
				return false
			}
			return l.yieldedFor() == nil
		}
	}

	cp := newCopier(j.Spec.Target.TopicName(), &j)
	pageSize := r.cfg.pageSize
	var limiter *rate.Limiter
	if j.Spec.Rate > 0 {
		// A burst of a tenth of a second's worth keeps the rate even over
		// any second, and absorbs the scheduling delays of a busy machine
		// that a burst of one would turn into a lower rate. A page of at
		// most a second's worth keeps checkpoints frequent.
		limiter = rate.NewLimiter(rate.Limit(j.Spec.Rate), max(1, min(int(j.Spec.Rate/10), 1000)))
		pageSize = min(pageSize, max(1, int(j.Spec.Rate)))
	}
	t := &tracker{live: l, ck: Checkpoint{Cursor: j.Checkpoint.Cursor, Floors: maps.Clone(j.Checkpoint.Floors)}, sent: j.Sent, failed: j.Failed}
	if t.ck.Floors == nil {
		t.ck.Floors = make(map[int32]int64)
	}

	// Produces outlive the job's context so that a cancelled job's
	// in-flight records end as acknowledged or failed, never as unknown,
	// unless the drain times out.
	produceCtx, abandon := context.WithCancel(context.WithoutCancel(ctx))
	defer abandon()
	sem := make(chan struct{}, r.cfg.maxInFlight)
	var inflight sync.WaitGroup

	// save writes as j.Lease.Owner, this Runner, which the store refuses
	// once another runner has taken the job over.
	save := func() error {
		ck, sent, failed := t.fold()
		j.Checkpoint, j.Sent, j.Failed = ck, sent, failed
		sctx, cancel := outliving(ctx)
		defer cancel()
		if err := r.store.UpdateJob(sctx, j); err != nil {
			if elsewhere(err) {
				l.yield(err)
			}
			return err
		}
		l.mu.Lock()
		l.job = j
		l.mu.Unlock()
		return nil
	}

	var (
		readErr   error
		completed bool
		lastSave  = time.Now()
		tokens    int // taken from the limiter, not yet used
	)
	// The limiter hands out tokens a few at a time: one wake-up a record
	// would cost more than the record on a busy machine.
	chunk := 1
	if limiter != nil {
		chunk = max(1, limiter.Burst()/4)
	}
	pages := r.readAhead(ctx, j.Spec.Filter, j.Checkpoint.Cursor, pageSize, j.Matched-j.Sent-j.Failed)
	defer pages.stop()
records:
	for res := range pages.c {
		if res.err != nil {
			if ctx.Err() == nil { // else the job is cancelled or the Runner stops: no read failed
				readErr = fmt.Errorf("read the archive: %w", res.err)
			}
			break
		}
		recs := res.page.Records
		if len(recs) == 0 {
			completed = true
			break
		}
		pg := t.add(lookback.EncodeCursor(lookback.Asc, lookback.PositionOf(&recs[len(recs)-1])), len(recs))
		// One callback for the page's records, which find their origin
		// in their own headers.
		produced := func(kr *kgo.Record, err error) {
			t.ended(pg, kr, err)
			if err != nil && produceCtx.Err() == nil {
				log.Warn("replayed record not produced", "origin", string(originOf(kr)), "err", err)
			}
			<-sem
			inflight.Done()
		}
		copies := cp.page(recs)
		for i := range copies {
			if i%leaseCheckEvery == 0 && !r.holds(l) {
				break records
			}
			if already[string(originOf(&copies[i]))] {
				t.ended(pg, nil, nil)
				continue
			}
			if limiter != nil && tokens == 0 {
				tokens = min(chunk, len(recs)-i)
				// The wait is where a limited job's time goes: the lease
				// is looked at again once it is over.
				if limiter.WaitN(ctx, tokens) != nil || !r.holds(l) {
					break records
				}
			}
			tokens--
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				break records
			}
			inflight.Add(1)
			r.cl.Produce(produceCtx, &copies[i], produced)
		}
		if res.page.NextCursor == "" {
			completed = true
			break
		}
		if time.Since(lastSave) >= r.cfg.checkpointEvery {
			lastSave = time.Now()
			if err := save(); elsewhere(err) {
				break
			} else if err != nil {
				log.Warn("replay checkpoint not stored", "err", err)
			}
		}
	}
	pages.stop()

	drained := make(chan struct{})
	go func() { inflight.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		log.Warn("replay job stopped with records still in flight", "after", drainTimeout)
		abandon()
		<-drained
	}

	by := Actor{Name: j.CreatedBy}
	if completed {
		if err := save(); err != nil && !elsewhere(err) {
			log.Warn("replay checkpoint not stored", "err", err)
		}
	}
	// A job that ends here ends with every record counted, in flight or
	// not at the last checkpoint.
	ended := j
	ended.Sent, ended.Failed = l.sent.Load(), l.failed.Load()
	switch cancelledBy := l.cancelled.Load(); {
	case l.yieldedFor() != nil:
		if errors.Is(l.yieldedFor(), ErrJobFinished) {
			r.settleCancelled(ctx, ended, log)
		}
		logYielded(log, l.yieldedFor())
	case readErr != nil:
		r.finish(ctx, l, ended, Failed, by, readErr)
	case completed:
		status, cause := endOf(ended.Failed, t.abandonedCount())
		r.finish(ctx, l, ended, status, by, cause)
	case cancelledBy != nil:
		r.finish(ctx, l, ended, Cancelled, *cancelledBy, nil)
	default: // the Runner is stopping: keep the job running for the next Run
		if err := save(); elsewhere(err) {
			logYielded(log, err)
			return false
		} else if err != nil {
			log.Warn("replay checkpoint not stored", "err", err)
		}
		return true
	}
	return false
}

// leaseCheckEvery is how many records the produce loop sends between two
// looks at the job's lease.
const leaseCheckEvery = 64

// holds reports whether this Runner may go on producing l's records: its
// lease must outlast a third of the TTL, the margin renew keeps. Renewal
// runs on Run's loop; when it stalls (a database that hangs, a paused
// process), the lease runs out while the job produces, another runner takes
// the job over and reads back what was sent, and whatever is produced here
// after that read is sent twice. Stopping a third of the TTL early leaves
// the records in flight time to land before the lease ends.
func (r *Runner) holds(l *liveJob) bool {
	if l.yieldedFor() != nil {
		return false
	}
	until := time.Unix(0, l.until.Load())
	if r.cfg.now().Add(r.cfg.leaseTTL / 3).Before(until) {
		return true
	}
	l.yield(fmt.Errorf("%w: not renewed before it expires at %s", ErrLeaseLost, until.Format(time.RFC3339Nano)))
	return false
}

// endOf is how a job that read everything ends: failed when any record
// could not be produced, or was abandoned in flight (whether the broker
// wrote it is unknown), else done.
func endOf(failed, abandoned int64) (Status, error) {
	switch {
	case abandoned > 0:
		return Failed, fmt.Errorf("%d records abandoned in flight after %s: whether they were written is unknown", abandoned, drainTimeout)
	case failed > 0:
		return Failed, nil
	}
	return Done, nil
}

// logYielded says why a job stopped here without ending.
func logYielded(log *slog.Logger, err error) {
	switch {
	case errors.Is(err, ErrJobFinished):
		log.Info("replay job cancelled elsewhere")
	case errors.Is(err, ErrJobHeld), errors.Is(err, ErrLeaseLost):
		log.Error("replay job taken over by another runner; stopped here", "err", err)
	default:
		log.Error("replay job stopped here: its lease could not be renewed; another runner may take it over", "err", err)
	}
}

// copier makes a job's replayed copies: key, value and headers, without
// trace headers (a copy starts a trace of its own), earlier replay headers
// and dead-letter headers (a parked record sent again is a copy, which
// lookback links to what it copies, not a parked record it archives), plus
// the job's, the origin last.
type copier struct {
	topic    string
	id, mode []byte // shared by every copy: franz-go only reads them
}

func newCopier(topic string, j *Job) *copier {
	return &copier{topic: topic, id: []byte(j.ID), mode: []byte(j.Mode)}
}

// originOf returns the origin header of a copy, which copier puts last.
func originOf(kr *kgo.Record) []byte { return kr.Headers[len(kr.Headers)-1].Value }

// page returns the copies of recs, in order. A page's copies share one
// array of records, one of headers and one of origins, since they live and
// die together: a few allocations a page instead of several a record.
func (c *copier) page(recs []lookback.Record) []kgo.Record {
	nh, no := 0, 0
	for i := range recs {
		nh += len(recs[i].Headers) + 3
		no += len(recs[i].Topic) + 2 + 11 + 20 // the longest coordinates
	}
	out := make([]kgo.Record, len(recs))
	hs := make([]kgo.RecordHeader, 0, nh)
	origins := make([]byte, 0, no)
	for i := range recs {
		rec := &recs[i]
		first := len(hs)
		for _, h := range rec.Headers {
			if strings.HasPrefix(h.Key, eventkit.HeaderReplayPrefix) || strings.HasPrefix(h.Key, eventkit.HeaderDeadLetterPrefix) || slices.Contains(eventkit.TraceHeaders, h.Key) {
				continue
			}
			hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		start := len(origins)
		origins = eventkit.AppendCoordinates(origins, rec.Topic, rec.Partition, rec.Offset)
		hs = append(hs,
			kgo.RecordHeader{Key: eventkit.HeaderReplayID, Value: c.id},
			kgo.RecordHeader{Key: eventkit.HeaderReplayMode, Value: c.mode},
			kgo.RecordHeader{Key: eventkit.HeaderReplayOrigin, Value: origins[start:len(origins):len(origins)]},
		)
		out[i] = kgo.Record{Topic: c.topic, Key: rec.Key, Value: rec.Value, Headers: hs[first:len(hs):len(hs)]}
	}
	return out
}

// sentSince reads j's target from its checkpoint's floors to the end and
// returns the origins of the records of j found there: what a previous run
// sent after its last checkpoint.
func (r *Runner) sentSince(ctx context.Context, j Job) (map[string]bool, error) {
	topic := j.Spec.Target.TopicName()
	ends, err := kadm.NewClient(r.cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s: %w", topic, err)
	}
	from := make(map[int32]kgo.Offset)
	want := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) {
		if floor := j.Checkpoint.Floors[o.Partition]; floor < o.Offset {
			from[o.Partition] = kgo.NewOffset().At(floor)
			want[o.Partition] = o.Offset
		}
	})
	found := make(map[string]bool)
	if len(from) == 0 {
		return found, nil
	}
	// Control records (the markers of transactions another application
	// wrote to the target) come back too: a partition whose last offset is
	// one would otherwise never show its last record, and the read-back
	// would wait for it until readBackTimeout, again at every try.
	cl, err := kgo.NewClient(append(r.cl.Opts(), kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	id := []byte(j.ID)
	// The read-back waits for each partition's last record. One that never
	// comes (records deleted meanwhile) must not hold the job, leased and
	// silent, for good: past readBackTimeout the resume fails with the
	// partitions left, and is tried again later.
	readCtx, cancel := context.WithTimeout(ctx, readBackTimeout)
	defer cancel()
	for len(want) > 0 {
		fs := cl.PollFetches(readCtx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if readCtx.Err() != nil {
			return nil, fmt.Errorf("read back %s: no record up to the end offsets %v (partition: end) after %s", topic, want, readBackTimeout)
		}
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("read %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(kr *kgo.Record) {
			end, ok := want[kr.Partition]
			if !ok || kr.Offset >= end {
				return
			}
			if kr.Offset == end-1 {
				delete(want, kr.Partition)
			}
			if kr.Attrs.IsControl() {
				return
			}
			var mine bool
			var origin string
			for _, h := range kr.Headers {
				switch h.Key {
				case eventkit.HeaderReplayID:
					mine = string(h.Value) == string(id)
				case eventkit.HeaderReplayOrigin:
					origin = string(h.Value)
				}
			}
			if mine && origin != "" {
				found[origin] = true
			}
		})
	}
	return found, nil
}

// tracker follows a job's records from produce to acknowledgement, and
// folds the longest prefix of pages whose records have all ended into the
// checkpoint.
type tracker struct {
	live *liveJob

	mu           sync.Mutex
	pages        []*page // submitted, not yet folded, in order
	ck           Checkpoint
	sent, failed int64 // the records up to ck.Cursor
	abandoned    int64 // records whose produce was given up: written or not, unknown
}

type page struct {
	end          string // the cursor after its last record
	left         int    // records not yet ended
	unknown      bool   // a record was abandoned: it may or may not be written
	floors       map[int32]int64
	sent, failed int64
}

func (t *tracker) add(end string, n int) *page {
	p := &page{end: end, left: n, floors: make(map[int32]int64)}
	t.mu.Lock()
	t.pages = append(t.pages, p)
	t.mu.Unlock()
	return p
}

// ended records one record's outcome: kr nil for a record a previous run
// already sent, err non-nil for a failure.
func (t *tracker) ended(p *page, kr *kgo.Record, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p.left--
	switch {
	case err == nil:
		p.sent++
		t.live.sent.Add(1)
		if kr != nil {
			p.floors[kr.Partition] = max(p.floors[kr.Partition], kr.Offset+1)
		}
	case errors.Is(err, context.Canceled):
		p.unknown = true
		t.abandoned++
	default:
		p.failed++
		t.live.failed.Add(1)
	}
}

func (t *tracker) abandonedCount() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.abandoned
}

// fold moves the pages that have ended into the checkpoint and returns it
// with the counts up to it.
func (t *tracker) fold() (Checkpoint, int64, int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.pages) > 0 && t.pages[0].left == 0 && !t.pages[0].unknown {
		p := t.pages[0]
		t.pages = t.pages[1:]
		t.ck.Cursor = p.end
		for part, f := range p.floors {
			t.ck.Floors[part] = max(t.ck.Floors[part], f)
		}
		t.sent += p.sent
		t.failed += p.failed
	}
	return Checkpoint{Cursor: t.ck.Cursor, Floors: maps.Clone(t.ck.Floors)}, t.sent, t.failed
}
