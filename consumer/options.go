package consumer

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Order says which events may be handled at the same time.
type Order int

const (
	// ByPartition handles one event at a time per partition, in offset
	// order. A retrying event holds back its whole partition.
	ByPartition Order = iota
	// ByKey keeps events with the same key in order and handles different
	// keys in parallel, up to Concurrency. A retrying key holds back only
	// itself. Records without a key have no order to keep.
	ByKey
	// Unordered handles events in parallel with no order at all.
	Unordered
)

func (o Order) String() string {
	switch o {
	case ByPartition:
		return "partition"
	case ByKey:
		return "key"
	case Unordered:
		return "none"
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

// ParseOrder reads "partition", "key" or "none" (the relay's --ordering).
func ParseOrder(s string) (Order, error) {
	switch s {
	case "partition":
		return ByPartition, nil
	case "key":
		return ByKey, nil
	case "none", "unordered":
		return Unordered, nil
	}
	return 0, fmt.Errorf("ordering %q: want partition, key or none", s)
}

// HaltAction is what the agent does when an event has used up its retries.
type HaltAction int

const (
	// StopService drains, commits everything before the failing event and
	// makes Run return a [*EventError] matching [ErrHalted].
	StopService HaltAction = iota
	// PausePartition pauses only the failing event's partition, keeps the
	// others flowing, reports not-ready, and waits for an operator to
	// [Consumer.Resume] or [Consumer.Skip].
	PausePartition
)

func (h HaltAction) String() string {
	if h == PausePartition {
		return "pause"
	}
	return "stop"
}

// Opt configures a [Consumer].
type Opt interface{ apply(*cfg) }

type opt struct{ fn func(*cfg) }

func (o opt) apply(c *cfg) { o.fn(c) }

type cfg struct {
	brokers []string
	group   string
	topics  []string
	regex   bool
	replay  bool
	// foreignReplays: a regex may match other groups' replay topics.
	foreignReplays bool
	control        bool
	clientOpts     []kgo.Opt

	order       Order
	concurrency int
	maxInFlight int

	maxRetries     int
	backoffBase    time.Duration
	backoffMax     time.Duration
	handlerTimeout time.Duration
	drainTimeout   time.Duration
	haltAction     HaltAction
	deadLetter     string

	commitInterval    time.Duration
	sessionTimeout    time.Duration
	rebalanceTimeout  time.Duration
	heartbeatInterval time.Duration
	statusInterval    time.Duration
	startAt           kgo.Offset

	logger         *slog.Logger
	registerer     prometheus.Registerer
	tracerProvider trace.TracerProvider
	propagator     propagation.TextMapPropagator
	gatherer       prometheus.Gatherer
	now            func() time.Time
	jitter         func() float64
}

func defaultCfg() cfg {
	return cfg{
		replay:            true,
		control:           true,
		statusInterval:    5 * time.Second,
		order:             ByPartition,
		concurrency:       16,
		maxInFlight:       10000,
		maxRetries:        10,
		backoffBase:       100 * time.Millisecond,
		backoffMax:        30 * time.Second,
		drainTimeout:      10 * time.Second,
		commitInterval:    time.Second,
		sessionTimeout:    45 * time.Second,
		rebalanceTimeout:  30 * time.Second,
		heartbeatInterval: 3 * time.Second,
		startAt:           kgo.NewOffset().AtStart(),
		now:               time.Now,
	}
}

func (c *cfg) validate() error {
	var errs []error
	if len(c.brokers) == 0 && len(c.clientOpts) == 0 {
		errs = append(errs, errors.New("no brokers: use Brokers"))
	}
	if c.group == "" {
		errs = append(errs, errors.New("no consumer group: use Group"))
	}
	if len(c.topics) == 0 {
		errs = append(errs, errors.New("no topics: use Topics"))
	}
	if c.order < ByPartition || c.order > Unordered {
		errs = append(errs, fmt.Errorf("unknown ordering %d", c.order))
	}
	if c.concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: want at least 1", c.concurrency))
	}
	if c.maxInFlight < 1 {
		errs = append(errs, fmt.Errorf("max in flight %d: want at least 1", c.maxInFlight))
	}
	if c.backoffBase <= 0 || c.backoffMax < c.backoffBase {
		errs = append(errs, fmt.Errorf("backoff %v..%v: want 0 < base <= max", c.backoffBase, c.backoffMax))
	}
	if c.handlerTimeout < 0 || c.drainTimeout <= 0 || c.commitInterval <= 0 || c.statusInterval <= 0 {
		errs = append(errs, errors.New("timeouts and intervals must be positive"))
	}
	if c.rebalanceTimeout >= c.sessionTimeout {
		// A member that dies while joining can leave the group waiting for
		// minutes when the rebalance timeout exceeds the session timeout.
		errs = append(errs, fmt.Errorf("rebalance timeout %v must be below session timeout %v", c.rebalanceTimeout, c.sessionTimeout))
	}
	if c.heartbeatInterval <= 0 || 2*c.heartbeatInterval > c.rebalanceTimeout {
		// A member learns of a rebalance from its next heartbeat; if that
		// comes after the rebalance timeout, the member is dropped and its
		// uncommitted work is redelivered elsewhere.
		errs = append(errs, fmt.Errorf("heartbeat interval %v must be at most half the rebalance timeout %v", c.heartbeatInterval, c.rebalanceTimeout))
	}
	if c.drainTimeout >= c.rebalanceTimeout {
		errs = append(errs, fmt.Errorf("drain timeout %v must be below rebalance timeout %v, or a slow revoke gets the member kicked", c.drainTimeout, c.rebalanceTimeout))
	}
	return errors.Join(errs...)
}

// Brokers sets the seed brokers, host:port each. Required unless ClientOpts
// names them.
func Brokers(addrs ...string) Opt {
	return opt{func(c *cfg) { c.brokers = append(c.brokers, addrs...) }}
}

// Group sets the consumer group. Required.
func Group(group string) Opt { return opt{func(c *cfg) { c.group = group }} }

// Topics sets the topics to consume. Required.
func Topics(topics ...string) Opt {
	return opt{func(c *cfg) { c.topics = append(c.topics, topics...) }}
}

// TopicRegex makes the names given to Topics regular expressions, matched
// against every topic of the cluster as it changes. Exclusions go in
// ClientOpts (kgo.ConsumeExcludeTopics); Run refuses one that would also
// exclude the group's replay topic while ReplayTopic is on. Other groups'
// replay topics are left out (see ForeignReplays).
func TopicRegex() Opt { return opt{func(c *cfg) { c.regex = true }} }

// ForeignReplays lets a TopicRegex subscription match other groups' replay
// topics, which it leaves out by default: their records are addressed to
// those groups, and in reprocess mode a handler here would act on them
// again. It is for a consumer that watches topics rather than acting on
// events, such as lookback's ingest, which links replayed records to
// their originals.
func ForeignReplays() Opt { return opt{func(c *cfg) { c.foreignReplays = true }} }

// ReplayTopic sets whether the agent also consumes its group's replay topic,
// eventkit.ReplayTopic(group), which carries replays addressed to this group
// only; the agent creates it at start when missing, with as many partitions
// as its widest topic. Default true.
func ReplayTopic(enabled bool) Opt { return opt{func(c *cfg) { c.replay = enabled }} }

// ControlPlane sets whether the agent publishes its status to
// eventkit.status and takes resume and skip commands from eventkit.control
// (creating both topics when missing), so that operators can find and clear
// halts from lookback without a network path to the agent. Default true.
func ControlPlane(enabled bool) Opt { return opt{func(c *cfg) { c.control = enabled }} }

// StatusInterval sets how often the agent publishes its status when nothing
// changes; a change publishes at once. Lookback forgets a member that stays
// silent for three intervals. Default 5s.
func StatusInterval(d time.Duration) Opt { return opt{func(c *cfg) { c.statusInterval = d }} }

// ClientOpts adds franz-go client options (TLS, SASL, fetch sizes, a
// logger, an isolation level other than read_committed). The agent owns the
// group options it needs (manual commits, rebalance callbacks, fetch offset
// adjustment, control records kept) and sets them last.
func ClientOpts(opts ...kgo.Opt) Opt {
	return opt{func(c *cfg) { c.clientOpts = append(c.clientOpts, opts...) }}
}

// Ordering sets which events may be handled at once. Default ByPartition.
func Ordering(o Order) Opt { return opt{func(c *cfg) { c.order = o }} }

// Concurrency caps how many handler calls run at once. Default 16.
func Concurrency(n int) Opt { return opt{func(c *cfg) { c.concurrency = n }} }

// MaxInFlight caps the records the agent holds between fetch and commit
// (being handled, queued, or done behind an earlier event that is not).
// Fetching pauses while it is full, which bounds memory. A partition
// stalled behind an event that waits for a retry or an operator, once it
// holds half of MaxInFlight, stops being fetched and leaves the cap to the
// other partitions, so that it cannot stall them; stalled partitions hold
// up to MaxInFlight more between them. Default 10000.
func MaxInFlight(n int) Opt { return opt{func(c *cfg) { c.maxInFlight = n }} }

// MaxRetries sets how many times a failing event is handed back before the
// agent halts: at most MaxRetries+1 attempts. A negative value retries
// forever. Default 10.
func MaxRetries(n int) Opt { return opt{func(c *cfg) { c.maxRetries = n }} }

// Backoff sets the wait before a retry: base doubled on each failed attempt,
// capped at max, then jittered to between half and all of it.
// Default 100ms, 30s.
func Backoff(base, max time.Duration) Opt {
	return opt{func(c *cfg) { c.backoffBase, c.backoffMax = base, max }}
}

// HandlerTimeout bounds each handler attempt: its context is cancelled after
// d, and the attempt counts as a retry if the handler returns an error.
// Default 0: no bound.
func HandlerTimeout(d time.Duration) Opt { return opt{func(c *cfg) { c.handlerTimeout = d }} }

// DrainTimeout bounds how long a revoke, a kill or a shutdown waits for
// handler calls in flight before it cancels their contexts. It must be below
// the rebalance timeout. Default 10s.
func DrainTimeout(d time.Duration) Opt { return opt{func(c *cfg) { c.drainTimeout = d }} }

// HaltPolicy sets what happens when an event has used up its retries.
// Default StopService.
func HaltPolicy(a HaltAction) Opt { return opt{func(c *cfg) { c.haltAction = a }} }

// DeadLetterTopic parks every warned event on topic, with headers that name
// its origin, the cause and the group. The event is done only once parked:
// a produce that fails is tried again after the retry backoff, counting
// against MaxRetries, without calling the handler again. Default none.
func DeadLetterTopic(topic string) Opt { return opt{func(c *cfg) { c.deadLetter = topic }} }

// CommitInterval sets how often done offsets are committed; they are also
// committed on revoke and shutdown. Default 1s.
func CommitInterval(d time.Duration) Opt { return opt{func(c *cfg) { c.commitInterval = d }} }

// SessionTimeout sets the group session timeout: how long the group waits for
// a silent member before moving its partitions. Default 45s.
func SessionTimeout(d time.Duration) Opt { return opt{func(c *cfg) { c.sessionTimeout = d }} }

// RebalanceTimeout sets how long the group waits for members to rejoin in a
// rebalance. It must be below the session timeout. Default 30s.
func RebalanceTimeout(d time.Duration) Opt { return opt{func(c *cfg) { c.rebalanceTimeout = d }} }

// HeartbeatInterval sets how often the member heartbeats, which is also how
// soon it hears of a rebalance. It must be at most half the rebalance
// timeout. Default 3s.
func HeartbeatInterval(d time.Duration) Opt { return opt{func(c *cfg) { c.heartbeatInterval = d }} }

// StartAt sets where a group without committed offsets starts. Default the
// earliest offset, so that a new group misses nothing.
func StartAt(o kgo.Offset) Opt { return opt{func(c *cfg) { c.startAt = o }} }

// Logger sets the structured logger. Default: discard.
func Logger(l *slog.Logger) Opt { return opt{func(c *cfg) { c.logger = l }} }

// Registerer sets where the agent registers its Prometheus metrics. When it
// is also a prometheus.Gatherer (a *prometheus.Registry is), the admin
// handler serves it. Default: a private registry.
func Registerer(r prometheus.Registerer) Opt { return opt{func(c *cfg) { c.registerer = r }} }

// TracerProvider sets where the agent's spans go: one per handler call,
// named "process <topic>", a child of the span whose context the record's
// headers carry, with the messaging semantic conventions' attributes plus
// [AttrAttempt], and [AttrFlag] with an error status on failure. The
// handler's ctx carries it. Default: OpenTelemetry's global provider
// (otel.GetTracerProvider); until the application sets one the agent starts
// no spans at all, which keeps the cost per event at nothing.
func TracerProvider(tp trace.TracerProvider) Opt {
	return opt{func(c *cfg) { c.tracerProvider = tp }}
}

// Propagator sets how the agent reads trace context from record headers.
// Default: [kafka.DefaultPropagator], which reads the W3C traceparent,
// tracestate and baggage headers that kafka.Publisher writes until the
// application sets a global propagator, and then uses that one.
func Propagator(p propagation.TextMapPropagator) Opt {
	return opt{func(c *cfg) { c.propagator = p }}
}

// Clock replaces time.Now, for tests.
func Clock(now func() time.Time) Opt { return opt{func(c *cfg) { c.now = now }} }
