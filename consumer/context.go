package consumer

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

type attemptKey struct{}

// attemptCtx carries the event's bookkeeping to the handler. The first
// attempt's lives inside the item itself, saving an allocation per record.
type attemptCtx struct {
	context.Context
	it    *item
	group string
}

func (c *attemptCtx) Value(key any) any {
	if key == (attemptKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func attemptOf(ctx context.Context) *attemptCtx {
	a, _ := ctx.Value(attemptKey{}).(*attemptCtx)
	return a
}

// Attempt reports which delivery of the event this is: 1 the first time,
// 2 on the first retry, and so on. It is 0 outside a handler called by the
// agent. With an idempotency store the count survives restarts. Calls that
// found the event busy elsewhere (Uncounted) are not deliveries.
func Attempt(ctx context.Context) int {
	if a := attemptOf(ctx); a != nil {
		return a.it.delivery()
	}
	return 0
}

// SetAttempt raises the attempt count of the event being handled to n, for
// middleware that keeps counts across restarts and rebalances (the
// idempotency layer): the retry limit then counts attempts made before this
// process started, so a crash loop still halts. n is the stored count of
// deliveries, this one included; calls that found the event busy elsewhere
// (Uncounted) are not among them. After a resume (see Resumed) the n of the
// first delivery stands for 1, whatever the store did with its count, and
// later ones count from there. A lower n is ignored, as is a context the
// agent did not create. It must be called from the handler's own goroutine.
func SetAttempt(ctx context.Context, n int) {
	a := attemptOf(ctx)
	if a == nil {
		return
	}
	it := a.it
	if it.resumed {
		it.countBase = n - 1
		return
	}
	if m := n - it.countBase; m > it.attempt-it.base {
		it.attempt = it.base + m
	}
}

// Resumed reports whether an operator resumed the event being handled
// (Resume, or a resume command) since its last counted call (see
// Uncounted), which granted it a fresh MaxRetries budget. Middleware that
// keeps attempt counts across restarts (the idempotency layer) counts from
// 1 again when it sees it, so that the fresh budget also holds on a member
// that takes the event over. It must be called from the handler's own
// goroutine.
func Resumed(ctx context.Context) bool {
	if a := attemptOf(ctx); a != nil {
		return a.it.resumed
	}
	return false
}

// OnParked registers f to run once the agent has dealt with the warning the
// handler is about to return: after the event is parked on the dead-letter
// topic (DeadLetterTopic), or at once without one, and before the event
// is marked done. A produce that fails keeps f for the next try; if the
// agent stops or loses the partition first, f never runs. Middleware that
// records an event's outcome (the idempotency layer) records a warned
// event done there, so that an event not yet parked is not taken for done
// by the next owner. It reports false, registering nothing, for a context
// the agent did not create. It must be called from the handler's own
// goroutine.
func OnParked(ctx context.Context, f func()) bool {
	a := attemptOf(ctx)
	if a == nil {
		return false
	}
	a.it.parked = append(a.it.parked, f)
	return true
}

// Uncounted tells the agent that the failure the handler is about to return
// is no fault of the event: it is busy elsewhere (the idempotency layer found
// another node's live claim on it). The event is retried with the same
// backoff as before, and the call does not use up MaxRetries, so that a
// healthy event never halts because another node held it for a while. It
// must be called from the handler's own goroutine.
func Uncounted(ctx context.Context) {
	if a := attemptOf(ctx); a != nil && !a.it.uncounted {
		a.it.uncounted = true
		a.it.held++ // not a delivery
		a.it.base++ // nor a use of the retry budget
	}
}

// GroupOf returns the consumer group of the agent calling the handler, or ""
// outside one.
func GroupOf(ctx context.Context) string {
	if a := attemptOf(ctx); a != nil {
		return a.group
	}
	return ""
}

// Record returns the Kafka record of the event being handled, as fetched:
// every header in record order and byte for byte, where the Event splits
// them into attributes and the rest. It is nil outside a handler called by
// the agent. The record belongs to the agent: read it during the call,
// neither keep it nor change it.
func Record(ctx context.Context) *kgo.Record {
	if a := attemptOf(ctx); a != nil {
		return a.it.rec
	}
	return nil
}
