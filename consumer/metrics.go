package consumer

import (
	"errors"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcome labels of eventkit_consumer_events_total.
const (
	outcomeSuccess = "success"
	outcomeWarn    = "warn"
	outcomeRetry   = "retry"
	outcomeKill    = "kill"
	outcomeHalt    = "halt"
	outcomeSkip    = "skip"
)

type metrics struct {
	events     *prometheus.CounterVec
	attempts   *prometheus.CounterVec
	latency    *latencyHistogram
	malformed  *prometheus.CounterVec
	deadLetter *prometheus.CounterVec
	commits    *prometheus.CounterVec
	lag        *prometheus.GaugeVec
	collectors []prometheus.Collector
}

// newMetrics registers the agent's metrics, labelled with its group so that
// several agents can share one registry.
func newMetrics(reg prometheus.Registerer, group string, inFlight, halted func() float64) (*metrics, error) {
	constLabels := prometheus.Labels{"group": group}
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventkit_consumer_events_total", ConstLabels: constLabels,
			Help: "Handler outcomes by flag: success, warn, retry (one per failed attempt), kill, halt, skip.",
		}, []string{"topic", "outcome"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventkit_consumer_attempts_total", ConstLabels: constLabels,
			Help: "Handler calls, first deliveries and retries alike.",
		}, []string{"topic"}),
		latency: &latencyHistogram{
			desc: prometheus.NewDesc("eventkit_consumer_handler_duration_seconds",
				"Time spent in the handler per attempt.", []string{"topic"}, constLabels),
			topics: make(map[string][]*histShard),
		},
		malformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventkit_consumer_malformed_events_total", ConstLabels: constLabels,
			Help: "Records whose CloudEvents headers did not decode; they are still handed to the handler.",
		}, []string{"topic"}),
		deadLetter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventkit_consumer_dead_letters_total", ConstLabels: constLabels,
			Help: "Warned events parked on the dead-letter topic.",
		}, []string{"topic"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eventkit_consumer_commits_total", ConstLabels: constLabels,
			Help: "Offset commit requests by result (ok, error).",
		}, []string{"result"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "eventkit_consumer_lag", ConstLabels: constLabels,
			Help: "Records between the processed watermark and the partition's high watermark.",
		}, []string{"topic", "partition"}),
	}
	m.collectors = []prometheus.Collector{
		m.events, m.attempts, m.latency, m.malformed, m.deadLetter, m.commits, m.lag,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eventkit_consumer_in_flight", ConstLabels: constLabels,
			Help: "Records held between fetch and commit.",
		}, inFlight),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eventkit_consumer_halted_partitions", ConstLabels: constLabels,
			Help: "Partitions paused on an event that used up its retries.",
		}, halted),
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, r := range m.collectors[:i] {
				reg.Unregister(r)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("metrics: another agent of this group already registered in this registry")
			}
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors {
		reg.Unregister(c)
	}
}

// partMetrics holds one partition's children, resolved once at assignment:
// looking labels up per record would cost more than the no-op handler.
type partMetrics struct {
	success, warn, retry, kill, halt, skip prometheus.Counter
	attempts                               prometheus.Counter
	malformed, deadLetter                  prometheus.Counter
	lag                                    prometheus.Gauge
}

func (m *metrics) forPartition(topic string, partition int32) partMetrics {
	ev := func(outcome string) prometheus.Counter { return m.events.WithLabelValues(topic, outcome) }
	return partMetrics{
		success: ev(outcomeSuccess), warn: ev(outcomeWarn), retry: ev(outcomeRetry),
		kill: ev(outcomeKill), halt: ev(outcomeHalt), skip: ev(outcomeSkip),
		attempts:   m.attempts.WithLabelValues(topic),
		malformed:  m.malformed.WithLabelValues(topic),
		deadLetter: m.deadLetter.WithLabelValues(topic),
		lag:        m.lag.WithLabelValues(topic, strconv.Itoa(int(partition))),
	}
}

func (m *metrics) dropPartition(topic string, partition int32) {
	m.lag.DeleteLabelValues(topic, strconv.Itoa(int(partition)))
}

// latencyBuckets are the upper bounds of the handler latency histogram, in
// seconds: from a cache hit to a call that times out.
var latencyBuckets = [...]float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30}

// histShard is one worker's share of the latency histogram for a topic.
type histShard struct {
	mu     sync.Mutex
	counts [len(latencyBuckets) + 1]uint64 // the last one is +Inf
	sum    float64
	n      uint64
}

// observe adds one latency; the shard must be private to the caller.
func (s *histShard) observe(secs float64) {
	i := 0
	for i < len(latencyBuckets) && secs > latencyBuckets[i] {
		i++
	}
	s.counts[i]++
	s.sum += secs
	s.n++
}

// latencyHistogram is the handler latency histogram, sharded by worker: a
// worker merges a lane run's observations into its own shard under a lock
// nobody else takes but Collect, so the hot path has no shared atomics.
type latencyHistogram struct {
	desc   *prometheus.Desc
	mu     sync.Mutex
	topics map[string][]*histShard
}

func (h *latencyHistogram) merge(topic string, worker int, run *histShard) {
	if run.n == 0 {
		return
	}
	h.mu.Lock()
	shards := h.topics[topic]
	if worker >= len(shards) {
		shards = append(shards, make([]*histShard, worker+1-len(shards))...)
		h.topics[topic] = shards
	}
	s := shards[worker]
	if s == nil {
		s = new(histShard)
		shards[worker] = s
	}
	h.mu.Unlock()

	s.mu.Lock()
	for i, c := range run.counts {
		s.counts[i] += c
	}
	s.sum += run.sum
	s.n += run.n
	s.mu.Unlock()
}

func (h *latencyHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *latencyHistogram) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for topic, shards := range h.topics {
		var total histShard
		for _, s := range shards {
			if s == nil {
				continue
			}
			s.mu.Lock()
			for i, c := range s.counts {
				total.counts[i] += c
			}
			total.sum += s.sum
			total.n += s.n
			s.mu.Unlock()
		}
		cumulative := make(map[float64]uint64, len(latencyBuckets))
		var acc uint64
		for i, le := range latencyBuckets {
			acc += total.counts[i]
			cumulative[le] = acc
		}
		ch <- prometheus.MustNewConstHistogram(h.desc, total.n, total.sum, cumulative, topic)
	}
}
