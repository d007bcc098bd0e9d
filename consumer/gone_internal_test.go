package consumer

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Two brief UNKNOWN_TOPIC_ID answers an hour apart on a quiet topic (no
// record between, every other fetch fine) are no deleted topic: its fetches
// did not fail for topicGoneAfter.
func TestTransientUnknownTopicIDIsNoGoneTopic(t *testing.T) {
	now := time.Unix(0, 0)
	g := goneTopics{after: 10 * time.Second, now: func() time.Time { return now }}
	blip := fmt.Errorf("fetch: %w", kerr.UnknownTopicID)

	g.failed("orders", blip) // a moment while metadata spreads
	if out := g.due(); len(out) != 0 {
		t.Fatalf("gone after one failure: %v", out)
	}
	// An hour of successful, empty fetches: polls with no error.
	for range 3600 {
		now = now.Add(time.Second)
		if out := g.due(); len(out) != 0 {
			t.Fatalf("gone without failing: %v", out)
		}
	}
	g.failed("orders", blip) // another blip
	if out := g.due(); len(out) != 0 {
		t.Fatalf("topic taken for gone after two transient UNKNOWN_TOPIC_ID an hour apart: %v", out)
	}
}
