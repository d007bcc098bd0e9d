// Package relay delivers events to an HTTP endpoint, so that an application
// in any language can sit behind the consumer agent: the agent fetches,
// retries, halts and commits; the application answers each POST, and the
// answer is the flag.
//
//	h, err := relay.New("http://127.0.0.1:8080/events", relay.Timeout(10*time.Second))
//	if err != nil {
//		return err
//	}
//	c, err := consumer.New(h,
//		consumer.Brokers("127.0.0.1:9092"),
//		consumer.Group("billing"),
//		consumer.Topics("transfers"),
//	)
//	if err != nil {
//		return err
//	}
//	return c.Run(ctx)
//
// Each event is one POST in CloudEvents HTTP binary mode: ce-id, ce-source,
// ce-type, ce-specversion, ce-time and ce-subject headers (percent-encoded as
// the binding requires), Content-Type, and the record's value as the body,
// byte for byte. Eventkit-Topic, Eventkit-Partition, Eventkit-Offset,
// Eventkit-Key, Eventkit-Attempt and, for replays, Eventkit-Replay-Id,
// Eventkit-Replay-Origin and Eventkit-Replay-Mode say where the event comes
// from and how often it was tried. A traceparent header carries the agent's
// span for the event (see [Propagator]), or else the record's own, so that
// the application's spans join the producer's trace.
//
// The answer decides what the agent does: a response header Eventkit-Flag
// of warn, retry or kill (any case) wins and any other value counts as
// retry; without it a 2xx status is success and anything else (another
// status, a timeout, a refused connection) is a retry.
//
// `eventkit relay` runs this handler as a sidecar; docs/relay.md describes
// it for operators.
package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"go.opentelemetry.io/otel/propagation"
)

// Handler is an [eventkit.Handler] that POSTs each event to a URL and turns
// the answer into the flag on its error. It is safe for concurrent use.
type Handler struct {
	url      string
	redacted string // for error messages: no password
	client   *http.Client
	timeout  time.Duration
	prop     propagation.TextMapPropagator
}

// New returns a Handler that delivers events to rawURL, an http or https
// URL.
func New(rawURL string, opts ...Opt) (*Handler, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("relay: url %q: want http://host/… or https://host/…", u.Redacted())
	}
	cfg := defaultCfg()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	if cfg.client == nil {
		cfg.client = defaultClient()
	}
	return &Handler{url: u.String(), redacted: u.Redacted(), client: cfg.client, timeout: cfg.timeout, prop: cfg.propagator}, nil
}

// How much of a response body the relay reads: the start of it for error
// messages, and the rest, up to drainMax, so that the connection can carry
// the next request. A longer body costs a new connection, never a stall.
const (
	snippetMax = 200
	drainMax   = 64 << 10
)

// Handle delivers ev and reports the endpoint's answer: nil for success, or a
// flagged error (a [*ResponseError] when the endpoint answered). ctx bounds
// the delivery together with [Timeout], so that a draining agent can cut it
// short.
func (h *Handler) Handle(ctx context.Context, ev *eventkit.Event) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(ev.Data))
	if err != nil {
		return eventkit.Retry(fmt.Errorf("POST %s: %w", h.redacted, err))
	}
	req.Header = header(ctx, ev)
	// The agent's trace context, when it has one, replaces the record's
	// whole: a tracestate or baggage of the record's must not ride along
	// with another trace's traceparent.
	if t := kafka.TraceOf(ctx, h.prop); len(t.Headers) > 0 {
		for _, k := range t.Replaces {
			req.Header.Del(k)
		}
		for k, v := range t.Headers {
			req.Header.Set(k, v)
		}
	}

	resp, err := h.client.Do(req)
	if err != nil {
		return eventkit.Retry(h.deliveryError(ctx, err))
	}
	defer func() {
		_, _ = io.CopyN(io.Discard, resp.Body, drainMax)
		_ = resp.Body.Close()
	}()

	values, flagged := resp.Header[http.CanonicalHeaderKey(HeaderFlag)]
	if !flagged && resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		return nil
	}
	var flag string
	if flagged {
		flag = strings.TrimSpace(values[0])
	}
	// The contract knows warn, retry and kill; anything else, "none" and an
	// empty value included, is an unknown value and counts as retry.
	f, _ := eventkit.ParseFlag(flag)
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetMax+1))
	body := string(snippet)
	if len(snippet) > snippetMax {
		body = string(snippet[:snippetMax]) + "…"
	}
	rerr := &ResponseError{
		URL: h.redacted, StatusCode: resp.StatusCode, Status: resp.Status,
		Flag: flag, Flagged: flagged, Body: body,
	}
	switch f {
	case eventkit.FlagWarn:
		return eventkit.Warn(rerr)
	case eventkit.FlagKill:
		return eventkit.Kill(rerr)
	}
	return eventkit.Retry(rerr)
}

// deliveryError names what went wrong when no answer came, without the
// quoted URL that net/http puts first.
func (h *Handler) deliveryError(ctx context.Context, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("POST %s: no answer within %v: %w", h.redacted, h.timeout, err)
	}
	return fmt.Errorf("POST %s: %w", h.redacted, err)
}

// CloseIdleConnections closes the connections kept open for the next
// deliveries; call it once the agent has stopped.
func (h *Handler) CloseIdleConnections() { h.client.CloseIdleConnections() }

// ResponseError is the error, flagged, that Handle returns when the
// endpoint answered with anything but success: a status outside 2xx, or an
// Eventkit-Flag other than none.
type ResponseError struct {
	URL        string // the endpoint, without any password
	StatusCode int
	Status     string // as sent, e.g. "503 Service Unavailable"
	Flag       string // Eventkit-Flag as sent
	Flagged    bool   // whether the response had Eventkit-Flag, even empty
	// Body is the start of the response body, for the logs and the halt
	// line: its first 200 bytes, with "…" appended when there was more.
	Body string
}

// Error reads `POST URL: 503 Service Unavailable: "db down"`, with
// `, Eventkit-Flag: kill` after the status when the endpoint flagged the
// event. The body is quoted, so the message stays on one line whatever the
// endpoint wrote: it ends the relay's halt line.
func (e *ResponseError) Error() string {
	var b strings.Builder
	b.WriteString("POST ")
	b.WriteString(e.URL)
	b.WriteString(": ")
	b.WriteString(e.Status)
	if e.Flagged {
		b.WriteString(", ")
		b.WriteString(HeaderFlag)
		b.WriteString(": ")
		if e.Flag == "" {
			b.WriteString(`""`)
		}
		b.WriteString(e.Flag)
	}
	if body := strings.TrimSpace(e.Body); body != "" {
		b.WriteString(": ")
		b.WriteString(strconv.Quote(body))
	}
	return b.String()
}
