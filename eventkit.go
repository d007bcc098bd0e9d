// Package eventkit holds the domain of reliable event processing on Apache
// Kafka: the [Event] envelope with its CloudEvents Kafka binary binding, the
// [Handler] an application implements, and the error flags a handler uses to
// tell the consumer agent what to do with an event that failed.
//
// A handler returns nil when the event is done, or an error flagged with one
// of [Warn], [Retry] or [Kill]:
//
//	h := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
//		var t Transfer
//		if err := json.Unmarshal(ev.Data, &t); err != nil {
//			return eventkit.Warn(fmt.Errorf("decode transfer %s: %w", ev.ID, err)) // log, count, move on
//		}
//		if err := db.Save(ctx, t); err != nil {
//			return eventkit.Retry(err) // redeliver with backoff; halt past the limit
//		}
//		return nil
//	})
//
// An error without a flag counts as Retry, so a forgotten flag never drops
// an event. The agent that runs handlers lives in package consumer; this
// package depends on the standard library only.
package eventkit

import "context"

// Handler processes one event. The error it returns decides what the agent
// does next: see [FlagOf].
type Handler interface {
	Handle(ctx context.Context, ev *Event) error
}

// HandlerFunc adapts a function to the [Handler] interface.
type HandlerFunc func(ctx context.Context, ev *Event) error

// Handle calls f(ctx, ev).
func (f HandlerFunc) Handle(ctx context.Context, ev *Event) error { return f(ctx, ev) }

// Middleware wraps a Handler to add behaviour around it (idempotency,
// tracing, validation).
type Middleware func(Handler) Handler

// Chain wraps h in the middlewares so that the first one listed is the
// outermost: Chain(h, a, b) handles an event as a(b(h)).
func Chain(h Handler, mws ...Middleware) Handler {
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h
}
