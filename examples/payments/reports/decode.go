package reports

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/examples/payments/events"
)

// errSkip marks an event that reports has no use for: a type it does not
// know yet. Producers may add types (forward compatibility).
var errSkip = errors.New("not a type reports uses")

var currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)

// transferRow is what reports keeps of a transfer.
type transferRow struct {
	ID, Account, Counterparty string
	AmountMinor               int64
	Currency, Status          string
	CreatedAt                 time.Time
	CompletedAt               time.Time // zero while pending
}

// accountRow is what reports keeps of an account.
type accountRow struct {
	ID, HolderName, Country, Status string
	Language                        string // "" when the account has none
	Version                         int64
	UpdatedAt                       time.Time
}

// decodeTransfer reads the payload of a transfer event. Unknown fields are
// ignored; a payload that lacks what reports needs, or holds it with the
// wrong type, is an error, never a row.
func decodeTransfer(ev *eventkit.Event) (*transferRow, error) {
	var t events.Transfer
	if err := json.Unmarshal(ev.Data, &t); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	want := map[string]string{
		events.TransferCreated:   events.StatusPending,
		events.TransferCompleted: events.StatusCompleted,
		events.TransferFailed:    events.StatusFailed,
	}[ev.Type]
	switch {
	case t.ID == "" || t.From == "" || t.To == "":
		return nil, errors.New("payload: id, from and to are required")
	case t.AmountMinor <= 0 || t.AmountMinor > events.MaxAmountMinor:
		// Past the maximum, sums in the totals could overflow.
		return nil, fmt.Errorf("payload: amount_minor %d: want a positive amount, at most %d", t.AmountMinor, int64(events.MaxAmountMinor))
	case !currencyRe.MatchString(t.Currency):
		return nil, fmt.Errorf("payload: currency %q", t.Currency)
	case t.CreatedAt.IsZero():
		return nil, errors.New("payload: created_at is required")
	case t.Status != want:
		return nil, fmt.Errorf("payload: status %q in a %s event", t.Status, ev.Type)
	case want != events.StatusPending && (t.SettledAt == nil || t.SettledAt.IsZero()):
		return nil, errors.New("payload: settled_at is required once settled")
	}
	if err := checkText("id", t.ID, "from", t.From, "to", t.To); err != nil {
		return nil, err
	}
	if err := checkTime("created_at", t.CreatedAt); err != nil {
		return nil, err
	}
	if t.SettledAt != nil {
		if err := checkTime("settled_at", *t.SettledAt); err != nil {
			return nil, err
		}
	}
	r := &transferRow{
		ID: t.ID, Account: t.From, Counterparty: t.To, AmountMinor: t.AmountMinor,
		Currency: t.Currency, Status: t.Status, CreatedAt: t.CreatedAt,
	}
	if t.SettledAt != nil {
		r.CompletedAt = *t.SettledAt
	}
	return r, nil
}

// accountPayload is the part of account.updated that reports reads, in
// every schema version: v1 names the holder "name", v2 "legal_name";
// preferences.language is the same in both. Fields reports does not read
// (nickname, kyc, limits, whatever comes next) are ignored, so new versions
// that only add fields need no change here.
type accountPayload struct {
	ID        *string   `json:"id"`
	Version   *int64    `json:"version"`
	UpdatedAt time.Time `json:"updated_at"`
	Status    string    `json:"status"`
	Holder    struct {
		Name      string `json:"name"`       // v1
		LegalName string `json:"legal_name"` // v2
		Address   struct {
			Country string `json:"country"`
		} `json:"address"`
	} `json:"holder"`
	Preferences struct {
		Language string `json:"language"`
	} `json:"preferences"`
}

// decodeAccount reads account.updated in schema v1 or v2.
func decodeAccount(ev *eventkit.Event) (*accountRow, error) {
	var p accountPayload
	if err := json.Unmarshal(ev.Data, &p); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	name := p.Holder.LegalName
	if name == "" {
		name = p.Holder.Name
	}
	switch {
	case p.ID == nil || *p.ID == "":
		return nil, errors.New("payload: id is required")
	case p.Version == nil || *p.Version <= 0:
		return nil, errors.New("payload: version is required and positive")
	case p.UpdatedAt.IsZero():
		return nil, errors.New("payload: updated_at is required")
	case name == "":
		return nil, errors.New("payload: holder.legal_name (v2) or holder.name (v1) is required")
	case ev.Subject != "" && ev.Subject != *p.ID:
		// Applied, it would overwrite another account's row, and its
		// version would hold back that account's real updates for good.
		return nil, fmt.Errorf("payload: id %q in an event about account %q", *p.ID, ev.Subject)
	case ev.Subject == "" && ev.Key != nil && string(ev.Key) != *p.ID:
		// Without a subject the record's key names the account.
		return nil, fmt.Errorf("payload: id %q in an event keyed by account %q", *p.ID, ev.Key)
	}
	if err := checkText("id", *p.ID, "holder name", name, "country", p.Holder.Address.Country,
		"status", p.Status, "language", p.Preferences.Language); err != nil {
		return nil, err
	}
	if err := checkTime("updated_at", p.UpdatedAt); err != nil {
		return nil, err
	}
	return &accountRow{
		ID: *p.ID, HolderName: name, Country: p.Holder.Address.Country, Status: p.Status,
		Language: p.Preferences.Language, Version: *p.Version, UpdatedAt: p.UpdatedAt,
	}, nil
}

// checkText refuses a payload whose text fields, given as name, value
// pairs, a store cannot keep: PostgreSQL's text holds neither NUL bytes
// nor invalid UTF-8, and the write would fail on every retry.
func checkText(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if !storable(pairs[i+1]) {
			return fmt.Errorf("payload: %s %q: want UTF-8 text without NUL bytes", pairs[i], pairs[i+1])
		}
	}
	return nil
}

// checkTime refuses a time the reports could not answer with: RFC 3339
// spells only the years 0000 to 9999, and a time within them in its own
// offset may fall outside in UTC (9999-12-31T23:59:59-01:00).
func checkTime(name string, t time.Time) error {
	if y := t.UTC().Year(); y < 1 || y > 9999 {
		return fmt.Errorf("payload: %s %s: want a year from 1 to 9999 in UTC", name, t.Format(time.RFC3339Nano))
	}
	return nil
}
