// Package events is the contract between the payments services: the
// topics, the CloudEvents types, and the payloads transfers publishes.
//
// Transfer events (transfer.created, transfer.completed, transfer.failed)
// are small and immutable; each carries the whole transfer, so that a
// consumer can apply them in any order. account.updated is large, mutable
// and evolving: it carries the whole account as of one version, in the
// schema named by the ce_dataschema header (see the README for the rules
// that keep versions compatible).
package events

import "time"

// Topics. Transfer events are keyed by transfer id and account events by
// account id, so that the events of one transfer or one account stay in
// order on one partition.
const (
	TopicTransfers = "payments.transfers"
	TopicAccounts  = "payments.accounts"
)

// CloudEvents types.
const (
	TransferCreated   = "transfer.created"
	TransferCompleted = "transfer.completed"
	TransferFailed    = "transfer.failed"
	AccountUpdated    = "account.updated"
)

// Source is the ce_source of every event transfers publishes.
const Source = "/payments/transfers"

// HeaderDataSchema is the record header of the CloudEvents dataschema
// attribute in the Kafka binding; it names the schema of account.updated.
const HeaderDataSchema = "ce_dataschema"

// Schemas of account.updated. v2 renames holder.name to holder.legal_name,
// drops nickname and adds kyc.risk_tier.
const (
	AccountSchemaV1 = "urn:eventkit:payments:account.updated:v1"
	AccountSchemaV2 = "urn:eventkit:payments:account.updated:v2"
)

// Transfer statuses.
const (
	StatusPending   = "pending"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
)

// MaxAmountMinor is the largest amount of one transfer, in minor units:
// ten billion in a currency of two decimals. Totals of any realistic
// number of transfers then stay far inside an int64, which a single
// transfer of 2^62 would not.
const MaxAmountMinor = 1_000_000_000_000

// Transfer is the payload of every transfer event and the transfers API's
// representation of a transfer.
type Transfer struct {
	ID          string `json:"id"`
	From        string `json:"from"`
	To          string `json:"to"`
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
	Status      string `json:"status"`
	// Reason says why a transfer failed.
	Reason    string     `json:"reason,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	SettledAt *time.Time `json:"settled_at,omitempty"`
}
