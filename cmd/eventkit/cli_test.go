package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

// tailJSON runs `tail --json` with args until it printed n events, stops it
// as a user would and returns them.
func tailJSON(t *testing.T, n int, args ...string) []eventkit.Event {
	t.Helper()
	p := start(t, append([]string{"tail", "--json"}, args...)...)
	evs := make([]eventkit.Event, n)
	for i := range evs {
		l := p.line()
		if err := json.Unmarshal([]byte(l), &evs[i]); err != nil {
			t.Fatalf("tail printed %q: %v", l, err)
		}
	}
	if code := p.interrupt(); code != 0 {
		t.Fatalf("tail exited %d after SIGINT, want 0; stderr: %s", code, p.stderr.String())
	}
	return evs
}

func TestBrokerProduceTailOffsets(t *testing.T) {
	_, addr := startBroker(t, "--topics", "orders,big,bulk")

	input := `{"amount":100,"currency":"EUR"}` + "\n\nhello world\n[1,2,3]\n"
	r := mustRun(t, input, "produce", "--brokers", addr, "--topic", "orders", "--key", "acct-1")
	if !strings.Contains(r.stderr, "produced 3 events to orders") {
		t.Fatalf("produce said %q, want it to count 3 events", r.stderr)
	}

	var ids []string
	t.Run("tail json", func(t *testing.T) {
		evs := tailJSON(t, 3, "--brokers", addr, "--topic", "orders", "--from-beginning")
		want := []struct{ data, contentType string }{
			{`{"amount":100,"currency":"EUR"}`, "application/json"},
			{"hello world", "text/plain"},
			{"[1,2,3]", "application/json"},
		}
		seen := make(map[string]bool)
		for i, ev := range evs {
			if string(ev.Data) != want[i].data || ev.ContentType != want[i].contentType {
				t.Errorf("event %d: data %q content type %q, want %q %q", i, ev.Data, ev.ContentType, want[i].data, want[i].contentType)
			}
			if u, err := uuid.Parse(ev.ID); err != nil || u.Version() != 7 || seen[ev.ID] {
				t.Errorf("event %d: id %q, want a fresh UUIDv7", i, ev.ID)
			}
			seen[ev.ID] = true
			ids = append(ids, ev.ID)
			// Headers whole, as lookback's API shows them.
			if v, ok := ev.Header(eventkit.HeaderID); !ok || string(v) != ev.ID {
				t.Errorf("event %d: headers %v, want ce_id among them", i, ev.Headers)
			}
			if ev.Type != "eventkit.cli" || ev.Source != "eventkit-cli" || string(ev.Key) != "acct-1" || ev.Offset != int64(i) {
				t.Errorf("event %d: %s type %q source %q key %q, want orders/0/%d eventkit.cli eventkit-cli acct-1",
					i, ev.Coordinates(), ev.Type, ev.Source, ev.Key, i)
			}
		}
	})

	t.Run("tail text", func(t *testing.T) {
		p := start(t, "tail", "--brokers", addr, "--topic", "orders", "--from-beginning")
		for i, want := range []string{`{"amount":100,"currency":"EUR"}`, "hello world", "[1,2,3]"} {
			l := p.line()
			prefix := fmt.Sprintf("orders/0/%d id=%s type=eventkit.cli key=acct-1 ", i, ids[i])
			if l != prefix+want {
				t.Errorf("line %d: %q, want %q", i, l, prefix+want)
			}
		}
		if code := p.interrupt(); code != 0 {
			t.Fatalf("tail exited %d, want 0", code)
		}
	})

	t.Run("produce flags", func(t *testing.T) {
		mustRun(t, "<xml/>\n", "produce", "--brokers", addr, "--topic", "orders",
			"--type", "orders.imported", "--source", "/importer", "--content-type", "application/xml")
		ev := tailJSON(t, 4, "--brokers", addr, "--topic", "orders", "--from-beginning")[3]
		if ev.Type != "orders.imported" || ev.Source != "/importer" || ev.ContentType != "application/xml" || ev.Key != nil {
			t.Fatalf("got %+v, want the flags' type, source and content type and no key", ev)
		}
	})

	t.Run("line over 1 MiB", func(t *testing.T) {
		long := strings.Repeat("a", 1<<20+1)
		mustRun(t, long+"\n", "produce", "--brokers", addr, "--topic", "big")
		rs := testkit.ReadAll(t, addr, "big")
		if len(rs) != 1 || len(rs[0].Value) != len(long) {
			t.Fatalf("read %d records, want 1 of %d bytes", len(rs), len(long))
		}
	})

	t.Run("progress", func(t *testing.T) {
		r := mustRun(t, strings.Repeat("x\n", 10001), "produce", "--brokers", addr, "--topic", "bulk")
		// Input goes out in batches, so the progress line names the count
		// of the batch that crossed 10000.
		m := regexp.MustCompile(`produced (\d+) events\.\.\.\n`).FindStringSubmatch(r.stderr)
		if n, _ := strconv.Atoi(m0(m)); n < 10000 || !strings.Contains(r.stderr, "produced 10001 events to bulk") {
			t.Fatalf("produce said %q, want a progress line past 10000 and the total", r.stderr)
		}
	})

	t.Run("offsets show", func(t *testing.T) {
		// A group member that processed the first 3 of the 4 orders.
		member := testkit.Client(t, addr, kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
			kgo.SessionTimeout(10*time.Second), kgo.RebalanceTimeout(8*time.Second))
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		var got []*kgo.Record
		for len(got) < 3 {
			fs := member.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("group member read %d records: %v", len(got), ctx.Err())
			}
			got = append(got, fs.Records()...)
		}
		if err := member.CommitRecords(ctx, got[:3]...); err != nil {
			t.Fatal(err)
		}

		r := mustRun(t, "", "offsets", "show", "--brokers", addr, "--group", "billing", "--json")
		var out struct {
			Group      string `json:"group"`
			Partitions []struct {
				Topic               string
				Partition           int32
				Committed, End, Lag int64
			} `json:"partitions"`
			TotalLag int64 `json:"total_lag"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("offsets show printed %q: %v", r.stdout, err)
		}
		if out.Group != "billing" || out.TotalLag != 1 || len(out.Partitions) != 1 {
			t.Fatalf("offsets show: %+v, want billing with one partition and a lag of 1", out)
		}
		if p := out.Partitions[0]; p.Topic != "orders" || p.Partition != 0 || p.Committed != 3 || p.End != 4 || p.Lag != 1 {
			t.Fatalf("offsets show: %+v, want orders/0 committed 3, end 4, lag 1", p)
		}

		table := mustRun(t, "", "offsets", "show", "--brokers", addr, "--group", "billing").stdout
		rows := strings.Split(strings.TrimSpace(table), "\n")
		want := [][]string{{"TOPIC", "PARTITION", "COMMITTED", "END", "LAG"}, {"orders", "0", "3", "4", "1"}, {"TOTAL", "1"}}
		if len(rows) != len(want) {
			t.Fatalf("table:\n%s\nwant %d rows", table, len(want))
		}
		for i, row := range rows {
			if !reflect.DeepEqual(strings.Fields(row), want[i]) {
				t.Errorf("table row %d: %q, want %q", i, row, want[i])
			}
		}
	})

	t.Run("tail with a group commits", func(t *testing.T) {
		tailJSON(t, 4, "--brokers", addr, "--topic", "orders", "--from-beginning", "--group", "audit")
		r := mustRun(t, "", "offsets", "show", "--brokers", addr, "--group", "audit", "--json")
		if !strings.Contains(r.stdout, `"committed":4,"end":4,"lag":0`) {
			t.Fatalf("offsets show after tail --group: %s, want committed 4 and no lag", r.stdout)
		}
	})

	t.Run("errors against a running broker", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			stdin string
			args  []string
			want  string
		}{
			{"produce to missing topic", "x\n", []string{"produce", "--brokers", addr, "--topic", "nope"}, "topic nope does not exist"},
			{"tail missing topic", "", []string{"tail", "--brokers", addr, "--topic", "nope"}, "topic nope does not exist"},
			{"unknown group", "", []string{"offsets", "show", "--brokers", addr, "--group", "nobody"}, `group "nobody": no such consumer group`},
			{"sasl against a broker without it", "", []string{"tail", "--brokers", addr, "--topic", "orders", "--sasl-mechanism", "PLAIN", "--sasl-username", "u", "--sasl-password", "p"}, "connect to " + addr},
		} {
			t.Run(tc.name, func(t *testing.T) {
				checkFails(t, run(t, nil, tc.stdin, tc.args...), 1, tc.want)
			})
		}
	})
}

// checkFails asserts that a command failed with code and one line on
// stderr that says want.
func checkFails(t *testing.T, r result, code int, want string) {
	t.Helper()
	t.Logf("exit %d: %s", r.code, strings.TrimSpace(r.stderr))
	if r.code != code {
		t.Errorf("exit %d, want %d; stderr: %s", r.code, code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "eventkit") || !strings.Contains(last, want) {
		t.Errorf("stderr %q, want a last line that says %q", r.stderr, want)
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("stderr shows a panic: %s", r.stderr)
	}
}

func TestBadInput(t *testing.T) {
	closed := freeAddr(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		// A missing or malformed setting exits 2, as a malformed flag does;
		// a failure once running (nothing listening, a file that cannot be
		// read) exits 1.
		{"unknown command", nil, []string{"nope"}, 2, "unknown command"},
		{"produce without brokers", nil, []string{"produce", "--topic", "t"}, 2, "no brokers: set --brokers or EVENTKIT_BROKERS"},
		{"offsets without brokers", nil, []string{"offsets", "reset", "--group", "g", "--to-earliest"}, 2, "no brokers"},
		{"unknown flag", nil, []string{"tail", "--nope"}, 2, "unknown flag: --nope"},
		{"produce without topic", nil, []string{"produce", "--brokers", closed}, 2, `required flag(s) "topic" not set`},
		{"offsets show without group", nil, []string{"offsets", "show", "--brokers", closed}, 2, `required flag(s) "group" not set`},
		{"no brokers", nil, []string{"tail", "--topic", "t"}, 2, "no brokers: set --brokers or EVENTKIT_BROKERS"},
		{"nothing listening", nil, []string{"tail", "--brokers", closed, "--topic", "t"}, 1, "connection refused"},
		{"bad broker address", nil, []string{"offsets", "show", "--brokers", "kafka:http", "--group", "g"}, 1, `broker "kafka:http"`},
		{"unknown sasl mechanism", nil, []string{"tail", "--brokers", closed, "--topic", "t", "--sasl-mechanism", "GSSAPI", "--sasl-username", "u", "--sasl-password", "p"}, 1, `unknown mechanism "GSSAPI"`},
		{"tls file without tls", nil, []string{"tail", "--brokers", closed, "--topic", "t", "--tls-ca", "ca.pem"}, 1, "TLS is not enabled"},
		{"missing CA file", nil, []string{"tail", "--brokers", closed, "--topic", "t", "--tls", "--tls-ca", "/nonexistent/ca.pem"}, 1, "read CA file"},
		{"malformed env switch", []string{"EVENTKIT_TLS=maybe"}, []string{"tail", "--brokers", closed, "--topic", "t"}, 2, `EVENTKIT_TLS: invalid argument "maybe"`},
		{"malformed env number", []string{"EVENTKIT_PARTITIONS=many"}, []string{"broker", "--listen", closed}, 2, `EVENTKIT_PARTITIONS: invalid argument "many"`},
		{"zero partitions", nil, []string{"broker", "--listen", closed, "--partitions", "0"}, 2, "--partitions 0: want at least 1"},
		{"tail of an empty topic name", nil, []string{"tail", "--brokers", closed, "--topic", ""}, 2, "--topic: want a topic name"},
		{"produce to an empty topic name", nil, []string{"produce", "--brokers", closed, "--topic", ""}, 2, "--topic: want a topic name"},
		{"dev with negative traffic", nil, []string{"dev", "--data", "", "--traffic", "-1"}, 2, "--traffic -1: want 0 or more events/s"},
		{"dev with endless traffic", nil, []string{"dev", "--data", "", "--traffic", "Inf"}, 2, "--traffic +Inf"},
		{"broker on another interface", nil, []string{"broker", "--listen", "10.1.2.3:9092"}, 1, "binds 127.0.0.1 only"},
		{"broker address without port", nil, []string{"broker", "--listen", "localhost"}, 1, `broker listen address "localhost"`},
		{"dev on another interface", nil, []string{"dev", "--data", "", "--broker-addr", "0.0.0.0:9092"}, 1, "start broker"},
		{"dev with lookback's port taken", nil, []string{"dev", "--data", "", "--broker-addr", freeAddr(t), "--lookback-addr", busy.Addr().String()}, 1, "--lookback-addr: listen tcp " + busy.Addr().String()},
		{"lookback without a database", nil, []string{"lookback", "serve", "--brokers", closed}, 2, `--db "": want sqlite://PATH or postgres://`},
		{"lookback without brokers", nil, []string{"lookback", "serve", "--db", "sqlite://x.db"}, 2, "no brokers"},
		{"lookback without tokens", nil, []string{"lookback", "serve", "--brokers", closed, "--db", "sqlite:///nonexistent/x.db"}, 2, "no tokens"},
		{"lookback with a short token", []string{"EVENTKIT_TOKENS=a:viewer:short"}, []string{"lookback", "serve", "--brokers", closed, "--db", "sqlite:///nonexistent/x.db"}, 2, "want at least 16"},
		{"lookback with an unknown role", []string{"EVENTKIT_TOKENS=a:admin:aaaaaaaaaaaaaaaaaaaa"}, []string{"lookback", "serve", "--brokers", closed, "--db", "sqlite:///nonexistent/x.db"}, 2, "the role (second field) is neither viewer nor operator"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.env, "", tc.args...)
			checkFails(t, r, tc.code, tc.want)
			if strings.Contains(r.stderr, "level=WARN") {
				t.Errorf("warnings before the cause:\n%s", r.stderr)
			}
		})
	}

	t.Run("env fills a flag", func(t *testing.T) {
		r := run(t, []string{"EVENTKIT_BROKERS=" + closed, "EVENTKIT_TOPIC=t"}, "", "tail")
		checkFails(t, r, 1, "connect to "+closed)
	})
	t.Run("flag wins over env", func(t *testing.T) {
		r := run(t, []string{"EVENTKIT_BROKERS=kafka:http"}, "", "tail", "--topic", "t", "--brokers", closed)
		checkFails(t, r, 1, "connect to "+closed)
	})
	// A flag typed wins over the variables of its alternatives too, which
	// a shell may hold for other commands: not "both --db and --lookback".
	t.Run("flag wins over an alternative's env", func(t *testing.T) {
		r := run(t, []string{"EVENTKIT_DB=sqlite://" + filepath.Join(t.TempDir(), "x.db")}, "",
			"replay", "--lookback", "http://"+closed, "--token", "alice-secret-0123456789", "--to-topic", "copies", "--dry-run")
		checkFails(t, r, 1, "connection refused")
		r = run(t, []string{"EVENTKIT_LOOKBACK=http://" + closed, "EVENTKIT_TOKEN=alice-secret-0123456789"}, "",
			"offsets", "reset", "--brokers", closed, "--group", "g", "--to-earliest")
		checkFails(t, r, 1, "connect to "+closed)
	})
	// What a reset moves is typed: a target or topic left in the
	// environment does not join the one typed.
	t.Run("reset target from the command line only", func(t *testing.T) {
		r := run(t, []string{"EVENTKIT_TO_LATEST=true", "EVENTKIT_TOPIC=other"}, "",
			"offsets", "reset", "--brokers", closed, "--group", "g", "--to-earliest")
		checkFails(t, r, 1, "connect to "+closed)
	})
}

// With --data "" dev keeps nothing: no file is left where it ran.
func TestDevMemoryOnly(t *testing.T) {
	dir := t.TempDir()
	p := startIn(t, dir, nil, "dev", "--data", "", "--broker-addr", freeAddr(t), "--lookback-addr", freeAddr(t),
		"--transfers-addr", freeAddr(t), "--reports-addr", freeAddr(t), "--traffic", "0")
	p.until("ready")
	if code := p.interrupt(); code != exitOK {
		t.Fatalf("dev exited %d", code)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("dev --data \"\" left %v where it ran", left)
	}
}

func TestDev(t *testing.T) {
	dir := t.TempDir()
	addr, lbAddr, trAddr, rpAddr := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	var hints []string
	startDev := func(t *testing.T) (*proc, string) {
		t.Helper()
		p := start(t, "dev", "--data", dir, "--broker-addr", addr, "--lookback-addr", lbAddr,
			"--transfers-addr", trAddr, "--reports-addr", rpAddr, "--traffic", "20")
		out := p.until("ready")
		want := []string{"broker: " + addr, "lookback: http://" + lbAddr, "transfers: http://" + trAddr, "reports: http://" + rpAddr}
		if len(out) != len(want)+2 || !slices.Equal(out[:len(want)], want) || !strings.HasPrefix(out[len(want)], "token: ") {
			t.Fatalf("dev printed %q, want %q, a token line, then ready", out, want)
		}
		hints = p.until("")
		if joined := strings.Join(hints, "\n"); !strings.Contains(joined, "eventkit produce --brokers "+addr+" --topic demo") ||
			!strings.Contains(joined, "eventkit tail --brokers "+addr+" --topic demo") {
			t.Errorf("dev printed %q, want commands to produce and tail with its address", joined)
		}
		return p, strings.TrimPrefix(out[len(want)], "token: ")
	}

	dev, token := startDev(t)
	// A second dev on the same data refuses to start: two brokers writing
	// one log lose records and offsets while both look healthy.
	checkFails(t, run(t, nil, "", "dev", "--data", dir, "--broker-addr", freeAddr(t), "--lookback-addr", freeAddr(t),
		"--transfers-addr", freeAddr(t), "--reports-addr", freeAddr(t)), 1, "is in use by another broker (pid ")
	mustRun(t, "first\nsecond\n", "produce", "--brokers", addr, "--topic", "demo", "--key", "k")
	if status, _ := httpGet(t, "http://"+lbAddr+"/api/v1/topics", token); status != 200 {
		t.Errorf("lookback with the dev token: %d, want 200", status)
	}
	if status, _ := httpGet(t, "http://"+lbAddr+"/api/v1/topics", ""); status != 401 {
		t.Errorf("lookback without a token: %d, want 401", status)
	}
	// The traffic generator's transfers reach lookback's archive and the
	// reports service.
	testkit.Eventually(t, 60*time.Second, func() error {
		status, body := httpGet(t, "http://"+lbAddr+"/api/v1/events?topic=payments.transfers&limit=1", token)
		if status != 200 || !strings.Contains(body, `"topic":"payments.transfers"`) {
			return fmt.Errorf("lookback events of payments.transfers: %d %s", status, body)
		}
		return nil
	})
	// Every curl command dev suggests answers 200, as printed.
	curls := 0
	for _, h := range hints {
		m := curlHint.FindStringSubmatch(strings.TrimSpace(h))
		if m == nil {
			continue
		}
		curls++
		if status, body := httpGet(t, m[2], m[1]); status != 200 {
			t.Errorf("%s: %d %s, want 200", h, status, body)
		}
	}
	if curls < 3 {
		t.Errorf("dev suggested %d curl commands in %q, want one for lookback and two for reports", curls, hints)
	}
	if code := dev.interrupt(); code != 0 {
		t.Fatalf("dev exited %d after SIGINT, want 0; stderr: %s", code, dev.stderr.String())
	}

	t.Run("restart keeps the records and the token", func(t *testing.T) {
		dev, again := startDev(t)
		if again != token {
			t.Errorf("token after restart %q, want %q", again, token)
		}
		evs := tailJSON(t, 2, "--brokers", addr, "--topic", "demo", "--from-beginning")
		if string(evs[0].Data) != "first" || string(evs[1].Data) != "second" {
			t.Fatalf("after restart read %q and %q, want first and second", evs[0].Data, evs[1].Data)
		}
		if code := dev.interrupt(); code != 0 {
			t.Fatalf("dev exited %d after SIGINT, want 0", code)
		}
	})
}

// curlHint is a curl command dev suggests: an optional bearer token and a URL.
var curlHint = regexp.MustCompile(`^curl (?:-H "Authorization: Bearer ([^"]+)" )?'?(http://[^' ]+)'?$`)

// m0 returns the first group of a regexp match, or "".
func m0(m []string) string {
	if len(m) < 2 {
		return ""
	}
	return m[1]
}

// tail prints one line a record, whatever its id and type hold.
func TestTailOneLinePerRecord(t *testing.T) {
	_, addr := startBroker(t, "--topics", "m")
	cl := testkit.Client(t, addr)
	testkit.Produce(t, cl, &kgo.Record{Topic: "m", Value: []byte("v"), Headers: []kgo.RecordHeader{
		{Key: "ce_id", Value: []byte("a\nb")}, {Key: "ce_type", Value: []byte("x\ny")},
		{Key: "ce_source", Value: []byte("s")}, {Key: "ce_specversion", Value: []byte("1.0")}}})
	p := start(t, "tail", "--brokers", addr, "--topic", "m", "--from-beginning")
	want := "m/0/0 id=base64:" + base64.StdEncoding.EncodeToString([]byte("a\nb")) +
		" type=base64:" + base64.StdEncoding.EncodeToString([]byte("x\ny")) + " key= v"
	if l := p.line(); l != want {
		t.Errorf("tail printed %q, want %q", l, want)
	}
	p.interrupt()
}

// A line is JSON only when it is UTF-8 as well: json.Valid accepts any
// byte inside a string.
func TestProduceContentTypeOfBinaryStrings(t *testing.T) {
	for line, want := range map[string]string{`"caf\u00e9"`: "application/json", "\"caf\xe9\"": "text/plain", `{"a":1}`: "application/json"} {
		if got := (&produceFlags{}).event([]byte(line)).ContentType; got != want {
			t.Errorf("%q: content type %s, want %s", line, got, want)
		}
	}
}

// dev's hints run the program the way it was started: a newcomer who typed
// "go run ./cmd/eventkit dev" has no eventkit on the PATH.
func TestSelfCommand(t *testing.T) {
	for arg0, want := range map[string]string{
		"/tmp/go-build3323423/b001/exe/eventkit": "go run ./cmd/eventkit",
		"/usr/local/bin/eventkit":                "eventkit",
		"eventkit":                               "eventkit",
	} {
		if got := selfCommand(arg0); got != want {
			t.Errorf("selfCommand(%q) = %q, want %q", arg0, got, want)
		}
	}
}

// produce stops on SIGTERM even with an event sent to a broker that went
// away, which franz-go would retry for as long as the broker stays away.
func TestProduceStopsOnSignalWhenTheBrokerIsGone(t *testing.T) {
	b, addr := startBroker(t, "--topics", "t")
	cl := testkit.Client(t, addr)
	cmd := exec.Command(eventkitBinary(t), "produce", "--brokers", addr, "--topic", "t")
	cmd.Env = childEnv()
	var stderr testkit.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	fmt.Fprintln(stdin, "a")
	testkit.Eventually(t, 30*time.Second, func() error {
		if n := testkit.EndOffsets(t, cl, "t")[0]; n != 1 {
			return fmt.Errorf("end offset %d, want 1", n)
		}
		return nil
	})
	cl.Close()
	if code := b.interrupt(); code != 0 {
		t.Fatalf("broker exited %d", code)
	}
	// A listener stands in for the broker until produce sends "b" to it,
	// then goes away too.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintln(stdin, "b")
	stdin.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	ln.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("produce still runs 30s after SIGTERM with the broker gone; stderr: %s", stderr.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "produced 1 event to t") {
		t.Fatalf("exit %d, stderr %q; want 1, with the count of what was produced", code, stderr.String())
	}
}
