package replay

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrGroupActive is matched (errors.Is) by the error [PlanReset] and
// [ExecuteReset] return while the group has members: Kafka only lets an
// empty group's offsets be moved, since a member would overwrite them with
// its next commit.
var ErrGroupActive = errors.New("group has active members")

// ErrInvalidReset is matched (errors.Is) by the error for a request that
// cannot be planned as given: no target or more than one, a negative offset,
// no topics to reset.
var ErrInvalidReset = errors.New("invalid offset reset")

// ErrPlanStale is matched (errors.Is) by the error [ExecuteReset] returns
// when the group's committed offsets moved since the plan was made: the
// plan's new offsets were computed from the old ones, so it is refused
// rather than applied; plan again.
var ErrPlanStale = errors.New("committed offsets changed since the plan")

// ResetRequest says where to move a consumer group's committed offsets. It
// names exactly one target: ToTime, ToOffset, ShiftBy, ToEarliest or
// ToLatest. Its JSON form is the body of lookback's
// POST /api/v1/groups/{group}/offsets, the group coming from the path.
type ResetRequest struct {
	Group string `json:"-"`
	// Topics to reset. Default: every topic the group has committed
	// offsets on.
	Topics []string `json:"topics,omitempty"`
	// Partitions to reset in each topic. Default: all of them.
	Partitions []int32 `json:"partitions,omitempty"`

	// ToTime moves to the first record at or after the time (the end of
	// the partition when there is none).
	ToTime *time.Time `json:"to_time,omitempty"`
	// ToOffset moves to the offset, clamped to the partition's start and
	// end.
	ToOffset *int64 `json:"to_offset,omitempty"`
	// ShiftBy moves by N records (negative: back) from the committed
	// offset, or from the start of the partition where the group never
	// committed; clamped to the partition's start and end.
	ShiftBy *int64 `json:"shift_by,omitempty"`
	// ToEarliest moves to the start of each partition: everything that
	// is kept is read again.
	ToEarliest bool `json:"to_earliest,omitempty"`
	// ToLatest moves to the end of each partition: everything not yet
	// read is skipped.
	ToLatest bool `json:"to_latest,omitempty"`
}

// Validate reports every problem with the request that needs no broker to
// find, matching [ErrInvalidReset].
func (r ResetRequest) Validate() error {
	var problems []string
	if r.Group == "" {
		problems = append(problems, "no group")
	}
	targets := r.targets()
	switch len(targets) {
	case 0:
		problems = append(problems, "no target: want one of to-time, to-offset, shift-by, to-earliest, to-latest")
	case 1:
	default:
		problems = append(problems, "more than one target ("+strings.Join(targets, ", ")+"): want exactly one")
	}
	if r.ToOffset != nil && *r.ToOffset < 0 {
		problems = append(problems, fmt.Sprintf("to-offset %d: want 0 or more", *r.ToOffset))
	}
	if slices.Contains(r.Topics, "") {
		problems = append(problems, "empty topic name")
	}
	for _, p := range r.Partitions {
		if p < 0 {
			problems = append(problems, fmt.Sprintf("partition %d: want 0 or more", p))
		}
	}
	if len(problems) > 0 {
		return &matchErr{strings.Join(problems, "; "), ErrInvalidReset}
	}
	return nil
}

func (r ResetRequest) targets() []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	add(r.ToTime != nil, "to-time")
	add(r.ToOffset != nil, "to-offset")
	add(r.ShiftBy != nil, "shift-by")
	add(r.ToEarliest, "to-earliest")
	add(r.ToLatest, "to-latest")
	return out
}

// Plan is what an offset reset does, partition by partition. Its JSON form is
// the answer of lookback's POST /api/v1/groups/{group}/offsets.
type Plan struct {
	Group    string `json:"-"`
	Executed bool   `json:"executed"`
	Rows     []Move `json:"plan"`
}

// Move is one partition's part of a [Plan].
type Move struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Current is the committed offset, -1 where the group never committed.
	Current int64 `json:"current"`
	New     int64 `json:"new"`
	// LagBefore and LagAfter count the records the group has yet to read
	// at Current (from the start where it never committed) and at New.
	LagBefore int64 `json:"lag_before"`
	LagAfter  int64 `json:"lag_after"`
}

// PlanReset works out where req moves each partition, without changing
// anything. It fails matching [ErrGroupActive] while the group has members,
// [kafka.ErrUnknownGroup] for a group the cluster does not know when req
// names no topics, kerr.UnknownTopicOrPartition for a topic or partition
// that does not exist, and [ErrInvalidReset] for a request that does not
// validate.
//
// A group the cluster does not know, with its topics named, is planned as
// one that never committed (every Current -1), as Kafka's own tool does:
// executing the plan sets a new group's starting offsets before its first
// agent starts.
func PlanReset(ctx context.Context, adm *kadm.Client, req ResetRequest) (Plan, error) {
	if err := req.Validate(); err != nil {
		return Plan{}, err
	}
	committed, err := emptyGroupOffsets(ctx, adm, req.Group)
	if errors.Is(err, kafka.ErrUnknownGroup) && len(req.Topics) > 0 {
		committed, err = nil, nil
	}
	if err != nil {
		if errors.Is(err, kafka.ErrUnknownGroup) {
			err = fmt.Errorf("%w; name its topics to set a new group's offsets", err)
		}
		return Plan{}, err
	}
	topics := req.Topics
	if len(topics) == 0 {
		topics = committed.Partitions().Topics()
		if len(topics) == 0 {
			return Plan{}, &matchErr{fmt.Sprintf("group %q has no committed offsets: name the topics to reset", req.Group), ErrInvalidReset}
		}
	}
	topics = slices.Compact(slices.Sorted(slices.Values(topics)))

	starts, ends, err := bounds(ctx, adm, topics)
	if err != nil {
		return Plan{}, err
	}
	var atTime kadm.ListedOffsets
	if req.ToTime != nil {
		// Kafka reads a negative time as a named offset (-1 latest, -2
		// earliest); every record comes after a time before 1970. Record
		// times are whole milliseconds: the first at or after a time within
		// one is at the next.
		ms := req.ToTime.UnixMilli()
		if req.ToTime.After(time.UnixMilli(ms)) {
			ms++
		}
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, max(ms, 0), topics...); err != nil {
			return Plan{}, fmt.Errorf("list offsets at %s: %w", req.ToTime.Format(time.RFC3339), err)
		}
	}

	plan := Plan{Group: req.Group}
	for _, t := range topics {
		parts, err := partitions(t, ends[t], req.Partitions)
		if err != nil {
			return Plan{}, err
		}
		for _, p := range parts {
			start, end := starts[t][p].Offset, ends[t][p].Offset
			m := Move{Topic: t, Partition: p, Current: -1}
			if o, ok := committed.Lookup(t, p); ok && o.At >= 0 {
				m.Current = o.At
			}
			switch {
			case req.ToTime != nil:
				lo, ok := atTime.Lookup(t, p)
				if !ok || lo.Err != nil {
					return Plan{}, fmt.Errorf("offset of %s/%d at %s: %w", t, p, req.ToTime.Format(time.RFC3339), cmp.Or[error](lo.Err, kerr.UnknownTopicOrPartition))
				}
				m.New = lo.Offset
			case req.ToOffset != nil:
				m.New = *req.ToOffset
			case req.ShiftBy != nil:
				from := m.Current
				if from < 0 {
					from = start
				}
				m.New = from + *req.ShiftBy
				switch { // a shift past the int64 range still lands on an end
				case *req.ShiftBy > 0 && m.New < from:
					m.New = end
				case *req.ShiftBy < 0 && m.New > from:
					m.New = start
				}
			case req.ToEarliest:
				m.New = start
			case req.ToLatest:
				m.New = end
			}
			m.New = min(max(m.New, start), end)
			m.LagBefore = lagAt(m.Current, start, end)
			m.LagAfter = lagAt(m.New, start, end)
			plan.Rows = append(plan.Rows, m)
		}
	}
	return plan, nil
}

// ExecuteReset commits the plan's new offsets and returns it marked
// executed. It checks again that the group is empty ([ErrGroupActive]) and
// that its committed offsets are still the plan's ([ErrPlanStale]), since
// either may have changed since the plan was made.
func ExecuteReset(ctx context.Context, adm *kadm.Client, plan Plan) (Plan, error) {
	if plan.Group == "" {
		return plan, &matchErr{"plan names no group", ErrInvalidReset}
	}
	committed, err := emptyGroupOffsets(ctx, adm, plan.Group)
	if errors.Is(err, kafka.ErrUnknownGroup) {
		// Still new: the plan's rows must all say so (checked below),
		// and the commit creates the group.
		committed, err = nil, nil
	}
	if err != nil {
		return plan, err
	}
	offsets := make(kadm.Offsets)
	for _, m := range plan.Rows {
		now := int64(-1)
		if o, ok := committed.Lookup(m.Topic, m.Partition); ok && o.At >= 0 {
			now = o.At
		}
		if now != m.Current {
			return plan, fmt.Errorf("group %q, %s/%d: committed %d, plan made at %d: %w", plan.Group, m.Topic, m.Partition, now, m.Current, ErrPlanStale)
		}
		offsets.Add(kadm.Offset{Topic: m.Topic, Partition: m.Partition, At: m.New, LeaderEpoch: -1})
	}
	if err := adm.CommitAllOffsets(ctx, plan.Group, offsets); err != nil {
		return plan, fmt.Errorf("group %q: commit offsets: %w", plan.Group, err)
	}
	plan.Executed = true
	return plan, nil
}

// emptyGroupOffsets returns the committed offsets of group, failing
// unless it exists and has no members.
func emptyGroupOffsets(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	if err := ensureEmpty(ctx, adm, group); err != nil {
		return nil, err
	}
	return fetchCommitted(ctx, adm, group)
}

// ensureEmpty fails unless the group exists and has no members, whichever
// protocol it speaks: classic groups answer DescribeGroups, KIP-848 groups
// ConsumerGroupDescribe.
func ensureEmpty(ctx context.Context, adm *kadm.Client, group string) error {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("group %q: list groups: %w", group, err)
	}
	lg, ok := listed[group]
	if !ok {
		return fmt.Errorf("group %q: %w", group, kafka.ErrUnknownGroup)
	}
	members := 0
	if d, err := adm.DescribeGroups(ctx, group); err == nil && d[group].Err == nil {
		members = len(d[group].Members)
	}
	if members == 0 && lg.State != "Empty" && lg.State != "Dead" {
		// A KIP-848 group, or a broker that does not describe it as
		// classic: ask the new protocol. Brokers before Kafka 4.0 do not
		// know it; their answer is the classic one above.
		if d, err := adm.DescribeConsumerGroups(ctx, group); err == nil && d[group].Err == nil {
			members = len(d[group].Members)
		}
	}
	// Kafka 2.6+ names the state; an active group with members we could
	// not count is still active.
	if members == 0 && (lg.State == "" || lg.State == "Empty" || lg.State == "Dead") {
		return nil
	}
	who := "members"
	switch members {
	case 0:
		who = "members (state " + lg.State + ")"
	case 1:
		who = "1 active member"
	default:
		who = fmt.Sprintf("%d active members", members)
	}
	return &matchErr{fmt.Sprintf("group %q has %s; Kafka only resets the offsets of an empty group: stop its consumers first", group, who), ErrGroupActive}
}

func fetchCommitted(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("group %q: %w", group, kafka.ErrUnknownGroup)
	}
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("group %q: fetch offsets: %w", group, err)
	}
	return committed, nil
}

// bounds lists the start and end offset of every partition of topics,
// failing for a topic that does not exist.
func bounds(ctx context.Context, adm *kadm.Client, topics []string) (starts, ends kadm.ListedOffsets, err error) {
	if starts, err = adm.ListStartOffsets(ctx, topics...); err != nil {
		return nil, nil, fmt.Errorf("list start offsets: %w", err)
	}
	if ends, err = adm.ListEndOffsets(ctx, topics...); err != nil {
		return nil, nil, fmt.Errorf("list end offsets: %w", err)
	}
	for _, lo := range []kadm.ListedOffsets{starts, ends} {
		if err := lo.Error(); err != nil {
			var missing []string
			lo.Each(func(o kadm.ListedOffset) {
				if errors.Is(o.Err, kerr.UnknownTopicOrPartition) && !slices.Contains(missing, o.Topic) {
					missing = append(missing, o.Topic)
				}
			})
			if len(missing) > 0 {
				slices.Sort(missing)
				return nil, nil, &matchErr{"topic " + strings.Join(missing, ", ") + " does not exist", kerr.UnknownTopicOrPartition}
			}
			return nil, nil, fmt.Errorf("list offsets: %w", err)
		}
	}
	return starts, ends, nil
}

// partitions returns the partitions of topic to reset: want, or every one
// the topic has when want is empty.
func partitions(topic string, listed map[int32]kadm.ListedOffset, want []int32) ([]int32, error) {
	if len(listed) == 0 {
		return nil, &matchErr{"topic " + topic + " does not exist", kerr.UnknownTopicOrPartition}
	}
	if len(want) == 0 {
		out := make([]int32, 0, len(listed))
		for p := range listed {
			out = append(out, p)
		}
		slices.Sort(out)
		return out, nil
	}
	out := slices.Compact(slices.Sorted(slices.Values(want)))
	for _, p := range out {
		if _, ok := listed[p]; !ok {
			return nil, &matchErr{fmt.Sprintf("topic %s has no partition %d (it has %d)", topic, p, len(listed)), kerr.UnknownTopicOrPartition}
		}
	}
	return out, nil
}

// lagAt counts the records a group at offset (-1: never committed, so from
// the start) has yet to read.
func lagAt(offset, start, end int64) int64 {
	if offset < 0 {
		offset = start
	}
	return max(end-offset, 0)
}

// matchErr says what went wrong in its own words and matches (errors.Is) a
// sentinel whose text would only repeat them.
type matchErr struct {
	msg string
	is  error
}

func (e *matchErr) Error() string        { return e.msg }
func (e *matchErr) Is(target error) bool { return target == e.is }
