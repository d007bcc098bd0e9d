// Package benchkit holds what the programs under bench/ share.
package benchkit

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
)

// StartBroker runs this same program again with args, as the child that
// serves the benchmark's broker, and returns the address it prints in a
// line "ready ADDR". stop closes the child's standard input, which ends
// it, and waits for it.
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
