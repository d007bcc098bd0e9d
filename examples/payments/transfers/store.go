package transfers

import (
	"context"
	"errors"
	"time"

	"github.com/eventkit/eventkit/examples/payments/events"
)

// ErrNotFound is returned by a Store for an account or transfer it does not
// hold.
var ErrNotFound = errors.New("not found")

// Store keeps the state of transfers and its outbox. A change and the
// events that tell of it are written in one [Store.Update] transaction, so
// that a crash never loses an event nor publishes one for a change that did
// not happen.
type Store interface {
	Account(ctx context.Context, id string) (*Account, error)
	Transfer(ctx context.Context, id string) (*events.Transfer, error)
	// Update runs fn in a write transaction and commits it when fn returns
	// nil.
	Update(ctx context.Context, fn func(Tx) error) error
	// Pending returns up to limit messages not yet published, oldest first.
	Pending(ctx context.Context, limit int) ([]Message, error)
	// Published removes msgs, which Kafka has, from the outbox.
	Published(ctx context.Context, msgs []Message) error
}

// Tx is the view of a Store inside [Store.Update].
type Tx interface {
	Account(ctx context.Context, id string) (*Account, error)
	PutAccount(ctx context.Context, a *Account) error
	Transfer(ctx context.Context, id string) (*events.Transfer, error)
	PutTransfer(ctx context.Context, t *events.Transfer) error
	// Enqueue adds m to the outbox.
	Enqueue(ctx context.Context, m Message) error
}

// Message is an event in the outbox. Its ID becomes the event's ce_id, so a
// message published twice (a crash between the produce and the mark) is the
// same event twice, which consumers deduplicate.
type Message struct {
	Seq    int64 // outbox order, set by the store
	ID     string
	Topic  string
	Key    string
	Type   string
	Schema string // ce_dataschema, when the type has versions
	Time   time.Time
	Data   []byte
}
