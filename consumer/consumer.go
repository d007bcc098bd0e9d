// Package consumer is the agent that sits between Kafka and an application's
// [eventkit.Handler]: it fetches records, hands each event to the handler,
// reads the flag on the handler's error, and commits only what is done.
//
//	c, err := consumer.New(handler,
//		consumer.Brokers("127.0.0.1:9092"),
//		consumer.Group("reports"),
//		consumer.Topics("transfers"),
//		consumer.Ordering(consumer.ByKey),
//		consumer.MaxRetries(5),
//	)
//	if err != nil {
//		return err
//	}
//	return c.Run(ctx) // blocks; nil after ctx is cancelled and the agent drained
//
// What the flags do:
//
//   - nil: the event is done. Per partition, the agent commits the offset
//     below which every event is done, every CommitInterval and on revoke
//     and shutdown.
//   - eventkit.Warn: logged at WARN with the cause, counted, done (and parked
//     on the DeadLetterTopic when one is set).
//   - eventkit.Retry, an unflagged error or a panic: the same event comes back
//     after an exponential, jittered backoff; [Attempt] tells the handler
//     which try this is. Past MaxRetries the agent halts: with StopService
//     Run returns an [*EventError] matching [ErrHalted]; with PausePartition
//     only that partition waits for [Consumer.Resume] or [Consumer.Skip].
//   - eventkit.Kill: the agent stops fetching, lets calls in flight finish,
//     commits what was done before, and Run returns an error matching
//     [ErrKilled].
//
// Retries wait in their lane, never in the poll loop: other partitions (and,
// under ByKey, other keys) keep flowing, and the group keeps heartbeating.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Consumer is the agent. Create it with [New] and start it with Run.
type Consumer struct {
	cfg     cfg
	handler eventkit.Handler
	log     *slog.Logger
	metrics *metrics
	tracing *tracing

	started atomic.Bool
	cl      atomic.Pointer[kgo.Client]

	// handlerCtx parents every handler call; hardStop cancels it once a
	// drain has waited DrainTimeout.
	handlerCtx context.Context
	hardStop   context.CancelFunc

	mu    sync.RWMutex
	parts map[tp]*partition
	// fromStart: topics forgotten as gone (forgetTopic), read from their
	// start when next assigned; guarded by mu
	fromStart map[string]bool
	// member is the group member id while joined, for status reports.
	member    string
	host      string
	startedAt time.Time

	statusNow  chan struct{}
	endsNow    chan []*partition // to endsLoop: the partitions of a commit tick
	outcomeMu  sync.Mutex
	outcomeLog []eventkit.CommandOutcome

	ready    *laneQueue
	inFlight atomic.Int64 // records in partition windows
	held     atomic.Int64 // of those, in the windows of held partitions (see partition.hold)
	haltAt   atomic.Pointer[haltPoint]
	waiting  atomic.Bool // the poll loop waits for room
	room     chan struct{}

	stopping   atomic.Bool
	fatalMu    sync.Mutex
	fatal      error
	cancelPoll context.CancelFunc

	commitMu sync.Mutex // one commit at a time: periodic, revoke, shutdown
	pauseMu  sync.Mutex // one fetch pause or resume at a time; see syncFetch
	workers  sync.WaitGroup
	quit     chan struct{}
}

type tp struct {
	topic     string
	partition int32
}

// New returns an agent that hands every event of the configured topics to h.
// It checks the configuration; nothing connects until Run.
func New(h eventkit.Handler, opts ...Opt) (*Consumer, error) {
	if h == nil {
		return nil, errors.New("consumer: nil handler")
	}
	cfg := defaultCfg()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.registerer == nil {
		reg := prometheus.NewRegistry()
		cfg.registerer, cfg.gatherer = reg, reg
	} else if g, ok := cfg.registerer.(prometheus.Gatherer); ok {
		cfg.gatherer = g
	} else {
		cfg.gatherer = prometheus.DefaultGatherer
	}
	if cfg.jitter == nil {
		cfg.jitter = rand.Float64
	}
	c := &Consumer{
		cfg:       cfg,
		handler:   h,
		log:       cfg.logger.With("group", cfg.group),
		tracing:   newTracing(&cfg),
		parts:     make(map[tp]*partition),
		ready:     newLaneQueue(),
		room:      make(chan struct{}, 1),
		quit:      make(chan struct{}),
		statusNow: make(chan struct{}, 1),
		endsNow:   make(chan []*partition),
	}
	return c, nil
}

// Run joins the group and processes events until ctx is cancelled (then it
// drains, commits, leaves the group and returns nil), a handler kills it
// (an error matching [ErrKilled]), or an event halts it under StopService
// (an [*EventError] matching [ErrHalted]). Every goroutine it starts has
// stopped when it returns. Run may be called once.
func (c *Consumer) Run(ctx context.Context) (err error) {
	if !c.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	c.metrics, err = newMetrics(c.cfg.registerer, c.cfg.group,
		func() float64 { return float64(c.inFlight.Load()) },
		func() float64 { return float64(c.haltedPartitions()) })
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer c.metrics.unregister(c.cfg.registerer)

	// Handler calls outlive ctx by design: a cancelled Run lets them finish.
	c.handlerCtx, c.hardStop = context.WithCancel(context.WithoutCancel(ctx))
	defer c.hardStop()

	c.mu.Lock()
	c.startedAt = c.cfg.now()
	c.host, _ = os.Hostname()
	c.mu.Unlock()
	ctlFrom := c.prepareTopics(ctx)

	// Commands start at the end the control topic had before the member
	// joined: those sent before this agent started are not for it.
	var ctl *kgo.Client
	ctlCtx, stopCtl := context.WithCancel(context.Background())
	defer stopCtl()
	if c.cfg.control {
		ctl, err = kgo.NewClient(append(c.connOpts(), ctlFrom.opts()...)...)
		if err != nil {
			return fmt.Errorf("consumer: kafka control client: %w", err)
		}
		defer ctl.Close()
	}
	cl, err := kgo.NewClient(c.clientOpts()...)
	if err != nil {
		return fmt.Errorf("consumer: kafka client: %w", err)
	}
	if err := c.replayExcluded(cl); err != nil {
		cl.Close()
		return err
	}
	c.cl.Store(cl)
	c.log.Info("consumer starting", "topics", c.cfg.topics, "ordering", c.cfg.order.String(),
		"concurrency", c.cfg.concurrency, "max_retries", c.cfg.maxRetries, "halt", c.cfg.haltAction.String())

	pollCtx, cancelPoll := context.WithCancel(ctx)
	defer cancelPoll()
	c.cancelPoll = cancelPoll // a kill or halt ends the poll loop through it

	for i := range c.cfg.concurrency {
		c.workers.Add(1)
		go c.work(i)
	}
	c.workers.Add(2)
	go c.commitLoop(cl)
	go c.endsLoop(cl)
	if c.cfg.control {
		c.workers.Add(2)
		go c.statusLoop(cl)
		go c.controlLoop(ctlCtx, ctl, ctlFrom)
	}

	c.poll(pollCtx, cl)

	c.shutdown(cl, stopCtl)
	c.fatalMu.Lock()
	defer c.fatalMu.Unlock()
	return c.fatal
}

// connOpts connect to the cluster for the agent's helper clients (the
// control topic's reader, the admin that creates topics): brokers and the
// caller's client options, less those that shape consumption (exclusions, a
// regex subscription, fetch sizes, group settings), which are meant for the
// group client alone and which franz-go refuses in a client that reads a
// plain topic.
func (c *Consumer) connOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.WithLogger(kafka.Logger(c.cfg.logger))}
	if len(c.cfg.brokers) > 0 {
		opts = append(opts, kgo.SeedBrokers(c.cfg.brokers...))
	}
	return append(opts, c.callerOpts(false)...)
}

// callerOpts are the caller's client options that shape consumption, or
// the others.
func (c *Consumer) callerOpts(consumption bool) []kgo.Opt {
	var opts []kgo.Opt
	for _, o := range c.cfg.clientOpts {
		if shapesConsumption(o) == consumption {
			opts = append(opts, o)
		}
	}
	return opts
}

func shapesConsumption(o kgo.Opt) bool {
	switch o.(type) {
	case kgo.ConsumerOpt, kgo.GroupOpt:
		return true
	}
	return false
}

func (c *Consumer) clientOpts() []kgo.Opt {
	topics := c.cfg.topics
	if c.cfg.replay {
		rt := eventkit.ReplayTopic(c.cfg.group)
		if c.cfg.regex {
			rt = "^" + regexp.QuoteMeta(rt) + "$"
		}
		topics = append(slices.Clip(topics), rt)
	}
	opts := append(c.connOpts(),
		kgo.ConsumeResetOffset(c.cfg.startAt),
		// franz-go buffers one whole fetch and keeps every batch a record
		// in flight points into. Its 50 MiB default counts compressed bytes
		// and can decompress to hundreds of MiB; 8 MiB keeps memory near
		// MaxInFlight records. ClientOpts may raise it.
		kgo.FetchMaxBytes(8<<20),
		// A fetch the broker holds open for lack of data goes out without
		// the partitions paused when it left; a partition resumed meanwhile
		// (its retry went through, an operator resumed it) is fetched only
		// once that fetch returns. franz-go's 5 s default would idle such a
		// partition that long on a quiet topic; Kafka's own consumer waits
		// 500 ms. ClientOpts may change it.
		kgo.FetchMaxWait(500*time.Millisecond),
		// Records of an aborted transaction never happened: a handler must
		// not act on them. Kafka's own consumer reads uncommitted records
		// by default; ClientOpts may ask for them.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
	)
	if c.cfg.regex && !c.cfg.foreignReplays {
		// A pattern such as .* must not pick up other groups' replays:
		// they are addressed to those groups only, and in reprocess mode
		// this group would handle them again.
		opts = append(opts, kgo.ConsumeExcludeTopics(otherReplayTopics(c.cfg.group, c.cfg.replay)))
	}
	opts = append(opts, c.callerOpts(true)...)
	// The agent's own group options come last so that nothing overrides
	// the manual commits and rebalance callbacks its guarantees rest on.
	opts = append(opts,
		kgo.ConsumerGroup(c.cfg.group),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(),
		// Transaction markers come to the poll loop, which lets the commit
		// pass them (see partition.dispatch).
		kgo.KeepControlRecords(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(c.cfg.sessionTimeout),
		kgo.RebalanceTimeout(c.cfg.rebalanceTimeout),
		kgo.HeartbeatInterval(c.cfg.heartbeatInterval),
		kgo.OnPartitionsAssigned(c.onAssigned),
		kgo.OnPartitionsRevoked(c.onRevoked),
		kgo.OnPartitionsLost(c.onLost),
		kgo.AdjustFetchOffsetsFn(c.adjustOffsets),
	)
	if c.cfg.regex {
		opts = append(opts, kgo.ConsumeRegex())
	}
	return opts
}

// poll fetches while there is room in flight and hands batches to lanes.
// With BlockRebalanceOnPoll, rebalance callbacks run only between a poll's
// AllowRebalance and the next poll, so a dispatched record always belongs to
// a partition the agent still owns.
func (c *Consumer) poll(ctx context.Context, cl *kgo.Client) {
	limit := int64(c.cfg.maxInFlight)
	// Poll again once an eighth of the room is free, not for every record
	// that finishes: tiny polls cost more than they fetch.
	resume := limit - max(limit/8, 1)
	var (
		ready     []*lane
		held      []*partition // whose fetching to pause
		fetchErrs = fetchErrors{log: c.log, now: time.Now}
		backoff   fetchBackoff
		gone      = goneTopics{after: topicGoneAfter, now: time.Now}
	)
	for {
		if !c.waitRoom(ctx, resume) {
			return
		}
		// 0 would mean "no limit" to franz-go.
		fs := cl.PollRecords(ctx, int(max(limit-c.counted(), 1)))
		if fs.IsClientClosed() || ctx.Err() != nil {
			cl.AllowRebalance()
			return
		}
		errs := 0
		fs.EachError(func(topic string, partition int32, err error) {
			if fatal := groupConfigError(err); fatal != nil {
				c.fail(fatal, nil, 0, false)
				return
			}
			if !errors.Is(err, context.Canceled) {
				errs++
				fetchErrs.report(topic, partition, err)
				gone.failed(topic, err)
			}
		})

		ready = ready[:0]
		c.mu.RLock()
		fs.EachPartition(func(f kgo.FetchTopicPartition) {
			if len(f.Records) == 0 {
				return
			}
			gone.healthy(f.Topic)
			p := c.parts[tp{f.Topic, f.Partition}]
			if p == nil || p.gone.Load() {
				return // not ours any more; the new owner reads it from the commit
			}
			c.inFlight.Add(int64(len(f.Records)))
			var (
				resync bool
				passed int
			)
			if ready, resync, passed = p.dispatch(f.Records, f.HighWatermark, ready); resync {
				held = append(held, p)
			}
			c.freed(passed)
		})
		c.mu.RUnlock()
		for _, p := range held {
			c.syncFetch(p.topic, p.id)
		}
		held = held[:0]
		for _, l := range ready {
			c.schedule(l)
		}
		cl.AllowRebalance()
		for _, topic := range gone.due() {
			c.forgetTopic(ctx, cl, topic)
		}
		if !backoff.after(ctx, errs, fs.NumRecords()) {
			return
		}
	}
}

// adjustOffsets starts a topic forgotten as gone from its start when it
// is assigned again, whatever the group committed for it: a commit by name
// that landed after the topic was created again, before the agent saw it
// fail, holds the old topic's offset and would skip the new one's first
// records.
func (c *Consumer) adjustOffsets(_ context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, ps := range offsets {
		if !c.fromStart[topic] {
			continue
		}
		delete(c.fromStart, topic)
		for id := range ps {
			ps[id] = kgo.NewOffset().AtStart().WithEpoch(-1)
		}
	}
	return offsets, nil
}

// forgetTopic drops a topic that was deleted, or deleted and created
// again (see goneTopics), and consumes it again once it exists, from its
// start (see adjustOffsets). Its partitions are released without a commit:
// their offsets belong to the old topic and would skip the new one's
// records; what the old topic's handlers still do is done for a topic that
// is no more.
func (c *Consumer) forgetTopic(ctx context.Context, cl *kgo.Client, topic string) {
	c.log.Warn("topic gone: deleted, or deleted and created again; consuming it again once it exists", "topic", topic)
	c.mu.RLock()
	var ids []int32
	for k := range c.parts {
		if k.topic == topic {
			ids = append(ids, k.partition)
		}
	}
	c.mu.RUnlock()
	if ps := c.take(map[string][]int32{topic: ids}); len(ps) > 0 {
		c.releaseAll(ctx, cl, ps, false)
		c.changed()
	}
	c.mu.Lock()
	if c.fromStart == nil {
		c.fromStart = make(map[string]bool)
	}
	c.fromStart[topic] = true
	c.mu.Unlock()
	cl.PurgeTopicsFromConsuming(topic)
	if !c.cfg.regex { // a pattern finds the topic again by itself
		cl.AddConsumeTopics(topic)
	}
}

// counted returns the records in flight that count against MaxInFlight:
// all but those of held partitions.
func (c *Consumer) counted() int64 { return c.inFlight.Load() - c.held.Load() }

// waitRoom blocks until fewer than limit records are counted in flight.
func (c *Consumer) waitRoom(ctx context.Context, limit int64) bool {
	for c.counted() > limit {
		c.waiting.Store(true)
		if c.counted() <= limit { // a worker may have freed room before it saw waiting
			c.waiting.Store(false)
			break
		}
		select {
		case <-c.room:
		case <-ctx.Done():
			c.waiting.Store(false)
			return false
		}
		c.waiting.Store(false)
	}
	return ctx.Err() == nil
}

// freed accounts for records that left a window and wakes the poll loop.
func (c *Consumer) freed(n int) {
	if n == 0 {
		return
	}
	c.inFlight.Add(-int64(n))
	c.wake()
}

// wake wakes the poll loop if it waits for room.
func (c *Consumer) wake() {
	if c.waiting.Load() {
		select {
		case c.room <- struct{}{}:
		default:
		}
	}
}

// schedule queues l for a worker; it never waits.
func (c *Consumer) schedule(l *lane) { c.ready.push(l) }

// groupConfigError returns the error Run stops with when err says the
// group cannot be joined as configured: franz-go would try again forever,
// with a warning a poll, and nothing would ever be consumed.
func groupConfigError(err error) error {
	for _, e := range []error{kerr.InvalidSessionTimeout, kerr.GroupAuthorizationFailed, kerr.InvalidGroupID} {
		if errors.Is(err, e) {
			return fmt.Errorf("consumer: joining the group: %w", err)
		}
	}
	return nil
}

// fail records the first fatal error and stops the agent. p and offset
// name the event that caused it (p nil when none did); halt says that it
// is a StopService halt, whose partition's earlier events are still
// handled on the way out. A halt or a kill of one of those earlier events
// takes the first one's place: the commit stops before it, so it is where
// the partition starts again and what the error must name, and the events
// between the two need not be waited for.
func (c *Consumer) fail(err error, p *partition, offset int64, halt bool) {
	c.fatalMu.Lock()
	defer c.fatalMu.Unlock()
	if c.fatal == nil {
		c.fatal = err
		if halt {
			hp := &haltPoint{p: p, reached: make(chan struct{})}
			hp.offset.Store(offset)
			c.haltAt.Store(hp) // before stopping: a worker that sees one sees both
		}
		c.stopping.Store(true)
		c.cancelPoll()
		return
	}
	if hp := c.haltAt.Load(); hp != nil && hp.p == p && offset < hp.offset.Load() {
		c.fatal = err
		hp.offset.Store(offset)
	}
}

// haltPoint is the event a StopService halt stopped the agent at. The
// events of its partition before it are still handled, so that the commit
// on the way out reaches it: under ByKey and Unordered they may not have
// been, when it halted.
type haltPoint struct {
	p       *partition
	offset  atomic.Int64  // lowered by a halt or kill of an earlier event (fail)
	reached chan struct{} // closed once nothing before the offset is undone
	once    sync.Once
}

// beforeHalt reports whether it, of p, comes before the event a StopService
// halt stopped at.
func (c *Consumer) beforeHalt(p *partition, it *item) bool {
	hp := c.haltAt.Load()
	return hp != nil && hp.p == p && it.rec.Offset < hp.offset.Load()
}

// checkHalt closes hp.reached once p has nothing undone before the halted
// event; the caller holds p.mu.
func (p *partition) checkHalt() {
	if hp := p.c.haltAt.Load(); hp != nil && hp.p == p &&
		(len(p.window) == 0 || p.window[0].rec.Offset >= hp.offset.Load() || p.gone.Load()) {
		hp.once.Do(func() { close(hp.reached) })
	}
}

// awaitHalt waits, up to the drain timeout, for the events before the event
// a StopService halt stopped at to be handled.
func (c *Consumer) awaitHalt() {
	hp := c.haltAt.Load()
	if hp == nil {
		return
	}
	hp.p.mu.Lock()
	hp.p.checkHalt()
	hp.p.mu.Unlock()
	t := time.NewTimer(c.cfg.drainTimeout)
	defer t.Stop()
	select {
	case <-hp.reached:
	case <-t.C:
		c.log.Warn("events before the halted one still undone after the drain timeout; committing what is done",
			"topic", hp.p.topic, "partition", hp.p.id, "offset", hp.offset.Load(), "drain_timeout", c.cfg.drainTimeout)
	}
}

func (c *Consumer) onAssigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	c.mu.Lock()
	for topic, ps := range assigned {
		for _, id := range ps {
			k := tp{topic, id}
			if _, ok := c.parts[k]; !ok {
				c.parts[k] = c.newPartition(topic, id)
			}
		}
	}
	c.member, _ = cl.GroupMetadata()
	c.mu.Unlock()
	c.log.Info("partitions assigned", "partitions", assigned)
	c.changed()
}

func (c *Consumer) onRevoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	if ps := c.take(revoked); len(ps) > 0 {
		c.log.Info("partitions revoked", "partitions", revoked)
		c.releaseAll(ctx, cl, ps, true)
		c.changed()
	}
}

func (c *Consumer) onLost(ctx context.Context, cl *kgo.Client, lost map[string][]int32) {
	if ps := c.take(lost); len(ps) > 0 {
		c.log.Warn("partitions lost", "partitions", lost)
		c.releaseAll(ctx, cl, ps, false)
		c.changed() // operators see the loss now, not at the next tick
	}
}

// take removes the named partitions from the agent's map: no poll dispatches
// to them from now on.
func (c *Consumer) take(m map[string][]int32) []*partition {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ps []*partition
	for topic, ids := range m {
		for _, id := range ids {
			k := tp{topic, id}
			if p := c.parts[k]; p != nil {
				ps = append(ps, p)
				delete(c.parts, k)
			}
		}
	}
	return ps
}

// releaseAll stops the partitions, waits (bounded) for their handler calls,
// commits what they finished unless the partitions were lost, and forgets
// them.
func (c *Consumer) releaseAll(ctx context.Context, cl *kgo.Client, ps []*partition, commit bool) {
	drained := make([]<-chan struct{}, len(ps))
	for i, p := range ps {
		drained[i] = p.release()
	}
	if !waitAll(drained, c.cfg.drainTimeout) {
		c.log.Warn("handlers still running after the drain timeout; cancelling them", "drain_timeout", c.cfg.drainTimeout)
		for _, p := range ps {
			p.cancel()
		}
		if !waitAll(drained, c.cfg.drainTimeout) {
			c.log.Error("handlers ignore their cancelled context; releasing their partitions without them")
		}
	}
	c.commitMu.Lock()
	if commit {
		c.commitLocked(ctx, cl, ps)
	}
	for _, p := range ps {
		c.freed(p.drop())
		p.cancel()
		c.metrics.dropPartition(p.topic, p.id)
	}
	c.commitMu.Unlock()
	// A pause outlives the assignment in franz-go: released partitions are
	// no longer assigned here, so syncFetch clears theirs, and a partition
	// that comes back is fetched again.
	for _, p := range ps {
		c.syncFetch(p.topic, p.id)
	}
}

// syncFetch pauses or resumes fetching topic/partition to match whether the
// partition assigned now is held or, under PausePartition, holds a halt.
// The state is read and applied under one lock, so a decision made earlier
// cannot be applied after a later one: a halt recorded and resumed at once
// would otherwise leave its partition paused for good, the resume's call
// landing before the halt's.
func (c *Consumer) syncFetch(topic string, id int32) {
	cl := c.cl.Load()
	if cl == nil {
		return
	}
	c.pauseMu.Lock()
	defer c.pauseMu.Unlock()
	c.mu.RLock()
	p := c.parts[tp{topic, id}]
	c.mu.RUnlock()
	pause := false
	if p != nil && !p.gone.Load() {
		p.mu.Lock()
		pause = p.paused()
		p.mu.Unlock()
	}
	if m := map[string][]int32{topic: {id}}; pause {
		cl.PauseFetchPartitions(m)
	} else {
		cl.ResumeFetchPartitions(m)
	}
}

func waitAll(chs []<-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for _, ch := range chs {
		select {
		case <-ch:
		case <-t.C:
			return false
		}
	}
	return true
}

// shutdown drains and commits everything, then leaves the group.
func (c *Consumer) shutdown(cl *kgo.Client, stopControl context.CancelFunc) {
	c.stopping.Store(true)
	c.awaitHalt()
	all := c.take(c.assigned())
	c.releaseAll(context.Background(), cl, all, true)

	close(c.quit)
	stopControl()
	stopped := make(chan struct{})
	go func() { c.workers.Wait(); close(stopped) }()
	t := time.NewTimer(c.cfg.drainTimeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		c.log.Error("handler calls still running after the drain; they ignore their cancelled context: leaving the group, then waiting for them")
	}
	if c.cfg.control {
		c.publishStatus(cl, true) // lookback forgets this member now
	}
	// Close leaves the group; its final revoke finds nothing left to do.
	// The partitions move on even while a stray call runs: nothing it
	// does is committed here any more.
	cl.CloseAllowingRebalance()
	// Run returns once every goroutine it started has stopped: a caller
	// that closes what its handler uses once Run returns must not pull it
	// from under a call still running.
	for {
		t.Reset(c.cfg.drainTimeout)
		select {
		case <-stopped:
			c.log.Info("consumer stopped")
			return
		case <-t.C:
			c.log.Error("still waiting for handler calls that ignore their cancelled context")
		}
	}
}

func (c *Consumer) assigned() map[string][]int32 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	m := make(map[string][]int32)
	for k := range c.parts {
		m[k.topic] = append(m[k.topic], k.partition)
	}
	return m
}

// backoff returns the wait before the next attempt after failed attempts
// since the retry budget started.
func (c *Consumer) backoff(failed int) time.Duration {
	d := c.cfg.backoffBase
	for i := 1; i < failed && d < c.cfg.backoffMax; i++ {
		d *= 2
	}
	d = min(d, c.cfg.backoffMax)
	return d/2 + time.Duration(c.cfg.jitter()*float64(d/2))
}
