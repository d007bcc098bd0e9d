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
