// Package web serves lookback over HTTP: the JSON API under /api/v1, the
// operator UI (server-rendered, every asset embedded, no external network),
// and /healthz, /readyz and /metrics.
//
//	tokens, err := web.LoadTokens("tokens.txt", os.Getenv("EVENTKIT_TOKENS"))
//	if err != nil {
//		return err
//	}
//	srv := web.New(archive, audit, tokens, web.Logger(log))
//	return http.ListenAndServe("127.0.0.1:8080", srv)
//
// The API takes "Authorization: Bearer TOKEN"; the UI signs in with the
// same tokens and keeps the token in an HttpOnly, SameSite=Strict cookie.
// A viewer reads; an operator also changes things. Every request of an
// operator and every denied request is written to the audit log under the
// token's name, never the token. Errors answer {"error": "…"} with the
// status of one table (see statusOf); malformed input is always a 4xx.
package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/eventkit/eventkit/lookback"
	"github.com/prometheus/client_golang/prometheus"
)

// Opt configures a Server.
type Opt interface{ apply(*cfg) }

type optFunc func(*cfg)

func (f optFunc) apply(c *cfg) { f(c) }

type cfg struct {
	log          *slog.Logger
	reg          prometheus.Registerer
	gatherer     prometheus.Gatherer
	ready        func(context.Context) error
	now          func() time.Time
	maxBody      int64
	listDataMax  int
	secureCookie bool
	status       StatusSource
	replays      replayDeps // see Replays and Admin, in replays.go
}

func defaultCfg() cfg {
	reg := prometheus.NewRegistry()
	return cfg{
		log:         slog.New(slog.DiscardHandler),
		reg:         reg,
		gatherer:    reg,
		ready:       func(context.Context) error { return nil },
		now:         time.Now,
		maxBody:     1 << 20,
		listDataMax: 4 << 10,
	}
}

// Logger sets the logger; the default discards.
func Logger(l *slog.Logger) Opt { return optFunc(func(c *cfg) { c.log = l }) }

// Metrics registers the server's metrics with reg and serves g on
// /metrics, so that one endpoint shows the whole process. The default is
// a private registry of the server's own.
func Metrics(reg prometheus.Registerer, g prometheus.Gatherer) Opt {
	return optFunc(func(c *cfg) { c.reg, c.gatherer = reg, g })
}

// Ready sets the check /readyz runs: nil is ready, an error says why not.
// The default is always ready.
func Ready(f func(context.Context) error) Opt { return optFunc(func(c *cfg) { c.ready = f }) }

// Now sets the clock of the audit log; the default is time.Now.
func Now(f func() time.Time) Opt { return optFunc(func(c *cfg) { c.now = f }) }

// MaxBodyBytes bounds a request body; a larger one answers 413. The
// default is 1 MiB.
func MaxBodyBytes(n int64) Opt { return optFunc(func(c *cfg) { c.maxBody = n }) }

// ListDataMax bounds the payload of each event in a list; a larger one is
// cut to this many bytes and marked "data_truncated". The detail of one
// event is always whole. The default is 4 KiB.
func ListDataMax(n int) Opt { return optFunc(func(c *cfg) { c.listDataMax = n }) }

// SecureCookie marks the UI's cookie Secure, for a server behind TLS. The
// default leaves it off so that http://127.0.0.1 works in development.
func SecureCookie(on bool) Opt { return optFunc(func(c *cfg) { c.secureCookie = on }) }

// Server is the lookback HTTP handler.
type Server struct {
	cfg     cfg
	archive lookback.Archive
	audit   lookback.AuditLog
	tokens  *Tokens
	mux     *http.ServeMux
	metrics *metrics
	ui      *ui
	// crossOrigin refuses the UI's forms posted from another site's page
	// (Sec-Fetch-Site, Origin), on top of the SameSite cookie.
	crossOrigin *http.CrossOriginProtection
}

// New returns a server over archive and audit that accepts tokens.
func New(archive lookback.Archive, audit lookback.AuditLog, tokens *Tokens, opts ...Opt) *Server {
	c := defaultCfg()
	for _, o := range opts {
		o.apply(&c)
	}
	s := &Server{cfg: c, archive: archive, audit: audit, tokens: tokens, mux: http.NewServeMux()}
	s.metrics = newMetrics(c.reg, c.gatherer)
	s.ui = newUI()
	s.crossOrigin = http.NewCrossOriginProtection()
	s.crossOrigin.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, true, fmt.Errorf("%w: cross-origin request refused", ErrForbidden))
	}))
	for _, rt := range append(s.routes(), s.statusRoutes()...) {
		s.handle(rt)
	}
	s.mountReplays()
	return s
}

// HandlerFunc serves one API route. An error it returns is answered with
// the status of the one error table: wrap lookback.ErrBadQuery for a 400,
// ErrConflict for a 409, and so on.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handle adds an API route: method and pattern as http.ServeMux takes them
// (pattern without the method), served to tokens of at least role, with
// the authentication, audit, metrics and errors of every other route.
func (s *Server) Handle(method, pattern string, role Role, h HandlerFunc) {
	s.handle(route{method: method, pattern: pattern, role: role, h: h})
}

// route is one row of the route table: every endpoint says here which role
// it needs and whether it belongs to the UI (cookie sign-in, HTML pages) or
// the API (bearer token, JSON).
type route struct {
	method, pattern string
	role            Role
	ui              bool
	h               HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{method: "GET", pattern: "/healthz", role: Public, h: s.healthz},
		{method: "GET", pattern: "/readyz", role: Public, h: s.readyz},
		{method: "GET", pattern: "/metrics", role: Public, h: s.serveMetrics},

		{method: "GET", pattern: "/api/v1/events", role: Viewer, h: s.listEvents},
		{method: "GET", pattern: "/api/v1/events/{topic}/{partition}/{offset}", role: Viewer, h: s.getEvent},
		{method: "GET", pattern: "/api/v1/topics", role: Viewer, h: s.listTopics},
		{method: "GET", pattern: "/api/v1/audit", role: Viewer, h: s.listAudit},

		{method: "GET", pattern: "/{$}", role: Public, ui: true, h: s.uiRoot},
		{method: "GET", pattern: "/static/", role: Public, ui: true, h: s.uiStatic},
		{method: "GET", pattern: "/login", role: Public, ui: true, h: s.uiLoginForm},
		{method: "POST", pattern: "/login", role: Public, ui: true, h: s.uiLogin},
		{method: "POST", pattern: "/logout", role: Public, ui: true, h: s.uiLogout},
		{method: "GET", pattern: "/events", role: Viewer, ui: true, h: s.uiEvents},
		{method: "GET", pattern: "/events/{topic}/{partition}/{offset}", role: Viewer, ui: true, h: s.uiEvent},
		{method: "GET", pattern: "/topics", role: Viewer, ui: true, h: s.uiTopics},
		{method: "GET", pattern: "/audit", role: Viewer, ui: true, h: s.uiAudit},
	}
}

// handle mounts rt with, from the outside in: metrics, panic recovery,
// authentication and the audit log, and the error table.
func (s *Server) handle(rt route) {
	pattern := rt.method + " " + rt.pattern
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := rt.h(w, r); err != nil {
			s.fail(w, r, rt.ui, err)
		}
	})
	h = s.authenticate(rt, h)
	if rt.ui && rt.method != "GET" {
		h = s.crossOrigin.Handler(h)
	}
	h = s.recoverPanics(rt.ui, h)
	s.mux.Handle(pattern, s.metrics.instrument(rt.pattern, h))
}

// ServeHTTP serves r.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer") // URLs carry filters: keys, ids
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.maxBody)
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.unmatched(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// unmatched answers what no route serves with the mux's own status (404,
// or 405 with Allow) as a JSON error instead of its plain text.
func (s *Server) unmatched(w http.ResponseWriter, r *http.Request) {
	h, _ := s.mux.Handler(r)
	rec := &statusOnly{header: http.Header{}}
	h.ServeHTTP(rec, r)
	if allow := rec.header.Get("Allow"); allow != "" {
		w.Header().Set("Allow", allow)
	}
	status := rec.status
	if status == 0 || status < 400 {
		status = http.StatusNotFound
	}
	s.metrics.count("unmatched", r.Method, status)
	writeJSON(w, status, errorBody{Error: strings.ToLower(http.StatusText(status))})
}

// statusOnly keeps the status and headers a handler writes, and drops the
// body.
type statusOnly struct {
	header http.Header
	status int
}

func (w *statusOnly) Header() http.Header         { return w.header }
func (w *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (w *statusOnly) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.cfg.ready(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": err.Error()})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) error {
	s.metrics.handler.ServeHTTP(w, r)
	return nil
}
