package benchkit

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// RawConsume is the base every consuming benchmark compares with: a
// franz-go group consumer that reads n records of topic from the start,
// decodes and stores nothing, and commits what it polled once a second, as
// an at-least-once consumer does. It is timed from its first record: a new
// group's join waits out the broker's initial rebalance delay, which is not
// consuming. The first poll's records were fetched before that, and one
// fetch of 8 MiB holds about 100k small compressed records: counted, they
// would make half of a 200k-record run free. So the rate is that of the
// records after the first poll, returned as the time n records take at it;
// a run with fewer records after the first poll than in it is refused.
// opts add client options (a fetch size).
func RawConsume(ctx context.Context, addr, topic, group string, n int, opts ...kgo.Opt) (time.Duration, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var (
		seen, first int
		start       time.Time
		lastCommit  = time.Now()
	)
	for seen < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("saw %d of %d records: %w", seen, n, err)
		}
		if start.IsZero() && !fs.Empty() {
			start, first = time.Now(), fs.NumRecords()
		}
		seen += fs.NumRecords()
		if time.Since(lastCommit) > time.Second {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				return 0, err
			}
			lastCommit = time.Now()
		}
	}
	took := time.Since(start)
	if rest := n - first; rest < first {
		return 0, fmt.Errorf("the first poll held %d of the %d records: too few after it to time, ask for more", first, n)
	}
	return time.Duration(float64(took) * float64(n) / float64(n-first)), cl.CommitUncommittedOffsets(ctx)
}
