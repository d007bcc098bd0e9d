package transfers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/examples/payments/transfers"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
)

func start(t *testing.T, cfg transfers.Config) (*transfers.Service, *kafka.Broker) {
	t.Helper()
	b := testkit.Broker(t, 2)
	cfg.Brokers = []string{b.Addr()}
	cfg.DBPath = filepath.Join(t.TempDir(), "transfers.db")
	cfg.ClientOpts = testkit.ClientOpts()
	cfg.Logger = testkit.Logger(t)
	svc, err := transfers.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Go(t, svc.Run)
	return svc, b
}

func call(t *testing.T, method, url, body string, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, resp.StatusCode, want, b)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: content type %q", method, url, resp.Header.Get("Content-Type"))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
}

const holder = `{"holder": {"name": "Ada Lovelace", "email": "ada@example.com", "address": {"city": "London", "country": "GB"}}, "nickname": "ada"}`

func TestAPIPublishesEveryChangeInOrder(t *testing.T) {
	svc, b := start(t, transfers.Config{AccountVersion: 1})
	var a, c transfers.Account
	call(t, "POST", svc.URL()+"/accounts", holder, http.StatusCreated, &a)
	call(t, "POST", svc.URL()+"/accounts", `{"holder": {"name": "Charles Babbage", "address": {"country": "GB"}}}`, http.StatusCreated, &c)
	if err := svc.SetAccountVersion(2); err != nil {
		t.Fatal(err)
	}
	call(t, "PATCH", svc.URL()+"/accounts/"+a.ID, `{"holder": {"name": "Augusta Ada King"}, "kyc": {"risk_tier": "low"}}`, http.StatusOK, &a)
	if a.Version != 2 || a.Holder.Name != "Augusta Ada King" || a.Holder.Email != "ada@example.com" || a.KYC.RiskTier != "low" {
		t.Fatalf("patched account %+v", a)
	}
	var tr events.Transfer
	call(t, "POST", svc.URL()+"/transfers", `{"from": "`+a.ID+`", "to": "`+c.ID+`", "amount_minor": 1250, "currency": "EUR"}`, http.StatusCreated, &tr)
	call(t, "POST", svc.URL()+"/transfers/"+tr.ID+"/complete", "", http.StatusOK, &tr)
	if tr.Status != events.StatusCompleted || tr.SettledAt == nil {
		t.Fatalf("completed transfer %+v", tr)
	}
	var got events.Transfer
	call(t, "GET", svc.URL()+"/transfers/"+tr.ID, "", http.StatusOK, &got)
	if got.Status != tr.Status || !got.SettledAt.Equal(*tr.SettledAt) || !got.CreatedAt.Equal(tr.CreatedAt) {
		t.Fatalf("GET transfer %+v, want %+v", got, tr)
	}

	testkit.Eventually(t, 10*time.Second, func() error {
		if n := svc.Stats().Published; n != 5 {
			return fmt.Errorf("published %d events, want 5", n)
		}
		return nil
	})
	var schemas []string
	for _, r := range testkit.ReadAll(t, b.Addr(), events.TopicAccounts) {
		ev := kafka.EventOf(r)
		if string(ev.Key) != ev.Subject || ev.Type != events.AccountUpdated || ev.DecodeErr != nil {
			t.Fatalf("account event %+v", ev)
		}
		s, _ := ev.Header(events.HeaderDataSchema)
		schemas = append(schemas, string(s))
		if string(ev.Key) == a.ID && string(s) == events.AccountSchemaV2 {
			var m map[string]any
			_ = json.Unmarshal(ev.Data, &m)
			if m["nickname"] != nil || m["holder"].(map[string]any)["legal_name"] != "Augusta Ada King" {
				t.Fatalf("v2 payload %s", ev.Data)
			}
		}
	}
	if len(schemas) != 3 {
		t.Fatalf("account events with schemas %v, want 3", schemas)
	}
	var types []string
	for _, r := range testkit.ReadAll(t, b.Addr(), events.TopicTransfers) {
		ev := kafka.EventOf(r)
		if string(ev.Key) != tr.ID {
			t.Fatalf("transfer event keyed %q", ev.Key)
		}
		types = append(types, ev.Type)
	}
	if len(types) != 2 || types[0] != events.TransferCreated || types[1] != events.TransferCompleted {
		t.Fatalf("transfer events %v", types)
	}
}

// A limit past 2^53 survives a patch of another field exactly: the
// account is merged as JSON numbers, not as float64.
func TestPatchKeepsLargeNumbersExact(t *testing.T) {
	svc, _ := start(t, transfers.Config{})
	var a transfers.Account
	call(t, "POST", svc.URL()+"/accounts", `{"holder": {"name": "x", "address": {"country": "GB"}}, "limits": {"daily_minor": 9223372036854775807}}`, http.StatusCreated, &a)
	call(t, "PATCH", svc.URL()+"/accounts/"+a.ID, `{"nickname": "n", "limits": {"monthly_minor": 9007199254740993}}`, http.StatusOK, &a)
	if a.Limits.DailyMinor != 9223372036854775807 || a.Limits.MonthlyMinor != 9007199254740993 {
		t.Fatalf("limits after a patch: %+v", a.Limits)
	}
}

func TestBadRequestsGet4xxJSON(t *testing.T) {
	svc, _ := start(t, transfers.Config{})
	var a, c transfers.Account
	call(t, "POST", svc.URL()+"/accounts", holder, http.StatusCreated, &a)
	call(t, "POST", svc.URL()+"/accounts", holder, http.StatusCreated, &c)
	var tr events.Transfer
	call(t, "POST", svc.URL()+"/transfers", `{"from": "`+a.ID+`", "to": "`+c.ID+`", "amount_minor": 5, "currency": "USD"}`, http.StatusCreated, &tr)
	call(t, "POST", svc.URL()+"/transfers/"+tr.ID+"/fail", `{"reason": "insufficient funds"}`, http.StatusOK, nil)
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"not JSON", "POST", "/accounts", `{`, 400},
		{"empty body", "POST", "/accounts", ``, 400},
		{"unknown field", "POST", "/accounts", `{"holder": {"name": "x", "address": {"country": "GB"}}, "colour": "red"}`, 400},
		{"no holder name", "POST", "/accounts", `{"holder": {"address": {"country": "GB"}}}`, 400},
		{"bad country", "POST", "/accounts", `{"holder": {"name": "x", "address": {"country": "Britain"}}}`, 400},
		{"client sets id", "POST", "/accounts", `{"id": "mine", "holder": {"name": "x", "address": {"country": "GB"}}}`, 400},
		{"unknown account", "GET", "/accounts/nope", ``, 404},
		{"patch version", "PATCH", "/accounts/" + a.ID, `{"version": 9}`, 400},
		{"patch wrong type", "PATCH", "/accounts/" + a.ID, `{"limits": {"daily_minor": "many"}}`, 400},
		{"patch unknown field", "PATCH", "/accounts/" + a.ID, `{"colour": "red"}`, 400},
		{"patch null", "PATCH", "/accounts/" + a.ID, `null`, 400}, // RFC 7396: the account would become null
		{"patch unknown account", "PATCH", "/accounts/nope", `{}`, 404},
		{"trailing data", "POST", "/accounts", `{"holder": {"name": "x", "address": {"country": "GB"}}}}`, 400},
		{"account too large once merged", "PATCH", "/accounts/" + a.ID, `{"metadata": {"k": "` + strings.Repeat("a", 300<<10) + `"}}`, 400},
		{"amount past the maximum", "POST", "/transfers", `{"from": "` + a.ID + `", "to": "` + c.ID + `", "amount_minor": 5000000000000000000, "currency": "EUR"}`, 400},
		{"negative amount", "POST", "/transfers", `{"from": "` + a.ID + `", "to": "` + c.ID + `", "amount_minor": -1, "currency": "EUR"}`, 400},
		{"amount as string", "POST", "/transfers", `{"from": "` + a.ID + `", "to": "` + c.ID + `", "amount_minor": "1", "currency": "EUR"}`, 400},
		{"bad currency", "POST", "/transfers", `{"from": "` + a.ID + `", "to": "` + c.ID + `", "amount_minor": 1, "currency": "euro"}`, 400},
		{"to self", "POST", "/transfers", `{"from": "` + a.ID + `", "to": "` + a.ID + `", "amount_minor": 1, "currency": "EUR"}`, 400},
		{"unknown payee", "POST", "/transfers", `{"from": "` + a.ID + `", "to": "nope", "amount_minor": 1, "currency": "EUR"}`, 422},
		{"settled already", "POST", "/transfers/" + tr.ID + "/complete", ``, 409},
		{"unknown transfer", "POST", "/transfers/nope/fail", ``, 404},
		{"completion with reason", "POST", "/transfers/" + tr.ID + "/complete", `{"reason": "x"}`, 400},
		{"too large", "POST", "/accounts", `{"nickname": "` + string(bytes.Repeat([]byte("a"), 2<<20)) + `"}`, 413},
		{"no route", "GET", "/nope", ``, 404},
		{"wrong method", "DELETE", "/accounts/" + a.ID, ``, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e struct{ Error string }
			call(t, tc.method, svc.URL()+tc.path, tc.body, tc.want, &e)
			if e.Error == "" {
				t.Fatal("no error message")
			}
		})
	}
}
