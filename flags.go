package eventkit

import "errors"

// Flag is what a handler's error asks the agent to do with the event.
type Flag int

const (
	// FlagNone is success: the event is done and its offset may be committed.
	FlagNone Flag = iota
	// FlagWarn logs and counts the error, then treats the event as done.
	FlagWarn
	// FlagRetry hands the same event back after a backoff, and halts the
	// partition (or the agent) once the retry limit is passed.
	FlagRetry
	// FlagKill stops consuming and shuts the application down, committing
	// only what was done before the killed event.
	FlagKill
)

// String returns the flag's lower-case name, as used in logs, metrics and
// the relay's Eventkit-Flag header.
func (f Flag) String() string {
	switch f {
	case FlagNone:
		return "none"
	case FlagWarn:
		return "warn"
	case FlagRetry:
		return "retry"
	case FlagKill:
		return "kill"
	}
	return "unknown"
}

// ParseFlag reads a flag name as written by [Flag.String], ignoring case.
// It reports false for anything else.
func ParseFlag(s string) (Flag, bool) {
	switch {
	case equalFold(s, "none"):
		return FlagNone, true
	case equalFold(s, "warn"):
		return FlagWarn, true
	case equalFold(s, "retry"):
		return FlagRetry, true
	case equalFold(s, "kill"):
		return FlagKill, true
	}
	return FlagRetry, false
}

// equalFold is strings.EqualFold for ASCII, kept here so that the hot path of
// the relay does not need to allocate.
func equalFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// flagged carries a flag on an error without changing its message.
type flagged struct {
	err  error
	flag Flag
}

func (f *flagged) Error() string { return f.err.Error() }
func (f *flagged) Unwrap() error { return f.err }

func withFlag(err error, f Flag) error {
	if err == nil {
		return nil
	}
	return &flagged{err: err, flag: f}
}

// Warn flags err as a warning: the agent logs it, counts it and moves on.
// Warn(nil) is nil, so a handler may write `return eventkit.Warn(do())`.
func Warn(err error) error { return withFlag(err, FlagWarn) }

// Retry flags err as transient: the agent hands the same event back after a
// backoff. Any error without a flag is treated the same way.
// Retry(nil) is nil.
func Retry(err error) error { return withFlag(err, FlagRetry) }

// Kill flags err as fatal: the agent stops and its Run returns an error that
// wraps err. Kill(nil) is nil.
func Kill(err error) error { return withFlag(err, FlagKill) }

// FlagOf reports the flag an error carries. The flag survives wrapping with
// fmt.Errorf("...: %w", err); when flags are nested, the outermost one wins.
// A nil error is [FlagNone] (success); an error without a flag is
// [FlagRetry], so that a forgotten flag never loses an event.
func FlagOf(err error) Flag {
	if err == nil {
		return FlagNone
	}
	var f *flagged
	if errors.As(err, &f) {
		return f.flag
	}
	return FlagRetry
}
