package reports

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/groupcommit"
)

// write is one event's side effect, waiting for its batch.
type write struct {
	claim    idempotency.Claim
	claimed  bool
	transfer *transferRow
	account  *accountRow
}

// handle turns one event into a write and waits until the write and the
// event's done mark have committed together.
func (s *Service) handle(ctx context.Context, ev *eventkit.Event) error {
	if ev.DecodeErr != nil {
		return eventkit.Warn(ev.DecodeErr)
	}
	if err := s.drill(ctx); err != nil {
		return err
	}
	w, err := decode(ev)
	if errors.Is(err, errSkip) {
		return nil
	}
	if err != nil {
		// A payload reports cannot read will not read better next time:
		// park it for an operator instead of halting the partition.
		return eventkit.Warn(fmt.Errorf("%s %s: %w", ev.Type, ev.ID, err))
	}
	w.claim, w.claimed = idempotency.ClaimFrom(ctx)
	if _, err := s.batch.Do(ctx, w); err != nil {
		return eventkit.Retry(err)
	}
	if w.claimed {
		// The batch committed the done mark with the write: the middleware
		// need not send a completion of its own.
		idempotency.MarkedDone(ctx, w.claim)
	}
	return nil
}

func decode(ev *eventkit.Event) (*write, error) {
	switch ev.Type {
	case events.TransferCreated, events.TransferCompleted, events.TransferFailed:
		t, err := decodeTransfer(ev)
		return &write{transfer: t}, err
	case events.AccountUpdated:
		a, err := decodeAccount(ev)
		return &write{account: a}, err
	}
	return nil, errSkip
}

// Statements of a batch. A transfer is inserted by whichever of its events
// comes first (each carries the whole transfer) and moves out of pending
// once; only that move adds to the daily totals, so a duplicate or a
// replayed completion never counts twice.
const (
	insertTransfer = `INSERT INTO transfers (id, account, counterparty, amount_minor, currency, status, created_at, completed_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, completed_at = excluded.completed_at
		WHERE transfers.status = 'pending' AND excluded.status <> 'pending'`
	// The amount and currency added are the row's, not the event's: a
	// completion whose payload disagrees with the transfer as created
	// (a misbehaving producer) must not make the daily totals disagree
	// with the volumes, which read the row.
	addDaily = `INSERT INTO daily_totals (day, currency, transfers, amount_minor)
		SELECT ?, currency, 1, amount_minor FROM transfers WHERE id = ?
		ON CONFLICT (day, currency) DO UPDATE SET transfers = daily_totals.transfers + 1, amount_minor = daily_totals.amount_minor + excluded.amount_minor`
	// An older account.updated (by version) never overwrites a newer one.
	// The row's own version applies again (>=, not >): an account's
	// version carries one state, so the columns already there keep their
	// values, and a column added since, NULL after its migration, takes
	// the value that goes with the rest of the row. That is the backfill:
	// a replay of every archived account.updated fills the new column from
	// each account's current version, while the older versions it also
	// sends change nothing. A "SET language WHERE language IS NULL" path
	// for replayed events would instead keep whichever replayed version
	// came first, the oldest, which is wrong for an account whose language
	// changed since.
	upsertAccount = `INSERT INTO accounts (id, holder_name, country, status, language, version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET holder_name = excluded.holder_name, country = excluded.country,
			status = excluded.status, language = excluded.language, version = excluded.version, updated_at = excluded.updated_at
		WHERE excluded.version > accounts.version
			OR excluded.version = accounts.version AND excluded.updated_at >= accounts.updated_at`
	// upsertAccountV1 is upsertAccount before migration 2 added language,
	// for a service held at schema 1 (Config.MigrateTo).
	upsertAccountV1 = `INSERT INTO accounts (id, holder_name, country, status, version, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET holder_name = excluded.holder_name, country = excluded.country,
			status = excluded.status, version = excluded.version, updated_at = excluded.updated_at
		WHERE excluded.version > accounts.version`
)

// writeBatch applies a batch of writes and their done marks in one
// transaction. A write whose claim was fenced off (another owner took the
// event over) is left out and told to retry; the rest commit.
func (s *Service) writeBatch(ctx context.Context, batch []*groupcommit.Call[*write, struct{}]) error {
	tx, err := s.st.begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.rollback(ctx)
	exec := func(q string, args ...any) (int64, error) { return tx.exec(ctx, q, args...) }
	applied := 0
	for _, c := range batch {
		w := c.Req
		if w.claimed {
			if err := tx.complete(ctx, w.claim); errors.Is(err, idempotency.ErrFenced) {
				c.Err = eventkit.Retry(err)
				continue
			} else if err != nil {
				return err
			}
		}
		if err := apply(exec, w, s.st.schema); err != nil {
			return err
		}
		applied++
	}
	if err := tx.commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.written.Add(int64(applied))
	return nil
}

// schemaLanguage is the migration that added accounts.language.
const schemaLanguage = 2

func apply(exec func(q string, args ...any) (int64, error), w *write, schema int64) error {
	if a := w.account; a != nil {
		if schema < schemaLanguage {
			_, err := exec(upsertAccountV1, a.ID, a.HolderName, a.Country, a.Status, a.Version, a.UpdatedAt.UnixMicro())
			return err
		}
		_, err := exec(upsertAccount, a.ID, a.HolderName, a.Country, a.Status, a.Language, a.Version, a.UpdatedAt.UnixMicro())
		return err
	}
	t := w.transfer
	var completed sql.NullInt64
	if !t.CompletedAt.IsZero() {
		completed = sql.NullInt64{Int64: t.CompletedAt.UnixMicro(), Valid: true}
	}
	n, err := exec(insertTransfer, t.ID, t.Account, t.Counterparty, t.AmountMinor, t.Currency, t.Status, t.CreatedAt.UnixMicro(), completed)
	if err != nil || t.Status != events.StatusCompleted || n == 0 {
		return err // n == 0: already settled, counted before
	}
	_, err = exec(addDaily, t.CompletedAt.UTC().Format(dayLayout), t.ID)
	return err
}

const dayLayout = "2006-01-02"

// Drill makes reports fail part of its handling on purpose.
type Drill struct {
	// Fraction of events to fail, between 0 and 1, spread evenly.
	Fraction float64
	// Flag is how they fail: eventkit.FlagRetry fails their first attempt
	// only (the retry succeeds), eventkit.FlagWarn warns them (the agent
	// parks them on the dead-letter topic and they stay out of the
	// reports until replayed). Default FlagRetry.
	Flag eventkit.Flag
}

var errDrill = errors.New("failure drill")

type drillCounter struct{ n atomic.Int64 }

// drill fails the events the Drill picks.
func (s *Service) drill(ctx context.Context) error {
	d := s.cfg.Drill
	if d.Fraction <= 0 {
		return nil
	}
	if d.Flag == eventkit.FlagRetry && consumer.Attempt(ctx) > 1 {
		return nil
	}
	n := s.drilled.n.Add(1)
	// Event n is picked when it carries the running share past a whole one.
	if int64(float64(n)*d.Fraction) == int64(float64(n-1)*d.Fraction) {
		return nil
	}
	if d.Flag == eventkit.FlagWarn {
		return eventkit.Warn(errDrill)
	}
	return eventkit.Retry(errDrill)
}
