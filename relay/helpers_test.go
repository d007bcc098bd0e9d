package relay_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/relay"
	"go.uber.org/goleak"
)

// TestMain fails the package if a delivery, a connection or an agent
// outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// endpoint starts an HTTP server that answers with fn, closed when the test
// ends.
func endpoint(t testing.TB, fn http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	return srv
}

// closedURL returns an http URL on which nothing listens: a listener is
// opened and closed again, so connecting is refused.
func closedURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/events"
}

// newRelay returns a relay handler for url whose idle connections close when
// the test ends.
func newRelay(t testing.TB, url string, opts ...relay.Opt) *relay.Handler {
	t.Helper()
	h, err := relay.New(url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.CloseIdleConnections)
	return h
}

// agent builds a consumer on b for group and topic with quick timings.
var agent = testkit.Agent

// delivery is one request as the endpoint received it.
type delivery struct {
	header http.Header
	body   []byte
}

// inbox keeps what an endpoint received, in order.
type inbox struct {
	mu  sync.Mutex
	got []delivery
}

// record reads r into the inbox.
func (in *inbox) record(t testing.TB, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("read body: %v", err)
	}
	in.mu.Lock()
	in.got = append(in.got, delivery{header: r.Header.Clone(), body: body})
	in.mu.Unlock()
}

func (in *inbox) all() []delivery {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]delivery(nil), in.got...)
}

func (in *inbox) len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.got)
}
