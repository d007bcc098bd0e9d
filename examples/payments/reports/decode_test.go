package reports

import (
	"testing"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/examples/payments/events"
)

func TestDecodeAccountAcrossVersions(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       *accountRow // nil: refused
	}{
		{"v1", `{"id": "a1", "version": 3, "updated_at": "2026-03-01T10:00:00Z", "status": "active", "nickname": "ada",
			"holder": {"name": "Ada", "address": {"country": "GB", "city": "London"}}, "limits": {"daily_minor": 100},
			"preferences": {"language": "en", "timezone": "Europe/London"}}`,
			&accountRow{ID: "a1", HolderName: "Ada", Country: "GB", Status: "active", Language: "en", Version: 3}},
		{"v2 renamed the holder name", `{"id": "a1", "version": 4, "updated_at": "2026-03-01T10:00:00Z", "status": "frozen",
			"holder": {"legal_name": "Ada King", "address": {"country": "GB"}}, "kyc": {"risk_tier": "low"},
			"preferences": {"language": "fr"}}`,
			&accountRow{ID: "a1", HolderName: "Ada King", Country: "GB", Status: "frozen", Language: "fr", Version: 4}},
		{"unknown fields from a later version", `{"id": "a1", "version": 5, "updated_at": "2026-03-01T10:00:00Z",
			"holder": {"legal_name": "Ada", "pronouns": "she", "address": {"country": "GB", "geo": [1, 2]}}, "loyalty": {"tier": 3}}`,
			&accountRow{ID: "a1", HolderName: "Ada", Country: "GB", Version: 5}},
		{"not JSON", `{"id": "a1", "vers`, nil},
		{"wrong types", `{"id": 42, "version": "seven", "holder": "nobody"}`, nil},
		{"no version", `{"id": "a1", "updated_at": "2026-03-01T10:00:00Z", "holder": {"name": "Ada"}}`, nil},
		{"no holder name", `{"id": "a1", "version": 1, "updated_at": "2026-03-01T10:00:00Z", "holder": {}}`, nil},
		{"no time", `{"id": "a1", "version": 1, "holder": {"name": "Ada"}}`, nil},
		// The event is about a1: applied, this would overwrite b2's row.
		{"another account's id", `{"id": "b2", "version": 999999, "updated_at": "2026-03-01T10:00:00Z", "holder": {"name": "x"}}`, nil},
		{"NUL in the holder name", `{"id": "a1", "version": 1, "updated_at": "2026-03-01T10:00:00Z", "holder": {"name": "A\u0000da"}}`, nil},
		{"updated past 9999 in UTC", `{"id": "a1", "version": 1, "updated_at": "9999-12-31T23:59:59-01:00", "holder": {"name": "Ada"}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeAccount(&eventkit.Event{Type: events.AccountUpdated, Subject: "a1", Data: []byte(tc.data)})
			if tc.want == nil {
				if err == nil {
					t.Fatalf("decoded %+v, want an error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got.UpdatedAt = tc.want.UpdatedAt
			if *got != *tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	// Without a subject, the record's key names the account.
	b2 := `{"id": "b2", "version": 999999, "updated_at": "2026-03-01T10:00:00Z", "holder": {"name": "x"}}`
	if got, err := decodeAccount(&eventkit.Event{Type: events.AccountUpdated, Key: []byte("a1"), Data: []byte(b2)}); err == nil {
		t.Errorf("an event keyed by a1 decoded as %+v, want an error", got)
	}
	if _, err := decodeAccount(&eventkit.Event{Type: events.AccountUpdated, Key: []byte("b2"), Data: []byte(b2)}); err != nil {
		t.Errorf("an event keyed by its own account: %v", err)
	}
}

func TestDecodeTransferRefusesWhatWouldCorruptARow(t *testing.T) {
	ok := `{"id": "t1", "from": "a", "to": "b", "amount_minor": 5, "currency": "EUR", "status": "completed",
		"created_at": "2026-03-01T10:00:00Z", "settled_at": "2026-03-01T11:00:00Z", "fee": {"minor": 1}}`
	if _, err := decodeTransfer(&eventkit.Event{Type: events.TransferCompleted, Data: []byte(ok)}); err != nil {
		t.Fatalf("well-formed completion with an unknown field: %v", err)
	}
	for name, data := range map[string]string{
		"status of another type":  ok,
		"amount past the maximum": `{"id": "t1", "from": "a", "to": "b", "amount_minor": 5000000000000000000, "currency": "EUR", "status": "pending", "created_at": "2026-03-01T10:00:00Z"}`,
		"zero amount":             `{"id": "t1", "from": "a", "to": "b", "amount_minor": 0, "currency": "EUR", "status": "pending", "created_at": "2026-03-01T10:00:00Z"}`,
		"amount as text":          `{"id": "t1", "from": "a", "to": "b", "amount_minor": "5", "currency": "EUR", "status": "pending", "created_at": "2026-03-01T10:00:00Z"}`,
		"bad currency":            `{"id": "t1", "from": "a", "to": "b", "amount_minor": 5, "currency": "euro", "status": "pending", "created_at": "2026-03-01T10:00:00Z"}`,
		"no payee":                `{"id": "t1", "from": "a", "amount_minor": 5, "currency": "EUR", "status": "pending", "created_at": "2026-03-01T10:00:00Z"}`,
		"truncated":               ok[:40],
		// PostgreSQL's text refuses these: the write would fail on every
		// retry and halt the partition instead of parking the event.
		"NUL in the id": `{"id": "t\u0000", "from": "a", "to": "b", "amount_minor": 5, "currency": "EUR", "status": "pending", "created_at": "2026-03-01T10:00:00Z"}`,
		// Year 10000 in UTC: no report could answer with it.
		"created past 9999 in UTC": `{"id": "t1", "from": "a", "to": "b", "amount_minor": 5, "currency": "EUR", "status": "pending", "created_at": "9999-12-31T23:59:59-01:00"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := decodeTransfer(&eventkit.Event{Type: events.TransferCreated, Data: []byte(data)}); err == nil {
				t.Fatalf("decoded %+v, want an error", r)
			}
		})
	}
	for name, data := range map[string]string{
		// Stored, the zero time reads back NULL.
		"settled at the zero time":     `{"id": "t1", "from": "a", "to": "b", "amount_minor": 5, "currency": "EUR", "status": "failed", "created_at": "2026-03-01T10:00:00Z", "settled_at": "0001-01-01T00:00:00Z"}`,
		"settled before year 1 in UTC": `{"id": "t1", "from": "a", "to": "b", "amount_minor": 5, "currency": "EUR", "status": "failed", "created_at": "2026-03-01T10:00:00Z", "settled_at": "0001-01-01T00:00:00+01:00"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if r, err := decodeTransfer(&eventkit.Event{Type: events.TransferFailed, Data: []byte(data)}); err == nil {
				t.Fatalf("decoded %+v, want an error", r)
			}
		})
	}
}
