package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/eventkit/eventkit/lookback"
)

// Errors of the web layer itself; the archive's come from package lookback.
var (
	// ErrUnauthenticated: no token, or one the server does not know.
	ErrUnauthenticated = errors.New("missing or unknown token")
	// ErrForbidden: the token's role is too low for the route.
	ErrForbidden = errors.New("role too low")
	// ErrConflict: the request clashes with the state of what it names,
	// such as cancelling a finished job.
	ErrConflict = errors.New("conflict")
)

// statusOf is the one table from errors to HTTP statuses. Anything not in
// it is the server's fault: a 500 whose cause is logged, not shown.
func statusOf(err error) int {
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, lookback.ErrBadQuery), errors.As(err, &syntax), errors.As(err, &typ):
		return http.StatusBadRequest
	case errors.Is(err, ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, lookback.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, lookback.ErrStatusNotRunning):
		// Not yet connected to Kafka, or stopped: try again later.
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errorBody is the shape of every error the API answers.
type errorBody struct {
	Error string `json:"error"`
}

// fail answers err with its status: a JSON error for the API, an error page
// for the UI.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, ui bool, err error) {
	status := statusOf(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		if r.Context().Err() != nil {
			return // the client went away; nobody reads the answer
		}
		s.cfg.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "internal error"
	}
	if status == http.StatusUnauthorized && !ui {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventkit"`)
	}
	if ui {
		s.ui.errorPage(w, r, status, msg)
		return
	}
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// badRequest wraps a message as a malformed query's error.
func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", lookback.ErrBadQuery, fmt.Sprintf(format, args...))
}
