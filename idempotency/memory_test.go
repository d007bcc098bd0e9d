package idempotency_test

import (
	"testing"

	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/idempotency/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) idempotency.Store { return idempotency.NewMemoryStore() })
}
