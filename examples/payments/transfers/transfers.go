// Package transfers is the synchronous side of the payments platform: an
// HTTP API to open and change accounts and to create, complete and fail
// transfers. It owns its state (SQLite by default) and tells the rest of
// the platform what changed through CloudEvents on Kafka.
//
// Every change is written together with its events in one transaction (an
// outbox), and a publisher owned by Run sends the outbox to Kafka in order
// and only then deletes it. A crash can therefore publish an event twice
// (with the same ce_id, which consumers deduplicate) but never lose one nor
// publish one for a change that was rolled back.
//
//	svc, err := transfers.New(ctx, transfers.Config{Brokers: brokers, DBPath: "transfers.db", Addr: ":8081"})
//	if err != nil {
//		return err
//	}
//	return svc.Run(ctx)
package transfers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/examples/payments/internal/web"
	"github.com/eventkit/eventkit/internal/httpserve"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures the service.
type Config struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// DBPath is the SQLite database file. Required unless Store is set.
	DBPath string
	// Store replaces the SQLite store; the caller closes it.
	Store Store
	// Addr is the HTTP listen address. Default "127.0.0.1:0".
	Addr string
	// Partitions of the topics, created at start when missing. Default 3.
	Partitions int32
	// AccountVersion is the schema version of the account.updated events
	// published, 1 or 2. Default 2; [Service.SetAccountVersion] changes it
	// while running.
	AccountVersion int
	// Drill makes the publisher misbehave on purpose.
	Drill Drill
	// ClientOpts are extra franz-go options (TLS, SASL, test timings).
	ClientOpts []kgo.Opt
	// Logger defaults to discard.
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Drill makes the publisher misbehave, for failure drills. Each fraction is
// of the events published, between 0 and 1, and is applied exactly (every
// 1/fraction-th event), not at random, so that a drill is repeatable.
type Drill struct {
	// Malformed adds a broken record after that fraction of events, each
	// broken in the next of three ways: a payload that is not JSON, a
	// payload whose fields have the wrong types, and CloudEvents headers
	// without ce_id. The real event is still published, so the books stay
	// whole while consumers warn and park the broken ones.
	Malformed float64
	// Duplicate publishes that fraction of events twice, as a crash
	// between the produce and the outbox delete does.
	Duplicate float64
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.DBPath == "" && c.Store == nil {
		errs = append(errs, errors.New("no database path"))
	}
	if c.AccountVersion != 0 && c.AccountVersion != 1 && c.AccountVersion != 2 {
		errs = append(errs, fmt.Errorf("account version %d: want 1 or 2", c.AccountVersion))
	}
	if bad := func(f float64) bool { return f < 0 || f > 1 }; bad(c.Drill.Malformed) || bad(c.Drill.Duplicate) {
		errs = append(errs, errors.New("drill fractions must be between 0 and 1"))
	}
	return errors.Join(errs...)
}

// Stats counts what the publisher did.
type Stats struct {
	Published  int64 // events published, duplicates included
	Malformed  int64 // broken records added by the drill
	Duplicated int64 // events published a second time by the drill
}

// Service is the transfers service. Create it with [New], run it with Run.
type Service struct {
	cfg     Config
	store   Store
	ownDB   *SQLiteStore
	cl      *kgo.Client
	pub     *kafka.Publisher
	ln      net.Listener
	log     *slog.Logger
	version atomic.Int32
	wake    chan struct{}

	published, malformed, duplicated atomic.Int64
}

// New opens the database, creates the topics when missing and binds the
// HTTP address; nothing is served or published until Run.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("transfers: %w", err)
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 3
	}
	if cfg.AccountVersion == 0 {
		cfg.AccountVersion = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Service{cfg: cfg, store: cfg.Store, log: cfg.Logger.With("service", "transfers"), wake: make(chan struct{}, 1)}
	s.version.Store(int32(cfg.AccountVersion))
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	if s.store == nil {
		db, err := OpenSQLite(ctx, cfg.DBPath)
		if err != nil {
			return nil, fmt.Errorf("transfers: %w", err)
		}
		s.store, s.ownDB = db, db
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("transfers: %w", err)
	}
	s.cl = cl
	s.pub = kafka.NewPublisher(cl, kafka.Source(events.Source))
	adm := kadm.NewClient(cl)
	for _, t := range []string{events.TopicTransfers, events.TopicAccounts} {
		if err := kafka.EnsureTopic(ctx, adm, t, cfg.Partitions); err != nil {
			return nil, fmt.Errorf("transfers: %w", err)
		}
	}
	if s.ln, err = web.Listen(cfg.Addr); err != nil {
		return nil, fmt.Errorf("transfers: %w", err)
	}
	ok = true
	return s, nil
}

// URL is the base URL of the HTTP API.
func (s *Service) URL() string { return "http://" + s.ln.Addr().String() }

// SetAccountVersion switches the schema of the account.updated events
// written from now on (1 or 2).
func (s *Service) SetAccountVersion(v int) error {
	if v != 1 && v != 2 {
		return fmt.Errorf("account version %d: want 1 or 2", v)
	}
	s.version.Store(int32(v))
	return nil
}

// Stats returns what the publisher did so far.
func (s *Service) Stats() Stats {
	return Stats{Published: s.published.Load(), Malformed: s.malformed.Load(), Duplicated: s.duplicated.Load()}
}

// Run serves the API and publishes the outbox until ctx ends, then stops
// both and closes what New opened. It returns nil after a clean stop.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 2)
	go func() { errc <- s.publishLoop(ctx) }()
	go func() { errc <- httpserve.Serve(ctx, s.ln, s.routes(), nil) }()
	// The first part to stop, for whatever reason, stops the other.
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
	if s.cl != nil {
		s.cl.Close()
	}
	if s.ownDB != nil {
		s.ownDB.Close()
	}
}

// notify wakes the publisher after a commit that wrote to the outbox.
func (s *Service) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
