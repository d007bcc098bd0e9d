package relay

import (
	"errors"
	"net/http"
	"time"

	"github.com/eventkit/eventkit/kafka"
	"go.opentelemetry.io/otel/propagation"
)

// Opt configures a [Handler].
type Opt interface{ apply(*cfg) }

type opt struct{ fn func(*cfg) }

func (o opt) apply(c *cfg) { o.fn(c) }

type cfg struct {
	client     *http.Client
	timeout    time.Duration
	propagator propagation.TextMapPropagator
}

func defaultCfg() cfg {
	return cfg{timeout: 30 * time.Second, propagator: kafka.DefaultPropagator()}
}

func (c *cfg) validate() error {
	if c.timeout <= 0 {
		return errors.New("timeout must be positive")
	}
	return nil
}

// Client sets the HTTP client that delivers events, for TLS settings, a
// proxy or instrumentation. Its own Timeout, if any, applies on top of
// [Timeout]. Default: a client of its own whose transport keeps up to 256
// idle connections to the endpoint, so that the agent's concurrent calls
// reuse connections instead of opening one per event, and which does not
// follow redirects, because a redirected POST can turn into a GET that
// drops the event; a 3xx answer therefore counts as a retry.
func Client(c *http.Client) Opt { return opt{func(cfg *cfg) { cfg.client = c }} }

// Timeout bounds each delivery: sending the request, waiting for the answer
// and reading its body. A delivery that runs out of time counts as a retry.
// It must be positive. Default 30s.
func Timeout(d time.Duration) Opt { return opt{func(c *cfg) { c.timeout = d }} }

// Propagator sets how the trace context of the handler's ctx (the agent's
// span for the event) is written into each request's headers, so that the
// application's spans join the producer's trace under the agent's. Without a
// span in ctx, the request carries the record's own traceparent and
// tracestate. Default: [kafka.DefaultPropagator]: W3C traceparent,
// tracestate and baggage until the application sets a global propagator,
// then that one.
func Propagator(p propagation.TextMapPropagator) Opt {
	return opt{func(c *cfg) { c.propagator = p }}
}

func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no cap across hosts; there is one endpoint
	t.MaxIdleConnsPerHost = 256
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
