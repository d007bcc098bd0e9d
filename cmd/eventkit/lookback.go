package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/postgres"
	"github.com/eventkit/eventkit/replay"
	"github.com/eventkit/eventkit/sqlite"
	"github.com/eventkit/eventkit/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { commands = append(commands, newLookbackCmd) }

// lookbackConfig is what `eventkit lookback serve` and `eventkit dev` need
// to run lookback: ingest into the database and the API and UI over it.
type lookbackConfig struct {
	kafka         kafkaFlags
	db            string
	listen        string
	listenFlag    string // that sets listen, for errors; default --listen
	tokensFile    string
	group         string
	topicsPattern string
	retention     time.Duration
	// tokens, when set, are used instead of --tokens-file and
	// EVENTKIT_TOKENS: `eventkit dev` brings its own.
	tokens *web.Tokens
	log    *slog.Logger
}

// Validate says what is missing or malformed, all at once.
func (c *lookbackConfig) Validate() error {
	var errs []error
	if len(splitList(c.kafka.brokers)) == 0 {
		errs = append(errs, errors.New("no brokers: set --brokers or EVENTKIT_BROKERS"))
	}
	if _, _, err := splitDB(c.db); err != nil {
		errs = append(errs, err)
	}
	if c.listen == "" {
		errs = append(errs, errors.New("no address: set --listen or EVENTKIT_LISTEN"))
	}
	if c.retention < 0 {
		errs = append(errs, fmt.Errorf("--retention %v: want 0 (keep everything) or more", c.retention))
	}
	return errors.Join(errs...)
}

// splitDB reads --db: sqlite://PATH or a postgres:// (postgresql://) URL.
func splitDB(dsn string) (kind, rest string, err error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		if p := strings.TrimPrefix(dsn, "sqlite://"); p != "" {
			return "sqlite", p, nil
		}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres", dsn, nil
	}
	return "", "", fmt.Errorf("--db %q: want sqlite://PATH or postgres://USER@HOST/DB", dsn)
}

// store is the archive and audit log of one database.
type store struct {
	archive lookback.Archive
	audit   lookback.AuditLog
	jobs    replay.JobStore
	close   func()
}

func openStore(ctx context.Context, dsn string) (*store, error) {
	kind, rest, err := splitDB(dsn)
	if err != nil {
		return nil, &exitCodeError{code: exitUsage, err: err}
	}
	if kind == "sqlite" {
		db, err := sqlite.Open(ctx, rest)
		if err != nil {
			return nil, err
		}
		audit := sqlite.NewAuditLog(db)
		return &store{archive: sqlite.NewArchive(db), audit: audit, jobs: sqlite.NewJobStore(db), close: func() { audit.Close(); db.Close() }}, nil
	}
	db, err := postgres.Open(ctx, rest)
	if err != nil {
		return nil, err
	}
	audit := postgres.NewAuditLog(db)
	return &store{archive: postgres.NewArchive(db), audit: audit, jobs: postgres.NewJobStore(db), close: func() { audit.Close(); db.Close() }}, nil
}

// runningLookback is lookback serving: stop ends it.
type runningLookback struct {
	addr string // where the API and UI listen
	// ingestDone is closed when the ingest stops by itself, with its error
	// in ingestErr; /readyz then answers 503.
	ingestDone <-chan struct{}
	ingestErr  error
	stop       func()
}

// startLookback opens the database, starts the ingest and serves the API
// and UI; it returns once they listen.
func startLookback(ctx context.Context, c *lookbackConfig) (*runningLookback, error) {
	if err := c.Validate(); err != nil {
		return nil, &exitCodeError{code: exitUsage, err: err}
	}
	kopts, err := c.kafka.opts()
	if err != nil {
		return nil, err
	}
	tokens := c.tokens
	if tokens == nil {
		var err error
		if tokens, err = web.LoadTokens(c.tokensFile, os.Getenv("EVENTKIT_TOKENS")); err != nil {
			return nil, &exitCodeError{code: exitUsage, err: err}
		}
	}
	st, err := openStore(ctx, c.db)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry() // one /metrics for the ingest, its agent and the API
	opts := []lookback.Opt{
		lookback.Brokers(splitList(c.kafka.brokers)...),
		lookback.AgentOpts(consumer.ClientOpts(append([]kgo.Opt{kgo.ClientID("eventkit-lookback")}, kopts...)...)),
		lookback.Retention(c.retention),
		lookback.Logger(c.log),
		lookback.Registerer(reg),
	}
	if c.group != "" {
		opts = append(opts, lookback.Group(c.group))
	}
	if c.topicsPattern != "" {
		opts = append(opts, lookback.Topics(c.topicsPattern))
	}
	in, err := lookback.NewIngest(st.archive, opts...)
	if err != nil {
		st.close()
		return nil, err
	}
	board, err := lookback.NewStatus(splitList(c.kafka.brokers), lookback.StatusLogger(c.log),
		lookback.StatusClientOpts(append([]kgo.Opt{kgo.ClientID("eventkit-lookback-status")}, kopts...)...))
	if err != nil {
		st.close()
		return nil, err
	}
	lb := &runningLookback{}
	ingestCtx, stopIngest := context.WithCancel(context.Background())
	done := make(chan struct{})
	lb.ingestDone = done
	go func() {
		defer close(done)
		if lb.ingestErr = in.Run(ingestCtx); lb.ingestErr != nil {
			c.log.Error("lookback ingest stopped", "err", lb.ingestErr)
		}
	}()
	// The status board runs beside the ingest and stops with it; it only
	// ever returns on its context, so it has no say in readiness.
	boardDone := make(chan struct{})
	go func() {
		defer close(boardDone)
		_ = board.Run(ingestCtx)
	}()
	ready := func(context.Context) error {
		select {
		case <-done:
			return fmt.Errorf("ingest stopped: %v", lb.ingestErr)
		default:
			return nil
		}
	}
	// stopBackground stops the ingest and the status board and waits for
	// both: the ingest drains and commits before the database closes.
	stopBackground := func() {
		stopIngest()
		<-done
		<-boardDone
	}
	// Replay jobs run beside the ingest on a plain producing client of
	// their own, over the same database, so a restarted lookback resumes
	// the jobs it was running.
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.ClientID("eventkit-lookback-replay")}, kopts...)...)
	if err != nil {
		stopBackground()
		st.close()
		return nil, err
	}
	runner := replay.NewRunner(cl, st.archive, st.jobs, replay.Audit(st.audit), replay.Logger(c.log))
	runnerCtx, stopRunner := context.WithCancel(context.Background())
	runnerDone := make(chan struct{})
	go func() {
		defer close(runnerDone)
		if err := runner.Run(runnerCtx); err != nil {
			c.log.Error("replay runner stopped", "err", err)
		}
	}()
	<-runner.Ready() // a replay asked for at once starts instead of answering 503
	stopJobs := func() {
		stopRunner()
		<-runnerDone // every job has stored its checkpoint
		cl.Close()
	}
	srv := web.New(st.archive, st.audit, tokens, web.Logger(c.log), web.Metrics(reg, reg), web.Ready(ready),
		web.StatusBoard(board), web.Replays(runner), web.Admin(kadm.NewClient(cl)))
	addr, stopHTTP, err := serveHTTP("lookback", cmp.Or(c.listenFlag, "--listen"), c.listen, srv, c.log)
	if err != nil {
		stopJobs()
		stopBackground()
		st.close()
		return nil, err
	}
	lb.addr = addr
	// The API stops first, so that no request reads a closing database;
	// the replay jobs and the ingest then drain and commit before the
	// database closes.
	lb.stop = func() {
		stopHTTP()
		stopJobs()
		stopBackground()
		st.close()
	}
	return lb, nil
}

func newLookbackCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lookback",
		Short: "The archive of every event: its API and operator UI",
	}
	cmd.AddCommand(newLookbackServeCmd(s))
	return cmd
}

func newLookbackServeCmd(s *streams) *cobra.Command {
	c := &lookbackConfig{}
	var level slog.Level
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Archive every event and serve the lookback API and UI",
		Long: `serve archives every event of the topics matching --topics-pattern into
--db, and serves the lookback API (/api/v1/...) and the operator UI on
--listen, with /healthz, /readyz and /metrics.

Requests authenticate with bearer tokens from --tokens-file, one
"NAME ROLE TOKEN" a line (ROLE viewer or operator, '#' starts a comment),
and from EVENTKIT_TOKENS=name:role:token,... Once listening it prints
"lookback: http://ADDR" and "ready"; it stops cleanly on SIGINT or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.log = slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: level}))
			lb, err := startLookback(cmd.Context(), c)
			if err != nil {
				return err
			}
			defer lb.stop()
			fmt.Fprintf(s.out, "lookback: http://%s\nready\n", lb.addr)
			select {
			case <-cmd.Context().Done():
				return nil
			case <-lb.ingestDone: // a supervisor restarts a lookback that archives nothing
				return fmt.Errorf("ingest stopped: %w", lb.ingestErr)
			}
		},
	}
	c.kafka.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&c.db, "db", "", "the archive's database: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB")
	f.StringVar(&c.listen, "listen", "127.0.0.1:8080", "address of the API and UI")
	f.StringVar(&c.tokensFile, "tokens-file", "", `file of "NAME ROLE TOKEN" lines; EVENTKIT_TOKENS=name:role:token,... adds more`)
	f.StringVar(&c.group, "group", lookback.DefaultGroup, "consumer group of the ingest, not an application's (env EVENTKIT_LOOKBACK_GROUP)")
	f.StringVar(&c.topicsPattern, "topics-pattern", "", "regular expression of the topics to archive (default: all but Kafka's internal and eventkit's own)")
	f.DurationVar(&c.retention, "retention", 30*24*time.Hour, "how long to keep events, by record timestamp (0: forever)")
	f.TextVar(&level, "log-level", slog.LevelInfo, "DEBUG, INFO, WARN or ERROR")
	return cmd
}
