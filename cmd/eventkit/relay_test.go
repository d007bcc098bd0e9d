package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/relay"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// condWait bounds the waits on conditions: generous, because the child may
// run under the race detector on a busy machine.
const condWait = 30 * time.Second

// quick are the retry flags that keep a halt within milliseconds.
var quick = []string{"--backoff", "1ms", "--max-backoff", "5ms", "--max-retries", "2"}

// startRelay runs `eventkit relay args…` with env added to an environment
// cleared of EVENTKIT_ variables.
func startRelay(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return startEnv(t, env, append([]string{"relay"}, args...)...)
}

// stop sends SIGTERM, as a supervisor does, and returns the exit status.
func (p *proc) stop() int {
	p.t.Helper()
	return p.signal(syscall.SIGTERM)
}

// exitsWith waits for the process to exit and checks its status and the
// last line of its stderr, the one a supervisor shows.
func (p *proc) exitsWith(code int, line string) {
	p.t.Helper()
	if got := p.wait(); got != code {
		p.t.Fatalf("exit %d, want %d", got, code)
	}
	if got := p.lastLine(); got != line {
		p.t.Fatalf("last stderr line\n %s\nwant\n %s", got, line)
	}
}

// adminAddr waits for the relay to log its admin address and returns it.
func (p *proc) adminAddr() string {
	p.t.Helper()
	re := regexp.MustCompile(`msg="admin listening" addr=(\S+)`)
	var addr string
	testkit.Eventually(p.t, condWait, func() error {
		m := re.FindStringSubmatch(p.stderr.String())
		if m == nil {
			return fmt.Errorf("no admin address logged")
		}
		addr = m[1]
		return nil
	})
	return addr
}

// app is the application behind the relay: it counts deliveries per ce-id
// and answers as its answer function says.
type app struct {
	*httptest.Server
	mu       sync.Mutex
	attempts map[string]int
}

// answerFunc decides a reply from the event id and how often it came.
type answerFunc func(id string, attempt int) (status int, flag, body string)

func ok(string, int) (int, string, string) { return http.StatusOK, "", "" }

// poison answers status, flag and body for the event id, and 200 for any
// other.
func poison(id string, status int, flag, body string) answerFunc {
	return func(got string, _ int) (int, string, string) {
		if got == id {
			return status, flag, body
		}
		return http.StatusOK, "", ""
	}
}

func newApp(t *testing.T, answer answerFunc) *app {
	t.Helper()
	a := &app{attempts: make(map[string]int)}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		id := r.Header.Get("ce-id")
		a.mu.Lock()
		a.attempts[id]++
		n := a.attempts[id]
		a.mu.Unlock()
		status, flag, body := answer(id, n)
		if flag != "" {
			w.Header().Set(relay.HeaderFlag, flag)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *app) count(id string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.attempts[id]
}

func (a *app) distinct() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.attempts)
}

// ordersTopic starts a broker with topic "orders" of partitions partitions
// holding n events e-0, e-1, …, and returns its address and a client.
func ordersTopic(t *testing.T, partitions int32, n int, opts ...kgo.Opt) (string, *kgo.Client) {
	t.Helper()
	b := testkit.Broker(t, partitions, "orders")
	cl := testkit.Client(t, b.Addr(), opts...)
	if n > 0 {
		testkit.Produce(t, cl, testkit.Events("orders", "e", n, nil)...)
	}
	return b.Addr(), cl
}

// relayArgs are the flags of a relay of group g from topic orders on
// brokers to url, then more.
func relayArgs(brokers, url string, more ...string) []string {
	return append([]string{"--brokers", brokers, "--group", "g", "--topic", "orders", "--to", url}, more...)
}

// committed returns the group's committed offset of topic/0, -1 for none.
func committed(t *testing.T, cl *kgo.Client, group, topic string) int64 {
	t.Helper()
	if off, ok := testkit.Committed(t, cl, group)[topic][0]; ok {
		return off
	}
	return -1
}

// Every flag comes from the environment here, as in a container spec.
func TestRelayDeliversAndCommits(t *testing.T) {
	brokers, cl := ordersTopic(t, 2, 0)
	testkit.Produce(t, cl, testkit.Events("orders", "e", 20, func(i int) []byte { return fmt.Appendf(nil, "k%d", i) })...)
	a := newApp(t, ok)

	p := startRelay(t, []string{
		"EVENTKIT_BROKERS=" + brokers, "EVENTKIT_GROUP=g", "EVENTKIT_TOPICS=orders",
		"EVENTKIT_RELAY_TO=" + a.URL + "/events",
	})
	testkit.WaitCommitted(t, cl, "g", "orders", testkit.EndOffsets(t, cl, "orders"), condWait)
	if code := p.stop(); code != exitOK {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	if n := a.distinct(); n != 20 {
		t.Fatalf("%d distinct events delivered, want 20", n)
	}
	if strings.Contains(p.stderr.String(), "eventkit relay:") {
		t.Fatalf("a clean stop printed an error: %s", p.lastLine())
	}
}

func TestRelayHaltsWhenRetriesRunOut(t *testing.T) {
	brokers, cl := ordersTopic(t, 1, 5)
	// The application goes down for good at the third event.
	a := newApp(t, func(id string, _ int) (int, string, string) {
		if id == "e-0" || id == "e-1" {
			return http.StatusOK, "", ""
		}
		return http.StatusInternalServerError, "", "db down\n"
	})

	p := startRelay(t, nil, relayArgs(brokers, a.URL+"/events", quick...)...)
	p.exitsWith(exitHalted, `eventkit relay: halted topic=orders partition=0 offset=2 id=e-2 attempts=3 cause=POST `+a.URL+`/events: 500 Internal Server Error: "db down"`)
	if got := strings.Count(p.stderr.String(), "eventkit relay:"); got != 1 {
		t.Fatalf("%d error lines, want 1", got)
	}
	if off := committed(t, cl, "g", "orders"); off != 2 {
		t.Fatalf("committed %d, want 2: everything before the halted event", off)
	}
	if n := a.count("e-2"); n != 3 {
		t.Fatalf("e-2 delivered %d times, want 3 (max-retries 2 + 1)", n)
	}
	if n := a.count("e-3"); n != 0 {
		t.Fatalf("e-3 delivered %d times behind a halted event", n)
	}
}

func TestRelayKill(t *testing.T) {
	brokers, cl := ordersTopic(t, 1, 5)
	a := newApp(t, poison("e-2", http.StatusUnprocessableEntity, "kill", "negative amount"))

	p := startRelay(t, nil, relayArgs(brokers, a.URL+"/events", quick...)...)
	p.exitsWith(exitKilled, `eventkit relay: killed topic=orders partition=0 offset=2 id=e-2 attempts=1 cause=POST `+a.URL+`/events: 422 Unprocessable Entity, Eventkit-Flag: kill: "negative amount"`)
	if off := committed(t, cl, "g", "orders"); off != 2 {
		t.Fatalf("committed %d, want 2: nothing at or after the killed event", off)
	}
	if n := a.count("e-2") + a.count("e-3") + a.count("e-4"); n != 1 {
		t.Fatalf("%d deliveries at or after the killed event, want only the killed one", n)
	}
}

func TestRelayWarnContinues(t *testing.T) {
	brokers, cl := ordersTopic(t, 1, 5)
	a := newApp(t, poison("e-2", http.StatusInternalServerError, "WARN", "unknown currency"))

	p := startRelay(t, nil, relayArgs(brokers, a.URL+"/events", quick...)...)
	testkit.WaitCommitted(t, cl, "g", "orders", map[int32]int64{0: 5}, condWait)
	if code := p.stop(); code != exitOK {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	for i := range 5 {
		if n := a.count(fmt.Sprintf("e-%d", i)); n != 1 {
			t.Fatalf("e-%d delivered %d times, want once", i, n)
		}
	}
	if !strings.Contains(p.stderr.String(), `msg="event warned"`) || !strings.Contains(p.stderr.String(), "unknown currency") {
		t.Fatal("the warning and its cause are not logged")
	}
}

func TestRelayConnectionRefused(t *testing.T) {
	brokers, cl := ordersTopic(t, 1, 3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()

	p := startRelay(t, nil, relayArgs(brokers, "http://"+addr+"/events", quick...)...)
	p.exitsWith(exitHalted, `eventkit relay: halted topic=orders partition=0 offset=0 id=e-0 attempts=3 cause=POST http://`+addr+`/events: dial tcp `+addr+`: connect: connection refused`)
	if off := committed(t, cl, "g", "orders"); off >= 0 {
		t.Fatalf("committed %d with nothing delivered", off)
	}
}

// Under --halt pause a poisoned event holds back only its partition: the
// admin endpoint reports not ready, the other partition keeps flowing, and
// SIGTERM still stops cleanly.
func TestRelayPausePartition(t *testing.T) {
	brokers, cl := ordersTopic(t, 2, 0, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produceTo := func(partition int32, prefix string, n int) {
		rs := testkit.Events("orders", prefix, n, nil)
		for _, r := range rs {
			r.Partition = partition
		}
		testkit.Produce(t, cl, rs...)
	}
	produceTo(0, "p0", 4)
	produceTo(1, "p1", 3)
	a := newApp(t, poison("p0-1", http.StatusServiceUnavailable, "", "not yet"))

	p := startRelay(t, nil, relayArgs(brokers, a.URL+"/events", append([]string{"--halt", "pause", "--admin", "127.0.0.1:0"}, quick...)...)...)
	admin := "http://" + p.adminAddr()

	testkit.Eventually(t, condWait, func() error {
		code, body := get(t, admin+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "orders/0 at offset 1") {
			return fmt.Errorf("/readyz %d %s", code, body)
		}
		return nil
	})
	testkit.WaitCommitted(t, cl, "g", "orders", map[int32]int64{0: 1, 1: 3}, condWait)
	produceTo(1, "p1-late", 2)
	testkit.WaitCommitted(t, cl, "g", "orders", map[int32]int64{0: 1, 1: 5}, condWait)

	if code, _ := get(t, admin+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d while paused, want 200", code)
	}
	if code, body := get(t, admin+"/metrics"); code != http.StatusOK || !strings.Contains(body, "eventkit_consumer_events_total") {
		t.Fatalf("/metrics %d without the agent's metrics", code)
	}
	if n := a.count("p0-1"); n != 3 {
		t.Fatalf("p0-1 delivered %d times, want 3", n)
	}
	if n := a.count("p0-2"); n != 0 {
		t.Fatalf("p0-2 delivered %d times behind the paused event", n)
	}
	if code := p.stop(); code != exitOK {
		t.Fatalf("exit %d after SIGTERM, want 0", code)
	}
	if _, err := http.Get(admin + "/healthz"); err == nil {
		t.Fatal("admin server still answers after the relay exited")
	}
}

// SIGTERM lets a delivery in flight finish and commits it, and delivers
// nothing new.
func TestRelayDrainsOnSIGTERM(t *testing.T) {
	brokers, cl := ordersTopic(t, 1, 3)
	arrived, release := make(chan struct{}), make(chan struct{})
	a := newApp(t, func(id string, _ int) (int, string, string) {
		if id == "e-0" {
			close(arrived)
			<-release
		}
		return http.StatusOK, "", ""
	})

	p := startRelay(t, nil, relayArgs(brokers, a.URL, "--admin", "127.0.0.1:0")...)
	admin := "http://" + p.adminAddr()
	select {
	case <-arrived:
	case <-time.After(condWait):
		t.Fatal("e-0 never delivered")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, condWait, func() error {
		if code, body := get(t, admin+"/healthz"); code != http.StatusServiceUnavailable {
			return fmt.Errorf("/healthz %d %s, want 503 while stopping", code, body)
		}
		return nil
	})
	close(release)
	if code := p.wait(); code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	if off := committed(t, cl, "g", "orders"); off != 1 {
		t.Fatalf("committed %d, want 1: the delivery in flight, nothing after", off)
	}
	if n := a.count("e-1"); n != 0 {
		t.Fatalf("e-1 delivered %d times after SIGTERM", n)
	}
}

// A delivery that never gets an answer does not hold up shutdown past
// --timeout, and is not committed.
func TestRelayShutdownIsBoundedByTimeout(t *testing.T) {
	brokers, cl := ordersTopic(t, 1, 1)
	arrived := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // net/http notices a client that hung up only once the body is read
		close(arrived)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)

	p := startRelay(t, nil, relayArgs(brokers, srv.URL, "--timeout", "2s")...)
	select {
	case <-arrived:
	case <-time.After(condWait):
		t.Fatal("e-0 never delivered")
	}
	if code := p.stop(); code != exitOK {
		t.Fatalf("exit %d, want 0", code)
	}
	if off := committed(t, cl, "g", "orders"); off >= 0 {
		t.Fatalf("committed %d for an event without an answer", off)
	}
}

func TestRelayUsage(t *testing.T) {
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"nothing set", nil, nil, "eventkit relay: no consumer group: set --group or EVENTKIT_GROUP; no topics: set --topic or EVENTKIT_TOPICS; no endpoint: set --to or EVENTKIT_RELAY_TO"},
		{"only the variables the help names", []string{"EVENTKIT_HALT=never", "EVENTKIT_TO=ftp://x", "EVENTKIT_TIMEOUT=soon",
			"EVENTKIT_GROUP=g", "EVENTKIT_TOPICS=t", "EVENTKIT_RELAY_TO=http://x"}, nil, "eventkit relay: no brokers: set --brokers or EVENTKIT_BROKERS"},
		{"bad env", []string{"EVENTKIT_RELAY_TIMEOUT=soon"}, nil, `eventkit relay: EVENTKIT_RELAY_TIMEOUT: invalid argument "soon" for "--timeout" flag: time: invalid duration "soon"`},
		{"bad choices", nil, []string{"--group", "g", "--topic", "t", "--to", "http://x", "--ordering", "random", "--halt", "never"},
			`eventkit relay: --ordering "random": want partition, key or none; --halt "never": want stop or pause`},
		{"no brokers", nil, []string{"--group", "g", "--topic", "t", "--to", "http://x"}, "eventkit relay: no brokers: set --brokers or EVENTKIT_BROKERS"},
		{"no topic names", []string{"EVENTKIT_TOPICS=, ,"}, []string{"--brokers", "127.0.0.1:1", "--group", "g", "--to", "http://x"},
			"eventkit relay: no topics: set --topic or EVENTKIT_TOPICS"},
		{"bad url", nil, []string{"--brokers", "127.0.0.1:1", "--group", "g", "--topic", "t", "--to", "localhost:8080"},
			`eventkit relay: --to: relay: url "localhost:8080": want http://host/… or https://host/…`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startRelay(t, tc.env, tc.args...)
			p.exitsWith(exitUsage, tc.want)
		})
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(body)
}

// SIGTERM must end the relay within its bound even when the broker takes the
// agent's final status report and never answers it (a broker that went away
// mid-request): franz-go's ProduceSync ignores its context once a record
// was sent, so the shutdown must not wait on it past the drain bound.
func TestRelayShutdownBoundedWhenStatusProduceHangs(t *testing.T) {
	b := testkit.Broker(t, 1, "orders")
	cl := testkit.Client(t, b.Addr())
	testkit.Produce(t, cl, testkit.Events("orders", "e", 3, nil)...)
	a := newApp(t, ok)
	p := startRelay(t, nil, relayArgs(b.Addr(), a.URL, "--timeout", "2s")...)
	testkit.WaitCommitted(t, cl, "g", "orders", map[int32]int64{0: 3}, condWait)

	// From now on only the relay produces (its status reports); produce
	// requests name topics by id, so hold every one of them.
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	b.Cluster().ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		b.Cluster().KeepControl()
		b.Cluster().SleepControl(func() { <-release })
		return nil, nil, false
	})

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	const limit = 20 * time.Second // 10 × --timeout
	select {
	case <-p.done:
	case <-time.After(limit):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT) // goroutine dump into stderr
		<-p.done
		t.Fatalf("relay still running %v after SIGTERM (--timeout 2s)", limit)
	}
	if p.code != exitOK {
		t.Fatalf("exit %d after SIGTERM, want 0", p.code)
	}
}
