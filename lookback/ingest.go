package lookback

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/groupcommit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultGroup is the consumer group ingest joins unless told otherwise.
const DefaultGroup = "eventkit-lookback"

// DefaultExclude are the topics ingest never archives: Kafka's internal
// topics and eventkit's own (replay topics, status, control).
var DefaultExclude = []string{`^__`, `^eventkit\.`}

// Opt configures an [Ingest].
type Opt interface{ apply(*cfg) }

type opt struct{ fn func(*cfg) }

func (o opt) apply(c *cfg) { o.fn(c) }

type cfg struct {
	brokers       []string
	group         string
	pattern       string
	exclude       []string
	batchSize     int
	batchWait     time.Duration
	writers       int
	concurrency   int
	retention     time.Duration
	pruneInterval time.Duration
	pruneBatch    int
	agentOpts     []consumer.Opt
	logger        *slog.Logger
	registerer    prometheus.Registerer
	now           func() time.Time
}

func defaultCfg() cfg {
	return cfg{
		group:         DefaultGroup,
		pattern:       ".*",
		exclude:       DefaultExclude,
		batchSize:     4096,
		writers:       2,
		concurrency:   8192,
		retention:     30 * 24 * time.Hour,
		pruneInterval: time.Minute,
		pruneBatch:    10000,
		now:           time.Now,
	}
}

func (c *cfg) validate() error {
	var errs []error
	if len(c.brokers) == 0 {
		errs = append(errs, errors.New("no brokers: use Brokers"))
	}
	if c.group == "" {
		errs = append(errs, errors.New("no consumer group"))
	}
	for _, p := range append([]string{c.pattern}, c.exclude...) {
		if _, err := regexp.Compile(p); err != nil {
			errs = append(errs, fmt.Errorf("topic pattern %q: %w", p, err))
		}
	}
	if c.batchSize < 1 || c.writers < 1 || c.concurrency < 1 || c.pruneBatch < 1 {
		errs = append(errs, errors.New("batch size, writers, concurrency and prune batch must be at least 1"))
	}
	if c.retention < 0 || c.pruneInterval <= 0 || c.batchWait < 0 {
		errs = append(errs, errors.New("retention and batch wait must not be negative, the prune interval must be positive"))
	}
	return errors.Join(errs...)
}

// Brokers sets the seed brokers, host:port each. Required.
func Brokers(addrs ...string) Opt {
	return opt{func(c *cfg) { c.brokers = append(c.brokers, addrs...) }}
}

// Group sets the consumer group ingest joins. Default "eventkit-lookback".
func Group(g string) Opt { return opt{func(c *cfg) { c.group = g }} }

// Topics sets the regular expression (Go syntax, unanchored) of the topics
// to archive, matched against every topic of the cluster as it changes.
// Default ".*": every topic but the excluded ones.
func Topics(pattern string) Opt { return opt{func(c *cfg) { c.pattern = pattern }} }

// Exclude adds regular expressions of topics never to archive, on top of
// DefaultExclude.
func Exclude(patterns ...string) Opt {
	return opt{func(c *cfg) { c.exclude = append(c.exclude[:len(c.exclude):len(c.exclude)], patterns...) }}
}

// BatchSize caps the records written in one transaction. Default 4096.
func BatchSize(n int) Opt { return opt{func(c *cfg) { c.batchSize = n }} }

// BatchWait is how long a writer lingers for more records once none are
// queued. Default 0: batches grow with load by themselves, because records
// queue while the previous batch commits.
func BatchWait(d time.Duration) Opt { return opt{func(c *cfg) { c.batchWait = d }} }

// Writers is how many batches may be written at once. Default 2: one
// commits while the next is gathered. SQLite runs them one at a time on
// its writer connection anyway.
func Writers(n int) Opt { return opt{func(c *cfg) { c.writers = n }} }

// Concurrency is how many records may wait for their batch at once; it
// bounds the batch sizes that load can build. Default 8192.
func Concurrency(n int) Opt { return opt{func(c *cfg) { c.concurrency = n }} }

// Retention sets how long records are kept, by record timestamp; 0 keeps
// them forever. Default 30 days.
func Retention(d time.Duration) Opt { return opt{func(c *cfg) { c.retention = d }} }

// PruneInterval sets how often expired records are deleted. Default 1m.
func PruneInterval(d time.Duration) Opt { return opt{func(c *cfg) { c.pruneInterval = d }} }

// PruneBatch caps the records one delete statement removes, so that ingest
// never waits long behind retention. Default 10000.
func PruneBatch(n int) Opt { return opt{func(c *cfg) { c.pruneBatch = n }} }

// AgentOpts adds consumer agent options (TLS and SASL through
// consumer.ClientOpts, group timings). They are applied after ingest's own
// and win.
func AgentOpts(opts ...consumer.Opt) Opt {
	return opt{func(c *cfg) { c.agentOpts = append(c.agentOpts, opts...) }}
}

// Logger sets the structured logger. Default: discard.
func Logger(l *slog.Logger) Opt { return opt{func(c *cfg) { c.logger = l }} }

// Registerer sets where ingest and its agent register their Prometheus
// metrics. Default: a private registry.
func Registerer(r prometheus.Registerer) Opt { return opt{func(c *cfg) { c.registerer = r }} }

// Clock replaces time.Now for retention, for tests.
func Clock(now func() time.Time) Opt { return opt{func(c *cfg) { c.now = now }} }

// Ingest archives every event of the matching topics: it runs the consumer
// agent with a handler that queues each record for a group-commit writer
// and returns once the record's batch is written, so that the agent
// commits only offsets whose records are archived. A replayed record
// (eventkit-replay-id and a well-formed origin) becomes a [ReplayLink] to
// its original instead of a record. A malformed record is archived as it
// came. Writing is idempotent on the coordinates, so a restart that
// re-reads uncommitted records stores nothing twice.
//
//	in, err := lookback.NewIngest(archive, lookback.Brokers("localhost:9092"))
//	if err != nil {
//		return err
//	}
//	return in.Run(ctx) // until ctx ends
type Ingest struct {
	cfg     cfg
	archive Archive
	log     *slog.Logger
	m       *metrics
	b       *groupcommit.Batcher[entry, struct{}]
}

// entry is one consumed record on its way to the archive: a record or a
// link.
type entry struct {
	rec    Record
	link   ReplayLink
	isLink bool
}

// NewIngest checks the configuration; nothing connects until Run.
func NewIngest(a Archive, opts ...Opt) (*Ingest, error) {
	if a == nil {
		return nil, errors.New("lookback: nil archive")
	}
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("lookback: %w", err)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if c.registerer == nil {
		c.registerer = prometheus.NewRegistry()
	}
	return &Ingest{cfg: c, archive: a, log: c.logger.With("group", c.group)}, nil
}

// Run ingests until ctx is cancelled, then drains, commits and returns nil
// once every goroutine it started has stopped; or it returns the agent's
// error. An archive that fails is retried with backoff, forever: the
// records stay in Kafka meanwhile. Run may be called once.
func (in *Ingest) Run(ctx context.Context) error {
	m, err := newMetrics(in.cfg.registerer)
	if err != nil {
		return fmt.Errorf("lookback: %w", err)
	}
	in.m = m
	defer m.unregister(in.cfg.registerer)

	in.b = groupcommit.New(in.write, groupcommit.Config{MaxBatch: in.cfg.batchSize, MaxWait: in.cfg.batchWait, Writers: in.cfg.writers})
	// After the agent: its handlers have returned by then, and nobody
	// waits for a write still running (one whose handler gave up when the
	// drain timed out, on an archive that hangs): it is cancelled.
	defer func() { in.b.Abort(); in.b.Close() }()

	agent, err := consumer.New(eventkit.HandlerFunc(in.handle), append([]consumer.Opt{
		consumer.Brokers(in.cfg.brokers...),
		consumer.Group(in.cfg.group),
		consumer.Topics(in.cfg.pattern),
		consumer.TopicRegex(),
		// A topic created after the start is found at the next metadata
		// refresh: every 10 s rather than franz-go's 5 minutes, so that a
		// new service's events reach the archive while someone watches.
		consumer.ClientOpts(kgo.ConsumeExcludeTopics(in.cfg.exclude...), kgo.MetadataMaxAge(10*time.Second)),
		// Records are independent: any order lets every record of a fetch
		// wait for the same batch.
		consumer.Ordering(consumer.Unordered),
		consumer.Concurrency(in.cfg.concurrency),
		consumer.MaxInFlight(2 * in.cfg.concurrency),
		consumer.MaxRetries(-1),
		consumer.ReplayTopic(false),
		// A pattern that takes in replay topics links their records.
		consumer.ForeignReplays(),
		consumer.ControlPlane(false),
		consumer.Logger(in.cfg.logger),
		consumer.Registerer(in.cfg.registerer),
	}, in.cfg.agentOpts...)...)
	if err != nil {
		return fmt.Errorf("lookback: %w", err)
	}

	pruneCtx, stopPrune := context.WithCancel(context.Background())
	var pruner sync.WaitGroup
	if in.cfg.retention > 0 {
		pruner.Go(func() { in.pruneLoop(pruneCtx) })
	}
	defer func() { stopPrune(); pruner.Wait() }()

	in.log.Info("lookback ingest starting", "topics", in.cfg.pattern, "exclude", in.cfg.exclude, "retention", in.cfg.retention)
	return agent.Run(ctx)
}

// handle queues the record and waits until its batch is written. An error
// makes the agent retry the record; it commits nothing past it meanwhile.
func (in *Ingest) handle(ctx context.Context, ev *eventkit.Event) error {
	var e entry
	if l, ok := LinkOf(ev); ok {
		e.link, e.isLink = l, true
	} else {
		e.rec = recordOf(consumer.Record(ctx), ev)
	}
	if _, err := in.b.Do(ctx, e); err != nil {
		return eventkit.Retry(fmt.Errorf("archive %s: %w", ev.Coordinates(), err))
	}
	return nil
}

// recordOf returns the record of ev, from the raw record the agent
// consumed when there is one: its headers whole, copied (the agent owns
// the record).
func recordOf(r *kgo.Record, ev *eventkit.Event) Record {
	if r == nil { // not called by the agent: the event is all there is
		hs := ev.EncodeHeaders(nil)
		return NewRecord(ev.Topic, ev.Partition, ev.Offset, ev.Timestamp, ev.Key, ev.Data, hs)
	}
	return RecordOf(r)
}

// RecordOf returns the record of a Kafka record, its headers copied (the
// record's key and value are aliased, as NewRecord does).
func RecordOf(r *kgo.Record) Record {
	var hs []eventkit.Header
	if len(r.Headers) > 0 {
		hs = make([]eventkit.Header, len(r.Headers))
		for i, h := range r.Headers {
			hs[i] = eventkit.Header{Key: h.Key, Value: h.Value}
		}
	}
	return NewRecord(r.Topic, r.Partition, r.Offset, r.Timestamp, r.Key, r.Value, hs)
}

// write appends one batch; the batcher hands its error to every record of
// the batch.
func (in *Ingest) write(ctx context.Context, batch []*groupcommit.Call[entry, struct{}]) error {
	recs := make([]Record, 0, len(batch))
	var links []ReplayLink
	for _, c := range batch {
		if c.Req.isLink {
			links = append(links, c.Req.link)
		} else {
			recs = append(recs, c.Req.rec)
		}
	}
	start := time.Now()
	err := in.archive.Append(ctx, recs, links)
	in.m.appendSeconds.Observe(time.Since(start).Seconds())
	in.m.batchSize.Observe(float64(len(batch)))
	if err != nil {
		in.m.errors.WithLabelValues("append").Inc()
		in.log.Warn("lookback: archive append failed; the records will be retried", "records", len(recs), "links", len(links), "error", err)
		return err
	}
	in.m.records.Add(float64(len(recs)))
	in.m.links.Add(float64(len(links)))
	return nil
}

// pruneLoop deletes expired records every interval, a chunk per statement
// so that ingest waits for one chunk at most.
func (in *Ingest) pruneLoop(ctx context.Context) {
	t := time.NewTicker(in.cfg.pruneInterval)
	defer t.Stop()
	for {
		in.prune(ctx)
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (in *Ingest) prune(ctx context.Context) {
	cut := in.cfg.now().Add(-in.cfg.retention)
	var total int64
	for ctx.Err() == nil {
		n, err := in.archive.DeleteBefore(ctx, cut, in.cfg.pruneBatch)
		total += n
		in.m.pruned.Add(float64(n))
		if err != nil {
			if ctx.Err() == nil {
				in.m.errors.WithLabelValues("prune").Inc()
				in.log.Warn("lookback: retention failed", "error", err)
			}
			break
		}
		if n < int64(in.cfg.pruneBatch) {
			break
		}
	}
	if total > 0 {
		in.log.Info("lookback: retention removed old records", "records", total, "before", cut)
	}
}

type metrics struct {
	records, links, pruned prometheus.Counter
	errors                 *prometheus.CounterVec
	batchSize              prometheus.Histogram
	appendSeconds          prometheus.Histogram
	all                    []prometheus.Collector
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventkit_lookback_archived_records_total",
			Help: "Records written to the archive (re-ingested ones included)."}),
		links: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventkit_lookback_replay_links_total",
			Help: "Replayed records linked to their originals."}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{Name: "eventkit_lookback_pruned_total",
			Help: "Records and links removed by retention."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "eventkit_lookback_errors_total",
			Help: "Failed archive writes (op=append) and retention runs (op=prune)."}, []string{"op"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "eventkit_lookback_batch_records",
			Help: "Records and links per archive write.", Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		appendSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "eventkit_lookback_append_seconds",
			Help: "Time to write one batch to the archive.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8)}),
	}
	// Both series exist from the start, at 0, for an alert to compare.
	m.errors.WithLabelValues("append")
	m.errors.WithLabelValues("prune")
	m.all = []prometheus.Collector{m.records, m.links, m.pruned, m.errors, m.batchSize, m.appendSeconds}
	for i, c := range m.all {
		if err := reg.Register(c); err != nil {
			for _, done := range m.all[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.all {
		reg.Unregister(c)
	}
}
