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

// topicFailGap ends a topic's run of failures: a topic that has not failed
// for that long has failed by chance, not for good. It is well above the
// poll loop's longest wait after failed polls (fetchRetryLast).
const topicFailGap = 4 * fetchRetryLast

// goneTopics finds topics that were deleted, or deleted and created
// again. franz-go keeps consuming a topic by the id it first saw, and every
// fetch of it fails with UNKNOWN_TOPIC_ID from then on: the agent would
// never consume the topic again, not even once it is created anew. Only
// the poll loop uses it.
type goneTopics struct {
	after time.Duration
	now   func() time.Time
	runs  map[string]failRun // topics failing now
}

// failRun is a topic's run of failed fetches, none more than topicFailGap
// after the one before.
type failRun struct{ first, last time.Time }

// failed notes a fetch error of topic.
func (g *goneTopics) failed(topic string, err error) {
	if !errors.Is(err, kerr.UnknownTopicID) {
		return
	}
	now := g.now()
	r, ok := g.runs[topic]
	if !ok || now.Sub(r.last) > topicFailGap { // a new run
		r.first = now
	}
	r.last = now
	if g.runs == nil {
		g.runs = make(map[string]failRun)
	}
	g.runs[topic] = r
}

// healthy notes that topic brought records: it is not gone, whatever
// failed before.
func (g *goneTopics) healthy(topic string) { delete(g.runs, topic) }

// due returns the topics whose fetches have failed so for at least after,
// and forgets the runs of failures that ended short of that (the topic
// failed by chance).
func (g *goneTopics) due() (gone []string) {
	if len(g.runs) == 0 {
		return nil
	}
	now := g.now()
	for topic, r := range g.runs {
		switch {
		case now.Sub(r.last) > topicFailGap:
			delete(g.runs, topic)
		case r.last.Sub(r.first) >= g.after:
			gone = append(gone, topic)
			delete(g.runs, topic)
		}
	}
	return gone
}
