package idempotency

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// State is where a key stands in the state machine: absent (no record),
// Claimed, Done or Released.
type State uint8

const (
	// Claimed: an owner holds a lease on the key until a deadline.
	Claimed State = 1
	// Done: the event was processed; the record is kept for the retention
	// period so that duplicates are recognised.
	Done State = 2
	// Released: the last owner failed and gave the key back. The record
	// keeps the attempt count, so the next claim continues it.
	Released State = 3
)

func (s State) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case Done:
		return "done"
	case Released:
		return "released"
	}
	return "absent"
}

// Claim is a lease on a key, as granted by [Store.Claim].
type Claim struct {
	Key   string
	Owner string
	// Token is the fencing token: it grows with every claim of the key, so
	// a stale owner's Complete (after its lease expired and another owner
	// took over) no longer matches and is refused with [ErrFenced]. It is
	// the claim's time in Unix nanoseconds, or one more than the key's last
	// token when that is larger, so that it grows across a prune too: a
	// claim stuck past its record's expiry cannot match the token of the
	// key's next claim, which would otherwise start again where the first
	// did.
	Token int64
	// Attempt counts the claims of the key, this one included, across
	// releases, takeovers and restarts.
	Attempt int
	// Deadline is when the lease ends and another owner may take over.
	Deadline time.Time
}

// Status is what [Store.Claim] answers.
type Status uint8

const (
	// Acquired: the key is claimed by the caller (fresh, after a release,
	// or by taking over an expired lease).
	Acquired Status = iota + 1
	// AlreadyDone: the event was processed before; skip it.
	AlreadyDone
	// HeldElsewhere: a live lease is held by an owner (possibly the
	// caller itself, handling a duplicate at another offset); try later.
	HeldElsewhere
)

func (s Status) String() string {
	switch s {
	case Acquired:
		return "acquired"
	case AlreadyDone:
		return "done"
	case HeldElsewhere:
		return "held"
	}
	return "unknown"
}

// Outcome is the answer to a claim.
type Outcome struct {
	Status Status
	// Claim is the caller's lease when Acquired; when HeldElsewhere it names
	// the holder (Owner) and its lease's Deadline.
	Claim Claim
	// TakenOver is true when the claim took over a lease that had expired:
	// its owner crashed or stalled.
	TakenOver bool
	// DoneAt and Result describe a key that is AlreadyDone.
	DoneAt time.Time
	Result []byte
}

// ClaimRequest asks for a lease on Key. Times come from the caller's clock,
// so that every store behaves alike and tests can run the clock by hand.
type ClaimRequest struct {
	Key   string
	Owner string
	// Now decides whether an existing lease has expired (its deadline is
	// at or before Now) and may be taken over.
	Now time.Time
	// Until is the new lease's deadline.
	Until time.Time
	// Expire is when the record may be pruned, once no lease on it is live.
	Expire time.Time
}

// Completion marks a claim done.
type Completion struct {
	At time.Time
	// Expire is when the done record may be pruned: At plus the retention.
	Expire time.Time
	// Result is kept with the record and handed to later claims of the key.
	// Optional.
	Result []byte
}

// Store keeps the state machine. Implementations must be safe for
// concurrent use and make each call atomic: two concurrent claims of one
// key never both acquire it while a lease is live.
type Store interface {
	// Claim acquires key for r.Owner unless it is done or leased until
	// after r.Now. Every acquisition raises the attempt count and the
	// fencing token.
	Claim(ctx context.Context, r ClaimRequest) (Outcome, error)
	// Complete marks c done if c still holds the key (same owner and
	// token, not released), and refuses with [ErrFenced] otherwise.
	// Completing a claim that is already done by the same owner and token
	// succeeds, so that Complete may follow a transactional mark.
	Complete(ctx context.Context, c Claim, d Completion) error
	// Release gives the key back, keeping its attempt count, if c still
	// holds it; [ErrFenced] otherwise.
	Release(ctx context.Context, c Claim) error
}

// AttemptResetter is an optional capability of a [Store]: it counts the
// attempts of the key c holds from 1 again, if c still holds it
// ([ErrFenced] otherwise). The middleware asks for it on the first claim
// after an operator resumed the event (consumer.Resumed), so that the
// fresh retry budget a resume grants also holds on a member that takes
// the event over, which counts from the stored attempts. Every store of
// this module has it.
type AttemptResetter interface {
	ResetAttempts(ctx context.Context, c Claim) error
}

// Pruner is an optional capability of a [Store]: it removes records that
// expired before now and hold no live lease, at most limit of them, and
// reports how many it removed. The SQL stores prune in the background;
// Prune lets an operator or a test do it at once.
type Pruner interface {
	Prune(ctx context.Context, now time.Time, limit int) (int, error)
}

var (
	// ErrFenced is returned by Complete and Release when the claim no
	// longer holds its key: its lease expired and another owner took over,
	// or it was released already. The caller's side effect, unless it was
	// committed with a transactional mark, may then happen twice; a
	// transactional mark refused this way rolls back with it.
	ErrFenced = errors.New("idempotency: claim fenced off")
	// ErrInFlightElsewhere is wrapped in the Retry error the middleware
	// returns while another owner holds a live lease on the event's key.
	ErrInFlightElsewhere = errors.New("idempotency: event in flight elsewhere")
	// ErrBadKey is returned by Claim for a key or owner that not every
	// store can keep (see CheckClaim). Keys made by [Key] never are.
	ErrBadKey = errors.New("idempotency: bad key")
)

// CheckClaim reports, matching [ErrBadKey], whether r's key and owner are
// what every store keeps: not empty, at most [MaxKeyLen] bytes, UTF-8
// without NUL bytes. PostgreSQL's text refuses invalid UTF-8 and NUL bytes
// and its index long keys, and one refused row fails the whole batch it
// shares with other calls; the stores check before batching, and all of
// them alike, so that a key that works in tests on one works on the others.
func CheckClaim(r ClaimRequest) error {
	for _, f := range []struct{ what, s string }{{"key", r.Key}, {"owner", r.Owner}} {
		var why string
		switch {
		case f.s == "":
			why = "empty"
		case len(f.s) > MaxKeyLen:
			why = fmt.Sprintf("%d bytes, more than %d", len(f.s), MaxKeyLen)
		case !utf8.ValidString(f.s):
			why = "not UTF-8"
		case strings.IndexByte(f.s, 0) >= 0:
			why = "holds a NUL byte"
		default:
			continue
		}
		return fmt.Errorf("%w: %s %.64q: %s", ErrBadKey, f.what, f.s, why)
	}
	return nil
}
