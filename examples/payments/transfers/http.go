package transfers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/eventkit/eventkit/examples/payments/events"
	"github.com/eventkit/eventkit/examples/payments/internal/web"
	"github.com/eventkit/eventkit/internal/strictjson"
	"github.com/google/uuid"
)

func (s *Service) routes() http.Handler {
	mux := web.NewMux(s.log)
	mux.Route("POST /accounts", s.createAccount)
	mux.Route("GET /accounts/{id}", s.getAccount)
	mux.Route("PATCH /accounts/{id}", s.patchAccount)
	mux.Route("POST /transfers", s.createTransfer)
	mux.Route("GET /transfers/{id}", s.getTransfer)
	mux.Route("POST /transfers/{id}/complete", s.settle(events.StatusCompleted))
	mux.Route("POST /transfers/{id}/fail", s.settle(events.StatusFailed))
	return mux
}

// now is the service's clock at the precision the store keeps, so that an
// answer and a later read of the same object agree.
func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Microsecond) }

// readOnly are the fields of an account that the service sets, never a
// client.
var readOnly = []string{"id", "version", "created_at", "updated_at"}

func (s *Service) createAccount(w http.ResponseWriter, r *http.Request) error {
	var a Account
	if err := web.Decode(w, r, &a); err != nil {
		return err
	}
	if a.ID != "" || a.Version != 0 || !a.CreatedAt.IsZero() || !a.UpdatedAt.IsZero() {
		return web.Errorf(http.StatusBadRequest, "id, version, created_at and updated_at are set by the service")
	}
	if a.Status == "" {
		a.Status = "active"
	}
	if err := a.validate(); err != nil {
		return err
	}
	a.ID = uuid.Must(uuid.NewV7()).String()
	a.Version = 1
	a.CreatedAt = s.now()
	a.UpdatedAt = a.CreatedAt
	err := s.update(r.Context(), func(tx Tx) error {
		if err := tx.PutAccount(r.Context(), &a); err != nil {
			return err
		}
		return s.enqueueAccount(r.Context(), tx, &a)
	})
	if err != nil {
		return err
	}
	web.JSON(w, http.StatusCreated, &a)
	return nil
}

func (s *Service) getAccount(w http.ResponseWriter, r *http.Request) error {
	a, err := s.store.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		return notFound(err)
	}
	web.JSON(w, http.StatusOK, a)
	return nil
}

// patchAccount applies a JSON merge patch (RFC 7396) to the account.
func (s *Service) patchAccount(w http.ResponseWriter, r *http.Request) error {
	var patch map[string]any
	if err := web.Decode(w, r, &patch); err != nil {
		return err
	}
	if patch == nil { // null: under RFC 7396 it replaces the account with null
		return web.Errorf(http.StatusBadRequest, "patch: want a JSON object")
	}
	for _, f := range readOnly {
		if _, ok := patch[f]; ok {
			return web.Errorf(http.StatusBadRequest, "%s is set by the service", f)
		}
	}
	var a *Account
	err := s.update(r.Context(), func(tx Tx) error {
		var err error
		if a, err = tx.Account(r.Context(), r.PathValue("id")); err != nil {
			return notFound(err)
		}
		if a, err = mergePatch(a, patch); err != nil {
			return err
		}
		if err := a.validate(); err != nil {
			return err
		}
		a.Version++
		a.UpdatedAt = s.now()
		if err := tx.PutAccount(r.Context(), a); err != nil {
			return err
		}
		return s.enqueueAccount(r.Context(), tx, a)
	})
	if err != nil {
		return err
	}
	web.JSON(w, http.StatusOK, a)
	return nil
}

// mergePatch returns a with patch merged in: objects merge, null deletes,
// anything else replaces. The result must still be an account.
func mergePatch(a *Account, patch map[string]any) (*Account, error) {
	b, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	doc, err := web.DecodeDoc(b)
	if err != nil {
		return nil, err
	}
	merge(doc, patch)
	if b, err = json.Marshal(doc); err != nil {
		return nil, err
	}
	out := new(Account)
	if err := strictjson.Decode(bytes.NewReader(b), out); err != nil {
		return nil, web.Errorf(http.StatusBadRequest, "patch does not fit an account: %v", err)
	}
	return out, nil
}

func merge(doc, patch map[string]any) {
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			sub, ok := doc[k].(map[string]any)
			if !ok {
				sub = map[string]any{}
			}
			merge(sub, v)
			doc[k] = sub
		default:
			doc[k] = v
		}
	}
}

func (s *Service) enqueueAccount(ctx context.Context, tx Tx, a *Account) error {
	data, schema, err := accountPayload(a, int(s.version.Load()))
	if err != nil {
		return err
	}
	// Each change of an account is published whole; one larger than a
	// Kafka batch could never be, and would hold up every event after it.
	if len(data) > maxAccountBytes {
		return web.Errorf(http.StatusBadRequest, "account: %d bytes once encoded, at most %d", len(data), maxAccountBytes)
	}
	return tx.Enqueue(ctx, Message{
		ID: uuid.Must(uuid.NewV7()).String(), Topic: events.TopicAccounts, Key: a.ID,
		Type: events.AccountUpdated, Schema: schema, Time: a.UpdatedAt, Data: data,
	})
}

type transferRequest struct {
	From        string `json:"from"`
	To          string `json:"to"`
	AmountMinor int64  `json:"amount_minor"`
	Currency    string `json:"currency"`
}

func (s *Service) createTransfer(w http.ResponseWriter, r *http.Request) error {
	var req transferRequest
	if err := web.Decode(w, r, &req); err != nil {
		return err
	}
	switch {
	case req.From == "" || req.To == "":
		return web.Errorf(http.StatusBadRequest, "from and to are required")
	case req.From == req.To:
		return web.Errorf(http.StatusBadRequest, "from and to must differ")
	case req.AmountMinor <= 0 || req.AmountMinor > events.MaxAmountMinor:
		return web.Errorf(http.StatusBadRequest, "amount_minor %d: want a positive number of minor units, at most %d", req.AmountMinor, int64(events.MaxAmountMinor))
	case !currencyRe.MatchString(req.Currency):
		return web.Errorf(http.StatusBadRequest, "currency %q: want an ISO 4217 code such as EUR", req.Currency)
	}
	t := &events.Transfer{
		ID: uuid.Must(uuid.NewV7()).String(), From: req.From, To: req.To,
		AmountMinor: req.AmountMinor, Currency: req.Currency, Status: events.StatusPending, CreatedAt: s.now(),
	}
	err := s.update(r.Context(), func(tx Tx) error {
		for _, id := range []string{t.From, t.To} {
			a, err := tx.Account(r.Context(), id)
			if errors.Is(err, ErrNotFound) {
				return web.Errorf(http.StatusUnprocessableEntity, "account %s does not exist", id)
			}
			if err != nil {
				return err
			}
			if a.Status != "active" {
				return web.Errorf(http.StatusConflict, "account %s is %s", id, a.Status)
			}
		}
		return s.putTransfer(r.Context(), tx, t, events.TransferCreated)
	})
	if err != nil {
		return err
	}
	web.JSON(w, http.StatusCreated, t)
	return nil
}

func (s *Service) getTransfer(w http.ResponseWriter, r *http.Request) error {
	t, err := s.store.Transfer(r.Context(), r.PathValue("id"))
	if err != nil {
		return notFound(err)
	}
	web.JSON(w, http.StatusOK, t)
	return nil
}

type settleRequest struct {
	Reason string `json:"reason"`
}

// settle completes or fails a pending transfer. The body is optional; a
// failure may give a reason.
func (s *Service) settle(status string) func(w http.ResponseWriter, r *http.Request) error {
	typ := events.TransferCompleted
	if status == events.StatusFailed {
		typ = events.TransferFailed
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		var req settleRequest
		if err := web.Decode(w, r, &req); err != nil && !web.IsEmptyBody(err) {
			return err
		}
		if status == events.StatusCompleted && req.Reason != "" {
			return web.Errorf(http.StatusBadRequest, "a completed transfer has no reason")
		}
		var t *events.Transfer
		err := s.update(r.Context(), func(tx Tx) error {
			var err error
			if t, err = tx.Transfer(r.Context(), r.PathValue("id")); err != nil {
				return notFound(err)
			}
			if t.Status != events.StatusPending {
				return web.Errorf(http.StatusConflict, "transfer %s is %s already", t.ID, t.Status)
			}
			at := s.now()
			t.Status, t.Reason, t.SettledAt = status, req.Reason, &at
			return s.putTransfer(r.Context(), tx, t, typ)
		})
		if err != nil {
			return err
		}
		web.JSON(w, http.StatusOK, t)
		return nil
	}
}

func (s *Service) putTransfer(ctx context.Context, tx Tx, t *events.Transfer, typ string) error {
	if err := tx.PutTransfer(ctx, t); err != nil {
		return err
	}
	data, err := json.Marshal(t)
	if err != nil {
		return err
	}
	at := t.CreatedAt
	if t.SettledAt != nil {
		at = *t.SettledAt
	}
	return tx.Enqueue(ctx, Message{
		ID: uuid.Must(uuid.NewV7()).String(), Topic: events.TopicTransfers, Key: t.ID,
		Type: typ, Time: at, Data: data,
	})
}

// update runs fn in a store transaction and wakes the publisher once it
// committed.
func (s *Service) update(ctx context.Context, fn func(Tx) error) error {
	if err := s.store.Update(ctx, fn); err != nil {
		return err
	}
	s.notify()
	return nil
}

func notFound(err error) error {
	if errors.Is(err, ErrNotFound) {
		return web.Errorf(http.StatusNotFound, "%v", err)
	}
	return fmt.Errorf("lookup: %w", err)
}
