// Package reports is the reporting service of the payments platform: an
// agent that consumes the transfer and account events, keeps only the
// typed, indexed columns its reports need, and answers report queries over
// HTTP. Anything else about an account it asks of transfers when a report
// wants it.
//
// Every event goes through the idempotency middleware, and its side effect
// commits in one transaction with its done mark, so duplicates, retries,
// restarts and replays never count a transfer twice. The rows and the
// idempotency records live in SQLite, or in PostgreSQL with
// Config.PostgresDSN. Writes of concurrent events share transactions (group
// commit), which is what lets SQLite keep up with the topic.
//
//	svc, err := reports.New(ctx, reports.Config{Brokers: brokers, DBPath: "reports.db", TransfersURL: "http://127.0.0.1:8081"})
//	if err != nil {
//		return err
//	}
//	return svc.Run(ctx)
package reports

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/examples/payments/internal/web"
	"github.com/eventkit/eventkit/idempotency"
	"github.com/eventkit/eventkit/internal/groupcommit"
	"github.com/eventkit/eventkit/internal/httpserve"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

//go:embed migrations
var migrations embed.FS

// Defaults.
const (
	DefaultGroup      = "payments-reports"
	DefaultDeadLetter = "payments.reports.dlq"
)

// Config configures the service.
type Config struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// DBPath is the SQLite database file; the idempotency records live in
	// it too, next to the rows they guard. Required unless PostgresDSN is
	// set.
	DBPath string
	// PostgresDSN, a URL or key=value string, keeps the rows and the
	// idempotency records in PostgreSQL instead of SQLite.
	PostgresDSN string
	// Addr is the HTTP listen address. Default "127.0.0.1:0".
	Addr string
	// TransfersURL is the base URL of the transfers API, asked for what
	// reports does not keep. Required.
	TransfersURL string
	// Group is the consumer group. Default DefaultGroup.
	Group string
	// DeadLetterTopic receives warned events, created when missing.
	// Default DefaultDeadLetter.
	DeadLetterTopic string
	// Concurrency is how many events are handled at once; their writes
	// share transactions, so more at once makes fewer, larger ones.
	// Default 1024.
	Concurrency int
	// Drill fails part of the handling on purpose.
	Drill Drill
	// MigrateTo stops the schema at this migration version; 0, the
	// default, applies every migration. It exists for the schema-evolution
	// walk-through and its test, which run reports as it was before a
	// migration: the service then neither writes nor reads the columns
	// that later versions add. A database already past it stays as it is.
	MigrateTo int64
	// AgentOpts are extra consumer options (timings, metrics), applied last.
	AgentOpts []consumer.Opt
	// ClientOpts are extra franz-go options for the agent and the admin
	// client (TLS, SASL, test timings).
	ClientOpts []kgo.Opt
	// Logger defaults to discard.
	Logger *slog.Logger
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if (c.DBPath == "") == (c.PostgresDSN == "") {
		errs = append(errs, errors.New("want a database: a SQLite path or a PostgreSQL DSN, not both"))
	}
	if c.TransfersURL == "" {
		errs = append(errs, errors.New("no transfers URL"))
	}
	if c.MigrateTo < 0 {
		errs = append(errs, fmt.Errorf("migrate to %d: want a version, or 0 for the newest", c.MigrateTo))
	}
	if c.Drill.Fraction < 0 || c.Drill.Fraction > 1 {
		errs = append(errs, fmt.Errorf("drill fraction %v: want 0 to 1", c.Drill.Fraction))
	}
	if f := c.Drill.Flag; f != eventkit.FlagNone && f != eventkit.FlagRetry && f != eventkit.FlagWarn {
		errs = append(errs, fmt.Errorf("drill flag %v: want retry or warn", f))
	}
	return errors.Join(errs...)
}

// Stats counts what the service did.
type Stats struct {
	// Written counts events whose side effect committed.
	Written int64
}

// Service is the reports service. Create it with [New], run it with Run.
type Service struct {
	cfg     Config
	st      *store
	batch   *groupcommit.Batcher[*write, struct{}]
	agent   *consumer.Consumer
	ln      net.Listener
	log     *slog.Logger
	http    *http.Client
	written atomic.Int64
	drilled drillCounter
}

// New opens and migrates the database, creates the dead-letter topic when
// missing and binds the HTTP address; nothing is consumed or served until
// Run.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.DeadLetterTopic == "" {
		cfg.DeadLetterTopic = DefaultDeadLetter
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1024
	}
	if cfg.Drill.Flag == eventkit.FlagNone {
		cfg.Drill.Flag = eventkit.FlagRetry
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("service", "reports"), http: &http.Client{Timeout: 5 * time.Second}}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	var err error
	if s.st, err = openStore(ctx, cfg); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	if err := ensureTopic(ctx, cfg, cfg.DeadLetterTopic); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	s.batch = groupcommit.New(s.writeBatch, groupcommit.Config{MaxBatch: cfg.Concurrency})
	h := eventkit.Chain(eventkit.HandlerFunc(s.handle), idempotency.Middleware(s.st.idem, idempotency.Logger(s.log)))
	s.agent, err = consumer.New(h, append([]consumer.Opt{
		consumer.Brokers(cfg.Brokers...),
		consumer.Group(cfg.Group),
		consumer.Topics(events.TopicTransfers, events.TopicAccounts),
		consumer.ClientOpts(cfg.ClientOpts...),
		// Events of one transfer or one account stay in order; the rest
		// run side by side so that their writes share transactions.
		consumer.Ordering(consumer.ByKey),
		consumer.Concurrency(cfg.Concurrency),
		consumer.DeadLetterTopic(cfg.DeadLetterTopic),
		// An event that used up its retries halts its partition only: the
		// service keeps serving and consuming the rest while an operator
		// resumes or skips it from lookback (the failure drill's story).
		consumer.HaltPolicy(consumer.PausePartition),
		consumer.Logger(s.log),
	}, cfg.AgentOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	if s.ln, err = web.Listen(cfg.Addr); err != nil {
		return nil, fmt.Errorf("reports: %w", err)
	}
	ok = true
	return s, nil
}

func ensureTopic(ctx context.Context, cfg Config, topic string) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	return kafka.EnsureTopic(ctx, kadm.NewClient(cl), topic, 0)
}

// URL is the base URL of the report API.
func (s *Service) URL() string { return "http://" + s.ln.Addr().String() }

// Schema is the migration version of the service's database.
func (s *Service) Schema() int64 { return s.st.schema }

// Stats returns what the service did so far.
func (s *Service) Stats() Stats { return Stats{Written: s.written.Load()} }

// Run consumes and serves until ctx ends, or until the agent stops by
// itself (a halt or a kill, whose error it returns); then it stops both and
// closes what New opened.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- s.agent.Run(ctx) }()
	go func() { errc <- httpserve.Serve(ctx, s.ln, s.routes(), nil) }()
	err := <-errc
	cancel()
	return errors.Join(err, <-errc)
}

// Close releases what New opened, for a Service that will not Run; Run
// releases it by itself.
func (s *Service) Close() { s.close() }

func (s *Service) close() {
	if s.ln != nil {
		s.ln.Close()
	}
	if s.batch != nil {
		// Nobody waits for a write still running by now (a handler that
		// gave up when the drain timed out, on a database that hangs): it
		// is cancelled. Its event was not committed, and its done mark
		// commits with it or not at all.
		s.batch.Abort()
		s.batch.Close()
	}
	if s.st != nil {
		s.st.close()
	}
}
