package eventkit

import "time"

// Kafka is also the control plane: agents report their status on one topic
// and take operator commands from another, so that no operator tool needs a
// network path to an agent.
const (
	// StatusTopic carries AgentStatus events, keyed by group.
	StatusTopic = "eventkit.status"
	// ControlTopic carries ControlCommand events, keyed by group.
	ControlTopic = "eventkit.control"

	// TypeAgentStatus is the ce_type of an AgentStatus event.
	TypeAgentStatus = "eventkit.agent.status"
	// TypeResume asks the agent that owns a halted partition to try its
	// halted event again, with a fresh retry budget.
	TypeResume = "eventkit.control.resume"
	// TypeSkip asks the agent that owns a halted partition to mark its
	// halted event done without handling it.
	TypeSkip = "eventkit.control.skip"
)

// AgentStatus is the data of an eventkit.agent.status event: what one
// member of a group holds and where it stands. Agents publish it every few
// seconds and at once on a change; a final one has Leaving set.
type AgentStatus struct {
	Group      string            `json:"group"`
	MemberID   string            `json:"member_id"`
	Host       string            `json:"host"`
	Version    string            `json:"version"`
	UpdatedAt  time.Time         `json:"updated_at"`
	StartedAt  time.Time         `json:"started_at"`
	InFlight   int               `json:"in_flight"`
	Partitions []PartitionStatus `json:"partitions"`
	Halted     []HaltStatus      `json:"halted"`
	// Commands are the outcomes of the latest control commands this agent
	// acted on, newest last.
	Commands []CommandOutcome `json:"commands,omitempty"`
	// Leaving marks the last status of a member that is leaving the group.
	Leaving bool `json:"leaving,omitempty"`
	// Interval is how often the agent publishes; a member silent for three
	// intervals is gone.
	Interval Duration `json:"interval"`
}

// PartitionStatus is one assigned partition's progress: Processed is the
// offset after the last contiguous done event, Committed the last committed
// offset (-1 when unknown), End the partition's end offset at the last
// fetch (-1 when unknown).
type PartitionStatus struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Processed int64  `json:"processed"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
}

// HaltStatus is an event that used up its retries and waits for an operator.
type HaltStatus struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	ID        string    `json:"id"`
	Cause     string    `json:"cause"`
	Attempts  int       `json:"attempts"`
	Since     time.Time `json:"since"`
}

// ControlCommand is the data of an eventkit.control.resume or
// eventkit.control.skip event. It names the halted event by its offset: an
// agent applies it only while that offset is still the one halted there.
type ControlCommand struct {
	CommandID   string `json:"command_id"`
	Group       string `json:"group"`
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	Offset      int64  `json:"offset"`
	RequestedBy string `json:"requested_by"`
}

// CommandOutcome reports what an agent did with a command.
type CommandOutcome struct {
	CommandID string    `json:"command_id"`
	Type      string    `json:"type"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Applied   bool      `json:"applied"`
	Reason    string    `json:"reason,omitempty"`
	At        time.Time `json:"at"`
}

// Duration is a time.Duration written in JSON as its string form ("5s").
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what time.ParseDuration accepts.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}
