package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/replay"
	"github.com/twmb/franz-go/pkg/kadm"
	"golang.org/x/sync/errgroup"
)

// groupJSON is a consumer group as GET /api/v1/groups lists it.
type groupJSON struct {
	Group   string `json:"group"`
	State   string `json:"state"`
	Members int    `json:"members"`
	// Lag is the records the group has yet to read, over every partition
	// it committed on.
	Lag int64 `json:"lag"`
}

// partitionLagJSON is one row of GET /api/v1/groups/{group}.
type partitionLagJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
}

type groupDetailJSON struct {
	groupJSON
	Partitions []partitionLagJSON `json:"partitions"`
}

// groups describes the named groups, or every group when none is named.
func groups(ctx context.Context, adm *kadm.Client, only ...string) ([]groupJSON, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	names := listed.Groups()
	if len(only) > 0 {
		names = slices.DeleteFunc(only, func(g string) bool { _, ok := listed[g]; return !ok })
	}
	slices.Sort(names)
	var described kadm.DescribedGroups
	if len(names) > 0 {
		// Partly answered is still useful: a group not described shows no
		// members.
		described, _ = adm.DescribeGroups(ctx, names...)
	}
	out := make([]groupJSON, len(names))
	// Each group's lag is two requests (its committed offsets, the end
	// offsets of its topics): asked a few groups at a time, a cluster of
	// many groups answers in a few round trips rather than two per group.
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(8)
	for i, g := range names {
		gj := groupJSON{Group: g, State: listed[g].State}
		if d, ok := described[g]; ok && d.Err == nil {
			gj.Members = len(d.Members)
		}
		out[i] = gj
		eg.Go(func() error {
			gj := &out[i]
			if gj.Members == 0 && gj.State != "" && gj.State != "Empty" && gj.State != "Dead" {
				// A KIP-848 group answers only the new protocol's describe.
				if d, err := adm.DescribeConsumerGroups(ectx, g); err == nil && d[g].Err == nil {
					gj.Members = len(d[g].Members)
				}
			}
			lags, err := kafka.GroupLag(ectx, adm, g)
			if err != nil && !errors.Is(err, kafka.ErrUnknownGroup) { // gone since the listing
				return err
			}
			for _, l := range lags {
				gj.Lag += max(l.Lag, 0)
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// group describes one group and its lag per partition.
func group(ctx context.Context, adm *kadm.Client, name string) (groupDetailJSON, error) {
	lags, err := kafka.GroupLag(ctx, adm, name)
	if err != nil {
		return groupDetailJSON{}, err
	}
	gs, err := groups(ctx, adm, name)
	if err != nil {
		return groupDetailJSON{}, err
	}
	if len(gs) == 0 {
		return groupDetailJSON{}, fmt.Errorf("group %q: %w", name, kafka.ErrUnknownGroup)
	}
	out := groupDetailJSON{groupJSON: gs[0], Partitions: make([]partitionLagJSON, len(lags))}
	for i, l := range lags {
		out.Partitions[i] = partitionLagJSON(l)
	}
	return out, nil
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) error {
	gs, err := groups(r.Context(), s.cfg.replays.admin)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Groups []groupJSON `json:"groups"`
	}{gs})
	return nil
}

func (s *Server) getGroup(w http.ResponseWriter, r *http.Request) error {
	g, err := group(r.Context(), s.cfg.replays.admin, r.PathValue("group"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

// resetBody is the body of POST /api/v1/groups/{group}/offsets.
type resetBody struct {
	replay.ResetRequest
	DryRun bool `json:"dry_run"`
}

// maxAuditRows bounds the plan an audit entry keeps: a reset of a topic
// with thousands of partitions is recorded by its counts past that.
const maxAuditRows = 100

// reset plans req and, unless dryRun, executes the plan; the audit entry
// gets the request, the plan and the outcome.
func (s *Server) reset(r *http.Request, req replay.ResetRequest, dryRun bool) (replay.Plan, error) {
	noteAudit(r, "group", req.Group)
	noteAudit(r, "request", req)
	noteAudit(r, "dry_run", dryRun)
	plan, err := replay.PlanReset(r.Context(), s.cfg.replays.admin, req)
	if err != nil {
		return plan, err
	}
	if !dryRun {
		if plan, err = replay.ExecuteReset(r.Context(), s.cfg.replays.admin, plan); err != nil {
			return plan, err
		}
	}
	notePlan(r, plan)
	return plan, nil
}

func notePlan(r *http.Request, plan replay.Plan) {
	noteAudit(r, "executed", plan.Executed)
	noteAudit(r, "partitions", len(plan.Rows))
	var before, after int64
	for _, m := range plan.Rows {
		before, after = before+m.LagBefore, after+m.LagAfter
	}
	noteAudit(r, "lag_before", before)
	noteAudit(r, "lag_after", after)
	noteAudit(r, "plan", plan.Rows[:min(len(plan.Rows), maxAuditRows)])
}

func (s *Server) resetOffsets(w http.ResponseWriter, r *http.Request) error {
	var b resetBody
	if err := decodeBody(r.Body, &b); err != nil {
		return err
	}
	b.Group = r.PathValue("group")
	plan, err := s.reset(r, b.ResetRequest, b.DryRun)
	if err != nil {
		return err
	}
	if plan.Rows == nil {
		plan.Rows = []replay.Move{}
	}
	writeJSON(w, http.StatusOK, plan)
	return nil
}

// The Groups pages: every group with its lag, and a page per group with its
// lag per partition and an offset reset that shows its plan before it can
// be executed.

func (s *Server) uiGroups(w http.ResponseWriter, r *http.Request) error {
	gs, err := groups(r.Context(), s.cfg.replays.admin)
	if err != nil {
		return err
	}
	return s.ui.render(w, r, http.StatusOK, "groups", page{Title: "Consumer groups", Nav: "groups", Body: gs})
}

type groupBody struct {
	Group    groupDetailJSON
	Operator bool
	Form     url.Values
	// Plan is the reset's plan: a dry run to confirm, or what was executed.
	Plan *replay.Plan
	// Seen is the dry run's plan as the page shows it, sent back with
	// Execute: a plan that changed meanwhile is shown again, not executed.
	Seen string
}

func (s *Server) renderGroup(w http.ResponseWriter, r *http.Request, status int, b groupBody, msg string) error {
	g, err := group(r.Context(), s.cfg.replays.admin, r.PathValue("group"))
	if err != nil {
		return err
	}
	b.Group, b.Operator = g, isOperator(r)
	if b.Form == nil {
		b.Form = url.Values{}
	}
	return s.ui.render(w, r, status, "group", page{Title: "Group " + g.Group, Nav: "groups", Error: msg, Body: b})
}

func (s *Server) uiGroup(w http.ResponseWriter, r *http.Request) error {
	return s.renderGroup(w, r, http.StatusOK, groupBody{}, "")
}

// resetOfForm reads the offset reset form: "to" names the target, "value"
// its time, offset or shift, "topics" a comma-separated list.
func resetOfForm(group string, form url.Values) (replay.ResetRequest, error) {
	req := replay.ResetRequest{Group: group}
	for _, t := range strings.Split(form.Get("topics"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			req.Topics = append(req.Topics, t)
		}
	}
	value := strings.TrimSpace(form.Get("value"))
	number := func(what string) (*int64, error) {
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return nil, badRequest("%s %q: want a whole number", what, value)
		}
		return &n, nil
	}
	var err error
	switch form.Get("to") {
	case "time":
		t, perr := time.Parse(time.RFC3339Nano, value)
		if perr != nil {
			return req, badRequest("time %q: want RFC 3339, such as 2006-01-02T15:04:05Z", value)
		}
		req.ToTime = &t
	case "offset":
		req.ToOffset, err = number("offset")
	case "shift":
		req.ShiftBy, err = number("shift")
	case "earliest":
		req.ToEarliest = true
	case "latest":
		req.ToLatest = true
	default:
		return req, badRequest("reset to %q: want time, offset, shift, earliest or latest", form.Get("to"))
	}
	return req, err
}

func (s *Server) uiResetOffsets(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	b := groupBody{Form: r.PostForm}
	// A refused reset shows the group page again, the form filled in and
	// the reason on top.
	refused := func(err error) error {
		if err = classify(err); statusOf(err) < 500 {
			return s.renderGroup(w, r, statusOf(err), b, err.Error())
		}
		return err
	}
	req, err := resetOfForm(r.PathValue("group"), r.PostForm)
	if err != nil {
		return refused(err)
	}
	execute := r.PostForm.Get("action") == "execute"
	if execute && r.PostForm.Get("confirm") != "yes" {
		return refused(badRequest("tick the confirmation to execute the reset"))
	}
	if execute {
		// Plan again: the offsets may have moved since the dry run. The
		// plan executes only while it is the one the operator saw.
		plan, err := s.reset(r, req, true)
		if err != nil {
			return refused(err)
		}
		if seen := seenOf(plan); seen != r.PostForm.Get("seen") {
			b.Plan, b.Seen = &plan, seen
			return refused(fmt.Errorf("%w: the plan changed since the dry run: check it and execute again", ErrConflict))
		}
	}
	plan, err := s.reset(r, req, !execute)
	if err != nil {
		return refused(err)
	}
	b.Plan, b.Seen = &plan, seenOf(plan)
	return s.renderGroup(w, r, http.StatusOK, b, "")
}

func seenOf(p replay.Plan) string {
	b, _ := json.Marshal(p.Rows)
	return string(b)
}
