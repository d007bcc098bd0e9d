package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/internal/httpserve"
	"github.com/eventkit/eventkit/relay"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { commands = append(commands, newRelayCmd) }

// relayConfig is what `eventkit relay` runs with, filled from flags and
// their environment fallbacks.
type relayConfig struct {
	kafka       kafkaFlags
	Group       string
	Topics      []string
	To          string
	MaxRetries  int
	Backoff     time.Duration
	MaxBackoff  time.Duration
	Ordering    string
	Concurrency int
	Timeout     time.Duration
	Halt        string
	Admin       string
	LogLevel    string

	// Parsed by Validate.
	order consumer.Order
	halt  consumer.HaltAction
	level slog.Level
}

func newRelayCmd(s *streams) *cobra.Command {
	var cfg relayConfig
	cmd := &cobra.Command{
		Use:   "relay --brokers B --group G --topic T[,T…] --to URL",
		Short: "Deliver events to an HTTP endpoint, with retries, halts and commits",
		Long: `relay runs the consumer agent in front of an application in any language: it
POSTs each event to --to in CloudEvents HTTP binary mode (ce-* headers, the
record value as the body, plus Eventkit-Topic, -Partition, -Offset, -Key and
-Attempt) and reads the flag from the answer. A response header
Eventkit-Flag: warn|retry|kill wins; otherwise 2xx is success and anything
else, a timeout or a refused connection included, is retried with backoff.

The offset of an event is committed only once it is done. On SIGINT or
SIGTERM the relay lets deliveries in flight finish (up to --timeout), commits,
leaves the group and exits 0. It exits 3 when an event used up its retries
(under --halt stop) and 4 when the application answered kill, with one last
line on stderr that names the event.

Every flag falls back to an environment variable, named in its help.
See docs/relay.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRelay(cmd.Context(), &cfg, s)
		},
	}
	cfg.kafka.bind(cmd)
	f := cmd.Flags()
	f.StringVar(&cfg.Group, "group", "", "consumer group (env EVENTKIT_GROUP)")
	f.StringSliceVar(&cfg.Topics, "topic", nil, "topics to consume, comma-separated or repeated (env EVENTKIT_TOPICS)")
	f.StringVar(&cfg.To, "to", "", "URL to POST each event to (env EVENTKIT_RELAY_TO)")
	f.IntVar(&cfg.MaxRetries, "max-retries", 10, "redeliveries of a failing event before the relay halts; negative retries forever (env EVENTKIT_RELAY_MAX_RETRIES)")
	f.DurationVar(&cfg.Backoff, "backoff", 100*time.Millisecond, "wait before the first retry, doubled on each failure (env EVENTKIT_RELAY_BACKOFF)")
	f.DurationVar(&cfg.MaxBackoff, "max-backoff", 30*time.Second, "cap on the wait between retries (env EVENTKIT_RELAY_MAX_BACKOFF)")
	f.StringVar(&cfg.Ordering, "ordering", "partition", "which events may be delivered at once: partition, key or none (env EVENTKIT_RELAY_ORDERING)")
	f.IntVar(&cfg.Concurrency, "concurrency", 16, "deliveries in flight at most (env EVENTKIT_RELAY_CONCURRENCY)")
	f.DurationVar(&cfg.Timeout, "timeout", 30*time.Second, "bound on each delivery and on the drain at shutdown (env EVENTKIT_RELAY_TIMEOUT)")
	f.StringVar(&cfg.Halt, "halt", "stop", "when an event used up its retries: stop (exit 3) or pause its partition (env EVENTKIT_RELAY_HALT)")
	f.StringVar(&cfg.Admin, "admin", "", "address to serve /healthz, /readyz and /metrics on, e.g. :9090; none when empty (env EVENTKIT_RELAY_ADMIN)")
	f.StringVar(&cfg.LogLevel, "log-level", "info", "debug, info, warn or error (env EVENTKIT_LOG_LEVEL)")
	return cmd
}

// Validate checks the configuration and parses the named choices. It names
// every problem at once, on one line.
func (c *relayConfig) Validate() error {
	var bad []string
	if c.Group == "" {
		bad = append(bad, "no consumer group: set --group or EVENTKIT_GROUP")
	}
	// Empty names ("orders," or a repeated comma) are dropped, as in
	// --brokers, rather than handed to the client, which refuses them only
	// once it runs.
	if c.Topics = splitList(strings.Join(c.Topics, ",")); len(c.Topics) == 0 {
		bad = append(bad, "no topics: set --topic or EVENTKIT_TOPICS")
	}
	if c.To == "" {
		bad = append(bad, "no endpoint: set --to or EVENTKIT_RELAY_TO")
	}
	if c.Backoff <= 0 || c.MaxBackoff < c.Backoff {
		bad = append(bad, fmt.Sprintf("--backoff %v, --max-backoff %v: want 0 < backoff <= max-backoff", c.Backoff, c.MaxBackoff))
	}
	if c.Concurrency < 1 {
		bad = append(bad, fmt.Sprintf("--concurrency %d: want at least 1", c.Concurrency))
	}
	if c.Timeout <= 0 {
		bad = append(bad, fmt.Sprintf("--timeout %v: want a positive duration", c.Timeout))
	}
	var err error
	if c.order, err = consumer.ParseOrder(c.Ordering); err != nil {
		bad = append(bad, "--"+err.Error())
	}
	switch c.Halt {
	case "stop":
		c.halt = consumer.StopService
	case "pause":
		c.halt = consumer.PausePartition
	default:
		bad = append(bad, fmt.Sprintf("--halt %q: want stop or pause", c.Halt))
	}
	if err := c.level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		bad = append(bad, fmt.Sprintf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// groupTimeouts returns the rebalance and session timeouts for deliveries
// bounded by timeout. A revoke drains deliveries in flight for up to timeout
// and then commits, and the agent requires drain < rebalance < session, so
// rebalance is at least timeout+5s and session at least rebalance+10s; they
// never go below the agent's defaults (30s, 45s), which the default --timeout
// of 30s keeps for the session. The broker must allow the session timeout
// (Kafka's group.max.session.timeout.ms, 30 minutes by default).
func groupTimeouts(timeout time.Duration) (rebalance, session time.Duration) {
	rebalance = max(30*time.Second, timeout+5*time.Second)
	session = max(45*time.Second, rebalance+10*time.Second)
	return rebalance, session
}

func runRelay(ctx context.Context, cfg *relayConfig, s *streams) error {
	if err := cfg.Validate(); err != nil {
		return &exitCodeError{code: exitUsage, err: err}
	}
	kopts, err := cfg.kafka.opts()
	if err != nil {
		return &exitCodeError{code: exitUsage, err: err}
	}
	h, err := relay.New(cfg.To, relay.Timeout(cfg.Timeout))
	if err != nil {
		return &exitCodeError{code: exitUsage, err: fmt.Errorf("--to: %w", err)}
	}
	defer h.CloseIdleConnections()

	log := slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: cfg.level}))
	rebalance, session := groupTimeouts(cfg.Timeout)
	c, err := consumer.New(h,
		consumer.ClientOpts(append([]kgo.Opt{kgo.ClientID("eventkit-relay")}, kopts...)...),
		consumer.Group(cfg.Group),
		consumer.Topics(cfg.Topics...),
		consumer.Ordering(cfg.order),
		consumer.Concurrency(cfg.Concurrency),
		consumer.MaxRetries(cfg.MaxRetries),
		consumer.Backoff(cfg.Backoff, cfg.MaxBackoff),
		consumer.HaltPolicy(cfg.halt),
		consumer.DrainTimeout(cfg.Timeout),
		consumer.RebalanceTimeout(rebalance),
		consumer.SessionTimeout(session),
		consumer.Logger(log),
	)
	if err != nil {
		return &exitCodeError{code: exitUsage, err: err}
	}

	if cfg.Admin != "" {
		_, stop, err := serveHTTP("admin", "--admin", cfg.Admin, c.AdminHandler(), log)
		if err != nil {
			return err
		}
		// Deferred, so that it runs after Run and before Main prints the
		// halt line: nothing may be logged after that line.
		defer stop()
	}
	to, _ := url.Parse(cfg.To)
	log.Info("relay starting", "to", to.Redacted(), "timeout", cfg.Timeout,
		"rebalance_timeout", rebalance, "session_timeout", session)

	err = c.Run(ctx)
	switch {
	case errors.Is(err, consumer.ErrKilled):
		return &exitCodeError{code: exitKilled, err: err}
	case errors.Is(err, consumer.ErrHalted):
		return &exitCodeError{code: exitHalted, err: err}
	}
	return err
}

// serveHTTP serves h on addr, the value of flag, until the returned stop is
// called, which returns once every handler has returned, and returns the
// address it listens on (port 0 picks a free one).
// It listens before it returns, so that a taken port fails the start, not a
// later request, and logs "<name> listening" with the address.
func serveHTTP(name, flag, addr string, h http.Handler, log *slog.Logger) (listening string, stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", flag, err)
	}
	srv := httpserve.Start(ln, h, log)
	log.Info(name+" listening", "addr", ln.Addr().String())
	return ln.Addr().String(), func() { _ = srv.Stop() }, nil
}
