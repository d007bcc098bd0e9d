package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
)

// StatusSource is what the status pages and the control API read and send
// through: lookback's status board (*lookback.Status).
type StatusSource interface {
	// Group returns the latest status of every live member of group.
	Group(group string) []eventkit.AgentStatus
	// Outcome returns what a member of group reported doing with a
	// command, once one did.
	Outcome(group, commandID string) (eventkit.CommandOutcome, bool)
	// OutcomeDue is how long after a command its outcome shows at the
	// latest, when a member owned its partition.
	OutcomeDue(group string) time.Duration
	// SendCommand checks cmd against the latest status (an error matching
	// lookback.ErrNotHalted when stale) and puts it on eventkit.control.
	SendCommand(ctx context.Context, typ string, cmd eventkit.ControlCommand) (string, error)
}

// StatusBoard serves the groups' live status and the resume and skip
// commands from b. Without it those routes answer 503.
func StatusBoard(b StatusSource) Opt { return optFunc(func(c *cfg) { c.status = b }) }

// errNoStatusBoard answers the status routes of a server without a board.
var errNoStatusBoard = errors.New("no status board: this lookback does not follow eventkit.status")

// noBoard answers 503 when the server has no status board, and says so.
func (s *Server) noBoard(w http.ResponseWriter, r *http.Request, ui bool) bool {
	if s.cfg.status != nil {
		return false
	}
	if ui {
		s.ui.errorPage(w, r, http.StatusServiceUnavailable, errNoStatusBoard.Error())
	} else {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: errNoStatusBoard.Error()})
	}
	return true
}

// commandTypes maps the last path segment of a command route to its type.
var commandTypes = map[string]string{"resume": eventkit.TypeResume, "skip": eventkit.TypeSkip}

// statusRoutes are the routes of the control plane; New mounts them with
// the others.
func (s *Server) statusRoutes() []route {
	s.ui.addPages("status", "status_confirm")
	rs := []route{
		{method: "GET", pattern: "/api/v1/groups/{group}/status", role: Viewer, h: s.getGroupStatus},
		{method: "GET", pattern: "/groups/{group}/status", role: Viewer, ui: true, h: s.uiGroupStatus},
		{method: "POST", pattern: "/groups/{group}/status/confirm", role: Operator, ui: true, h: s.uiConfirmCommand},
	}
	for verb := range commandTypes {
		rs = append(rs,
			route{method: "POST", pattern: "/api/v1/groups/{group}/partitions/{topic}/{partition}/" + verb, role: Operator, h: s.postCommand(verb)},
			route{method: "POST", pattern: "/groups/{group}/partitions/{topic}/{partition}/" + verb, role: Operator, ui: true, h: s.uiCommand(verb)},
		)
	}
	return rs
}

type partitionJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Processed int64  `json:"processed"`
	Committed int64  `json:"committed"`
}

type memberJSON struct {
	MemberID   string                `json:"member_id"`
	Host       string                `json:"host"`
	Version    string                `json:"version"`
	UpdatedAt  time.Time             `json:"updated_at"`
	InFlight   int                   `json:"in_flight"`
	Partitions []partitionJSON       `json:"partitions"`
	Halted     []eventkit.HaltStatus `json:"halted"`
	// Commands are the outcomes of the latest commands the member acted
	// on: how a client sees what became of the command_id it was given.
	Commands []eventkit.CommandOutcome `json:"commands,omitempty"`
}

type groupStatusJSON struct {
	Group   string       `json:"group"`
	Members []memberJSON `json:"members"`
}

func (s *Server) getGroupStatus(w http.ResponseWriter, r *http.Request) error {
	if s.noBoard(w, r, false) {
		return nil
	}
	g := r.PathValue("group")
	out := groupStatusJSON{Group: g, Members: []memberJSON{}}
	for _, st := range s.cfg.status.Group(g) {
		m := memberJSON{
			MemberID: st.MemberID, Host: st.Host, Version: st.Version, UpdatedAt: st.UpdatedAt.UTC(), InFlight: st.InFlight,
			Partitions: make([]partitionJSON, len(st.Partitions)), Halted: st.Halted, Commands: st.Commands,
		}
		for i, p := range st.Partitions {
			m.Partitions[i] = partitionJSON{Topic: p.Topic, Partition: p.Partition, Processed: p.Processed, Committed: p.Committed}
		}
		if m.Halted == nil {
			m.Halted = []eventkit.HaltStatus{}
		}
		out.Members = append(out.Members, m)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// commandTarget is what a command route names: a group's partition and,
// from the body or the form, the offset of the halted event.
type commandTarget struct {
	group, topic string
	partition    int32
	offset       int64
}

// target reads the group, topic and partition of r's path.
func target(r *http.Request) (commandTarget, error) {
	topic, p, _, err := lookback.ParseCoordinates(r.PathValue("topic"), r.PathValue("partition"), "0")
	return commandTarget{group: r.PathValue("group"), topic: topic, partition: p}, err
}

func (s *Server) postCommand(verb string) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.noBoard(w, r, false) {
			return nil
		}
		t, err := target(r)
		if err != nil {
			return err
		}
		if t.offset, err = offsetBody(r.Body); err != nil {
			return err
		}
		id, err := s.sendCommand(r, verb, t)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"command_id": id})
		return nil
	}
}

// offsetBody reads {"offset": N}, and nothing else.
func offsetBody(body io.Reader) (int64, error) {
	var in struct {
		Offset *int64 `json:"offset"`
	}
	if err := decodeBody(body, &in); err != nil {
		return 0, err
	}
	if in.Offset == nil || *in.Offset < 0 {
		return 0, badRequest(`body: want {"offset": N} with N the halted event's offset, 0 or more`)
	}
	return *in.Offset, nil
}

// sendCommand sends the command verb for t on behalf of r's principal and
// audits it: who, which event, and whether it went out.
func (s *Server) sendCommand(r *http.Request, verb string, t commandTarget) (string, error) {
	who := principalOf(r.Context())
	typ := commandTypes[verb]
	cmd := eventkit.ControlCommand{Group: t.group, Topic: t.topic, Partition: t.partition, Offset: t.offset, RequestedBy: who.name}
	id, err := s.cfg.status.SendCommand(r.Context(), typ, cmd)
	outcome := "sent"
	switch {
	case errors.Is(err, lookback.ErrNotHalted):
		outcome, err = "conflict: not halted at that offset", fmt.Errorf("%w: %w; the partition's latest status shows no halt there", ErrConflict, err)
	case err != nil:
		outcome = "error: " + err.Error()
	}
	cmd.CommandID = id
	detail, _ := json.Marshal(struct {
		eventkit.ControlCommand
		Type   string `json:"type"`
		Remote string `json:"remote"`
	}{cmd, typ, r.RemoteAddr})
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	e := lookback.AuditEntry{
		At: s.cfg.now().UTC(), Actor: who.name, Role: who.role.String(), Action: "control." + verb,
		Target: fmt.Sprintf("%s %s/%d@%d", t.group, t.topic, t.partition, t.offset), Detail: string(detail), Outcome: outcome,
	}
	if _, aerr := s.audit.Record(ctx, e); aerr != nil {
		s.cfg.log.Error("audit log", "err", aerr, "actor", who.name, "action", e.Action, "outcome", outcome)
	}
	return id, err
}

// haltRow is one halted banner of the status page.
type haltRow struct {
	eventkit.HaltStatus
	Member, Link string
}

type memberRow struct {
	eventkit.AgentStatus
	Halted int
}

type partitionRow struct {
	eventkit.PartitionStatus
	Member string
	Halted bool
}

// commandNote is what the status page says of the command it was sent
// back with.
type commandNote struct {
	ID, Text, Class string
}

type statusBody struct {
	Group      string
	Refresh    bool
	PauseURL   string
	ConfirmURL string
	LiveURL    string
	Operator   bool
	Command    *commandNote
	Halts      []haltRow
	Members    []memberRow
	Partitions []partitionRow
}

func (s *Server) uiGroupStatus(w http.ResponseWriter, r *http.Request) error {
	if s.noBoard(w, r, true) {
		return nil
	}
	q, err := query(r)
	if err != nil {
		return err
	}
	g := r.PathValue("group")
	self := statusPath(g)
	b := statusBody{
		Group: g, Refresh: q.Get("refresh") != "off", PauseURL: self + "?refresh=off", LiveURL: self, ConfirmURL: self + "/confirm",
		Operator: principalOf(r.Context()).role >= Operator,
	}
	for _, st := range s.cfg.status.Group(g) {
		b.Members = append(b.Members, memberRow{AgentStatus: st, Halted: len(st.Halted)})
		halted := map[[2]any]bool{}
		for _, h := range st.Halted {
			b.Halts = append(b.Halts, haltRow{HaltStatus: h, Member: st.MemberID, Link: eventPath(h.Topic, h.Partition, h.Offset)})
			halted[[2]any{h.Topic, h.Partition}] = true
		}
		for _, p := range st.Partitions {
			b.Partitions = append(b.Partitions, partitionRow{PartitionStatus: p, Member: st.MemberID, Halted: halted[[2]any{p.Topic, p.Partition}]})
		}
	}
	if id := q.Get("command"); id != "" {
		n := &commandNote{ID: id, Text: "Command " + id + " sent; waiting for the agent's outcome…", Class: "pending"}
		if sent, ok := lookback.CommandSent(id); ok {
			// No member owned the partition when the command came (a
			// rebalance), or its member restarted: no outcome will come.
			if waited := s.cfg.now().Sub(sent); waited > s.cfg.status.OutcomeDue(g) {
				n.Text, n.Class = fmt.Sprintf("Command %s sent %s ago: no agent has reported an outcome. No member owned the partition when it came (a rebalance), or its member restarted. If the event is still halted below, send the command again.",
					id, waited.Round(time.Second)), "unanswered"
			}
		}
		if o, ok := s.cfg.status.Outcome(g, id); ok {
			verb := strings.TrimPrefix(o.Type, "eventkit.control.")
			n.Text, n.Class = fmt.Sprintf("%s of %s/%d offset %d applied by the agent at %s.", verb, o.Topic, o.Partition, o.Offset, o.At.UTC().Format(time.RFC3339)), "applied"
			if !o.Applied {
				n.Text, n.Class = fmt.Sprintf("%s of %s/%d offset %d refused by the agent: %s", verb, o.Topic, o.Partition, o.Offset, o.Reason), "refused"
			}
		}
		b.Command = n
		b.PauseURL = self + "?" + url.Values{"command": {id}, "refresh": {"off"}}.Encode()
		b.LiveURL = self + "?" + url.Values{"command": {id}}.Encode()
	}
	return s.ui.render(w, r, http.StatusOK, "status", page{Title: "Group " + g, Nav: "groups", Body: b})
}

func statusPath(group string) string { return "/groups/" + url.PathEscape(group) + "/status" }

type confirmBody struct {
	Group, Verb, Action, Back, Link string
	Halt                            eventkit.HaltStatus
}

// uiConfirmCommand is the confirmation step of Resume and Skip: it shows
// what the command will do to which event, and posts it on a second click.
func (s *Server) uiConfirmCommand(w http.ResponseWriter, r *http.Request) error {
	if s.noBoard(w, r, true) {
		return nil
	}
	if err := parseForm(r); err != nil {
		return err
	}
	verb := r.PostForm.Get("action")
	if commandTypes[verb] == "" {
		return badRequest("action %q: want resume or skip", verb)
	}
	topic, p, o, err := lookback.ParseCoordinates(r.PostForm.Get("topic"), r.PostForm.Get("partition"), r.PostForm.Get("offset"))
	if err != nil {
		return err
	}
	g := r.PathValue("group")
	var h *eventkit.HaltStatus
	for _, st := range s.cfg.status.Group(g) {
		for i := range st.Halted {
			if x := st.Halted[i]; x.Topic == topic && x.Partition == p && x.Offset == o {
				h = &x
			}
		}
	}
	if h == nil {
		return fmt.Errorf("%w: %s/%d is not halted at offset %d any more; see the group's status", ErrConflict, topic, p, o)
	}
	b := confirmBody{
		Group: g, Verb: verb, Halt: *h, Back: statusPath(g) + "?refresh=off", Link: eventPath(topic, p, o),
		Action: "/groups/" + url.PathEscape(g) + "/partitions/" + url.PathEscape(topic) + "/" + strconv.Itoa(int(p)) + "/" + verb,
	}
	return s.ui.render(w, r, http.StatusOK, "status_confirm", page{Title: "Confirm " + verb, Nav: "groups", Body: b})
}

// uiCommand sends the confirmed command and shows the group's status,
// which follows the command until its outcome comes back.
func (s *Server) uiCommand(verb string) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if s.noBoard(w, r, true) {
			return nil
		}
		t, err := target(r)
		if err != nil {
			return err
		}
		if err := parseForm(r); err != nil {
			return err
		}
		if _, _, t.offset, err = lookback.ParseCoordinates(t.topic, "0", r.PostForm.Get("offset")); err != nil {
			return err
		}
		id, err := s.sendCommand(r, verb, t)
		if err != nil {
			return err
		}
		http.Redirect(w, r, statusPath(t.group)+"?"+url.Values{"command": {id}}.Encode(), http.StatusSeeOther)
		return nil
	}
}
