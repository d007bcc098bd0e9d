package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
)

// apiEvent is an event as the API shows it: the JSON form of
// eventkit.Event, plus what only the archive knows.
type apiEvent struct {
	ev *eventkit.Event
	// max cuts a larger payload in a list (0: whole, as in the event's own
	// URL); see eventkit.Event.MarshalJSONCut.
	max   int
	extra apiExtra
}

type apiExtra struct {
	Replays []replayLinkJSON `json:"replays,omitempty"`
}

// replayLinkJSON is a replayed copy of an event.
type replayLinkJSON struct {
	ReplayID  string    `json:"replay_id"`
	Mode      string    `json:"mode"`
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
}

// MarshalJSON adds the archive's fields to the event's own JSON object.
func (a apiEvent) MarshalJSON() ([]byte, error) {
	b, err := a.ev.MarshalJSONCut(a.max)
	if err != nil {
		return nil, err
	}
	x, err := json.Marshal(a.extra)
	if err != nil || string(x) == "{}" {
		return b, err
	}
	return append(append(b[:len(b)-1], ','), x[1:]...), nil
}

// encodeEvent shapes rec for the API. A payload longer than max (0: no
// limit) is cut to max bytes and marked truncated: a list of a thousand
// large events would otherwise be too large to be useful.
func encodeEvent(rec lookback.Record, max int) apiEvent {
	return apiEvent{ev: rec.Event(), max: max}
}

type eventsJSON struct {
	Events     []apiEvent `json:"events"`
	NextCursor string     `json:"next_cursor,omitempty"`
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) error {
	v, err := query(r)
	if err != nil {
		return err
	}
	q, err := lookback.ParseQuery(v)
	if err != nil {
		return err
	}
	page, err := s.archive.Query(r.Context(), q)
	if err != nil {
		return err
	}
	out := eventsJSON{Events: make([]apiEvent, len(page.Records)), NextCursor: page.NextCursor}
	for i, rec := range page.Records {
		out.Events[i] = encodeEvent(rec, s.cfg.listDataMax)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// query parses r's query string, refusing what url.Values would silently
// drop, such as a malformed escape.
func query(r *http.Request) (url.Values, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("query string: %v", err)
	}
	return v, nil
}

// coordinates reads {topic}/{partition}/{offset} from r's path.
func coordinates(r *http.Request) (string, int32, int64, error) {
	return lookback.ParseCoordinates(r.PathValue("topic"), r.PathValue("partition"), r.PathValue("offset"))
}

// event returns the record at r's coordinates and its replayed copies.
func (s *Server) event(r *http.Request) (lookback.Record, []lookback.ReplayLink, error) {
	topic, p, o, err := coordinates(r)
	if err != nil {
		return lookback.Record{}, nil, err
	}
	rec, err := s.archive.Get(r.Context(), topic, p, o)
	if err != nil {
		return lookback.Record{}, nil, err
	}
	links, err := s.archive.Links(r.Context(), topic, p, o)
	return rec, links, err
}

func (s *Server) getEvent(w http.ResponseWriter, r *http.Request) error {
	rec, links, err := s.event(r)
	if err != nil {
		return err
	}
	e := encodeEvent(rec, 0)
	for _, l := range links {
		e.extra.Replays = append(e.extra.Replays, replayLinkJSON{
			ReplayID: l.ReplayID, Mode: string(l.Mode), Topic: l.Topic, Partition: l.Partition,
			Offset: l.Offset, Timestamp: l.Timestamp.UTC(),
		})
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

type topicJSON struct {
	Topic      string     `json:"topic"`
	Partitions int32      `json:"partitions"`
	Count      int64      `json:"count"`
	First      *time.Time `json:"first,omitempty"`
	Last       *time.Time `json:"last,omitempty"`
}

func (s *Server) listTopics(w http.ResponseWriter, r *http.Request) error {
	if r.URL.RawQuery != "" {
		return badRequest("/api/v1/topics takes no parameters")
	}
	stats, err := s.archive.Topics(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Topics []topicJSON `json:"topics"`
	}{Topics: make([]topicJSON, len(stats))}
	for i, t := range stats {
		out.Topics[i] = topicJSON{Topic: t.Topic, Partitions: t.Partitions, Count: t.Count, First: timeOrNil(t.First), Last: timeOrNil(t.Last)}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

type auditJSON struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Actor   string          `json:"actor"`
	Role    string          `json:"role"`
	Action  string          `json:"action"`
	Target  string          `json:"target"`
	Detail  json.RawMessage `json:"detail,omitempty"`
	Outcome string          `json:"outcome"`
}

// auditPage reads the audit query of r and answers its page and the value
// of "before" that continues it (0 on the last page).
func (s *Server) auditPage(r *http.Request) (lookback.AuditQuery, []lookback.AuditEntry, int64, error) {
	v, err := query(r)
	if err != nil {
		return lookback.AuditQuery{}, nil, 0, err
	}
	q, err := lookback.ParseAuditQuery(v)
	if err != nil {
		return q, nil, 0, err
	}
	entries, err := s.audit.List(r.Context(), q)
	if err != nil {
		return q, nil, 0, err
	}
	var next int64
	if len(entries) == q.Limit {
		next = entries[len(entries)-1].ID
	}
	return q, entries, next, nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	_, entries, next, err := s.auditPage(r)
	if err != nil {
		return err
	}
	out := struct {
		Entries    []auditJSON `json:"entries"`
		NextBefore int64       `json:"next_before,omitempty"`
	}{Entries: make([]auditJSON, len(entries)), NextBefore: next}
	for i, e := range entries {
		a := auditJSON{ID: e.ID, At: e.At.UTC(), Actor: e.Actor, Role: e.Role, Action: e.Action, Target: e.Target, Outcome: e.Outcome}
		if json.Valid([]byte(e.Detail)) {
			a.Detail = json.RawMessage(e.Detail)
		} else if e.Detail != "" {
			a.Detail, _ = json.Marshal(e.Detail)
		}
		out.Entries[i] = a
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
