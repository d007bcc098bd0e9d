package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sync"
	"testing"
)

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// eventkitBinary returns the path of the eventkit command built from this
// package, building it the first time a test asks. Tests run the real binary
// as a supervisor would, so that exit statuses, signals and stderr are the
// ones operators see. Under -race the binary has the race detector too: a
// race in a child makes it fail the test that started it.
func eventkitBinary(tb testing.TB) string {
	tb.Helper()
	binaryOnce.Do(func() { binaryPath, binaryErr = buildBinary() })
	if binaryErr != nil {
		tb.Fatalf("build eventkit: %v", binaryErr)
	}
	return binaryPath
}

// buildBinary builds into a folder of the temp dir named after this source
// tree and the race setting, and renames the result into place, so that
// test runs reuse one file instead of leaving one each, and runs in
// parallel never see a half-written binary.
func buildBinary() (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", err
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	race := raceEnabled()
	sum := sha256.Sum256(fmt.Appendf(nil, "%s race=%v", wd, race))
	dir := filepath.Join(os.TempDir(), "eventkit-test-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, "eventkit-*.tmp")
	if err != nil {
		return "", err
	}
	_ = tmp.Close()
	defer os.Remove(tmp.Name()) // a no-op once renamed

	args := []string{"build", "-o", tmp.Name()}
	if race {
		args = append(args, "-race")
	}
	out, err := exec.Command(goTool, append(args, ".")...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v\n%s", err, out)
	}
	path := filepath.Join(dir, "eventkit")
	return path, os.Rename(tmp.Name(), path)
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}
