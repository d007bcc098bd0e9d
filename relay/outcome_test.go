package relay_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/relay"
)

// answer returns an endpoint that answers every request with status, an
// Eventkit-Flag when flag is set, and body.
func answer(status int, flag, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if flag != "" {
			w.Header().Set(relay.HeaderFlag, flag)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}
}

func TestOutcome(t *testing.T) {
	blocks := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // net/http notices a client that hung up only once the body is read
		<-r.Context().Done()
	}
	cases := []struct {
		name    string
		answer  http.HandlerFunc
		timeout time.Duration
		want    eventkit.Flag
		// message is the error's text after "POST <url>: "; empty for success.
		message string
	}{
		{name: "200", answer: answer(200, "", "ok"), want: eventkit.FlagNone},
		{name: "204", answer: answer(204, "", ""), want: eventkit.FlagNone},
		{name: "202", answer: answer(202, "", ""), want: eventkit.FlagNone},
		{name: "warn with 200", answer: answer(200, "warn", "amount missing"), want: eventkit.FlagWarn,
			message: `200 OK, Eventkit-Flag: warn: "amount missing"`},
		{name: "warn with 500", answer: answer(500, "warn", ""), want: eventkit.FlagWarn,
			message: `500 Internal Server Error, Eventkit-Flag: warn`},
		{name: "retry", answer: answer(200, "retry", "locked"), want: eventkit.FlagRetry,
			message: `200 OK, Eventkit-Flag: retry: "locked"`},
		{name: "RETRY", answer: answer(503, "RETRY", ""), want: eventkit.FlagRetry,
			message: `503 Service Unavailable, Eventkit-Flag: RETRY`},
		{name: "unknown flag", answer: answer(200, "later", ""), want: eventkit.FlagRetry,
			message: `200 OK, Eventkit-Flag: later`},
		{name: "kill", answer: answer(422, "kill", "negative amount"), want: eventkit.FlagKill,
			message: `422 Unprocessable Entity, Eventkit-Flag: kill: "negative amount"`},
		{name: "Kill with 200", answer: answer(200, "Kill", ""), want: eventkit.FlagKill,
			message: `200 OK, Eventkit-Flag: Kill`},
		{name: "none is an unknown value", answer: answer(200, "none", ""), want: eventkit.FlagRetry,
			message: `200 OK, Eventkit-Flag: none`},
		{name: "so is an empty one", answer: func(w http.ResponseWriter, r *http.Request) {
			w.Header()[relay.HeaderFlag] = []string{""}
		}, want: eventkit.FlagRetry, message: `200 OK, Eventkit-Flag: ""`},
		{name: "500", answer: answer(500, "", "db down\n"), want: eventkit.FlagRetry,
			message: `500 Internal Server Error: "db down"`},
		{name: "503", answer: answer(503, "", ""), want: eventkit.FlagRetry,
			message: `503 Service Unavailable`},
		{name: "404", answer: answer(404, "", "no such route"), want: eventkit.FlagRetry,
			message: `404 Not Found: "no such route"`},
		{name: "400", answer: answer(400, "", "bad\r\nrequest"), want: eventkit.FlagRetry,
			message: `400 Bad Request: "bad\r\nrequest"`},
		{name: "redirect", answer: answer(302, "", ""), want: eventkit.FlagRetry,
			message: `302 Found`},
		{name: "timeout", answer: blocks, timeout: 50 * time.Millisecond, want: eventkit.FlagRetry,
			message: `no answer within 50ms: context deadline exceeded`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := endpoint(t, tc.answer)
			var opts []relay.Opt
			if tc.timeout > 0 {
				opts = append(opts, relay.Timeout(tc.timeout))
			}
			h := newRelay(t, srv.URL+"/events", opts...)
			err := h.Handle(context.Background(), &eventkit.Event{ID: "e1", Topic: "orders"})
			if got := eventkit.FlagOf(err); got != tc.want {
				t.Fatalf("flag %v (err %v), want %v", got, err, tc.want)
			}
			if tc.message == "" {
				if err != nil {
					t.Fatalf("err %v, want nil", err)
				}
				return
			}
			if want := "POST " + srv.URL + "/events: " + tc.message; err.Error() != want {
				t.Fatalf("err\n %s\nwant\n %s", err, want)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		url := closedURL(t)
		err := newRelay(t, url).Handle(context.Background(), &eventkit.Event{ID: "e1"})
		if eventkit.FlagOf(err) != eventkit.FlagRetry {
			t.Fatalf("flag %v (err %v), want retry", eventkit.FlagOf(err), err)
		}
		if want := "POST " + url + ": dial tcp "; !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("err %q, want %q… connection refused", err, want)
		}
	})
}

func TestResponseErrorKeepsTheStartOfALongBody(t *testing.T) {
	srv := endpoint(t, answer(500, "", strings.Repeat("x", 10_000)))
	err := newRelay(t, srv.URL).Handle(context.Background(), &eventkit.Event{ID: "e1"})
	re, ok := errors.AsType[*relay.ResponseError](err)
	if !ok {
		t.Fatalf("err %v (%T), want a *relay.ResponseError", err, err)
	}
	if want := strings.Repeat("x", 200) + "…"; re.Body != want || re.StatusCode != 500 {
		t.Fatalf("status %d body %q, want 500 and %q", re.StatusCode, re.Body, want)
	}
}

// A relay delivers events one after the other over the same connection,
// whatever the endpoint answers: bodies are drained, not abandoned.
func TestConnectionsAreReused(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(answer(500, "", strings.Repeat("y", 8<<10)))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	h := newRelay(t, srv.URL)
	for range 20 {
		if err := h.Handle(context.Background(), &eventkit.Event{ID: "e1"}); eventkit.FlagOf(err) != eventkit.FlagRetry {
			t.Fatalf("err %v, want a retry", err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for 20 sequential deliveries, want 1", n)
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://host/x", "http://", "http://a b/"} {
		if _, err := relay.New(u); err == nil {
			t.Errorf("New(%q) = nil error", u)
		}
	}
	if _, err := relay.New("http://127.0.0.1/", relay.Timeout(0)); err == nil {
		t.Error("New with Timeout(0) = nil error")
	}
}
