package eventkit_test

import (
	"strings"
	"testing"

	"github.com/eventkit/eventkit"
)

func TestReplayTopic(t *testing.T) {
	tests := []struct{ group, want string }{
		{"reports", "eventkit.replay.reports"},
		{"team-a.reports", "eventkit.replay.team-a.reports"},
		{"a b/c_d", "eventkit.replay.a_20b_2fc_5fd"},
		{"é", "eventkit.replay._c3_a9"},
		{"a_b", "eventkit.replay.a_5fb"},
		{"a.5fb", "eventkit.replay.a_2e5fb"},
		{"billing.eu", "eventkit.replay.billing.eu"},
		{"billing.east", "eventkit.replay.billing_2eeast"},
	}
	for _, tt := range tests {
		if got := eventkit.ReplayTopic(tt.group); got != tt.want {
			t.Errorf("ReplayTopic(%q) = %q, want %q", tt.group, got, tt.want)
		}
	}
	long := eventkit.ReplayTopic(strings.Repeat("g", 300))
	if len(long) != 249 || long == eventkit.ReplayTopic(strings.Repeat("g", 301)) {
		t.Fatalf("long names: %d chars, distinct=%v", len(long), long != eventkit.ReplayTopic(strings.Repeat("g", 301)))
	}
}

// No two groups share a replay topic, nor two replay topics a name in
// Kafka's metrics, where '.' and '_' are the same: groups built from the
// characters that matter (escapes, dots before hex digits, lengths around
// the cut) map to names that stay apart with every '_' read as '.'.
func TestReplayTopicsNeverCollide(t *testing.T) {
	alphabet := []string{"a", "b", "f", "5", "7", "z", ".", "_", "-", " ", "\xff"}
	seen := map[string]string{}
	check := func(group string) {
		name := eventkit.ReplayTopic(group)
		if len(name) > 249 {
			t.Fatalf("group %q: %d characters", group, len(name))
		}
		metric := strings.ReplaceAll(name, "_", ".")
		if other, ok := seen[metric]; ok && other != group {
			t.Fatalf("groups %q and %q collide as %s", other, group, metric)
		}
		seen[metric] = group
	}
	var walk func(prefix string, n int)
	walk = func(prefix string, n int) {
		check(prefix)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			walk(prefix+c, n-1)
		}
	}
	walk("", 4)
	// Around the cut: a long group, and whole groups that spell a cut name.
	for l := 225; l < 240; l++ {
		for _, tail := range []string{"", "_", ".", ".7a", "z"} {
			check(strings.Repeat("a", l) + tail)
			check(strings.Repeat("_", l/3) + tail)
		}
	}
	long := strings.Repeat("a", 234)
	cut := strings.TrimPrefix(eventkit.ReplayTopic(long), eventkit.ReplayTopicPrefix)
	check(long)
	check(cut) // a group named as the cut topic of another
}
