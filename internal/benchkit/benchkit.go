// Package benchkit holds what the programs under bench/ share: a broker in
// a child process of the same binary, and medians.
package benchkit

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// ServeBroker is the child's side: it prints "ready ADDR" for the broker
// at addr and returns once the parent closes stdin (or dies).
func ServeBroker(addr string) {
	os.Stdout.WriteString("ready " + addr + "\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// StartBroker runs this binary with args, which make it call ServeBroker,
// and returns the broker's address once the child is ready; stop closes
// the child's stdin and waits for it to exit. A broker in a process of its
// own keeps its garbage out of the measured process.
func StartBroker(args ...string) (addr string, stop func(), err error) {
	cmd := exec.Command(os.Args[0], args...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop = func() { stdin.Close(); _ = cmd.Wait() }
	s := bufio.NewScanner(stdout)
	for s.Scan() {
		if a, ok := strings.CutPrefix(s.Text(), "ready "); ok {
			return a, stop, nil
		}
	}
	stop()
	return "", nil, errors.New("broker child exited before it was ready")
}

// Median returns the median of xs, 0 for none.
func Median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}
