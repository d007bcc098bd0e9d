package web

import (
	"context"
	"net/http"
	"sync"
)

// auditNotes is what a changing handler adds to its request's audit entry:
// the filter or plan, the counts. The middleware writes the entry after
// the handler has answered, so the handler leaves its notes here.
type auditNotes struct {
	mu sync.Mutex
	m  map[string]any
}

type auditNotesKey struct{}

func withAuditNotes(ctx context.Context) context.Context {
	return context.WithValue(ctx, auditNotesKey{}, &auditNotes{m: make(map[string]any)})
}

// noteAudit adds key to the detail of r's audit entry. Requests that are
// not audited (a viewer's reads) carry no notes, and it does nothing.
func noteAudit(r *http.Request, key string, v any) {
	n, _ := r.Context().Value(auditNotesKey{}).(*auditNotes)
	if n == nil {
		return
	}
	n.mu.Lock()
	n.m[key] = v
	n.mu.Unlock()
}

// auditDetail is the detail of an audit entry: where the request came from
// and the handler's notes.
func auditDetail(ctx context.Context, remote string) map[string]any {
	d := map[string]any{"remote": remote}
	if n, _ := ctx.Value(auditNotesKey{}).(*auditNotes); n != nil {
		n.mu.Lock()
		for k, v := range n.m {
			d[k] = v
		}
		n.mu.Unlock()
	}
	return d
}
