package eventkit_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/eventkit/eventkit"
)

func TestFlagOf(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		name string
		err  error
		want eventkit.Flag
	}{
		{"nil is success", nil, eventkit.FlagNone},
		{"unflagged is retry", base, eventkit.FlagRetry},
		{"warn", eventkit.Warn(base), eventkit.FlagWarn},
		{"retry", eventkit.Retry(base), eventkit.FlagRetry},
		{"kill", eventkit.Kill(base), eventkit.FlagKill},
		{"wrapped warn", fmt.Errorf("save: %w", eventkit.Warn(base)), eventkit.FlagWarn},
		{"twice wrapped kill", fmt.Errorf("a: %w", fmt.Errorf("b: %w", eventkit.Kill(base))), eventkit.FlagKill},
		{"outermost wins", eventkit.Warn(eventkit.Kill(base)), eventkit.FlagWarn},
		{"joined", errors.Join(io.EOF, eventkit.Kill(base)), eventkit.FlagKill},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventkit.FlagOf(tt.err); got != tt.want {
				t.Fatalf("FlagOf = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFlagKeepsCause(t *testing.T) {
	err := fmt.Errorf("handle: %w", eventkit.Retry(io.ErrUnexpectedEOF))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal("flag hides the cause from errors.Is")
	}
	if err.Error() != "handle: unexpected EOF" {
		t.Fatalf("flag changed the message: %q", err)
	}
}

func TestFlagOfNil(t *testing.T) {
	for _, f := range []func(error) error{eventkit.Warn, eventkit.Retry, eventkit.Kill} {
		if f(nil) != nil {
			t.Fatal("flagging nil must stay nil")
		}
	}
}

func TestParseFlag(t *testing.T) {
	for in, want := range map[string]eventkit.Flag{"warn": eventkit.FlagWarn, "RETRY": eventkit.FlagRetry, "Kill": eventkit.FlagKill, "none": eventkit.FlagNone} {
		got, ok := eventkit.ParseFlag(in)
		if !ok || got != want {
			t.Errorf("ParseFlag(%q) = %v, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "warning", "kil", "retry "} {
		if _, ok := eventkit.ParseFlag(in); ok {
			t.Errorf("ParseFlag(%q) accepted", in)
		}
	}
}

func ExampleFlagOf() {
	err := fmt.Errorf("charge card: %w", eventkit.Warn(errors.New("card expired")))
	fmt.Println(eventkit.FlagOf(err), eventkit.FlagOf(errors.New("db down")), eventkit.FlagOf(nil))
	// Output: warn retry none
}
