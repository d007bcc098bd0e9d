// Package web holds what the payments services share on the HTTP side: JSON
// answers, JSON errors with a 4xx status that says what was wrong, and
// bodies read with a size limit.
package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"

	"github.com/eventkit/eventkit/internal/strictjson"
)

// MaxBody bounds a request body: every request of the payments API is a
// small JSON document.
const MaxBody = 1 << 20

// Error is an error with the HTTP status it answers with.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Errorf returns an [*Error] with status and a formatted message.
func Errorf(status int, format string, args ...any) error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	// Encoded before the status goes out: a value that does not encode (a
	// time past year 9999) answers 500, not a 200 with an empty body.
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error: the answer does not encode as JSON"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Fail answers err as {"error": "..."}: an [*Error] with its own status,
// anything else as a 500 whose cause is logged, never shown.
func Fail(w http.ResponseWriter, log *slog.Logger, err error) {
	var e *Error
	if errors.As(err, &e) {
		JSON(w, e.Status, map[string]string{"error": e.Msg})
		return
	}
	log.Error("request failed", "error", err)
	JSON(w, http.StatusInternalServerError, map[string]string{"error": "internal error"})
}

// Decode reads a JSON body into v, refusing unknown fields, names in
// another case or given twice, trailing data and bodies over [MaxBody],
// each with a 4xx [*Error]. Numbers in an `any` stay json.Number: a float64
// would round an int64 past 2^53.
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	err := strictjson.Decode(http.MaxBytesReader(w, r.Body, MaxBody), v)
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return Errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", MaxBody)
	case errors.Is(err, io.EOF):
		return errEmptyBody
	}
	return Errorf(http.StatusBadRequest, "bad JSON body: %v", err)
}

var errEmptyBody = Errorf(http.StatusBadRequest, "empty body: want a JSON object")

// IsEmptyBody reports whether err is Decode's answer to an empty body.
func IsEmptyBody(err error) bool { return err == errEmptyBody }

// DecodeDoc reads a JSON object into a map whose numbers stay json.Number,
// so that an int64 round-trips exactly.
func DecodeDoc(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// Handle adapts a handler that returns an error to http.HandlerFunc, and
// turns a panic into a 500 so that one bad request never takes the
// service down.
func Handle(log *slog.Logger, h func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				Fail(w, log, fmt.Errorf("panic: %v", p))
			}
		}()
		if err := h(w, r); err != nil {
			Fail(w, log, err)
		}
	}
}

// Mux routes requests to handlers that return errors, answers GET /healthz,
// and answers a JSON 404 for everything it does not route.
type Mux struct {
	*http.ServeMux
	log *slog.Logger
}

// NewMux returns a Mux whose failed requests are logged to log.
func NewMux(log *slog.Logger) *Mux {
	m := &Mux{ServeMux: http.NewServeMux(), log: log}
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	m.HandleFunc("/", NotFound)
	return m
}

// Route serves pattern with h, through [Handle].
func (m *Mux) Route(pattern string, h func(w http.ResponseWriter, r *http.Request) error) {
	m.Handle(pattern, Handle(m.log, h))
}

// NotFound answers every unrouted path with a JSON 404.
func NotFound(w http.ResponseWriter, r *http.Request) {
	JSON(w, http.StatusNotFound, map[string]string{"error": "no route for " + r.Method + " " + r.URL.Path})
}

// Listen binds addr ("127.0.0.1:0" when empty) so that the address is known
// before the server runs.
func Listen(addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	return ln, nil
}
