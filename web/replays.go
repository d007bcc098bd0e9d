package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/strictjson"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// replayDeps is what the replay and group routes need beyond the archive.
// Either may be missing (a read-only lookback, a test of the archive
// alone): the routes that need it then answer 503.
type replayDeps struct {
	runner *replay.Runner
	admin  *kadm.Client
}

// Replays serves replay jobs through r: POST, GET and DELETE
// /api/v1/replays and the Replays pages. The caller runs r (Runner.Run).
func Replays(r *replay.Runner) Opt { return optFunc(func(c *cfg) { c.replays.runner = r }) }

// Admin serves the consumer groups through adm: GET /api/v1/groups, lag per
// partition, offset resets and the Groups pages.
func Admin(adm *kadm.Client) Opt { return optFunc(func(c *cfg) { c.replays.admin = adm }) }

// mountReplays adds the replay and group routes and their pages. They live
// apart from the route table so that they read as one feature.
func (s *Server) mountReplays() {
	s.ui.addPages("replays", "replay", "groups", "group")
	for _, rt := range []route{
		{method: "POST", pattern: "/api/v1/replays", role: Operator, h: s.needRunner(s.postReplay)},
		{method: "GET", pattern: "/api/v1/replays", role: Viewer, h: s.needRunner(s.listReplays)},
		{method: "GET", pattern: "/api/v1/replays/{id}", role: Viewer, h: s.needRunner(s.getReplay)},
		{method: "DELETE", pattern: "/api/v1/replays/{id}", role: Operator, h: s.needRunner(s.cancelReplay)},
		{method: "GET", pattern: "/api/v1/groups", role: Viewer, h: s.needAdmin(s.listGroups)},
		{method: "GET", pattern: "/api/v1/groups/{group}", role: Viewer, h: s.needAdmin(s.getGroup)},
		{method: "POST", pattern: "/api/v1/groups/{group}/offsets", role: Operator, h: s.needAdmin(s.resetOffsets)},

		{method: "GET", pattern: "/replays", role: Viewer, ui: true, h: s.needRunner(s.uiReplays)},
		{method: "POST", pattern: "/replays", role: Operator, ui: true, h: s.needRunner(s.uiPostReplay)},
		{method: "GET", pattern: "/replays/{id}", role: Viewer, ui: true, h: s.needRunner(s.uiReplay)},
		{method: "POST", pattern: "/replays/{id}/cancel", role: Operator, ui: true, h: s.needRunner(s.uiCancelReplay)},
		{method: "GET", pattern: "/groups", role: Viewer, ui: true, h: s.needAdmin(s.uiGroups)},
		{method: "GET", pattern: "/groups/{group}", role: Viewer, ui: true, h: s.needAdmin(s.uiGroup)},
		{method: "POST", pattern: "/groups/{group}/offsets", role: Operator, ui: true, h: s.needAdmin(s.uiResetOffsets)},
	} {
		s.handle(rt)
	}
}

// errUnavailable answers 503: the server was built without what the route
// needs, or the runner is not running. It is the route's state, not the
// request's fault, so it is neither a 4xx nor a 500.
var errUnavailable = errors.New("unavailable")

func (s *Server) needRunner(h HandlerFunc) HandlerFunc {
	return s.translate(func(w http.ResponseWriter, r *http.Request) error {
		if s.cfg.replays.runner == nil {
			return fmt.Errorf("%w: this lookback runs no replays", errUnavailable)
		}
		return h(w, r)
	})
}

func (s *Server) needAdmin(h HandlerFunc) HandlerFunc {
	return s.translate(func(w http.ResponseWriter, r *http.Request) error {
		if s.cfg.replays.admin == nil {
			return fmt.Errorf("%w: this lookback has no Kafka admin client", errUnavailable)
		}
		return h(w, r)
	})
}

// translate answers errUnavailable itself with a 503 and maps the other
// errors of h with classify.
func (s *Server) translate(h HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		err := h(w, r)
		if errors.Is(err, errUnavailable) || errors.Is(err, replay.ErrNotRunning) {
			if strings.HasPrefix(r.URL.Path, "/api/") {
				writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: err.Error()})
			} else {
				s.ui.errorPage(w, r, http.StatusServiceUnavailable, err.Error())
			}
			return nil
		}
		return classify(err)
	}
}

// classify maps the errors of packages replay and kafka onto the error
// table.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, replay.ErrInvalidSpec), errors.Is(err, replay.ErrInvalidReset),
		errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.InvalidTopicException), errors.Is(err, kerr.InvalidRequest):
		return kindOf(err, lookback.ErrBadQuery)
	case errors.Is(err, replay.ErrJobNotFound), errors.Is(err, kafka.ErrUnknownGroup):
		return kindOf(err, lookback.ErrNotFound)
	case errors.Is(err, replay.ErrJobFinished), errors.Is(err, replay.ErrGroupActive), errors.Is(err, replay.ErrPlanStale):
		return kindOf(err, ErrConflict)
	}
	return err
}

// kindErr gives err the status of kind and keeps err's own message.
type kindErr struct{ err, kind error }

func (e kindErr) Error() string   { return e.err.Error() }
func (e kindErr) Unwrap() []error { return []error{e.kind, e.err} }

func kindOf(err, kind error) error { return kindErr{err, kind} }

// decodeBody reads one JSON object from body into v, refusing unknown
// fields, names in another case or given twice, and trailing data: a typo in
// a replay's filter must not widen it to every event, nor a second
// "dry_run" run what the first only asked to plan.
func decodeBody(body io.Reader, v any) error {
	err := strictjson.Decode(body, v)
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*http.MaxBytesError)):
		return err // too large is what the client must hear
	case errors.Is(err, io.EOF):
		return badRequest("body: want a JSON object")
	}
	return badRequest("body: %v", err)
}

// parseForm parses r's form: a body too large stays a 413, anything else
// malformed (a bad escape, a bad content type) is a 400.
func parseForm(r *http.Request) error {
	err := r.ParseForm()
	if err == nil || errors.As(err, new(*http.MaxBytesError)) {
		return err
	}
	return badRequest("form: %v", err)
}

// actor is who a request comes from, as the runner records it.
func actor(r *http.Request) replay.Actor {
	p := principalOf(r.Context())
	return replay.Actor{Name: p.name, Role: p.role.String()}
}

// dryRunJSON is the answer of a dry run.
type dryRunJSON struct {
	Matched int64      `json:"matched"`
	Sample  []apiEvent `json:"sample"`
}

func (s *Server) postReplay(w http.ResponseWriter, r *http.Request) error {
	var b replay.Request
	if err := decodeBody(r.Body, &b); err != nil {
		return err
	}
	noteReplay(r, b) // also when refused: the audit log says what was asked
	spec, err := b.Spec()
	if err != nil {
		return err
	}
	if spec.DryRun {
		matched, sample, err := s.cfg.replays.runner.DryRun(r.Context(), spec)
		if err != nil {
			return err
		}
		noteAudit(r, "matched", matched)
		out := dryRunJSON{Matched: matched, Sample: make([]apiEvent, len(sample))}
		for i, rec := range sample {
			out.Sample[i] = encodeEvent(rec, s.cfg.listDataMax)
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	j, err := s.cfg.replays.runner.Start(r.Context(), spec, actor(r))
	if err != nil {
		return err
	}
	noteJob(r, j)
	writeJSON(w, http.StatusAccepted, j)
	return nil
}

// noteReplay records what a replay asks for in the request's audit entry.
func noteReplay(r *http.Request, b replay.Request) {
	noteAudit(r, "filter", b.Filter)
	noteAudit(r, "target", b.Target)
	noteAudit(r, "mode", b.Mode)
	noteAudit(r, "rate", b.Rate)
	noteAudit(r, "dry_run", b.DryRun)
}

// noteJob records a job's id and counts in the request's audit entry.
func noteJob(r *http.Request, j replay.Job) {
	noteAudit(r, "job", j.ID)
	noteAudit(r, "status", j.Status)
	noteAudit(r, "matched", j.Matched)
	noteAudit(r, "sent", j.Sent)
	noteAudit(r, "failed", j.Failed)
}

func (s *Server) listReplays(w http.ResponseWriter, r *http.Request) error {
	jobs, err := s.cfg.replays.runner.List(r.Context())
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = []replay.Job{}
	}
	writeJSON(w, http.StatusOK, struct {
		Replays []replay.Job `json:"replays"`
	}{jobs})
	return nil
}

func (s *Server) getReplay(w http.ResponseWriter, r *http.Request) error {
	j, err := s.cfg.replays.runner.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, j)
	return nil
}

func (s *Server) cancelReplay(w http.ResponseWriter, r *http.Request) error {
	j, err := s.cfg.replays.runner.Cancel(r.Context(), r.PathValue("id"), actor(r))
	noteAudit(r, "job", r.PathValue("id"))
	if err != nil {
		return err
	}
	noteJob(r, j)
	writeJSON(w, http.StatusOK, j)
	return nil
}

// The Replays pages: a form that previews (a dry run) and starts a job,
// the list of jobs, and a page per job that refreshes itself while the job
// runs.

type replaysBody struct {
	Form     url.Values
	Operator bool
	Preview  *replayPreview
	Jobs     []replay.Job
}

type replayPreview struct {
	Matched int64
	Rows    []eventRow
}

func isOperator(r *http.Request) bool { return principalOf(r.Context()).role >= Operator }

func (s *Server) uiReplays(w http.ResponseWriter, r *http.Request) error {
	return s.renderReplays(w, r, http.StatusOK, url.Values{}, nil, "")
}

func (s *Server) renderReplays(w http.ResponseWriter, r *http.Request, status int, form url.Values, pre *replayPreview, msg string) error {
	jobs, err := s.cfg.replays.runner.List(r.Context())
	if err != nil {
		return err
	}
	b := replaysBody{Form: form, Operator: isOperator(r), Preview: pre, Jobs: jobs}
	return s.ui.render(w, r, status, "replays", page{Title: "Replays", Nav: "replays", Error: msg, Body: b})
}

// replayFilterFields are the form's filter inputs, named as the events
// browser names them so that one parser reads both.
var replayFilterFields = []string{"topic", "partition", "key", "type", "id", "subject", "source", "from", "to", "header"}

// specOfForm reads the replay form.
func specOfForm(form url.Values) (replay.Spec, error) {
	v := url.Values{}
	for _, k := range replayFilterFields {
		if vs := slicesDeleteEmpty(form[k]); len(vs) > 0 {
			v[k] = vs
		}
	}
	q, err := lookback.ParseQuery(v)
	if err != nil {
		return replay.Spec{}, err
	}
	spec := replay.Spec{Filter: q.Filter, Mode: eventkit.ReplayMode(form.Get("mode"))}
	name := strings.TrimSpace(form.Get("target"))
	if form.Get("target_kind") == "topic" {
		spec.Target.Topic = name
	} else {
		spec.Target.Group = name
	}
	if rate := strings.TrimSpace(form.Get("rate")); rate != "" {
		if spec.Rate, err = strconv.ParseFloat(rate, 64); err != nil {
			return replay.Spec{}, badRequest("rate %q: want events per second, 0 for no limit", rate)
		}
	}
	return spec, spec.Validate()
}

func (s *Server) uiPostReplay(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	form := r.PostForm
	// A form the server refuses comes back filled in, with the reason.
	refused := func(err error) error {
		if err = classify(err); statusOf(err) == http.StatusBadRequest {
			return s.renderReplays(w, r, http.StatusBadRequest, form, nil, err.Error())
		}
		return err
	}
	spec, err := specOfForm(form)
	if err != nil {
		// The audit log says what was asked, in the form's own words.
		asked := url.Values{}
		for _, k := range slices.Concat(replayFilterFields, []string{"target_kind", "target", "mode", "rate", "action"}) {
			if vs := slicesDeleteEmpty(form[k]); len(vs) > 0 {
				asked[k] = vs
			}
		}
		noteAudit(r, "form", asked)
		return refused(err)
	}
	noteReplay(r, replay.Request{Filter: spec.Filter.JSON(), Target: spec.Target, Mode: spec.Mode, Rate: spec.Rate})
	if form.Get("action") != "start" {
		matched, sample, err := s.cfg.replays.runner.DryRun(r.Context(), spec)
		if err != nil {
			return refused(err)
		}
		noteAudit(r, "dry_run", true)
		noteAudit(r, "matched", matched)
		pre := &replayPreview{Matched: matched}
		for _, rec := range sample {
			pre.Rows = append(pre.Rows, rowOf(rec))
		}
		return s.renderReplays(w, r, http.StatusOK, form, pre, "")
	}
	j, err := s.cfg.replays.runner.Start(r.Context(), spec, actor(r))
	if err != nil {
		return refused(err)
	}
	noteJob(r, j)
	http.Redirect(w, r, "/replays/"+url.PathEscape(j.ID), http.StatusSeeOther)
	return nil
}

type replayJobBody struct {
	Job      replay.Job
	Running  bool
	Operator bool
	Filter   string
}

func (s *Server) uiReplay(w http.ResponseWriter, r *http.Request) error {
	j, err := s.cfg.replays.runner.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	b := replayJobBody{Job: j, Running: j.Status == replay.Running, Operator: isOperator(r)}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if enc.Encode(j.Spec.Filter.JSON()) == nil {
		b.Filter = buf.String()
	}
	return s.ui.render(w, r, http.StatusOK, "replay", page{Title: "Replay " + j.ID, Nav: "replays", Body: b})
}

func (s *Server) uiCancelReplay(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	noteAudit(r, "job", id)
	j, err := s.cfg.replays.runner.Cancel(r.Context(), id, actor(r))
	if err != nil {
		return err
	}
	noteJob(r, j)
	http.Redirect(w, r, "/replays/"+url.PathEscape(id), http.StatusSeeOther)
	return nil
}

// addPages parses more pages over the layout, before the server serves.
// Their links escape group names and ids as one path segment each: a
// group's name may hold any character, '/' and '?' too.
func (u *ui) addPages(names ...string) {
	for _, name := range names {
		t := template.Must(u.layout.Clone()).Funcs(template.FuncMap{"segment": url.PathEscape})
		u.pages[name] = template.Must(t.ParseFS(uiFS, "ui/"+name+".html"))
	}
}
