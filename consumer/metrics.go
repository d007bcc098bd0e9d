package consumer

import (
	"errors"
	"strconv"

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
	duration   *prometheus.HistogramVec
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
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "eventkit_consumer_handler_duration_seconds", ConstLabels: constLabels,
			Help:    "Time spent in the handler per attempt.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 30},
		}, []string{"topic"}),
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
		m.events, m.attempts, m.duration, m.malformed, m.deadLetter, m.commits, m.lag,
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
	duration                               prometheus.Observer
	malformed, deadLetter                  prometheus.Counter
	lag                                    prometheus.Gauge
}

func (m *metrics) forPartition(topic string, partition int32) partMetrics {
	ev := func(outcome string) prometheus.Counter { return m.events.WithLabelValues(topic, outcome) }
	return partMetrics{
		success: ev(outcomeSuccess), warn: ev(outcomeWarn), retry: ev(outcomeRetry),
		kill: ev(outcomeKill), halt: ev(outcomeHalt), skip: ev(outcomeSkip),
		attempts:   m.attempts.WithLabelValues(topic),
		duration:   m.duration.WithLabelValues(topic),
		malformed:  m.malformed.WithLabelValues(topic),
		deadLetter: m.deadLetter.WithLabelValues(topic),
		lag:        m.lag.WithLabelValues(topic, strconv.Itoa(int(partition))),
	}
}

func (m *metrics) dropPartition(topic string, partition int32) {
	m.lag.DeleteLabelValues(topic, strconv.Itoa(int(partition)))
}
