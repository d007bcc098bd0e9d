package web_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/web"
)

// caller is one column of the security matrix: how a request
// authenticates.
type caller struct {
	name   string
	token  string
	cookie bool // the UI's way: the session cookie
}

var callers = []string{"none", "wrong", "viewer", "operator"}

func tokenOf(who string) string {
	return map[string]string{"none": "", "wrong": "wrong-secret-0123456789", "viewer": viewerToken, "operator": operatorToken}[who]
}

// authAs gives req who's credentials: the session cookie on a UI route,
// the bearer token on the API, nothing for "none".
func authAs(req *http.Request, who string, ui bool) {
	switch tok := tokenOf(who); {
	case tok == "":
	case ui:
		req.AddCookie(session(tok))
	default:
		req.Header.Set("Authorization", "Bearer "+tok)
	}
}

// checkAnswer fails t when status is not want, or an API error not JSON.
func checkAnswer(t *testing.T, status, want int, body []byte, ui bool) {
	t.Helper()
	if status != want {
		t.Fatalf("%d, want %d: %s", status, want, body)
	}
	if status >= 400 && !ui && !json.Valid(body) {
		t.Errorf("error is not JSON: %s", body)
	}
}

// TestSecurityMatrix sends every endpoint a request from each kind of
// caller and checks the status against the roles: public routes answer
// everyone, reading routes want a viewer, changing routes an operator.
// Denied requests and every operator request land in the audit log.
func TestSecurityMatrix(t *testing.T) {
	f := newFixture(t)
	f.append(cloudEvent("orders", 0, 1, "k", "t", "{}"))
	// Changing routes come with replays and offsets; this one stands for
	// them until then, through the same Handle every route goes through.
	f.server.Handle("POST", "/api/v1/test/change", web.Operator, func(w http.ResponseWriter, r *http.Request) error {
		w.WriteHeader(http.StatusAccepted)
		return nil
	})
	type want map[string]int // caller → status
	public := want{"none": 200, "wrong": 200, "viewer": 200, "operator": 200}
	reader := want{"none": 401, "wrong": 401, "viewer": 200, "operator": 200}
	changer := want{"none": 401, "wrong": 401, "viewer": 403, "operator": 202}
	uiReader := want{"none": 303, "wrong": 303, "viewer": 200, "operator": 200}
	for _, ep := range []struct {
		method, path string
		ui           bool
		want         want
	}{
		{"GET", "/healthz", false, public},
		{"GET", "/readyz", false, public},
		{"GET", "/metrics", false, public},
		{"GET", "/api/v1/events", false, reader},
		{"GET", "/api/v1/events/orders/0/1", false, reader},
		{"GET", "/api/v1/topics", false, reader},
		{"GET", "/api/v1/audit", false, reader},
		{"POST", "/api/v1/test/change", false, changer},
		{"GET", "/login", true, public},
		{"GET", "/static/style.css", true, public},
		{"GET", "/events", true, uiReader},
		{"GET", "/events/orders/0/1", true, uiReader},
		{"GET", "/topics", true, uiReader},
		{"GET", "/audit", true, uiReader},
	} {
		for _, who := range callers {
			t.Run(ep.method+" "+ep.path+" as "+who, func(t *testing.T) {
				status, body := f.send(ep.method, ep.path, nil, func(req *http.Request) { authAs(req, who, ep.ui) })
				checkAnswer(t, status, ep.want[who], body, ep.ui)
			})
		}
	}
	// A cookie never authenticates the API, nor a bearer token the UI.
	status, _ := f.send("GET", "/api/v1/events", nil, func(req *http.Request) {
		req.AddCookie(session(operatorToken))
	})
	if status != 401 {
		t.Errorf("API with the session cookie: %d, want 401", status)
	}
	if status, _ := f.do("GET", "/events", operatorToken, nil); status != 303 {
		t.Errorf("UI with a bearer token: %d, want 303 to sign in", status)
	}

	entries, err := f.audit.List(t.Context(), lookbackAuditAll)
	if err != nil {
		t.Fatal(err)
	}
	var denied, operator int
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e.Outcome, "denied"):
			denied++
		case e.Actor == "otto":
			operator++
		}
	}
	// none and wrong on 4 API + 4 UI reading routes and the changing one,
	// the viewer on the changing one, the two cross-checks.
	if wantDenied := 2*9 + 1 + 2; denied != wantDenied {
		t.Errorf("%d denied requests audited, want %d", denied, wantDenied)
	}
	if operator != 9 { // the operator on the 9 routes that take a token
		t.Errorf("%d operator requests audited, want 9", operator)
	}
}

// hostile are values that try to break out of a SQL string or a LIKE
// pattern, or to confuse a parser.
var hostile = []string{
	`' OR '1'='1`,
	`'; DROP TABLE lookback_events; --`,
	`" OR ""="`,
	`1; DELETE FROM lookback_events`,
	`%' OR ''='`,
	`%`, `_`, `*`,
	`\'`,
	`orders' UNION SELECT * FROM lookback_audit --`,
	`) OR (1=1`,
	"\u202e\u0000",
	strings.Repeat("A", 5000),
}

// TestHostileInput sends malformed and hostile values to every filter and
// coordinate: each answers 4xx or an empty page, never 500, and the
// archive's tables keep every row they had.
func TestHostileInput(t *testing.T) {
	f := newFixture(t)
	f.append(
		cloudEvent("orders", 0, 1, "acct-1", "order.created", `{"a":1}`, eventkit.Header{Key: "tenant", Value: []byte("t1")}),
		cloudEvent("payments", 1, 2, "acct-2", "payment.made", `{"b":2}`),
	)
	before := f.rows()

	check := func(t *testing.T, path string) {
		t.Helper()
		status, body := f.do("GET", path, viewerToken, nil)
		switch {
		case status >= 500:
			t.Fatalf("GET %s: %d %s", path, status, body)
		case status == 200 && strings.HasPrefix(path, "/api/v1/events?"):
			var page eventsPage
			if err := json.Unmarshal(body, &page); err != nil || len(page.Events) != 0 {
				t.Fatalf("GET %s: %d events, want none (%v)", path, len(page.Events), err)
			}
		case status >= 400 && !json.Valid(body):
			t.Fatalf("GET %s: %d, error not JSON: %s", path, status, body)
		}
	}
	params := []string{"topic", "partition", "key", "type", "id", "subject", "source", "from", "to", "limit", "cursor", "order"}
	for _, p := range params {
		for i, v := range hostile {
			t.Run(fmt.Sprintf("%s %d", p, i), func(t *testing.T) {
				check(t, "/api/v1/events?"+url.Values{p: {v}}.Encode())
			})
		}
	}
	for i, v := range hostile {
		t.Run(fmt.Sprintf("header %d", i), func(t *testing.T) {
			check(t, "/api/v1/events?"+url.Values{"header": {"tenant:" + v}}.Encode())
			check(t, "/api/v1/events?"+url.Values{"header": {v + ":t1"}}.Encode())
		})
		t.Run(fmt.Sprintf("coordinates %d", i), func(t *testing.T) {
			e := url.PathEscape(v)
			check(t, "/api/v1/events/"+e+"/0/1")
			check(t, "/api/v1/events/orders/"+e+"/1")
			check(t, "/api/v1/events/orders/0/"+e)
		})
		t.Run(fmt.Sprintf("audit %d", i), func(t *testing.T) {
			check(t, "/api/v1/audit?"+url.Values{"actor": {v}}.Encode())
			check(t, "/api/v1/audit?"+url.Values{"action": {v}}.Encode())
			check(t, "/api/v1/audit?"+url.Values{"before": {v}}.Encode())
		})
	}

	t.Run("malformed", func(t *testing.T) {
		for _, path := range []string{
			"/api/v1/events?limit=0", "/api/v1/events?limit=1001", "/api/v1/events?from=yesterday",
			"/api/v1/events?header=novalue", "/api/v1/events?partition=-1", "/api/v1/events?cursor=%ff",
			"/api/v1/events?nope=1", "/api/v1/events?topic=a&topic=b", "/api/v1/events?%zz",
			"/api/v1/events/orders/0/-1", "/api/v1/events/orders/x/1", "/api/v1/events/orders/0/99999999999999999999",
			"/api/v1/topics?x=1", "/api/v1/audit?limit=5000",
		} {
			if status, body := f.do("GET", path, viewerToken, nil); status != 400 || !json.Valid(body) {
				t.Errorf("GET %s: %d %s, want 400 with a JSON error", path, status, body)
			}
		}
		status, body := f.send("POST", "/api/v1/events", nil, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+viewerToken) })
		if status != 405 || !json.Valid(body) {
			t.Errorf("POST /api/v1/events: %d %s, want 405 with a JSON error", status, body)
		}
		if status, _ := f.do("GET", "/api/v1/nothing", viewerToken, nil); status != 404 {
			t.Errorf("unknown path: %d, want 404", status)
		}
	})

	t.Run("malformed forms", func(t *testing.T) {
		for _, c := range []struct{ contentType, body string }{
			{"application/x-www-form-urlencoded", "token=%zz"},
			{"application/x-www-form-urlencoded", "a=1;b=2"},
			{"multipart/form-data; boundary=\"", "x"},
		} {
			status, _ := f.send("POST", "/login", strings.NewReader(c.body), func(r *http.Request) { r.Header.Set("Content-Type", c.contentType) })
			if status != 400 {
				t.Errorf("sign-in form %q (%s): %d, want 400", c.body, c.contentType, status)
			}
		}
	})

	t.Run("oversized", func(t *testing.T) {
		big := strings.NewReader("token=" + strings.Repeat("x", 2<<20))
		status, _ := f.send("POST", "/login", big, func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		})
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("2 MiB sign-in form: %d, want 413", status)
		}
		if status, _ := f.do("GET", "/api/v1/events?key="+strings.Repeat("k", 2<<20), viewerToken, nil); status < 400 || status >= 500 {
			t.Errorf("2 MiB query string: %d, want 4xx", status)
		}
		status, _ = f.send("GET", "/api/v1/events", nil, func(r *http.Request) {
			r.Header.Set("Authorization", "Bearer "+strings.Repeat("t", 2<<20))
		})
		if status < 400 || status >= 500 {
			t.Errorf("2 MiB token: %d, want 4xx", status)
		}
	})

	if after := f.rows(); !reflect.DeepEqual(before, after) {
		t.Errorf("rows changed: before %v, after %v", before, after)
	}
	for _, table := range []string{"lookback_events", "lookback_audit"} {
		var n int
		if err := f.db.Reader().QueryRow("SELECT count(*) FROM sqlite_master WHERE name = ?", table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: %d, %v", table, n, err)
		}
	}
}
