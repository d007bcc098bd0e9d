package consumer

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestFetchErrorsLoggedOnceAMinute(t *testing.T) {
	var buf strings.Builder
	now := time.Unix(0, 0)
	f := fetchErrors{log: slog.New(slog.NewTextHandler(&buf, nil)), now: func() time.Time { return now }}
	gone := errors.New("UNKNOWN_TOPIC_ID")
	for range 1000 {
		f.report("orders", 0, gone)
	}
	f.report("orders", 1, gone)                // another partition: a line of its own
	f.report("orders", 0, errors.New("other")) // another error: a line of its own
	now = now.Add(fetchErrorEvery)
	f.report("orders", 0, gone)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[3], "repeated=999") {
		t.Errorf("the line a minute later does not say how often the error came: %s", lines[3])
	}
}
