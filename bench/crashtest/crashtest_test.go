package main_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit/internal/pgtest"
	"github.com/eventkit/eventkit/internal/testkit"
)

// TestCrashHarness runs the harness at a size that fits a test run: every
// event's side effect exactly once, through three kill -9s, on each store.
func TestCrashHarness(t *testing.T) {
	bin := testkit.Build(t, "github.com/eventkit/eventkit/bench/crashtest")
	for _, store := range []string{"sqlite", "postgres"} {
		t.Run(store, func(t *testing.T) {
			if _, err := pgtest.BinDir(); store == "postgres" && err != nil && os.Getenv("CI") != "true" {
				t.Skip(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			var out testkit.Buffer
			cmd := exec.CommandContext(ctx, bin, "-events", "5000", "-kills", "3", "-stores", store, "-timeout", "5m")
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("crashtest: %v\n%s", err, out.String())
			}
			if !strings.Contains(out.String(), "crashtest "+store+": ok") {
				t.Fatalf("crashtest did not report ok:\n%s", out.String())
			}
			t.Log("\n" + out.String())
		})
	}
}
