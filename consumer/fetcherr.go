package consumer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// fetchErrorEvery is how often one partition's repeating fetch error is
// logged again.
const fetchErrorEvery = time.Minute

// fetchErrors logs the poll loop's fetch errors: each error of a partition
// once, then again at most every fetchErrorEvery with how often it came
// meanwhile. A partition that fails every fetch (its topic deleted, its
// leader gone) would otherwise log a line a poll, thousands a second. Only
// the poll loop uses it.
type fetchErrors struct {
	log  *slog.Logger
	now  func() time.Time
	seen map[fetchErrorKey]*fetchErrorSeen
}

type fetchErrorKey struct {
	topic     string
	partition int32
	err       string
}

type fetchErrorSeen struct {
	logged   time.Time
	repeated int // since it was logged
}

func (f *fetchErrors) report(topic string, partition int32, err error) {
	now := f.now()
	if f.seen == nil {
		f.seen = make(map[fetchErrorKey]*fetchErrorSeen)
	}
	k := fetchErrorKey{topic, partition, err.Error()}
	s := f.seen[k]
	if s != nil && now.Sub(s.logged) < fetchErrorEvery {
		s.repeated++
		return
	}
	attrs := []any{"topic", topic, "partition", partition, "error", err}
	if s != nil {
		attrs = append(attrs, "repeated", s.repeated)
	}
	f.log.Warn("fetch error", attrs...)
	if len(f.seen) > 1000 { // errors long gone are forgotten
		for k, s := range f.seen {
			if now.Sub(s.logged) >= fetchErrorEvery {
				delete(f.seen, k)
			}
		}
	}
	f.seen[k] = &fetchErrorSeen{logged: now}
}

// Bounds of the poll loop's wait after a poll that brought fetch errors
// and no record: the wait doubles from the first to the last while such
// polls go on. The last bounds how late a healthy partition's records wait
// behind a failing one, as FetchMaxWait bounds it on a quiet topic.
const (
	fetchRetryFirst = 10 * time.Millisecond
	fetchRetryLast  = 500 * time.Millisecond
)

// fetchBackoff is the poll loop's wait after polls that failed: franz-go
// answers a poll at once with the errors of a partition that fails every
// fetch, and polling again at once would keep a core busy doing that.
type fetchBackoff struct{ d time.Duration }

// after a poll that brought errors errs and records recs, wait until the
// next, or until ctx ends; it reports false when ctx ended.
func (b *fetchBackoff) after(ctx context.Context, errs, recs int) bool {
	if errs == 0 || recs > 0 {
		b.d = 0
		return true
	}
	b.d = min(max(2*b.d, fetchRetryFirst), fetchRetryLast)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// topicGoneAfter is how long every fetch of a topic must fail with
// UNKNOWN_TOPIC_ID before the agent takes the topic for deleted: brokers
// answer so for a moment while a new topic's metadata spreads, too.
var topicGoneAfter = 10 * time.Second

// goneTopics finds topics that were deleted, or deleted and created
// again. franz-go keeps consuming a topic by the id it first saw, and every
// fetch of it fails with UNKNOWN_TOPIC_ID from then on: the agent would
// never consume the topic again, not even once it is created anew. Only
// the poll loop uses it.
type goneTopics struct {
	after time.Duration
	now   func() time.Time
	since map[string]time.Time // first failure of each topic failing since
	seen  map[string]bool      // topics that failed in the current poll
}

// failed notes a fetch error of topic in the current poll.
func (g *goneTopics) failed(topic string, err error) {
	if !errors.Is(err, kerr.UnknownTopicID) {
		return
	}
	if g.seen == nil {
		g.seen, g.since = make(map[string]bool), make(map[string]time.Time)
	}
	g.seen[topic] = true
}

// healthy notes that topic brought records in the current poll: it is not
// gone, whatever failed before.
func (g *goneTopics) healthy(topic string) {
	if len(g.since) > 0 {
		delete(g.since, topic)
	}
}

// due ends the current poll: it returns the topics whose fetches have
// failed so, with no record in between, for longer than after.
func (g *goneTopics) due() []string {
	if len(g.seen) == 0 {
		return nil
	}
	now := g.now()
	var out []string
	for topic := range g.seen {
		first, ok := g.since[topic]
		switch {
		case !ok:
			g.since[topic] = now
		case now.Sub(first) >= g.after:
			out = append(out, topic)
			delete(g.since, topic)
		}
	}
	clear(g.seen)
	return out
}
