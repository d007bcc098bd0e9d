package web

import (
	"bytes"
	"embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/eventkit/eventkit/lookback"
)

// The UI is server-rendered from embedded templates and one stylesheet: it
// works without any external network and without script. Each page makes
// one archive call with a limit, so it stays fast however large the
// archive grows.

//go:embed ui
var uiFS embed.FS

type ui struct {
	layout *template.Template // with its functions and shared parts; each page clones it
	pages  map[string]*template.Template
	static http.Handler
}

func newUI() *ui {
	funcs := template.FuncMap{
		"time": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.UTC().Format("2006-01-02 15:04:05.000Z")
		},
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(uiFS, "ui/layout.html", "ui/filter.html"))
	u := &ui{layout: layout, pages: make(map[string]*template.Template)}
	u.addPages("login", "events", "event", "topics", "audit", "error")
	static, err := fs.Sub(uiFS, "ui/static")
	if err != nil {
		panic(err)
	}
	u.static = http.StripPrefix("/static/", http.FileServerFS(static))
	return u
}

// page is what every page's layout shows.
type page struct {
	Title string
	Nav   string // the menu entry to mark current
	User  user
	Error string
	Body  any
}

// user is who is signed in, for the layout.
type user struct{ Name, Role string }

// render writes page name with status. Rendering goes to a buffer first,
// so that a template error is a clean 500 and not half a page.
func (u *ui) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) error {
	if who := principalOf(r.Context()); who.name != "" {
		p.User = user{Name: who.name, Role: who.role.String()}
	}
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

func (u *ui) errorPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if err := u.render(w, r, status, "error", page{Title: http.StatusText(status), Error: msg}); err != nil {
		http.Error(w, msg, status)
	}
}

func (s *Server) uiRoot(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, "/events", http.StatusSeeOther)
	return nil
}

func (s *Server) uiStatic(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Cache-Control", "public, max-age=3600")
	s.ui.static.ServeHTTP(w, r)
	return nil
}

type loginBody struct{ Next string }

func (s *Server) uiLoginForm(w http.ResponseWriter, r *http.Request) error {
	return s.ui.render(w, r, http.StatusOK, "login", page{Title: "Sign in", Body: loginBody{Next: localPath(r.URL.Query().Get("next"))}})
}

// sessionMaxAge is how long the UI keeps a sign-in.
const sessionMaxAge = 12 * time.Hour

func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request) error {
	if err := parseForm(r); err != nil {
		return err
	}
	next := localPath(r.PostForm.Get("next"))
	name, role, ok := s.tokens.lookup(strings.TrimSpace(r.PostForm.Get("token")))
	if !ok {
		s.record(r, principal{}, "POST /login", "denied: unknown token")
		return s.ui.render(w, r, http.StatusUnauthorized, "login", page{Title: "Sign in", Error: "unknown token", Body: loginBody{Next: next}})
	}
	if role == Operator {
		s.record(r, principal{name: name, role: role}, "POST /login", "ok")
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: sessionValue(strings.TrimSpace(r.PostForm.Get("token"))), Path: "/",
		MaxAge: int(sessionMaxAge / time.Second), HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.cfg.secureCookie,
	})
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.cfg.secureCookie})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// localPath returns p when it is a path on this server, else /events: a
// sign-in link must not send the browser elsewhere. Browsers read a
// backslash as a slash and drop tabs and line breaks, so a backslash or a
// tab after the first slash leads to another host, however the path is
// cleaned.
func localPath(p string) string {
	u, err := url.Parse(p)
	if err != nil || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || u.Scheme != "" || u.Host != "" ||
		strings.ContainsFunc(p, func(r rune) bool { return r == '\\' || r < 0x20 || r == 0x7f }) {
		return "/events"
	}
	return p
}

// eventRow is one line of the events browser.
type eventRow struct {
	Link, Coordinates, Time, Key, Type, ID, Source, Subject, Preview string
}

type eventsBody struct {
	Form     url.Values
	Headers  []string // the header filters, one input each plus a blank one
	Asc      bool
	Rows     []eventRow
	NextURL  string
	FirstURL string
	Searched bool
}

// previewLen bounds the payload shown in a row of the events browser.
const previewLen = 120

func (s *Server) uiEvents(w http.ResponseWriter, r *http.Request) error {
	form, err := query(r)
	if err != nil {
		return err
	}
	for k, vs := range form { // a form sends its blank fields; they filter nothing
		vs = slicesDeleteEmpty(vs)
		if len(vs) == 0 {
			delete(form, k)
		} else {
			form[k] = vs
		}
	}
	body := eventsBody{Form: form, Headers: append(append([]string(nil), form["header"]...), ""), Asc: form.Get("order") == "asc"}
	p := page{Title: "Events", Nav: "events", Body: &body}
	q, err := lookback.ParseQuery(form)
	if err != nil {
		p.Error = err.Error()
		return s.ui.render(w, r, http.StatusBadRequest, "events", p)
	}
	res, err := s.archive.Query(r.Context(), q)
	if statusOf(err) == http.StatusBadRequest {
		p.Error = err.Error()
		return s.ui.render(w, r, http.StatusBadRequest, "events", p)
	}
	if err != nil {
		return err
	}
	for _, rec := range res.Records {
		body.Rows = append(body.Rows, rowOf(rec))
	}
	if res.NextCursor != "" {
		next := q
		next.Cursor = res.NextCursor
		body.NextURL = "/events?" + next.Values().Encode()
	}
	if q.Cursor != "" {
		first := q
		first.Cursor = ""
		body.FirstURL = "/events?" + first.Values().Encode()
	}
	body.Searched = true
	return s.ui.render(w, r, http.StatusOK, "events", p)
}

// rowOf shows rec as a line of the events browser.
func rowOf(rec lookback.Record) eventRow {
	return eventRow{
		Link:        eventPath(rec.Topic, rec.Partition, rec.Offset),
		Coordinates: rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "/" + strconv.FormatInt(rec.Offset, 10),
		Time:        rec.Timestamp.UTC().Format("2006-01-02 15:04:05.000Z"),
		Key:         showBytes(rec.Key, 60), Type: rec.Type, ID: rec.ID, Source: rec.Source, Subject: rec.Subject,
		Preview: showBytes(rec.Value, previewLen),
	}
}

// slicesDeleteEmpty drops the blank fields a form sends. A value of
// spaces is kept: it is a filter (a key may be a space), and dropping it
// would widen the filter without a word.
func slicesDeleteEmpty(vs []string) []string {
	return slices.DeleteFunc(slices.Clone(vs), func(v string) bool { return v == "" })
}

func eventPath(topic string, partition int32, offset int64) string {
	return "/events/" + url.PathEscape(topic) + "/" + strconv.Itoa(int(partition)) + "/" + strconv.FormatInt(offset, 10)
}

// showBytes shows b as text cut to max runes, or as base64 when it is not
// UTF-8.
func showBytes(b []byte, max int) string {
	s := string(b)
	if !utf8.Valid(b) {
		s = "base64:" + base64.StdEncoding.EncodeToString(b)
	}
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	return s
}

type headerRow struct {
	Key, Value string
	Base64     bool
}

type eventBody struct {
	Rec         lookback.Record
	Coordinates string
	Key         string
	KeyLink     string // the events with the same key, when it can be typed
	Headers     []headerRow
	Payload     string
	PayloadKind string // "JSON", "text" or "base64"
	Replays     []lookback.ReplayLink
}

func (s *Server) uiEvent(w http.ResponseWriter, r *http.Request) error {
	rec, links, err := s.event(r)
	if err != nil {
		return err
	}
	b := eventBody{
		Rec:         rec,
		Coordinates: rec.Topic + "/" + strconv.Itoa(int(rec.Partition)) + "/" + strconv.FormatInt(rec.Offset, 10),
		Replays:     links,
	}
	if rec.Key != nil {
		b.Key = showBytes(rec.Key, 1<<20)
		// Linked only when the events browser can take the key as typed.
		same := url.Values{"topic": {rec.Topic}, "key": {string(rec.Key)}}
		if _, err := lookback.ParseQuery(same); err == nil && utf8.Valid(rec.Key) && len(rec.Key) > 0 {
			b.KeyLink = "/events?" + same.Encode()
		}
	}
	for _, h := range rec.Headers {
		row := headerRow{Key: showBytes([]byte(h.Key), 1<<20), Value: string(h.Value)}
		if !utf8.Valid(h.Value) {
			row.Value, row.Base64 = base64.StdEncoding.EncodeToString(h.Value), true
		}
		b.Headers = append(b.Headers, row)
	}
	var pretty bytes.Buffer
	switch {
	case len(rec.Value) > 0 && utf8.Valid(rec.Value) && json.Indent(&pretty, rec.Value, "", "  ") == nil: // JSON text is UTF-8
		b.Payload, b.PayloadKind = pretty.String(), "JSON"
	case utf8.Valid(rec.Value):
		b.Payload, b.PayloadKind = string(rec.Value), "text"
	default:
		b.Payload, b.PayloadKind = base64.StdEncoding.EncodeToString(rec.Value), "base64"
	}
	return s.ui.render(w, r, http.StatusOK, "event", page{Title: "Event " + b.Coordinates, Nav: "events", Body: b})
}

func (s *Server) uiTopics(w http.ResponseWriter, r *http.Request) error {
	stats, err := s.archive.Topics(r.Context())
	if err != nil {
		return err
	}
	return s.ui.render(w, r, http.StatusOK, "topics", page{Title: "Topics", Nav: "topics", Body: stats})
}

type auditBody struct {
	Entries []lookback.AuditEntry
	NextURL string
	Query   lookback.AuditQuery
}

func (s *Server) uiAudit(w http.ResponseWriter, r *http.Request) error {
	q, entries, next, err := s.auditPage(r)
	if err != nil {
		return err
	}
	b := auditBody{Entries: entries, Query: q}
	if next != 0 {
		v := r.URL.Query()
		v.Set("before", strconv.FormatInt(next, 10))
		b.NextURL = "/audit?" + v.Encode()
	}
	return s.ui.render(w, r, http.StatusOK, "audit", page{Title: "Audit log", Nav: "audit", Body: b})
}
