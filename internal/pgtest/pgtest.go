package pgtest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// shared is the test binary's cluster: started by the first test that asks,
// stopped by Main at the end, or, without Main, when the last test using it
// finishes.
var shared struct {
	mu     sync.Mutex
	c      *Cluster
	err    error
	refs   int
	pinned bool
}

// Main runs the tests and stops the shared cluster afterwards; use it in
// TestMain so that every test of the binary shares one cluster:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.pinned = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.pinned = false
	if shared.c != nil {
		shared.c.Stop()
		shared.c = nil
	}
	return code
}

func acquire() (*Cluster, error) {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.c, shared.err = Start(ctx)
	}
	if shared.err != nil {
		return nil, shared.err
	}
	shared.refs++
	return shared.c, nil
}

func release() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	shared.refs--
	if shared.refs == 0 && !shared.pinned && shared.c != nil {
		shared.c.Stop()
		shared.c = nil
	}
}

// DSN returns the DSN of a fresh database on the shared cluster. Without
// PostgreSQL's binaries the test is skipped, except when CI=true: in CI no
// test may skip for a missing PostgreSQL, so it fails.
func DSN(tb testing.TB) string {
	tb.Helper()
	c, err := acquire()
	if err != nil {
		if errors.Is(err, ErrNotInstalled) && os.Getenv("CI") != "true" {
			tb.Skip(err)
		}
		tb.Fatal(err)
	}
	tb.Cleanup(release)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn, err := c.CreateDatabase(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return dsn
}
