package payments

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"time"
)

// trafficAccounts is how many accounts the generator opens and moves money
// between.
const trafficAccounts = 20

// Traffic drives the transfers API at rate events per second until ctx
// ends: it opens a few accounts, then creates transfers, settles them (one
// in ten fails) and now and then updates an account, each a call that
// publishes one event. A call that fails is logged by the service and
// skipped; the generator only stops with ctx.
func Traffic(ctx context.Context, transfersURL string, rate float64) error {
	if rate <= 0 {
		return nil
	}
	g := &generator{url: transfersURL, http: &http.Client{Timeout: 5 * time.Second}, rng: rand.New(rand.NewPCG(7, 11))}
	for len(g.accounts) < trafficAccounts {
		var a struct{ ID string }
		body := fmt.Sprintf(`{"holder": {"name": "Holder %d", "address": {"country": %q}}}`, len(g.accounts), []string{"DE", "FR", "GB", "US"}[len(g.accounts)%4])
		if err := g.call(ctx, http.MethodPost, "/accounts", body, &a); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("traffic: %w", err)
		}
		g.accounts = append(g.accounts, a.ID)
	}
	// Ticks of at least 10 ms, each carrying its share of the rate.
	interval := max(time.Duration(float64(time.Second)/rate), 10*time.Millisecond)
	perTick := rate * interval.Seconds()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var owed float64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for owed += perTick; owed >= 1 && ctx.Err() == nil; owed-- {
			g.step(ctx)
		}
	}
}

type generator struct {
	url      string
	http     *http.Client
	rng      *rand.Rand
	accounts []string
	pending  []string
	n        int
}

// step makes one call.
func (g *generator) step(ctx context.Context) {
	g.n++
	var err error
	switch {
	case g.n%10 == 0:
		id := g.accounts[g.rng.IntN(len(g.accounts))]
		err = g.call(ctx, http.MethodPatch, "/accounts/"+id, fmt.Sprintf(`{"preferences": {"language": %q}}`, []string{"de", "en", "fr"}[g.n%3]), nil)
	case len(g.pending) > 8 || (len(g.pending) > 0 && g.rng.IntN(2) == 0):
		id := g.pending[0]
		g.pending = g.pending[1:]
		verb := "/complete"
		if g.rng.IntN(10) == 0 {
			verb = "/fail"
		}
		err = g.call(ctx, http.MethodPost, "/transfers/"+id+verb, "", nil)
	default:
		from := g.rng.IntN(len(g.accounts))
		to := (from + 1 + g.rng.IntN(len(g.accounts)-1)) % len(g.accounts)
		var t struct{ ID string }
		body := fmt.Sprintf(`{"from": %q, "to": %q, "amount_minor": %d, "currency": %q}`,
			g.accounts[from], g.accounts[to], 100+g.rng.IntN(100000), []string{"EUR", "USD", "GBP"}[g.rng.IntN(3)])
		if err = g.call(ctx, http.MethodPost, "/transfers", body, &t); err == nil {
			g.pending = append(g.pending, t.ID)
		}
	}
	_ = err // the service logs its own failures; traffic goes on
}

func (g *generator) call(ctx context.Context, method, path, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, g.url+path, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
