package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/eventkit/eventkit/replay"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func init() { offsetsSubcommands = append(offsetsSubcommands, newOffsetsResetCmd) }

type offsetsResetFlags struct {
	kafka      kafkaFlags
	group      string
	topics     []string
	partitions string
	toTime     string
	toOffset   int64
	shiftBy    int64
	toEarliest bool
	toLatest   bool
	dryRun     bool
	execute    bool
	json       bool
	lookback   string
	token      string
}

func newOffsetsResetCmd(s *streams) *cobra.Command {
	f := &offsetsResetFlags{}
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Move a stopped group's committed offsets to a time, an offset, the start or the end",
		Long: `reset moves the committed offsets of a consumer group, so that its consumers
read again from a point in the past (or skip ahead) when they start. Name
exactly one target: --to-time, --to-offset, --shift-by, --to-earliest or
--to-latest. Offsets past a partition's start or end stop there.

Like Kafka's own tool it only prints the plan unless given --execute: per
partition the committed offset ("-" where the group never committed), the
new one, and the lag before and after. Kafka only moves the offsets of an
empty group: stop the group's consumers first. A group the cluster does not
know yet takes its starting offsets from a reset that names its --topic:
every partition is "-" in the plan, and --execute creates the group there.

With --lookback URL and an operator's --token, the lookback service plans
and moves the offsets through its API (POST /api/v1/groups/{group}/offsets)
and its audit log records the change under the token's name; no --brokers
needed. Without it, the change goes straight to Kafka and is audited
nowhere.

With --json it prints {"executed": bool, "plan": [{"topic", "partition",
"current", "new", "lag_before", "lag_after"}]}, with -1 where the table
shows "-".`,
		Example: `  eventkit offsets reset --group billing --to-time 2024-05-01T10:00:00Z
  eventkit offsets reset --group billing --topic payments --partitions 0,1 --shift-by -100 --execute
  EVENTKIT_TOKEN=... eventkit offsets reset --lookback http://127.0.0.1:8080 --group billing --to-earliest --execute`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request(cmd)
			if err != nil {
				return &exitCodeError{code: exitUsage, err: err}
			}
			return f.run(cmd.Context(), s, req)
		},
	}
	f.kafka.bind(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.group, "group", "", "consumer group (required)")
	fl.StringSliceVar(&f.topics, "topic", nil, "topic to reset, repeatable or comma-separated (default: every topic the group committed on)")
	fl.StringVar(&f.partitions, "partitions", "", "partitions to reset, comma-separated (default: all)")
	fl.StringVar(&f.toTime, "to-time", "", "move to the first record at or after this RFC 3339 time")
	fl.Int64Var(&f.toOffset, "to-offset", 0, "move to this offset")
	fl.Int64Var(&f.shiftBy, "shift-by", 0, "move by this many records, negative to go back (from the start where the group never committed)")
	fl.BoolVar(&f.toEarliest, "to-earliest", false, "move to the start of each partition")
	fl.BoolVar(&f.toLatest, "to-latest", false, "move to the end of each partition")
	fl.BoolVar(&f.dryRun, "dry-run", false, "only print the plan (the default)")
	fl.BoolVar(&f.execute, "execute", false, "commit the new offsets")
	fl.BoolVar(&f.json, "json", false, "print JSON")
	fl.StringVar(&f.lookback, "lookback", "", "a lookback service's address, http://HOST:PORT, which resets through its API and audits it")
	fl.StringVar(&f.token, "token", "", "with --lookback: an operator's bearer token")
	// What a reset moves is typed with it, like --execute: a variable set
	// for another command (EVENTKIT_GROUP for a relay, EVENTKIT_TOPIC for
	// tail) must not pick its group or narrow it, nor one left in a shell
	// pick its target.
	commandLineOnly(fl, "group", "partitions", "topic", "to-time", "to-offset", "shift-by", "to-earliest", "to-latest", "dry-run", "execute")
	oneOf(fl, "brokers", "lookback")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

// request turns the flags into a reset request, reporting every problem at
// once. A target counts as given when its flag was set, from the command
// line or the environment, so that --shift-by 0 is a target too.
func (f *offsetsResetFlags) request(cmd *cobra.Command) (replay.ResetRequest, error) {
	set := cmd.Flags().Changed
	req := replay.ResetRequest{Group: f.group, Topics: f.topics}
	var errs []error
	for _, p := range splitList(f.partitions) {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil {
			errs = append(errs, fmt.Errorf("--partitions %q: want partition numbers such as 0,1", f.partitions))
			break
		}
		req.Partitions = append(req.Partitions, int32(n))
	}
	if set("to-time") {
		t, err := time.Parse(time.RFC3339, f.toTime)
		if err != nil {
			errs = append(errs, fmt.Errorf("--to-time %q: want an RFC 3339 time such as 2024-05-01T10:00:00Z", f.toTime))
		}
		req.ToTime = &t
	}
	if set("to-offset") {
		req.ToOffset = &f.toOffset
	}
	if set("shift-by") {
		req.ShiftBy = &f.shiftBy
	}
	req.ToEarliest, req.ToLatest = f.toEarliest, f.toLatest
	if f.dryRun && f.execute {
		errs = append(errs, errors.New("--dry-run and --execute: want one"))
	}
	if err := req.Validate(); err != nil {
		errs = append(errs, err)
	}
	return req, errors.Join(errs...)
}

func (f *offsetsResetFlags) run(ctx context.Context, s *streams, req replay.ResetRequest) error {
	plan, err := f.reset(ctx, req)
	if err != nil {
		return err
	}
	if f.json {
		if plan.Rows == nil {
			plan.Rows = []replay.Move{}
		}
		b, err := json.Marshal(plan)
		if err != nil {
			return err
		}
		_, err = s.out.Write(append(b, '\n'))
		return err
	}
	return resetTable(s.out, plan)
}

// reset plans req and, with --execute, executes the plan: through the
// lookback service's API with --lookback, else on Kafka itself.
func (f *offsetsResetFlags) reset(ctx context.Context, req replay.ResetRequest) (replay.Plan, error) {
	if f.lookback != "" {
		api, err := newLookbackAPI(f.lookback, f.token)
		if err != nil {
			return replay.Plan{}, &exitCodeError{code: exitUsage, err: err}
		}
		body := struct {
			replay.ResetRequest
			DryRun bool `json:"dry_run"`
		}{req, !f.execute}
		plan := replay.Plan{Group: req.Group}
		err = api.do(ctx, http.MethodPost, "/api/v1/groups/"+url.PathEscape(req.Group)+"/offsets", body, http.StatusOK, &plan)
		return plan, err
	}
	cl, err := f.kafka.connect(ctx)
	if err != nil {
		return replay.Plan{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	plan, err := replay.PlanReset(ctx, adm, req)
	if err != nil || !f.execute {
		return plan, err
	}
	return replay.ExecuteReset(ctx, adm, plan)
}

func resetTable(w io.Writer, plan replay.Plan) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCURRENT\tNEW\tLAG BEFORE\tLAG AFTER")
	var before, after int64
	for _, m := range plan.Rows {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\n", m.Topic, m.Partition, orDash(m.Current), m.New, m.LagBefore, m.LagAfter)
		before += m.LagBefore
		after += m.LagAfter
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t\t%d\t%d\n", before, after)
	if err := tw.Flush(); err != nil {
		return err
	}
	if plan.Executed {
		_, err := fmt.Fprintf(w, "executed: group %s committed the new offsets\n", plan.Group)
		return err
	}
	_, err := fmt.Fprintln(w, "dry run: nothing changed; add --execute")
	return err
}
