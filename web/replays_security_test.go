package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
)

// TestReplaySecurityMatrix sends the replay and group routes a request from
// each kind of caller: reading wants a viewer, changing an operator. Every
// denied attempt and every operator request lands in the audit log, the
// changes with what they asked for.
func TestReplaySecurityMatrix(t *testing.T) {
	rf := newReplayFixture(t, "orders")
	rf.archivePast("orders", 6)
	rf.commit("billing", "orders", 0, 0)
	start := func(group string, rate float64) string {
		f, err := lookback.DecodeFilter([]byte(`{"topic": "orders"}`))
		if err != nil {
			t.Fatal(err)
		}
		j, err := rf.runner.Start(t.Context(), replay.Spec{Filter: f, Target: replay.Target{Group: group}, Rate: rate}, replay.Actor{Name: "setup"})
		if err != nil {
			t.Fatal(err)
		}
		return j.ID
	}
	done := start("done", 0)
	rf.waitJob(done, "done")
	// Slow enough to be running still when the operator's turn comes.
	slowAPI, slowUI := start("slow-api", 0.01), start("slow-ui", 0.01)

	type want map[string]int // caller → status
	reader := want{"none": 401, "wrong": 401, "viewer": 200, "operator": 200}
	changer := func(ok int) want { return want{"none": 401, "wrong": 401, "viewer": 403, "operator": ok} }
	uiReader := want{"none": 303, "wrong": 303, "viewer": 200, "operator": 200}
	uiChanger := func(ok int) want { return want{"none": 303, "wrong": 303, "viewer": 403, "operator": ok} }
	const form = "application/x-www-form-urlencoded"
	endpoints := []struct {
		method, path, body, contentType string
		ui                              bool
		want                            want
	}{
		{"GET", "/api/v1/replays", "", "", false, reader},
		{"GET", "/api/v1/replays/" + done, "", "", false, reader},
		{"POST", "/api/v1/replays", `{"filter": {"topic": "orders"}, "target": {"group": "billing"}, "dry_run": true}`, "", false, changer(200)},
		{"POST", "/api/v1/replays", `{"filter": {"topic": "orders"}, "target": {"group": "audited"}}`, "", false, changer(202)},
		{"DELETE", "/api/v1/replays/" + slowAPI, "", "", false, changer(200)},
		{"GET", "/api/v1/groups", "", "", false, reader},
		{"GET", "/api/v1/groups/billing", "", "", false, reader},
		{"POST", "/api/v1/groups/billing/offsets", `{"to_earliest": true, "dry_run": true}`, "", false, changer(200)},
		{"POST", "/api/v1/groups/billing/offsets", `{"to_latest": true}`, "", false, changer(200)},
		{"GET", "/replays", "", "", true, uiReader},
		{"GET", "/replays/" + done, "", "", true, uiReader},
		{"GET", "/groups", "", "", true, uiReader},
		{"GET", "/groups/billing", "", "", true, uiReader},
		{"POST", "/replays", "action=preview&topic=orders&target_kind=group&target=billing", form, true, uiChanger(200)},
		{"POST", "/replays/" + slowUI + "/cancel", "", form, true, uiChanger(303)},
		{"POST", "/groups/billing/offsets", "action=plan&to=earliest", form, true, uiChanger(200)},
	}
	changes := 0
	for _, ep := range endpoints {
		if ep.method != "GET" {
			changes++
		}
		for _, who := range callers {
			t.Run(ep.method+" "+ep.path+" as "+who, func(t *testing.T) {
				status, body := rf.send(ep.method, ep.path, strings.NewReader(ep.body), func(req *http.Request) {
					if ep.contentType != "" {
						req.Header.Set("Content-Type", ep.contentType)
					}
					authAs(req, who, ep.ui)
				})
				checkAnswer(t, status, ep.want[who], body, ep.ui)
			})
		}
	}

	entries, err := rf.audit.List(t.Context(), lookbackAuditAll)
	if err != nil {
		t.Fatal(err)
	}
	var denied, viewerDenied, operator, operatorChanges int
	for _, e := range entries {
		if !strings.Contains(e.Action, " /") {
			continue // the runner's own record of a job's start and end
		}
		switch {
		case strings.HasPrefix(e.Outcome, "denied"):
			denied++
			if e.Actor == "vera" {
				viewerDenied++
			}
		case e.Actor == "otto":
			operator++
			if strings.HasPrefix(e.Action, "GET ") {
				continue
			}
			operatorChanges++
			var d map[string]any
			if err := json.Unmarshal([]byte(e.Detail), &d); err != nil || (d["filter"] == nil && d["plan"] == nil && d["job"] == nil) || e.Outcome != "ok" {
				t.Errorf("change %s %s audited as %s with %s: want ok, with its filter, plan or job", e.Action, e.Target, e.Outcome, e.Detail)
			}
		}
	}
	if want := 2*len(endpoints) + changes; denied != want {
		t.Errorf("%d denied attempts audited, want %d", denied, want)
	}
	if viewerDenied != changes {
		t.Errorf("%d attempts of the viewer to change audited, want %d", viewerDenied, changes)
	}
	if operator != len(endpoints) || operatorChanges != changes {
		t.Errorf("%d operator requests audited (%d changes), want %d (%d)", operator, operatorChanges, len(endpoints), changes)
	}
}
