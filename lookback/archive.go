// Package lookback is the archive service: it ingests every event of the
// platform with the consumer agent, keeps it in an [Archive] for auditing and
// for fine-grained replay, and records every operator action in an
// [AuditLog].
//
// The archive is keyed by a record's coordinates (topic, partition, offset),
// so ingesting a record twice stores it once. Queries filter on the
// CloudEvents attributes, the key, headers and a time range, and page with
// an opaque cursor that keeps its place while new events arrive:
//
//	f := lookback.Filter{Topic: "payments", Key: []byte("acct-42")}
//	page, err := archive.Query(ctx, lookback.Query{Filter: f, Limit: 50})
//	for _, r := range page.Records { ... }
//	next, err := archive.Query(ctx, lookback.Query{Filter: f, Limit: 50, Cursor: page.NextCursor})
//
// Stores live in packages sqlite (the embedded default) and postgres; both
// pass the suite in lookback/archivetest.
package lookback

import (
	"context"
	"errors"
	"time"

	"github.com/eventkit/eventkit"
)

// Record is one archived Kafka record: its coordinates and timestamp, its
// key, value and headers as they were on the wire, and the CloudEvents
// attributes decoded from them (empty where a header was missing or did not
// decode).
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time // the record's timestamp; queries order and filter by it

	Key     []byte // nil when the record had no key
	Value   []byte
	Headers []eventkit.Header // every header, in record order

	ID          string
	Type        string
	Source      string
	Subject     string
	Time        time.Time // ce_time; zero when absent
	ContentType string
}

// Order is the direction of a query: by record timestamp, then topic,
// partition and offset.
type Order uint8

const (
	Desc Order = iota // newest first, the default
	Asc               // oldest first
)

// HeaderMatch requires a header named Name whose value is Value.
type HeaderMatch struct {
	Name  string
	Value []byte
}

// Filter selects archived records. Every set field must match; a zero
// field matches everything.
type Filter struct {
	Topic     string
	Partition *int32
	Key       []byte // nil matches every key
	Type      string
	ID        string
	IDs       []string // any of these ids (replay by a list of ids)
	Subject   string
	Source    string
	From, To  time.Time // on the record timestamp, both inclusive; zero is open
	Headers   []HeaderMatch
}

// Query is a filter with paging.
type Query struct {
	Filter
	Order Order
	// Limit is the page size, 1 to MaxLimit; 0 means DefaultLimit.
	Limit int
	// Cursor is a previous page's NextCursor; empty starts at the first
	// page. A cursor is only valid with the filter and order it came from.
	Cursor string
	// Bare answers records with what Kafka carries only (coordinates,
	// timestamp, key, value and headers), leaving their CloudEvents fields
	// empty: what a replay sends, read for less.
	Bare bool
}

const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// PageBytes bounds a page's keys, values and headers: a page ends
	// with the record that takes it to PageBytes or past, fewer records
	// than its limit, with a NextCursor. A thousand records of a
	// megabyte would otherwise be a gigabyte to read, hold and send.
	PageBytes = 4 << 20
)

// Page is one page of a query's answer.
type Page struct {
	Records []Record
	// NextCursor continues the query after the last record; empty on the
	// last page.
	NextCursor string
}

// TopicStats summarises the archive of one topic.
type TopicStats struct {
	Topic      string
	Partitions int32 // the number of distinct partitions archived
	Count      int64
	First      time.Time // the oldest record timestamp
	Last       time.Time // the newest record timestamp
}

// ReplayLink ties a replayed record to the original it copies: lookback
// never archives a replayed record as a new event.
type ReplayLink struct {
	ReplayID string
	Mode     eventkit.ReplayMode
	// Origin is the original record's coordinates.
	OriginTopic     string
	OriginPartition int32
	OriginOffset    int64
	// The replayed record's own coordinates and timestamp.
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// Archive stores records. Implementations are safe for concurrent use.
type Archive interface {
	// Append stores records; a record whose coordinates are already
	// archived is left as it is. Links are stored the same way, keyed by
	// the replayed record's coordinates.
	Append(ctx context.Context, records []Record, links []ReplayLink) error
	// Query answers one page of records matching q, in q's order.
	Query(ctx context.Context, q Query) (Page, error)
	// Count counts the records matching f.
	Count(ctx context.Context, f Filter) (int64, error)
	// Get returns the record at the given coordinates, or ErrNotFound.
	Get(ctx context.Context, topic string, partition int32, offset int64) (Record, error)
	// Links lists the replayed copies of the record at the given
	// coordinates, oldest first.
	Links(ctx context.Context, topic string, partition int32, offset int64) ([]ReplayLink, error)
	// Topics summarises every archived topic, by name.
	Topics(ctx context.Context) ([]TopicStats, error)
	// DeleteBefore removes records and links whose timestamp is before t,
	// at most limit of them (0: no limit), and reports how many it removed.
	DeleteBefore(ctx context.Context, t time.Time, limit int) (int64, error)
}

// AuditEntry is one line of the audit log: who did what, when, and how it
// ended.
type AuditEntry struct {
	ID      int64 // assigned by the log
	At      time.Time
	Actor   string // the token's name, never the token
	Role    string
	Action  string // e.g. "GET /api/v1/events", "replay.start", "offsets.reset", "denied"
	Target  string // what the action was about: a path, a group, a replay id
	Detail  string // JSON: the filter, the plan, the counts
	Outcome string // e.g. "ok", "denied", "conflict", "error: …"
}

// AuditQuery pages through the audit log, newest first.
type AuditQuery struct {
	Actor  string
	Action string
	Limit  int   // 1 to MaxLimit; 0 means DefaultLimit
	Before int64 // entries with an ID below this; 0 starts at the newest
}

// AuditLog records operator actions in the archive's own database.
type AuditLog interface {
	Record(ctx context.Context, e AuditEntry) (int64, error)
	List(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

var (
	// ErrNotFound: no record at those coordinates.
	ErrNotFound = errors.New("lookback: not found")
	// ErrBadQuery wraps every error of a malformed query or cursor.
	ErrBadQuery = errors.New("lookback: bad query")
)
