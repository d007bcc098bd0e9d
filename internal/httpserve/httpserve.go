// Package httpserve runs an http.Server whose lifetime its owner controls
// and which, once stopped, runs no handler any more: the owner may then
// close what the handlers use (a database, a Kafka client).
//
//	srv := httpserve.Start(ln, handler, logger)
//	defer srv.Stop() // returns once every handler has returned
package httpserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// grace is how long Stop lets requests in flight finish before it cancels
// their contexts and closes their connections.
const grace = 5 * time.Second

// Server is an http.Server serving on a listener.
type Server struct {
	srv  *http.Server
	done chan struct{}
	err  error // of Serve, once done is closed
	// base is the parent of every request's context: Stop cancels it once
	// the grace is over, for the handlers whose connection's close would
	// not (one that has not read its request's body).
	base       context.Context
	cancelBase context.CancelFunc

	mu       sync.RWMutex // handlers hold it shared to join running; stop exclusively
	stopping bool
	running  sync.WaitGroup
	once     sync.Once
}

// Start serves h on ln until Stop. A request that comes while Stop runs
// is answered 503.
func Start(ln net.Listener, h http.Handler, log *slog.Logger) *Server {
	s := &Server{done: make(chan struct{})}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	s.srv = &http.Server{
		Handler:           s.track(h),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return s.base },
	}
	if log != nil {
		s.srv.ErrorLog = slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	}
	go func() {
		defer close(s.done)
		s.err = s.srv.Serve(ln)
	}()
	return s
}

// track counts the handlers running, so that Stop can wait for them.
func (s *Server) track(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.RLock()
		if s.stopping {
			s.mu.RUnlock()
			w.Header().Set("Connection", "close")
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		s.running.Add(1)
		s.mu.RUnlock()
		defer s.running.Done()
		h.ServeHTTP(w, r)
	})
}

// Stop shuts the server down: it stops accepting, lets requests in flight
// finish for up to 5 s, then cancels their contexts, closes their
// connections and waits for every handler to return. It returns Serve's
// error, nil when Stop ended it. It is idempotent.
func (s *Server) Stop() error {
	s.once.Do(func() {
		defer s.cancelBase()
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if s.srv.Shutdown(ctx) != nil {
			s.cancelBase()
			_ = s.srv.Close()
		}
		<-s.done
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		s.running.Wait()
	})
	if errors.Is(s.err, http.ErrServerClosed) {
		return nil
	}
	return s.err
}

// Serve serves h on ln until ctx ends, then stops as Stop does. It returns
// Serve's error when the server failed by itself.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	s := Start(ln, h, log)
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	return s.Stop()
}
