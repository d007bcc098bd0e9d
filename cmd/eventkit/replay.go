package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newReplayCmd) }

type replayFlags struct {
	kafka    kafkaFlags
	db       string
	lookback string
	token    string
	filter   []string
	ids      []string
	toTopic  string
	toGroup  string
	mode     string
	rate     float64
	dryRun   bool
	resume   string
	leaseTTL time.Duration
}

func newReplayCmd(s *streams) *cobra.Command {
	f := &replayFlags{}
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Send archived events again, to a topic or to one consumer group",
		Long: `replay reads the events --filter and --ids select from the lookback archive
in --db, oldest first, and produces copies of them with the replay headers
(eventkit-replay-id, -mode, -origin) to --to-topic, which every group
consuming it sees, or to --to-group's replay topic eventkit.replay.GROUP,
which only that group sees (created when missing).

--mode deduplicate (the default for a topic) lets a group skip what it has
already processed; reprocess (the default for a group) has it processed
once more. --rate limits the events a second. --dry-run prints how many
events match and the first of them, and sends nothing.

--filter takes comma-separated KEY=VALUE items: topic, partition, key, type,
id, source, subject, from and to (RFC 3339, on the record timestamp, both
inclusive), and header=NAME:VALUE (repeatable; all must match). Values
cannot hold a comma; give --filter more than once instead.

With --lookback URL instead of --db, the lookback service runs the job
through its API (POST /api/v1/replays) with --token, an operator's token:
the job then resumes there after a restart of lookback, and the audit log
names the token's owner. No --brokers needed.

Progress shows on stderr; the job as JSON goes to stdout at the end. An
interrupt cancels the job. A job whose process was killed stays running
in the database, held by that process for up to 30 seconds: then a
lookback service on the same database takes it over, or --resume ID
continues it (waiting for the hold to end), sending nothing twice.`,
		Example: `  eventkit replay --db sqlite://eventkit-data/lookback.db --filter topic=payments,type=payment.settled --to-group reports
  eventkit replay --db postgres://lookback@db/lookback --filter topic=orders,from=2024-05-01T10:00:00Z --to-topic orders --rate 500 --dry-run
  EVENTKIT_TOKEN=... eventkit replay --lookback http://127.0.0.1:8080 --ids 0190f0c2-…,0190f0c3-… --to-group reports`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := f.spec()
			if err != nil {
				return &exitCodeError{code: exitUsage, err: err}
			}
			return f.run(cmd.Context(), s, spec)
		},
	}
	f.kafka.bind(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.db, "db", "", "the lookback database: sqlite://PATH or postgres://USER@HOST/DB; this process runs the job")
	fl.StringVar(&f.lookback, "lookback", "", "a lookback service's address, http://HOST:PORT, which runs the job (instead of --db)")
	fl.StringVar(&f.token, "token", "", "with --lookback: an operator's bearer token")
	fl.StringArrayVar(&f.filter, "filter", nil, "events to replay: KEY=VALUE,… (topic, partition, key, type, id, source, subject, from, to, header=NAME:VALUE)")
	fl.StringSliceVar(&f.ids, "ids", nil, "replay the events with these ids, comma-separated")
	fl.StringVar(&f.toTopic, "to-topic", "", "send to this topic, which every group consuming it sees")
	fl.StringVar(&f.toGroup, "to-group", "", "send to this consumer group only, through its replay topic")
	fl.StringVar(&f.mode, "mode", "", "reprocess or deduplicate (default: reprocess for a group, deduplicate for a topic)")
	fl.Float64Var(&f.rate, "rate", 0, "events a second at most (0: no limit)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the count and a sample; send nothing")
	fl.StringVar(&f.resume, "resume", "", "continue the job with this id, left running by a process that was killed")
	// For tests, which cannot wait for a killed process's lease as long
	// as an operator can.
	fl.DurationVar(&f.leaseTTL, "lease-ttl", 30*time.Second, "how long the job stays this process's after it was killed")
	_ = fl.MarkHidden("lease-ttl")
	commandLineOnly(fl, "dry-run", "resume", "lease-ttl")
	oneOf(fl, "db", "lookback")
	oneOf(fl, "to-topic", "to-group")
	return cmd
}

// spec turns the flags into a replay spec, reporting every problem at once.
func (f *replayFlags) spec() (replay.Spec, error) {
	switch {
	case f.db == "" && f.lookback == "":
		return replay.Spec{}, errors.New("no archive: give --db (this process runs the job) or --lookback (lookback runs it)")
	case f.db != "" && f.lookback != "":
		return replay.Spec{}, errors.New("both --db and --lookback: give one")
	}
	if f.resume != "" && f.lookback != "" {
		return replay.Spec{}, errors.New("--resume works with --db: lookback resumes the jobs it runs itself when it restarts")
	}
	if f.resume != "" {
		if len(f.filter) > 0 || len(f.ids) > 0 || f.toTopic != "" || f.toGroup != "" || f.mode != "" || f.rate != 0 || f.dryRun {
			return replay.Spec{}, errors.New("--resume continues a job as it was started: give no filter, target, mode, rate or --dry-run")
		}
		return replay.Spec{}, nil
	}
	var errs []error
	filter, err := parseFilter(f.filter)
	if err != nil {
		errs = append(errs, err)
	}
	filter.IDs = f.ids
	spec := replay.Spec{Filter: filter, Target: replay.Target{Topic: f.toTopic, Group: f.toGroup},
		Mode: eventkit.ReplayMode(f.mode), Rate: f.rate, DryRun: f.dryRun}
	if err := spec.Validate(); err != nil {
		errs = append(errs, err)
	}
	return spec, errors.Join(errs...)
}

// parseFilter reads --filter items, KEY=VALUE each, with the parser of
// lookback's events query, so that a replay selects exactly what the same
// filter shows in the API and the UI. Paging keys are refused: a replay
// takes every match.
func parseFilter(items []string) (lookback.Filter, error) {
	v := url.Values{}
	for _, item := range items {
		for _, kv := range splitList(item) {
			k, val, ok := strings.Cut(kv, "=")
			if !ok || val == "" {
				return lookback.Filter{}, fmt.Errorf("--filter %q: want KEY=VALUE", kv)
			}
			switch k {
			case "topic", "partition", "key", "type", "id", "source", "subject", "from", "to", "header":
			case "limit", "cursor", "order":
				return lookback.Filter{}, fmt.Errorf("--filter %s: a replay takes every match; %s", k, filterKeys)
			default:
				return lookback.Filter{}, fmt.Errorf("--filter: unknown key %q; %s", k, filterKeys)
			}
			v.Add(k, val)
		}
	}
	q, err := lookback.ParseQuery(v)
	if err != nil {
		return lookback.Filter{}, fmt.Errorf("--filter: %w", err)
	}
	return q.Filter, nil
}

const filterKeys = "want topic, partition, key, type, id, source, subject, from, to or header"

func (f *replayFlags) run(ctx context.Context, s *streams, spec replay.Spec) error {
	if f.lookback != "" {
		api, err := newLookbackAPI(f.lookback, f.token)
		if err != nil {
			return &exitCodeError{code: exitUsage, err: err}
		}
		// Polled over the network: a few times a second is enough.
		return f.drive(ctx, s, api, spec, "", 500*time.Millisecond)
	}
	db, err := openStore(ctx, f.db)
	if err != nil {
		return err
	}
	defer db.close()
	cl, err := f.kafka.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	// This process runs its own job only: a lookback service on the same
	// database runs the others.
	r := replay.NewRunner(cl, db.archive, db.jobs, replay.Audit(db.audit), replay.ResumeOnly(f.resume), replay.LeaseTTL(f.leaseTTL))
	local := localRunner{r: r, actor: replay.Actor{Name: actorName(), Role: "operator"}}
	if spec.DryRun {
		return f.drive(ctx, s, local, spec, "", 0)
	}

	if f.resume != "" {
		// Read before Run takes the job, so that a lease shown is the
		// killed process's.
		job, err := db.jobs.Job(ctx, f.resume)
		if err != nil {
			return err
		}
		if job.Status != replay.Running {
			return fmt.Errorf("job %s is %s: nothing to resume", job.ID, job.Status)
		}
		if l := job.Lease; l.Held(time.Now()) {
			fmt.Fprintf(s.err, "replay %s: waiting for the lease of %s to expire at %s\n", job.ID, l.Owner, l.Until.Format(time.RFC3339))
		}
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	running := make(chan error, 1)
	go func() { running <- r.Run(runCtx) }()
	defer func() { stop(); <-running }()
	return f.drive(ctx, s, local, spec, f.resume, 100*time.Millisecond)
}

// drive runs spec's dry run, or starts it (or follows the job resumed,
// when resumed is its id) and follows it to its end, printing the job as
// JSON; a job that did not end done is exit status 1.
func (f *replayFlags) drive(ctx context.Context, s *streams, jr jobRunner, spec replay.Spec, resumed string, every time.Duration) error {
	if spec.DryRun {
		matched, sample, err := jr.DryRun(ctx, spec)
		if err != nil {
			return err
		}
		return printDryRun(s.out, matched, sample)
	}
	id := resumed
	if id == "" {
		job, err := jr.Start(ctx, spec)
		if err != nil {
			return err
		}
		id = job.ID
	}
	job, err := follow(ctx, s, jr, id, every)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(job)
	fmt.Fprintf(s.out, "%s\n", b)
	if job.Status != replay.Done {
		return &exitCodeError{code: exitError}
	}
	return nil
}

// follow shows the job's progress until it ends, and cancels it when ctx
// is done (an interrupt).
func follow(ctx context.Context, s *streams, jr jobRunner, id string, every time.Duration) (replay.Job, error) {
	p := newProgress(s.err)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		j, err := jr.Get(context.WithoutCancel(ctx), id)
		if err != nil {
			return j, err
		}
		if j.Status != replay.Running {
			p.done(j)
			return j, nil
		}
		p.show(j)
		select {
		case <-tick.C:
		case <-ctx.Done():
			j, err := jr.Cancel(context.WithoutCancel(ctx), id)
			if err != nil && !errors.Is(err, replay.ErrJobFinished) {
				return j, err
			}
			p.done(j)
			return j, nil
		}
	}
}

// progress writes a job's progress on one line that it rewrites when w is
// a terminal, else a line every logEvery (a log, a CI job: long work still
// shows that it moves), and a summary line in any case.
type progress struct {
	w        io.Writer
	tty      bool
	last     string
	logEvery time.Duration
	next     time.Time // of the next line to a log
}

// progressLogEvery is how often a replay's progress goes to stderr when
// it is not a terminal.
const progressLogEvery = 10 * time.Second

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, logEvery: progressLogEvery}
	p.next = time.Now().Add(p.logEvery)
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) show(j replay.Job) {
	if !p.tty && time.Now().Before(p.next) {
		return
	}
	line := fmt.Sprintf("replay %s: %d/%d sent, %d failed", j.ID, j.Sent, j.Matched, j.Failed)
	if j.Matched > 0 {
		line += fmt.Sprintf(" (%d%%)", (j.Sent+j.Failed)*100/j.Matched)
	}
	if line == p.last {
		return
	}
	p.last = line
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		return
	}
	fmt.Fprintln(p.w, line)
	p.next = time.Now().Add(p.logEvery)
}

func (p *progress) done(j replay.Job) {
	if p.tty && p.last != "" {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	fmt.Fprintf(p.w, "replay %s %s: matched %d, sent %d, failed %d, to %s (%s)\n", j.ID, j.Status, j.Matched, j.Sent, j.Failed, j.Target, j.Mode)
}

func printDryRun(w io.Writer, matched int64, sample []lookback.Record) error {
	fmt.Fprintf(w, "dry run: %d events match; nothing sent\n", matched)
	if len(sample) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORIGIN\tTIMESTAMP\tID\tTYPE\tKEY")
	for _, r := range sample {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", eventkit.FormatCoordinates(r.Topic, r.Partition, r.Offset),
			r.Timestamp.UTC().Format(time.RFC3339Nano), orNone(r.ID), orNone(r.Type), orNone(showBytes(r.Key)))
	}
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// actorName is who the audit log names for a replay from the command line.
func actorName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}
