package consumer

import "context"

type attemptKey struct{}

// attemptCtx carries the attempt number to the handler without an extra
// allocation per record: it lives inside the record's own bookkeeping.
type attemptCtx struct {
	context.Context
	attempt int
}

func (c *attemptCtx) Value(key any) any {
	if key == (attemptKey{}) {
		return c.attempt
	}
	return c.Context.Value(key)
}

// Attempt reports which delivery of the event this is: 1 the first time,
// 2 on the first retry, and so on. It is 0 outside a handler called by the
// agent. With an idempotency store the count survives restarts.
func Attempt(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}
