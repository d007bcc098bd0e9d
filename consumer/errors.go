package consumer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/eventkit/eventkit"
)

var (
	// ErrKilled is matched by the error Run returns after a handler flagged
	// an event with eventkit.Kill.
	ErrKilled = errors.New("killed")
	// ErrHalted is matched by the error Run returns after an event used up
	// its retries under the StopService halt policy.
	ErrHalted = errors.New("halted")
	// ErrNotHalted is returned by Resume and Skip when the partition is not
	// halted at the offset they name: the command is stale.
	ErrNotHalted = errors.New("partition is not halted at that offset")
	// ErrStopping is returned by Resume and Skip once the agent is stopping
	// (a halt under StopService stops it): the halted event is where the
	// group starts again, handled by the next run.
	ErrStopping = errors.New("the agent is stopping")
	// ErrStarted is returned by a second call to Run.
	ErrStarted = errors.New("consumer: Run called twice")
)

// EventError names the event that stopped the agent. Run returns it wrapped
// for a kill (matching [ErrKilled]) or a halt (matching [ErrHalted]); it
// also wraps the handler's last error.
type EventError struct {
	Reason    error // ErrKilled or ErrHalted
	Topic     string
	Partition int32
	Offset    int64
	ID        string
	Attempts  int
	Cause     error
}

// Error reads "halted topic=T partition=P offset=O id=ID attempts=N cause=…",
// the line the relay prints before it exits; ID is T/P/O for an event
// without one.
func (e *EventError) Error() string {
	var b strings.Builder
	b.WriteString(e.Reason.Error())
	b.WriteString(" topic=")
	b.WriteString(e.Topic)
	b.WriteString(" partition=")
	b.WriteString(strconv.Itoa(int(e.Partition)))
	b.WriteString(" offset=")
	b.WriteString(strconv.FormatInt(e.Offset, 10))
	b.WriteString(" id=")
	id := e.ID
	if id == "" {
		// An event without an id goes by its coordinates, as the relay
		// names it to the application (ce-id).
		id = eventkit.FormatCoordinates(e.Topic, e.Partition, e.Offset)
	}
	b.WriteString(logSafe(id))
	b.WriteString(" attempts=")
	b.WriteString(strconv.Itoa(e.Attempts))
	b.WriteString(" cause=")
	if e.Cause != nil {
		b.WriteString(oneLine(e.Cause.Error()))
	}
	return b.String()
}

// Unwrap lets errors.Is match the reason and the cause.
func (e *EventError) Unwrap() []error { return []error{e.Reason, e.Cause} }

// logSafe keeps an ID that came off the wire from breaking the one-line
// format: anything but plain printable ASCII without spaces is quoted.
func logSafe(s string) string {
	if s == "" {
		return `""`
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '=' {
			return strconv.Quote(s)
		}
	}
	return s
}

func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// panicError is a recovered handler panic; it counts as a retry.
type panicError struct{ value any }

func (p *panicError) Error() string { return fmt.Sprintf("handler panic: %v", p.value) }
