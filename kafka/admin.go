package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// ErrUnknownGroup is matched (errors.Is) by the error [GroupLag] returns for
// a consumer group the cluster does not know.
var ErrUnknownGroup = errors.New("no such consumer group")

// EnsureTopic creates topic with the given number of partitions (0 or less:
// the broker's default) unless it exists. An existing topic is left as it
// is, whatever its partition count. The replication factor is the broker's
// default.
func EnsureTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32) error {
	if partitions <= 0 {
		partitions = -1
	}
	_, err := adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// PartitionCount returns how many partitions topic has. A topic that does
// not exist is an error matching kerr.UnknownTopicOrPartition.
func PartitionCount(ctx context.Context, adm *kadm.Client, topic string) (int32, error) {
	// Asking for authorized operations makes kadm send the metadata request
	// rather than answer from the client's cache, which may still hold a
	// topic created a moment ago as unknown.
	topics, err := adm.ListTopics(kadm.WithAuthorizedOps(ctx), topic)
	if err != nil {
		return 0, fmt.Errorf("describe topic %s: %w", topic, err)
	}
	td, ok := topics[topic]
	switch {
	case !ok:
		return 0, fmt.Errorf("topic %s: %w", topic, kerr.UnknownTopicOrPartition)
	case td.Err != nil:
		return 0, fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	return int32(len(td.Partitions)), nil
}

// PartitionLag is how far a consumer group is behind on one partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	// Committed is the group's committed offset: the next record it will
	// read. -1 when the group never committed on this partition.
	Committed int64
	// End is the partition's end offset (high watermark): the offset the
	// next record written gets. -1 when the topic (or the partition) no
	// longer exists; the group's commits on it still show.
	End int64
	// Lag is End minus Committed: the records the group has yet to
	// process. Where it never committed, the records from the start of the
	// partition (what a group that starts at the earliest offset reads).
	// -1 when the topic no longer exists.
	Lag int64
}

// GroupLag returns the group's lag on every partition of every topic it has
// committed offsets on, sorted by topic and partition. Partitions of those
// topics where it never committed are included with Committed -1, so that a
// partition nobody consumes does not hide. A group that does not exist is an
// error matching [ErrUnknownGroup]; one that exists without commits has no
// lag to show and returns an empty list.
func GroupLag(ctx context.Context, adm *kadm.Client, group string) ([]PartitionLag, error) {
	committed, err := adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil, fmt.Errorf("group %q: %w", group, ErrUnknownGroup)
	}
	if err != nil {
		return nil, fmt.Errorf("group %q: fetch offsets: %w", group, err)
	}
	if err := committed.Error(); err != nil {
		return nil, fmt.Errorf("group %q: fetch offsets: %w", group, err)
	}
	if len(committed) == 0 {
		// Kafka answers an offset fetch for an unknown group with nothing
		// rather than an error; only the group listing tells them apart.
		return nil, groupExists(ctx, adm, group)
	}

	topics := committed.Partitions().Topics()
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("group %q: list start offsets: %w", group, err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("group %q: list end offsets: %w", group, err)
	}

	var out []PartitionLag
	for _, t := range topics {
		// Every partition listed, and every one committed on, once each.
		parts := make(map[int32]bool)
		for p := range ends[t] {
			parts[p] = p >= 0 // kadm lists a topic that is gone as partition -1
		}
		for p := range committed[t] {
			parts[p] = true
		}
		for p, ok := range parts {
			if !ok {
				continue
			}
			pl := PartitionLag{Topic: t, Partition: p, Committed: -1, End: -1, Lag: -1}
			if o, ok := committed.Lookup(t, p); ok && o.At >= 0 {
				pl.Committed = o.At
			}
			end, listed := ends[t][p]
			switch {
			case listed && end.Err == nil:
				pl.End = end.Offset
				pl.Lag = lag(pl.Committed, starts[t][p], end.Offset)
			case listed && !errors.Is(end.Err, kerr.UnknownTopicOrPartition):
				return nil, fmt.Errorf("group %q: end offset of %s/%d: %w", group, t, p, end.Err)
			}
			out = append(out, pl)
		}
	}
	slices.SortFunc(out, func(a, b PartitionLag) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out, nil
}

// lag counts as kadm.CalculateGroupLagWithStartOffsets does: from the commit
// when there is one, else from the log start; never below zero (a commit can
// run ahead of a freshly truncated log).
func lag(committed int64, start kadm.ListedOffset, end int64) int64 {
	from := committed
	if from < 0 {
		from = 0
		if start.Err == nil && start.Offset > 0 {
			from = start.Offset
		}
	}
	return max(end-from, 0)
}

func groupExists(ctx context.Context, adm *kadm.Client, group string) error {
	groups, err := adm.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("group %q: list groups: %w", group, err)
	}
	if _, ok := groups[group]; !ok {
		return fmt.Errorf("group %q: %w", group, ErrUnknownGroup)
	}
	return nil
}
