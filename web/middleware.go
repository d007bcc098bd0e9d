package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/eventkit/eventkit/lookback"
)

// sessionCookie holds the UI's token. It is HttpOnly (no script reads it)
// and SameSite=Strict (no other site's page sends it), so a form on another
// site cannot act with it.
const sessionCookie = "eventkit_session"

// sessionValue is the session cookie's value for token: base64, because a
// cookie cannot hold every byte a token may (';', '"', a backslash, non-ASCII), and
// net/http drops the ones it cannot.
func sessionValue(token string) string { return base64.RawURLEncoding.EncodeToString([]byte(token)) }

// principal is who a request comes from.
type principal struct {
	name string
	role Role
}

type principalKey struct{}

func principalOf(ctx context.Context) principal {
	p, _ := ctx.Value(principalKey{}).(principal)
	return p
}

// credential returns the secret a request presents: the bearer token for
// the API, the session cookie for the UI. Each takes only its own, so a
// browser's cookie never authenticates an API call.
func credential(r *http.Request, ui bool) string {
	if ui {
		c, err := r.Cookie(sessionCookie)
		if err != nil {
			return ""
		}
		secret, err := base64.RawURLEncoding.DecodeString(c.Value)
		if err != nil {
			return ""
		}
		return string(secret)
	}
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(secret)
}

// authenticate lets through requests whose token has rt's role, audits
// every request of an operator and every denied one, and refuses the rest:
// 401 (the UI sends the browser to its sign-in page instead), 403.
func (s *Server) authenticate(rt route, next http.Handler) http.Handler {
	if rt.role == Public {
		return next
	}
	action := rt.method + " " + rt.pattern
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := credential(r, rt.ui)
		name, role, ok := s.tokens.lookup(secret)
		switch {
		case !ok:
			reason := "denied: no token"
			if secret != "" {
				reason = "denied: unknown token"
			}
			s.record(r, principal{}, action, reason)
			if rt.ui {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.fail(w, r, rt.ui, ErrUnauthenticated)
		case role < rt.role:
			p := principal{name: name, role: role}
			s.record(r, p, action, "denied: role "+role.String())
			s.fail(w, r, rt.ui, fmt.Errorf("%w: %s %s takes the %s role, %s has %s", ErrForbidden, rt.method, rt.pattern, rt.role, name, role))
		default:
			p := principal{name: name, role: role}
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
			if role < Operator {
				next.ServeHTTP(w, r)
				return
			}
			r = r.WithContext(withAuditNotes(r.Context()))
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			s.record(r, p, action, outcome(sw.status))
		}
	})
}

func outcome(status int) string {
	if status == 0 || status < 400 {
		return "ok"
	}
	return "error: " + strconv.Itoa(status)
}

// auditTimeout bounds one write to the audit log.
const auditTimeout = 5 * time.Second

// record writes one audit entry. It outlives a client that hangs up: the
// request happened either way.
func (s *Server) record(r *http.Request, p principal, action, outcome string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	actor := p.name
	if actor == "" {
		actor = "anonymous"
	}
	target := r.URL.RequestURI()
	if len(target) > 2048 {
		target = target[:2048]
	}
	detail, _ := json.Marshal(auditDetail(r.Context(), r.RemoteAddr))
	e := lookback.AuditEntry{
		At: s.cfg.now().UTC(), Actor: actor, Role: p.role.String(),
		Action: action, Target: target, Detail: string(detail), Outcome: outcome,
	}
	if _, err := s.audit.Record(ctx, e); err != nil {
		s.cfg.log.Error("audit log", "err", err, "actor", actor, "action", action, "outcome", outcome)
	}
}

// statusWriter keeps the status a handler answers with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// errPanic is what a recovered panic answers: a 500, never the panic value.
var errPanic = errors.New("handler panicked")

// recoverPanics turns a panic in a handler into a 500 and a log line with
// the stack, so that one bad request does not take the server down.
func (s *Server) recoverPanics(ui bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v) // the handler's way to abort the response on purpose
			}
			s.cfg.log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			s.fail(w, r, ui, errPanic)
		}()
		next.ServeHTTP(w, r)
	})
}
