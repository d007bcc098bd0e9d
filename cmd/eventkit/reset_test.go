package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/replay"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestOffsetsReset(t *testing.T) {
	// orders/0 holds ten records written a minute apart from t0; the group
	// billing stopped after the first eight.
	t0 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	addr, cl := ordersTopic(t, 1, 0)
	rs := testkit.Events("orders", "e", 10, nil)
	for i, r := range rs {
		r.Timestamp = t0.Add(time.Duration(i) * time.Minute)
	}
	testkit.Produce(t, cl, rs...)
	ctx := context.Background()
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 8, LeaderEpoch: -1})
	if err := kadm.NewClient(cl).CommitAllOffsets(ctx, "billing", offs); err != nil {
		t.Fatal(err)
	}
	reset := func(t *testing.T, env []string, args ...string) result {
		t.Helper()
		return run(t, env, "", append([]string{"offsets", "reset", "--brokers", addr}, args...)...)
	}

	t.Run("dry run by default", func(t *testing.T) {
		r := reset(t, nil, "--group", "billing", "--shift-by", "-3")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		want := [][]string{
			{"TOPIC", "PARTITION", "CURRENT", "NEW", "LAG", "BEFORE", "LAG", "AFTER"},
			{"orders", "0", "8", "5", "2", "5"},
			{"TOTAL", "2", "5"},
			{"dry", "run:", "nothing", "changed;", "add", "--execute"},
		}
		if len(lines) != len(want) {
			t.Fatalf("printed\n%s\nwant %d lines", r.stdout, len(want))
		}
		for i, l := range lines {
			if !reflect.DeepEqual(strings.Fields(l), want[i]) {
				t.Errorf("line %d: %q, want %q", i, l, strings.Join(want[i], " "))
			}
		}
		if got := committed(t, cl, "billing", "orders"); got != 8 {
			t.Fatalf("a dry run moved the group to %d", got)
		}
	})

	t.Run("execute by time", func(t *testing.T) {
		r := reset(t, nil, "--group", "billing", "--topic", "orders", "--to-time", t0.Add(4*time.Minute).Format(time.RFC3339), "--execute", "--json")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var plan replay.Plan
		if err := json.Unmarshal([]byte(r.stdout), &plan); err != nil {
			t.Fatalf("printed %q: %v", r.stdout, err)
		}
		want := []replay.Move{{Topic: "orders", Partition: 0, Current: 8, New: 4, LagBefore: 2, LagAfter: 6}}
		if !plan.Executed || !reflect.DeepEqual(plan.Rows, want) {
			t.Fatalf("printed %s, want executed with %+v", r.stdout, want)
		}
		if got := committed(t, cl, "billing", "orders"); got != 4 {
			t.Fatalf("after --execute the group committed %d, want 4", got)
		}
	})

	t.Run("what moves is typed", func(t *testing.T) {
		// The group, the target, the partitions and --execute are never
		// taken from the environment: a variable set for another command
		// (a relay's EVENTKIT_GROUP) or left in a shell must not pick what
		// changes, nor turn a dry run into a change.
		env := []string{"EVENTKIT_GROUP=billing", "EVENTKIT_TO_EARLIEST=true", "EVENTKIT_EXECUTE=true", "EVENTKIT_PARTITIONS=7"}
		r := reset(t, env, "--group", "billing", "--to-latest")
		if r.code != 0 || !strings.HasSuffix(r.stdout, "dry run: nothing changed; add --execute\n") {
			t.Fatalf("exit %d, printed %q; stderr %s", r.code, r.stdout, r.stderr)
		}
		checkFails(t, reset(t, env, "--to-latest", "--execute"), 2, `required flag(s) "group" not set`)
		checkFails(t, reset(t, env, "--group", "billing", "--execute"), 2, "no target")
		r = reset(t, env, "--group", "billing", "--to-latest", "--execute")
		if r.code != 0 || !strings.HasSuffix(r.stdout, "executed: group billing committed the new offsets\n") {
			t.Fatalf("exit %d, printed %q; stderr %s", r.code, r.stdout, r.stderr)
		}
		if got := committed(t, cl, "billing", "orders"); got != 10 {
			t.Fatalf("after --to-latest the group committed %d, want 10", got)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			code int
			want string
		}{
			{"no group", []string{"--to-latest"}, 2, `required flag(s) "group" not set`},
			{"no target", []string{"--group", "billing"}, 2, "no target: want one of to-time, to-offset, shift-by, to-earliest, to-latest"},
			{"two targets", []string{"--group", "billing", "--to-time", "2024-05-01T10:00:00Z", "--shift-by", "-1"}, 2, "more than one target (to-time, shift-by): want exactly one"},
			{"dry run and execute", []string{"--group", "billing", "--to-latest", "--dry-run", "--execute"}, 2, "--dry-run and --execute: want one"},
			{"bad time", []string{"--group", "billing", "--to-time", "yesterday"}, 2, `--to-time "yesterday": want an RFC 3339 time`},
			{"bad partitions", []string{"--group", "billing", "--to-latest", "--partitions", "0,one"}, 2, `--partitions "0,one"`},
			{"unknown group", []string{"--group", "nobody", "--to-latest"}, 1, `group "nobody": no such consumer group`},
			{"unknown topic", []string{"--group", "billing", "--topic", "nope", "--to-latest"}, 1, "topic nope does not exist"},
			{"unknown partition", []string{"--group", "billing", "--topic", "orders", "--partitions", "3", "--to-latest"}, 1, "topic orders has no partition 3 (it has 1)"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				checkFails(t, reset(t, nil, tc.args...), tc.code, tc.want)
			})
		}
	})
	t.Run("refused while the group has a member", func(t *testing.T) {
		member := testkit.Client(t, addr, kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"),
			kgo.SessionTimeout(10*time.Second), kgo.RebalanceTimeout(8*time.Second))
		testkit.Eventually(t, condWait, func() error { // the client joins in the background
			_, err := replay.PlanReset(ctx, kadm.NewClient(member), replay.ResetRequest{Group: "billing", ToEarliest: true})
			if !errors.Is(err, replay.ErrGroupActive) {
				return fmt.Errorf("member not in the group yet: %v", err)
			}
			return nil
		})
		checkFails(t, reset(t, nil, "--group", "billing", "--to-earliest", "--execute"), 1,
			`group "billing" has 1 active member; Kafka only resets the offsets of an empty group: stop its consumers first`)
		if got := committed(t, cl, "billing", "orders"); got != 10 {
			t.Fatalf("a refused reset moved the group to %d", got)
		}
	})

}

// With --lookback the reset goes through lookback's API: the same plan and
// output, the change audited under the token's name, a viewer refused.
func TestOffsetsResetThroughLookback(t *testing.T) {
	addr, cl := ordersTopic(t, 1, 10)
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 8, LeaderEpoch: -1})
	if err := kadm.NewClient(cl).CommitAllOffsets(t.Context(), "billing", offs); err != nil {
		t.Fatal(err)
	}
	const operator, viewer = "alice-secret-0123456789", "bob-secret-0123456789"
	listen := freeAddr(t)
	p := startEnv(t, []string{"EVENTKIT_TOKENS=alice:operator:" + operator + ",bob:viewer:" + viewer},
		"lookback", "serve", "--brokers", addr, "--db", archiveDB(t, 0), "--listen", listen, "--retention", "0")
	p.until("ready")
	base := "http://" + listen
	reset := func(env []string, args ...string) result {
		return run(t, env, "", append([]string{"offsets", "reset", "--lookback", base, "--group", "billing"}, args...)...)
	}

	r := reset(nil, "--token", operator, "--shift-by", "-3")
	if r.code != 0 || !strings.HasSuffix(r.stdout, "dry run: nothing changed; add --execute\n") || committed(t, cl, "billing", "orders") != 8 {
		t.Fatalf("dry run: exit %d, printed %q; stderr %s", r.code, r.stdout, r.stderr)
	}
	r = reset([]string{"EVENTKIT_TOKEN=" + operator}, "--shift-by", "-3", "--execute", "--json")
	var plan replay.Plan
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &plan) != nil || !plan.Executed ||
		!reflect.DeepEqual(plan.Rows, []replay.Move{{Topic: "orders", Partition: 0, Current: 8, New: 5, LagBefore: 2, LagAfter: 5}}) {
		t.Fatalf("execute: exit %d, printed %q; stderr %s", r.code, r.stdout, r.stderr)
	}
	if got := committed(t, cl, "billing", "orders"); got != 5 {
		t.Fatalf("after --execute the group committed %d, want 5", got)
	}
	checkFails(t, reset(nil, "--token", viewer, "--to-latest", "--execute"), 1, "403 Forbidden")
	checkFails(t, reset(nil, "--to-latest"), 2, "needs an operator's token")

	api, err := newLookbackAPI(base, operator)
	if err != nil {
		t.Fatal(err)
	}
	var audit struct {
		Entries []struct {
			Actor, Action string
			Detail        map[string]any
		}
	}
	if err := api.do(t.Context(), http.MethodGet, "/api/v1/audit?action="+url.QueryEscape("POST /api/v1/groups/{group}/offsets"), nil, http.StatusOK, &audit); err != nil {
		t.Fatal(err)
	}
	executed := 0
	for _, e := range audit.Entries {
		if e.Actor == "alice" && e.Detail["executed"] == true {
			executed++
		}
	}
	if executed != 1 {
		t.Errorf("audit log %+v: want alice's executed reset once", audit.Entries)
	}
	if code := p.signal(syscall.SIGTERM); code != 0 {
		t.Fatalf("exit %d after SIGTERM; stderr: %s", code, p.stderr.String())
	}
}
