// Package payments is the reference payments platform, runnable in one
// process: transfers (the HTTP API that owns accounts and transfers and
// publishes their events), reports (the agent that keeps only what its
// reports need) and a traffic generator.
//
//	p, err := payments.Start(ctx, payments.Config{
//		Brokers: []string{"127.0.0.1:9092"},
//		DataDir: "./eventkit-data/payments",
//		Traffic: 5,
//	})
//	if err != nil {
//		return err
//	}
//	fmt.Println("transfers:", p.TransfersURL())
//	fmt.Println("reports:", p.ReportsURL())
//	return p.Wait() // after ctx ends, once everything stopped
package payments

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/examples/payments/reports"
	"github.com/eventkit/eventkit/examples/payments/transfers"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Config configures the platform.
type Config struct {
	// Brokers are the seed brokers. Required.
	Brokers []string
	// DataDir holds both services' databases. Required.
	DataDir string
	// ReportsPostgres, a PostgreSQL DSN, keeps reports' rows there instead
	// of in SQLite under DataDir.
	ReportsPostgres string
	// TransfersAddr and ReportsAddr are the HTTP listen addresses.
	// Default "127.0.0.1:0" each.
	TransfersAddr, ReportsAddr string
	// Traffic is how many events per second the generator makes through
	// the transfers API; 0 for none.
	Traffic float64
	// AccountVersion is the schema version of account.updated that
	// transfers publishes, 1 or 2. Default 2.
	AccountVersion int
	// TransfersDrill and ReportsDrill make the services fail on purpose.
	TransfersDrill transfers.Drill
	ReportsDrill   reports.Drill
	// ReportsMigrateTo holds reports' schema at this migration version (0:
	// the newest), to run reports as it was before a migration: see
	// reports.Config.MigrateTo and the README's "Evolving event C".
	ReportsMigrateTo int64
	// ClientOpts are extra franz-go options for every client.
	ClientOpts []kgo.Opt
	// AgentOpts are extra options for the reports agent.
	AgentOpts []consumer.Opt
	// Logger defaults to discard.
	Logger *slog.Logger
	// Now is the transfers clock. Default time.Now.
	Now func() time.Time
}

// Validate checks what the services do not check themselves.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("no data directory"))
	}
	if c.Traffic < 0 || math.IsNaN(c.Traffic) || math.IsInf(c.Traffic, 0) {
		errs = append(errs, fmt.Errorf("traffic %v: want 0 or more events/s", c.Traffic))
	}
	return errors.Join(errs...)
}

// Platform is a running platform.
type Platform struct {
	Transfers *transfers.Service
	Reports   *reports.Service

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start opens both services (their databases under DataDir, their HTTP
// addresses bound) and runs them, and the traffic generator, until ctx
// ends or one of them fails, which stops the others. Wait returns once
// everything stopped.
func Start(ctx context.Context, cfg Config) (*Platform, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("payments: %w", err)
	}
	t, err := transfers.New(ctx, transfers.Config{
		Brokers: cfg.Brokers, DBPath: filepath.Join(cfg.DataDir, "transfers.db"), Addr: cfg.TransfersAddr,
		AccountVersion: cfg.AccountVersion, Drill: cfg.TransfersDrill, ClientOpts: cfg.ClientOpts,
		Logger: cfg.Logger, Now: cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	rcfg := reports.Config{
		Brokers: cfg.Brokers, DBPath: filepath.Join(cfg.DataDir, "reports.db"), PostgresDSN: cfg.ReportsPostgres, Addr: cfg.ReportsAddr,
		TransfersURL: t.URL(), Drill: cfg.ReportsDrill, MigrateTo: cfg.ReportsMigrateTo, ClientOpts: cfg.ClientOpts,
		AgentOpts: cfg.AgentOpts, Logger: cfg.Logger,
	}
	if rcfg.PostgresDSN != "" {
		rcfg.DBPath = ""
	}
	r, err := reports.New(ctx, rcfg)
	if err != nil {
		t.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Platform{Transfers: t, Reports: r, cancel: cancel, done: make(chan struct{})}
	parts := []func(context.Context) error{
		t.Run,
		r.Run,
		func(ctx context.Context) error { return Traffic(ctx, t.URL(), cfg.Traffic) },
	}
	errs := make([]error, len(parts))
	var wg sync.WaitGroup
	for i, run := range parts {
		wg.Go(func() {
			errs[i] = run(ctx)
			if errs[i] != nil {
				cancel() // one part down takes the platform down
			}
		})
	}
	go func() {
		wg.Wait()
		cancel()
		p.err = errors.Join(errs...)
		close(p.done)
	}()
	return p, nil
}

// TransfersURL is the base URL of the transfers API.
func (p *Platform) TransfersURL() string { return p.Transfers.URL() }

// ReportsURL is the base URL of the report API.
func (p *Platform) ReportsURL() string { return p.Reports.URL() }

// Wait returns once every part has stopped, with their errors; nil after a
// stop by the context.
func (p *Platform) Wait() error {
	<-p.done
	return p.err
}

// Stop stops the platform and waits for it.
func (p *Platform) Stop() error {
	p.cancel()
	return p.Wait()
}

// Run starts the platform, prints "transfers: URL" and "reports: URL" to
// out, and returns once ctx ended and everything stopped.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	p, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "transfers:", p.TransfersURL())
	fmt.Fprintln(out, "reports:", p.ReportsURL())
	return p.Wait()
}
