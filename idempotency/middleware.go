package idempotency

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/prometheus/client_golang/prometheus"
)

// Middleware makes a handler idempotent with store: every event is claimed
// under its [Key] before the handler runs.
//
//   - Already done: the handler is skipped and nil returned (counted,
//     logged at DEBUG).
//   - Held by a live lease (another node, or a duplicate being handled by
//     this one): a Retry error wrapping [ErrInFlightElsewhere], which does
//     not use up the agent's MaxRetries ([consumer.Uncounted]).
//   - Acquired (possibly by taking over an expired lease): the agent's
//     attempt count is raised to the claim's ([consumer.SetAttempt]), so
//     the retry limit counts attempts made before a restart; the handler
//     runs with the claim in its context ([ClaimFrom]).
//   - Handler success: the claim is completed. Warn: the error is
//     returned unchanged, and the claim completed once the agent has
//     parked the event on its dead-letter topic ([consumer.OnParked]), so
//     that an event an agent could not park before it stopped is not done
//     for the next owner (it takes the claim over once the lease ends).
//     Outside the agent, a Warn completes at once. A handler that returns nil after its own
//     transaction marked the claim done ([MarkedDone], which the SQL
//     stores' CompleteTx calls) is not completed again. On success, a
//     refused completion ([ErrFenced]) or a store failure turns into a
//     Retry, so that the offset is not committed before some owner has
//     recorded the event done; after a Warn the event is parked by then,
//     and the failure is logged (a duplicate is then handled, and parked,
//     again).
//   - Retry, Kill, an unflagged error or a panic: the claim is released
//     with its attempt count kept, and the error (or panic) passes through.
//
// A store failure while claiming is a Retry: nothing runs unclaimed.
func Middleware(store Store, opts ...Opt) eventkit.Middleware {
	cfg := defaultCfg()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if cfg.owner == "" {
		cfg.owner = newOwnerID()
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.registerer == nil {
		cfg.registerer = prometheus.NewRegistry()
	}
	m := newMetrics(cfg.registerer, cfg.logger)
	return func(next eventkit.Handler) eventkit.Handler {
		_, instant := store.(*MemoryStore)
		return &handler{cfg: cfg, store: store, next: next, m: m, instant: instant}
	}
}

type handler struct {
	cfg   cfg
	store Store
	next  eventkit.Handler
	m     *metrics
	// instant: the store answers without waiting for anything, so settling
	// needs no deadline (a timer per event would cost more than the call).
	instant bool
}

type claimKey struct{}

// held is what the handler's context carries: the claim and the result the
// handler may set.
type held struct {
	claim  Claim
	result []byte
	marked bool // by the handler's own transaction: see MarkedDone
}

// ClaimFrom returns the claim the middleware holds for the event being
// handled. A handler passes it to a transactional mark (the SQL stores'
// CompleteTx) so that its side effect and the done mark commit together.
func ClaimFrom(ctx context.Context) (Claim, bool) {
	h, ok := ctx.Value(claimKey{}).(*held)
	if !ok {
		return Claim{}, false
	}
	return h.claim, true
}

// MarkedDone tells the middleware that the handler's own transaction has
// marked c, the claim it holds, done (the SQL stores' CompleteTx calls it),
// so that the middleware sends no Complete of its own: one write less per
// event on the store's writer.
//
// The middleware can not see the transaction, so the contract is the
// handler's return value: nil means the transaction committed, and the mark
// with it. A handler whose Commit fails must return that error (or any
// error but a Warn): the claim is then released and the event redelivered,
// as when nothing was marked. On a Warn the middleware completes the claim
// as usual. A claim other than the one held is ignored.
func MarkedDone(ctx context.Context, c Claim) {
	if h, ok := ctx.Value(claimKey{}).(*held); ok && h.claim.Key == c.Key && h.claim.Owner == c.Owner && h.claim.Token == c.Token {
		h.marked = true
	}
}

// SetResult stores b with the done record when the handler succeeds; later
// claims of the key find it in [Outcome.Result]. With a transactional mark
// (the SQL stores' CompleteTx), set it before the mark, which writes it.
func SetResult(ctx context.Context, b []byte) {
	if h, ok := ctx.Value(claimKey{}).(*held); ok {
		h.result = b
	}
}

// ResultFrom returns what the handler gave SetResult so far: a
// transactional mark stores it with the done record.
func ResultFrom(ctx context.Context) []byte {
	if h, ok := ctx.Value(claimKey{}).(*held); ok {
		return h.result
	}
	return nil
}

func (h *handler) Handle(ctx context.Context, ev *eventkit.Event) (err error) {
	group := h.cfg.group
	if group == "" {
		group = consumer.GroupOf(ctx)
	}
	key := Key(group, ev)
	now := h.cfg.now()
	out, err := h.store.Claim(ctx, ClaimRequest{
		Key: key, Owner: h.cfg.owner, Now: now,
		Until: now.Add(h.cfg.lease), Expire: now.Add(h.cfg.retention),
	})
	if err != nil {
		return eventkit.Retry(fmt.Errorf("idempotency: claim %s: %w", key, err))
	}
	switch out.Status {
	case AlreadyDone:
		h.m.skipped.Inc()
		h.cfg.logger.Debug("event already done; skipped", h.attrs(ev, key, "done_at", out.DoneAt)...)
		return nil
	case HeldElsewhere:
		// Busy elsewhere is not a failure of the event: a node that took
		// over after a crash waits out the dead owner's lease without
		// using up the retry budget.
		h.m.held.Inc()
		consumer.Uncounted(ctx)
		return eventkit.Retry(fmt.Errorf("%w: %s held by %s until %s", ErrInFlightElsewhere,
			key, out.Claim.Owner, out.Claim.Deadline.Format(time.RFC3339Nano)))
	case Acquired:
	default:
		return eventkit.Retry(fmt.Errorf("idempotency: claim %s: unknown status %d", key, out.Status))
	}
	h.m.claimed.Inc()
	if out.TakenOver {
		h.m.takenOver.Inc()
		h.cfg.logger.Info("took over an expired claim", h.attrs(ev, key, "attempt", out.Claim.Attempt)...)
	}
	if consumer.Resumed(ctx) && out.Claim.Attempt > 1 {
		h.resetAttempts(ctx, ev, &out.Claim)
	}
	consumer.SetAttempt(ctx, out.Claim.Attempt)

	hd := &held{claim: out.Claim}
	defer func() {
		if r := recover(); r != nil {
			h.release(ctx, ev, hd.claim)
			panic(r)
		}
	}()
	herr := h.next.Handle(context.WithValue(ctx, claimKey{}, hd), ev)
	switch eventkit.FlagOf(herr) {
	case eventkit.FlagNone:
		if herr == nil && hd.marked {
			return nil // the handler's committed transaction holds the mark
		}
		return h.complete(ctx, ev, hd, herr)
	case eventkit.FlagWarn:
		// Done once the agent has parked it: recorded done now, an event
		// whose dead-letter produce outlived this agent would be skipped
		// as done by the next owner, and committed unparked. Until then the
		// claim holds it; if this agent stops first, the next owner takes
		// it over once the lease ends and warns, and parks, again.
		if !hd.marked && consumer.OnParked(ctx, func() {
			if err := h.complete(ctx, ev, hd, nil); err != nil {
				h.cfg.logger.Warn("warned event parked but not recorded done: once its lease ends, a duplicate is handled again",
					h.attrs(ev, hd.claim.Key, "error", err)...)
			}
		}) {
			return herr
		}
		return h.complete(ctx, ev, hd, herr)
	}
	h.release(ctx, ev, hd.claim)
	return herr
}

// resetAttempts counts c's attempts from 1 again after an operator resumed
// the event. If the store cannot, the resume's fresh budget holds on this
// member only, which is said.
func (h *handler) resetAttempts(ctx context.Context, ev *eventkit.Event, c *Claim) {
	r, ok := h.store.(AttemptResetter)
	var err error
	if ok {
		err = r.ResetAttempts(ctx, *c)
	}
	if !ok || err != nil {
		h.cfg.logger.Warn("attempt count not reset after a resume: another member taking the event over counts the earlier attempts",
			h.attrs(ev, c.Key, "attempt", c.Attempt, "err", err)...)
		return
	}
	c.Attempt = 1
}

// settleCtx outlives a cancelled handler context: a revoke must not keep
// the outcome from being recorded.
func (h *handler) settleCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if h.instant {
		return context.WithoutCancel(ctx), func() {}
	}
	return context.WithTimeout(context.WithoutCancel(ctx), h.cfg.timeout)
}

func (h *handler) complete(ctx context.Context, ev *eventkit.Event, hd *held, herr error) error {
	sctx, cancel := h.settleCtx(ctx)
	defer cancel()
	now := h.cfg.now()
	err := h.store.Complete(sctx, hd.claim, Completion{At: now, Expire: now.Add(h.cfg.retention), Result: hd.result})
	if err == nil {
		return herr
	}
	if errors.Is(err, ErrFenced) {
		h.m.fenced.Inc()
		h.cfg.logger.Warn("claim fenced off after the handler ran: another owner took the event over", h.attrs(ev, hd.claim.Key, "token", hd.claim.Token)...)
	}
	err = fmt.Errorf("idempotency: complete %s: %w", hd.claim.Key, err)
	if herr != nil {
		err = errors.Join(herr, err)
	}
	return eventkit.Retry(err)
}

func (h *handler) release(ctx context.Context, ev *eventkit.Event, c Claim) {
	sctx, cancel := h.settleCtx(ctx)
	defer cancel()
	if err := h.store.Release(sctx, c); err != nil {
		// The lease runs out by itself; the next claim takes over.
		h.cfg.logger.Warn("release failed", h.attrs(ev, c.Key, "error", err)...)
	}
}

func (h *handler) attrs(ev *eventkit.Event, key string, more ...any) []any {
	return append([]any{"topic", ev.Topic, "partition", ev.Partition, "offset", ev.Offset, "key", key}, more...)
}

type metrics struct {
	claimed, skipped, held, takenOver, fenced prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, log *slog.Logger) *metrics {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "eventkit_idempotency_events_total",
		Help: "Events seen by the idempotency middleware by outcome: claimed, skipped (already done), held (in flight elsewhere), taken_over (an expired lease), fenced (completion refused after a takeover).",
	}, []string{"outcome"})
	if err := reg.Register(vec); err != nil {
		var are prometheus.AlreadyRegisteredError
		existing, ok := vec, false
		if errors.As(err, &are) {
			existing, ok = are.ExistingCollector.(*prometheus.CounterVec)
		}
		if ok {
			vec = existing
		} else {
			log.Error("idempotency metrics not registered", "error", err)
		}
	}
	return &metrics{
		claimed:   vec.WithLabelValues("claimed"),
		skipped:   vec.WithLabelValues("skipped"),
		held:      vec.WithLabelValues("held"),
		takenOver: vec.WithLabelValues("taken_over"),
		fenced:    vec.WithLabelValues("fenced"),
	}
}
