package lookback

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	// ErrNotHalted: the latest status of the group does not show the named
	// offset halted on that partition, so a command for it would be stale.
	ErrNotHalted = errors.New("not halted at that offset")
	// ErrStatusNotRunning: the status board is not connected to Kafka (not
	// started yet, or stopped), so it can neither read status nor send.
	ErrStatusNotRunning = errors.New("status board not running")
)

// expiryIntervals is how many of its own status intervals a member may be
// silent before the board forgets it.
const expiryIntervals = 3

// StatusOpt configures a [Status] board.
type StatusOpt func(*statusCfg)

type statusCfg struct {
	clientOpts []kgo.Opt
	log        *slog.Logger
	now        func() time.Time
	window     time.Duration
}

// StatusClientOpts adds franz-go options (TLS, SASL, client id) to the
// board's client.
func StatusClientOpts(opts ...kgo.Opt) StatusOpt {
	return func(c *statusCfg) { c.clientOpts = append(c.clientOpts, opts...) }
}

// StatusLogger sets the board's logger; the default discards.
func StatusLogger(l *slog.Logger) StatusOpt { return func(c *statusCfg) { c.log = l } }

// StatusClock sets the clock that ages members; the default is time.Now.
func StatusClock(now func() time.Time) StatusOpt { return func(c *statusCfg) { c.now = now } }

// StatusWindow sets how far back, by record timestamp, the board starts
// reading eventkit.status. Default 5 minutes: three intervals of an agent
// reporting every 100 s, far more than the default 5 s.
func StatusWindow(d time.Duration) StatusOpt { return func(c *statusCfg) { c.window = d } }

// Status is the status board: it follows eventkit.status, keeps the latest
// status of every live member of every group, and sends operator commands
// to eventkit.control after checking them against that status.
//
// It reads the topic without a consumer group, starting a window before
// now rather than at the start: the topic is a stream of snapshots, every
// member repeats its whole state every interval, and a member silent for
// three intervals is gone anyway, so older records can only be dropped
// after being read. Starting at the end instead would leave the board empty
// for up to an interval after a restart.
type Status struct {
	brokers []string
	cfg     statusCfg
	cl      atomic.Pointer[kgo.Client]

	// started is when Run began, on the wall clock: a record stamped
	// before it was read back from the window. Set and read by Run's
	// goroutine only.
	started time.Time

	mu     sync.Mutex
	groups map[string]map[string]*member // group → member id → member
}

type member struct {
	st   eventkit.AgentStatus
	seen time.Time // by the board's clock
}

// NewStatus returns a board on brokers; Run connects it.
func NewStatus(brokers []string, opts ...StatusOpt) (*Status, error) {
	if len(brokers) == 0 {
		return nil, errors.New("status board: no brokers")
	}
	c := statusCfg{log: slog.New(slog.DiscardHandler), now: time.Now, window: 5 * time.Minute}
	for _, o := range opts {
		o(&c)
	}
	if c.window <= 0 {
		return nil, fmt.Errorf("status board: window %v: want more than 0", c.window)
	}
	return &Status{brokers: brokers, cfg: c, groups: make(map[string]map[string]*member)}, nil
}

// Run creates eventkit.status and eventkit.control when missing, then
// follows eventkit.status until ctx ends. The board's one client and its
// goroutines end before Run returns.
func (s *Status) Run(ctx context.Context) error {
	s.started = time.Now()
	start := s.cfg.now().Add(-s.cfg.window)
	cl, err := kgo.NewClient(append([]kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.ConsumeTopics(eventkit.StatusTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(start.UnixMilli())),
	}, s.cfg.clientOpts...)...)
	if err != nil {
		return fmt.Errorf("status board: %w", err)
	}
	defer cl.Close()
	s.ensureTopics(ctx, cl)
	s.cl.Store(cl)
	defer s.cl.Store(nil)
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil
		}
		fs.EachError(func(topic string, partition int32, err error) {
			s.cfg.log.Warn("status topic fetch error", "partition", partition, "error", err)
		})
		fs.EachRecord(s.observeRecord)
	}
}

// ensureTopics creates the control plane's topics, so that an operator's
// first command does not wait for an agent to create them. A cluster that
// refuses leaves it to the agents.
func (s *Status) ensureTopics(ctx context.Context, cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	for _, topic := range []string{eventkit.StatusTopic, eventkit.ControlTopic} {
		err := kafka.EnsureTopic(ctx, adm, topic, 1)
		if errors.Is(err, context.Canceled) {
			return // stopping: nothing to say
		}
		if err != nil {
			s.cfg.log.Warn("control plane topic not created; the agents create it", "topic", topic, "error", err)
		}
	}
}

func (s *Status) observeRecord(r *kgo.Record) {
	ev := kafka.EventOf(r)
	var st eventkit.AgentStatus
	if ev.Type != eventkit.TypeAgentStatus {
		return
	}
	if err := json.Unmarshal(ev.Data, &st); err != nil || st.Group == "" || st.MemberID == "" {
		s.cfg.log.Warn("status record ignored: not an agent status", "partition", r.Partition, "offset", r.Offset, "error", err)
		return
	}
	s.observe(st, r.Timestamp)
}

// observe keeps st as its member's latest status; a leaving status drops
// the member. A status already older than its member's expiry when read
// (read back from the window at start) is only a leftover of a member
// that may be long gone, and is not kept; one that is younger has been
// silent for its age already, which counts towards its expiry. That age is
// measured on the wall clock, as the record's timestamp is; silence
// afterwards on the board's.
func (s *Status) observe(st eventkit.AgentStatus, at time.Time) {
	var age time.Duration
	if !at.IsZero() {
		age = time.Since(at)
	}
	if age > expiry(st) && !st.Leaving {
		return
	}
	now := s.cfg.now()
	seen := now
	if at.Before(s.started) {
		seen = now.Add(-max(age, 0))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[st.Group]
	if st.Leaving {
		delete(g, st.MemberID)
		return
	}
	if g == nil {
		g = make(map[string]*member)
		s.groups[st.Group] = g
	}
	if m := g[st.MemberID]; m != nil && st.UpdatedAt.Before(m.st.UpdatedAt) {
		return // an older report read after a newer one
	}
	g[st.MemberID] = &member{st: st, seen: seen}
}

func expiry(st eventkit.AgentStatus) time.Duration {
	iv := time.Duration(st.Interval)
	if iv <= 0 {
		iv = 5 * time.Second
	}
	return expiryIntervals * iv
}

// live drops the members silent for longer than their expiry and returns
// group g's members. The caller holds s.mu.
func (s *Status) live(g string) map[string]*member {
	now := s.cfg.now()
	ms := s.groups[g]
	for id, m := range ms {
		if now.Sub(m.seen) > expiry(m.st) {
			delete(ms, id)
		}
	}
	if len(ms) == 0 {
		delete(s.groups, g)
	}
	return ms
}

// Group returns the latest status of every live member of group g, by
// member id.
func (s *Status) Group(g string) []eventkit.AgentStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	ms := s.live(g)
	out := make([]eventkit.AgentStatus, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.st)
	}
	slices.SortFunc(out, func(a, b eventkit.AgentStatus) int {
		switch {
		case a.MemberID < b.MemberID:
			return -1
		case a.MemberID > b.MemberID:
			return 1
		}
		return 0
	})
	return out
}

// Groups returns the groups with at least one live member, sorted.
func (s *Status) Groups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for g := range s.groups {
		if len(s.live(g)) > 0 {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}

// Halted returns the halt at topic/partition/offset in the latest status
// of group g, and whether there is one.
func (s *Status) Halted(g, topic string, partition int32, offset int64) (eventkit.HaltStatus, bool) {
	for _, st := range s.Group(g) {
		for _, h := range st.Halted {
			if h.Topic == topic && h.Partition == partition && h.Offset == offset {
				return h, true
			}
		}
	}
	return eventkit.HaltStatus{}, false
}

// SendCommand sends a command of type typ (eventkit.TypeResume or
// eventkit.TypeSkip) to eventkit.control, keyed by its group, once the
// latest status shows its offset halted on its partition, and returns its
// id, made here when cmd has none. It returns once the broker has the
// command; the agent's outcome shows in a later status (see
// eventkit.AgentStatus.Commands). The agent checks the offset again: the
// check here only spares operators a command that is stale already.
func (s *Status) SendCommand(ctx context.Context, typ string, cmd eventkit.ControlCommand) (string, error) {
	if typ != eventkit.TypeResume && typ != eventkit.TypeSkip {
		return "", fmt.Errorf("%w: command type %q: want %s or %s", ErrBadQuery, typ, eventkit.TypeResume, eventkit.TypeSkip)
	}
	cl := s.cl.Load()
	if cl == nil {
		return "", ErrStatusNotRunning
	}
	if _, ok := s.Halted(cmd.Group, cmd.Topic, cmd.Partition, cmd.Offset); !ok {
		return "", fmt.Errorf("group %s, %s/%d offset %d: %w", cmd.Group, cmd.Topic, cmd.Partition, cmd.Offset, ErrNotHalted)
	}
	if cmd.CommandID == "" {
		// Time-ordered: the id also tells when the command was sent
		// (CommandSent), for as long as anyone holds it.
		id, err := uuid.NewV7()
		if err != nil {
			return "", err
		}
		cmd.CommandID = id.String()
	}
	data, err := json.Marshal(cmd)
	if err != nil {
		return "", err
	}
	// Time is the agent's guard against commands meant for an earlier
	// agent; it must be the real time of sending, whatever the board's clock.
	ev := &eventkit.Event{
		ID: cmd.CommandID, Source: "eventkit/lookback", Type: typ, Time: time.Now(), Subject: cmd.Group,
		ContentType: "application/json", Key: []byte(cmd.Group), Data: data,
	}
	if err := kafka.ProduceSync(ctx, cl, kafka.RecordOf(eventkit.ControlTopic, ev)); err != nil {
		return "", fmt.Errorf("send %s: %w", typ, err)
	}
	return cmd.CommandID, nil
}

// CommandSent returns when the command with id was sent, when SendCommand
// made the id.
func CommandSent(id string) (time.Time, bool) {
	u, err := uuid.Parse(id)
	if err != nil || u.Version() != 7 {
		return time.Time{}, false
	}
	return time.Unix(u.Time().UnixTime()), true
}

// OutcomeDue is how long after a command to group g its outcome shows at
// the latest, if a member of g owned the partition when the command came:
// the longest time a member of g may stay silent (expiryIntervals of its
// status interval).
func (s *Status) OutcomeDue(g string) time.Duration {
	due := expiry(eventkit.AgentStatus{})
	for _, st := range s.Group(g) {
		due = max(due, expiry(st))
	}
	return due
}

// Outcome returns what a member of group g reported doing with command id,
// and whether one did yet.
func (s *Status) Outcome(g, id string) (eventkit.CommandOutcome, bool) {
	for _, st := range s.Group(g) {
		for _, o := range st.Commands {
			if o.CommandID == id {
				return o, true
			}
		}
	}
	return eventkit.CommandOutcome{}, false
}
