package replay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Actor is who asks for a replay or its cancellation, as the audit log
// records them.
type Actor struct {
	Name string
	Role string
}

// Runner runs replay jobs: it reads their records from the archive, page by
// page, and produces copies to their target with the replay headers, at
// their rate, keeping each job's progress in a [JobStore]. Run owns every
// job's goroutine; a job that Run leaves unfinished (the process stopped or
// crashed) is resumed by the next Run on the same store.
//
// # One runner per job
//
// Several Runners may share a store (lookback and an `eventkit replay --db`
// command, say); a [Lease] in the store gives each running job to one of
// them. A Runner stores the jobs it starts leased to itself, renews the
// leases of the jobs it runs every third of [LeaseTTL], and on the same
// tick takes over the running jobs whose lease has expired or was
// released. A Runner that stops gracefully releases its unfinished jobs,
// so that the next one resumes them at once; the jobs of a killed process
// are taken over once their leases expire. A Runner whose lease went to
// another stops the job without writing to it. Lease times come from the
// [Clock] of each Runner: the clocks of hosts sharing a store must agree to
// well within the TTL.
//
// # Exactly once across restarts
//
// A job checkpoints the archive cursor after a prefix of records that Kafka
// acknowledged, together with Floors: per target partition, the offset
// after the last record of that prefix. Records produced after the
// checkpoint can only lie at or above the floor, because a partition keeps
// the order of one producer's writes and franz-go's idempotent producer
// never reorders or duplicates them. A resumed job first reads the target
// from the floors to the end and collects the origins of the records that
// carry its own replay id; it then resumes the query at the cursor and
// counts those origins as sent instead of producing them again. The scan
// covers at most the records of one checkpoint interval and what was in
// flight, whatever the size of the job.
//
// Kafka transactions would make a checkpoint and its records commit
// together only if the checkpoint lived in Kafka and every consumer read
// committed records only; the agent reads uncommitted ones, which would
// deliver the records of an aborted transaction and then their resent
// copies. The scan needs nothing of consumers. Its one window is a produce
// request that a crashed process had already sent but the broker handles
// only after the restarted job's scan began: a restart takes far longer
// than the broker needs to handle what is already on its socket.
type Runner struct {
	cl      *kgo.Client
	archive lookback.Archive
	store   JobStore
	cfg     cfg

	ready     chan struct{} // closed once Run has resumed the stored jobs, or returned
	readyOnce sync.Once

	mu      sync.Mutex
	base    context.Context // Run's context; nil outside Run
	started bool            // Run was called
	// accepting is set once Run has listed and resumed the stored running
	// jobs: a job Start stored during the listing would be listed too and
	// run twice.
	accepting bool
	wg        sync.WaitGroup // every job goroutine
	live      map[string]*liveJob
	// left are the jobs that stopped because Run stops, still running in
	// the store: released once every job goroutine has stopped, which is
	// after the last renewal.
	left []string
}

// NewRunner returns a Runner that reads archive, keeps its jobs in store
// and produces through cl. The client stays the caller's to close; keep
// its idempotent writes on (franz-go's default) and its default
// partitioner, which places records by key hash as the original producers
// did.
func NewRunner(cl *kgo.Client, archive lookback.Archive, store JobStore, opts ...Opt) *Runner {
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	return &Runner{cl: cl, archive: archive, store: store, cfg: c, ready: make(chan struct{}), live: make(map[string]*liveJob)}
}

// liveJob is a job this Runner is running.
type liveJob struct {
	id string

	mu      sync.Mutex
	job     Job   // as last persisted
	lease   Lease // as last acquired or renewed
	yielded error // why the job is no longer this Runner's to write; see yield
	// until is lease.Until in Unix nanoseconds, for the produce loop to
	// read without the lock.
	until atomic.Int64

	sent, failed atomic.Int64
	cancel       context.CancelFunc
	cancelled    atomic.Pointer[Actor] // set by Cancel before cancel()
	done         chan struct{}
}

// yield stops the job without finishing or saving it here, for err: another
// runner holds it, another process ended it, or its lease is about to
// lapse.
func (l *liveJob) yield(err error) {
	l.mu.Lock()
	if l.yielded == nil {
		l.yielded = err
	}
	l.mu.Unlock()
	l.cancel()
}

func (l *liveJob) yieldedFor() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.yielded
}

// elsewhere reports whether err says that the job is no longer this
// Runner's to write: another runner holds it, or it has ended.
func elsewhere(err error) bool {
	return errors.Is(err, ErrJobHeld) || errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrJobFinished)
}

func (l *liveJob) snapshot() Job {
	l.mu.Lock()
	j := l.job
	j.Lease = l.lease
	l.mu.Unlock()
	if j.Status == Running {
		j.Sent, j.Failed = l.sent.Load(), l.failed.Load()
		j.Matched = max(j.Matched, j.Sent+j.Failed)
	}
	return j
}

// Run resumes the store's running jobs that no other Runner holds, runs
// the jobs [Runner.Start] adds, renews their leases, takes over the jobs
// whose lease expires, and returns once ctx is done and every job
// goroutine has stopped. Jobs stopped so stay running in the store,
// checkpointed and released, for the next Run. Run returns an error only
// when it cannot list the jobs to resume when it starts. A Runner runs
// once.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("replay runner: Run called twice")
	}
	r.started, r.base = true, ctx
	r.mu.Unlock()
	markReady := func() { r.readyOnce.Do(func() { close(r.ready) }) }
	defer func() {
		r.mu.Lock()
		r.base, r.accepting = nil, false
		r.mu.Unlock()
		markReady() // a caller waiting on Ready learns Start's ErrNotRunning
		r.wg.Wait()
		r.releaseLeft(ctx) // each release outlives ctx, bounded
	}()

	if err := r.takeFree(ctx, true); err != nil {
		return err
	}
	r.mu.Lock()
	r.accepting = true
	r.mu.Unlock()
	markReady()

	// A third of the TTL leaves a failed renewal one more try before the
	// lease expires.
	tick := time.NewTicker(r.cfg.leaseTTL / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		r.renew(ctx)
		if err := r.takeFree(ctx, false); err != nil && ctx.Err() == nil {
			r.cfg.logger.Warn("replay runner: running jobs not listed", "err", err)
		}
	}
}

func (r *Runner) lease(now time.Time) Lease {
	return Lease{Owner: r.cfg.id, Until: now.Add(r.cfg.leaseTTL)}
}

// takeFree lists the store's running jobs and resumes those that no other
// Runner holds. The first listing, before Start is accepted, asks for each
// and logs those held elsewhere. Later listings skip at once every job
// whose lease has not expired, which includes the jobs that Start is
// storing meanwhile, leased to this Runner, and are not live yet.
func (r *Runner) takeFree(ctx context.Context, first bool) error {
	jobs, err := r.store.Jobs(ctx, Running)
	if err != nil {
		return fmt.Errorf("replay runner: list running jobs: %w", err)
	}
	now := r.cfg.now()
	for _, j := range jobs {
		if !r.cfg.resume(j.ID) || r.liveJob(j.ID) != nil || (!first && j.Lease.Held(now)) {
			continue
		}
		got, err := r.store.AcquireJob(ctx, j.ID, r.lease(now), now)
		switch {
		case errors.Is(err, ErrJobHeld):
			if first {
				r.cfg.logger.Info("replay job runs elsewhere; taken over if that lease expires",
					"id", j.ID, "owner", got.Lease.Owner, "until", got.Lease.Until)
			}
			continue
		case errors.Is(err, ErrJobFinished):
			continue
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.cfg.logger.Error("replay job not taken; tried again later", "id", j.ID, "err", err)
			continue
		}
		r.cfg.logger.Info("resuming replay job", "id", j.ID, "target", j.Target.String(), "sent", got.Sent, "matched", got.Matched,
			"previous_owner", j.Lease.Owner)
		switch err := r.launch(got, true); {
		case errors.Is(err, errLive): // Start launched it meanwhile
		case err != nil:
			r.release(ctx, j.ID)
			return err
		}
	}
	return nil
}

// renew extends the lease of every job running here. A job whose lease
// went to another runner, or that another process ended, stops without
// being finished or saved here; so does a job whose lease would expire
// before the next try, since another runner may take it over then.
func (r *Runner) renew(ctx context.Context) {
	r.mu.Lock()
	live := make([]*liveJob, 0, len(r.live))
	for _, l := range r.live {
		live = append(live, l)
	}
	r.mu.Unlock()
	for _, l := range live {
		now := r.cfg.now()
		j, err := r.store.AcquireJob(ctx, l.id, r.lease(now), now)
		switch until := l.snapshot().Lease.Until; {
		case err == nil && !r.cfg.now().Before(until):
			// The lease ended before this renewal came through (a store
			// that hung): another runner may have taken the job over,
			// sent past this runner's cursor and let it go meanwhile.
			// Going on from here would send that again. The job stops
			// here, its lease left to expire after the drain, for a
			// runner that reads back the target.
			l.yield(fmt.Errorf("%w: renewed only after it had expired at %s; another runner may have held the job meanwhile",
				ErrLeaseLost, until.Format(time.RFC3339Nano)))
		case err == nil:
			l.mu.Lock()
			l.lease = j.Lease
			l.until.Store(j.Lease.Until.UnixNano())
			l.mu.Unlock()
		case elsewhere(err):
			l.yield(err)
		case ctx.Err() != nil:
			return
		case !now.Add(r.cfg.leaseTTL / 3).Before(until):
			l.yield(fmt.Errorf("lease not renewed before it expires at %s: %w", until.Format(time.RFC3339Nano), err))
		default:
			r.cfg.logger.Warn("replay job lease not renewed; tried again later", "id", l.id, "until", until, "err", err)
		}
	}
}

// storeTimeout bounds a store or audit write that outlives the context it
// runs for (a job's last checkpoint, its end, a lease released, an audit
// entry): a store that hangs must not keep Run from returning.
const storeTimeout = 10 * time.Second

// outliving returns a context for such a write.
func outliving(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
}

// release clears this Runner's lease on the job, so that the next Runner
// resumes it at once; without, it waits for the lease to expire.
func (r *Runner) release(ctx context.Context, id string) {
	ctx, cancel := outliving(ctx)
	defer cancel()
	if err := r.store.ReleaseJob(ctx, id, r.cfg.id); err != nil {
		r.cfg.logger.Warn("replay job lease not released: taken over once it expires", "id", id, "err", err)
	}
}

func (r *Runner) releaseLeft(ctx context.Context) {
	r.mu.Lock()
	left := r.left
	r.left = nil
	r.mu.Unlock()
	for _, id := range left {
		r.release(ctx, id)
	}
}

// Ready is closed once Run has resumed the stored running jobs, so that
// Start can be called, or once Run has returned.
func (r *Runner) Ready() <-chan struct{} { return r.ready }

// errLive: launch found the job running here already.
var errLive = errors.New("replay job running here already")

// launch starts j's goroutine under Run. A job Start stores is live only
// once launched, and a later listing may meet it: whichever launches it
// first runs it, and the other gets errLive.
func (r *Runner) launch(j Job, resume bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.base == nil || r.base.Err() != nil || (!resume && !r.accepting) {
		return ErrNotRunning
	}
	if _, dup := r.live[j.ID]; dup {
		return errLive
	}
	ctx, cancel := context.WithCancel(r.base)
	l := &liveJob{id: j.ID, job: j, lease: j.Lease, cancel: cancel, done: make(chan struct{})}
	l.until.Store(j.Lease.Until.UnixNano())
	l.sent.Store(j.Sent)
	l.failed.Store(j.Failed)
	r.live[j.ID] = l
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(l.done)
		defer cancel()
		left := r.execute(ctx, l, resume)
		r.mu.Lock()
		delete(r.live, j.ID)
		if left {
			r.left = append(r.left, j.ID)
		}
		r.mu.Unlock()
	}()
	return nil
}

// Start validates spec, prepares its target (creating a group's replay
// topic when missing), counts the records it matches, stores the job and
// starts it. It fails matching [ErrInvalidSpec] for a spec that cannot run
// and [ErrNotRunning] outside Run or before [Runner.Ready] is closed.
func (r *Runner) Start(ctx context.Context, spec Spec, actor Actor) (Job, error) {
	if spec.DryRun {
		return Job{}, &matchErr{"a dry run starts no job: ask DryRun", ErrInvalidSpec}
	}
	if err := spec.Validate(); err != nil {
		return Job{}, err
	}
	if !r.running() {
		return Job{}, ErrNotRunning
	}
	now := r.cfg.now()
	spec = spec.withDefaults()
	spec.Filter = heldAt(spec.Filter, now)
	topic := spec.Target.TopicName()
	adm := kadm.NewClient(r.cl)
	if err := r.prepareTarget(ctx, adm, spec); err != nil {
		return Job{}, err
	}
	matched, err := r.archive.Count(ctx, spec.Filter)
	if err != nil {
		return Job{}, fmt.Errorf("replay: count: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return Job{}, fmt.Errorf("replay: end offsets of %s: %w", topic, err)
	}
	floors := make(map[int32]int64)
	ends.Each(func(o kadm.ListedOffset) { floors[o.Partition] = o.Offset })

	id, err := uuid.NewV7()
	if err != nil {
		return Job{}, fmt.Errorf("replay: new id: %w", err)
	}
	j := Job{
		ID: id.String(), Status: Running, Matched: matched,
		Target: spec.Target, Mode: spec.Mode, CreatedBy: actor.Name, CreatedAt: now,
		Spec: spec, Checkpoint: Checkpoint{Floors: floors},
		// From now, not from the start of Start: preparing the target
		// may take a while.
		Lease: r.lease(r.cfg.now()),
	}
	if err := r.store.CreateJob(ctx, j); err != nil {
		return Job{}, fmt.Errorf("replay: store job: %w", err)
	}
	r.audit(ctx, actor, "replay.start", j, map[string]any{"spec": spec, "matched": matched}, "ok")
	switch err := r.launch(j, false); {
	case errors.Is(err, errLive): // a listing met it first, and runs it
	case err != nil:
		// Run ended between the check and here: the stored job, released,
		// resumes with the next Run.
		r.release(ctx, j.ID)
		return j, err
	}
	return j, nil
}

func (r *Runner) running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.base != nil && r.base.Err() == nil && r.accepting
}

// prepareTarget checks that a topic target exists (nothing creates topics
// automatically), and creates a group's replay topic when it is missing,
// sized as the group's agents would: like the widest topic the group
// consumes.
func (r *Runner) prepareTarget(ctx context.Context, adm *kadm.Client, spec Spec) error {
	if spec.Target.Topic != "" {
		if _, err := kafka.PartitionCount(ctx, adm, spec.Target.Topic); err != nil {
			return &matchErr{fmt.Sprintf("target %v", err), ErrInvalidSpec}
		}
		return nil
	}
	n, err := r.widestSource(ctx, adm, spec)
	if err != nil {
		return err
	}
	return kafka.EnsureTopic(ctx, adm, spec.Target.TopicName(), n)
}

// widestSource returns the partition count of the widest topic the group
// committed offsets on; for a group that never committed, of the widest
// topic the job may read (the filter's topic, else every archived one) as
// the cluster has it, or as the archive saw it where the cluster no longer
// has it.
func (r *Runner) widestSource(ctx context.Context, adm *kadm.Client, spec Spec) (int32, error) {
	var topics []string
	if committed, err := adm.FetchOffsets(ctx, spec.Target.Group); err == nil {
		for _, t := range committed.Partitions().Topics() {
			if !isEventkitTopic(t) {
				topics = append(topics, t)
			}
		}
	}
	archived := make(map[string]int32)
	if len(topics) == 0 {
		stats, err := r.archive.Topics(ctx)
		if err != nil {
			return 0, fmt.Errorf("replay: archived topics: %w", err)
		}
		for _, s := range stats {
			if spec.Filter.Topic == "" || s.Topic == spec.Filter.Topic {
				topics = append(topics, s.Topic)
				archived[s.Topic] = s.Partitions
			}
		}
	}
	widest := int32(1)
	if len(topics) == 0 {
		return widest, nil
	}
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("replay: describe %v: %w", topics, err)
	}
	for _, t := range topics {
		if td, ok := details[t]; ok && td.Err == nil {
			widest = max(widest, int32(len(td.Partitions)))
		} else {
			widest = max(widest, archived[t])
		}
	}
	return widest, nil
}

func isEventkitTopic(t string) bool {
	return len(t) >= len("eventkit.") && t[:len("eventkit.")] == "eventkit."
}

// DryRun counts the records spec matches and returns the first few of
// them (SampleSize), oldest first, without producing anything.
func (r *Runner) DryRun(ctx context.Context, spec Spec) (matched int64, sample []lookback.Record, err error) {
	if err := spec.Validate(); err != nil {
		return 0, nil, err
	}
	spec.Filter = heldAt(spec.Filter, r.cfg.now()) // what Start would count
	if matched, err = r.archive.Count(ctx, spec.Filter); err != nil {
		return 0, nil, fmt.Errorf("replay: count: %w", err)
	}
	if matched == 0 || r.cfg.sample == 0 {
		return matched, []lookback.Record{}, nil
	}
	page, err := r.archive.Query(ctx, lookback.Query{Filter: spec.Filter, Order: lookback.Asc, Limit: r.cfg.sample})
	if err != nil {
		return 0, nil, fmt.Errorf("replay: sample: %w", err)
	}
	return matched, page.Records, nil
}

// heldAt bounds a filter without an end at now: a job replays what the
// archive held when it started, so that a busy topic cannot keep it going
// for ever. A filter that starts after now ends where it starts, matching
// next to nothing rather than being refused for a "to" no one gave.
func heldAt(f lookback.Filter, now time.Time) lookback.Filter {
	if f.To.IsZero() {
		f.To = now
		if f.From.After(now) {
			f.To = f.From
		}
	}
	return f
}

// Get returns the job with that id, with live counters while this Runner
// runs it; an unknown id fails matching [ErrJobNotFound].
func (r *Runner) Get(ctx context.Context, id string) (Job, error) {
	if l := r.liveJob(id); l != nil {
		return l.snapshot(), nil
	}
	return r.store.Job(ctx, id)
}

// List returns every job, newest first, with live counters for those this
// Runner runs.
func (r *Runner) List(ctx context.Context) ([]Job, error) {
	jobs, err := r.store.Jobs(ctx, "")
	if err != nil {
		return nil, err
	}
	for i := range jobs {
		if l := r.liveJob(jobs[i].ID); l != nil {
			jobs[i] = l.snapshot()
		}
	}
	return jobs, nil
}

func (r *Runner) liveJob(id string) *liveJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live[id]
}

// Wait returns the job once it has stopped running in this Runner (or at
// once when it does not run here).
func (r *Runner) Wait(ctx context.Context, id string) (Job, error) {
	if l := r.liveJob(id); l != nil {
		select {
		case <-l.done:
		case <-ctx.Done():
			return Job{}, ctx.Err()
		}
	}
	return r.store.Job(ctx, id)
}

// Cancel stops a running job and returns it once none of its records can
// be produced any more: its in-flight records have been acknowledged or
// failed, and its counters are final. A job that has ended fails matching
// [ErrJobFinished]. A job running in another process is marked cancelled in
// the store; that process stops it at its next checkpoint (a second at
// most, by default), records its final counters and lets its lease go.
// Cancel waits for that, up to holderWait or until the holder's lease
// ends, whichever comes first; past it, the job it returns holds the
// counters of the last checkpoint.
func (r *Runner) Cancel(ctx context.Context, id string, actor Actor) (Job, error) {
	l := r.liveJob(id)
	if l == nil {
		return r.cancelStored(ctx, id, actor)
	}
	l.cancelled.Store(&actor)
	l.cancel()
	select {
	case <-l.done:
	case <-ctx.Done():
		return Job{}, ctx.Err()
	}
	j, err := r.store.Job(ctx, id)
	if err != nil {
		return Job{}, err
	}
	if j.Status == Running {
		// It stopped here without ending: another runner has it now.
		return r.cancelStored(ctx, id, actor)
	}
	if j.Status != Cancelled {
		// It ended by itself before the cancel took.
		r.audit(ctx, actor, "replay.cancel", j, nil, "conflict: "+string(j.Status))
		return j, fmt.Errorf("job %s is %s: %w", id, j.Status, ErrJobFinished)
	}
	return j, nil
}

// cancelStored ends a job that runs elsewhere (or nowhere) in the store.
// It writes as the holder of the job's lease, whose process stops the job
// at its next checkpoint or renewal. A lease that moves between the read
// and the write (another runner taking the job over) is read again.
func (r *Runner) cancelStored(ctx context.Context, id string, actor Actor) (Job, error) {
	for tries := 1; ; tries++ {
		j, err := r.store.Job(ctx, id)
		if err != nil {
			return Job{}, err
		}
		if j.Status != Running {
			r.audit(ctx, actor, "replay.cancel", j, nil, "conflict: "+string(j.Status))
			return j, fmt.Errorf("job %s is %s: %w", id, j.Status, ErrJobFinished)
		}
		ended := j
		at := r.cfg.now()
		ended.Status, ended.FinishedAt = Cancelled, &at
		err = r.store.UpdateJob(ctx, ended)
		switch {
		case err == nil:
			ended = r.awaitHolder(ctx, ended)
			r.audit(ctx, actor, "replay.cancel", ended, nil, "ok")
			return ended, nil
		case errors.Is(err, ErrJobFinished): // it ended meanwhile: read how
		case errors.Is(err, ErrLeaseLost) && tries < 3:
		default:
			return Job{}, fmt.Errorf("replay: cancel %s: %w", id, err)
		}
	}
}

// holderWait bounds how long a cancel through the store waits for the
// job's holder to stop it.
const holderWait = 10 * time.Second

// awaitHolder waits until the holder of j, cancelled in the store, has
// stopped it and let its lease go (see settleCancelled), until its lease
// ends or holderWait passes, or ctx ends; it returns the job as last read.
func (r *Runner) awaitHolder(ctx context.Context, j Job) Job {
	deadline := r.cfg.now().Add(holderWait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		now := r.cfg.now()
		if !j.Lease.Held(now) || !now.Before(deadline) {
			return j
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return j
		}
		if got, err := r.store.Job(ctx, j.ID); err == nil {
			j = got
		}
	}
}

// settleCancelled ends here a job cancelled in the store by another
// process while it ran here, once its records in flight have landed: it
// writes the final counters (the cancel wrote those of the last
// checkpoint) and lets the lease go, which tells the canceller that no
// copy can land any more.
func (r *Runner) settleCancelled(ctx context.Context, ended Job, log *slog.Logger) {
	ended.Status, ended.FinishedAt = Cancelled, nil // counts, not a cancel (see JobStore.UpdateJob)
	sctx, cancel := outliving(ctx)
	defer cancel()
	if err := r.store.UpdateJob(sctx, ended); err != nil {
		log.Warn("final counts of the replay job cancelled elsewhere not stored", "err", err)
	}
	r.release(ctx, ended.ID)
}

// audit records an action; a failure to record is logged, since the action
// itself has happened.
func (r *Runner) audit(ctx context.Context, actor Actor, action string, j Job, detail map[string]any, outcome string) {
	if r.cfg.audit == nil {
		return
	}
	d := map[string]any{"target": j.Target, "mode": j.Mode, "matched": j.Matched, "sent": j.Sent, "failed": j.Failed}
	for k, v := range detail {
		d[k] = v
	}
	b, _ := json.Marshal(d)
	e := lookback.AuditEntry{Actor: actor.Name, Role: actor.Role, Action: action, Target: j.ID, Detail: string(b), Outcome: outcome}
	ctx, cancel := outliving(ctx)
	defer cancel()
	if _, err := r.cfg.audit.Record(ctx, e); err != nil {
		r.cfg.logger.Error("replay audit not recorded", "action", action, "id", j.ID, "err", err)
	}
}

// finish ends a job in the store and audits its outcome.
func (r *Runner) finish(ctx context.Context, l *liveJob, j Job, status Status, by Actor, cause error) {
	at := r.cfg.now()
	j.Status, j.FinishedAt = status, &at
	j.Matched = max(j.Matched, j.Sent+j.Failed)
	sctx, cancel := outliving(ctx)
	defer cancel()
	if err := r.store.UpdateJob(sctx, j); err != nil {
		r.cfg.logger.Error("replay job end not stored", "id", j.ID, "status", status, "err", err)
		return
	}
	l.mu.Lock()
	l.job = j
	l.mu.Unlock()
	outcome := string(status)
	if cause != nil {
		outcome += ": " + cause.Error()
	}
	action := "replay.finish"
	if status == Cancelled {
		action = "replay.cancel"
	}
	r.audit(ctx, by, action, j, nil, outcome)
	r.cfg.logger.Info("replay job ended", "id", j.ID, "status", status, "matched", j.Matched, "sent", j.Sent, "failed", j.Failed, "err", cause)
}
