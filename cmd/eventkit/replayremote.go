package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
	"github.com/eventkit/eventkit/replay"
)

// jobRunner is what the replay command drives: a replay.Runner in this
// process (--db) or a lookback service through its API (--lookback).
type jobRunner interface {
	DryRun(ctx context.Context, spec replay.Spec) (int64, []lookback.Record, error)
	Start(ctx context.Context, spec replay.Spec) (replay.Job, error)
	Get(ctx context.Context, id string) (replay.Job, error)
	// Cancel fails matching replay.ErrJobFinished once the job has ended.
	Cancel(ctx context.Context, id string) (replay.Job, error)
}

// localRunner runs jobs in this process, on the lookback database.
type localRunner struct {
	r     *replay.Runner
	actor replay.Actor
}

func (l localRunner) DryRun(ctx context.Context, spec replay.Spec) (int64, []lookback.Record, error) {
	return l.r.DryRun(ctx, spec)
}

func (l localRunner) Start(ctx context.Context, spec replay.Spec) (replay.Job, error) {
	<-l.r.Ready()
	return l.r.Start(ctx, spec, l.actor)
}

func (l localRunner) Get(ctx context.Context, id string) (replay.Job, error) { return l.r.Get(ctx, id) }

func (l localRunner) Cancel(ctx context.Context, id string) (replay.Job, error) {
	return l.r.Cancel(ctx, id, l.actor)
}

// lookbackAPI has a lookback service run the job, through POST, GET and
// DELETE /api/v1/replays with an operator's token: the job then runs,
// resumes after a restart and is audited where lookback runs, under the
// token's name.
type lookbackAPI struct {
	base  *url.URL
	token string
	hc    *http.Client
}

func newLookbackAPI(base, token string) (*lookbackAPI, error) {
	u, err := url.Parse(strings.TrimSuffix(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--lookback %q: want the service's address, http://HOST:PORT", base)
	}
	if token == "" {
		return nil, errors.New("--lookback needs an operator's token: set --token or EVENTKIT_TOKEN")
	}
	// Each request is short; the job's progress is polled.
	return &lookbackAPI{base: u, token: token, hc: &http.Client{Timeout: 30 * time.Second}}, nil
}

func (a *lookbackAPI) DryRun(ctx context.Context, spec replay.Spec) (int64, []lookback.Record, error) {
	var out struct {
		Matched int64             `json:"matched"`
		Sample  []json.RawMessage `json:"sample"`
	}
	req, err := replay.RequestOf(spec)
	if err != nil {
		return 0, nil, fmt.Errorf("--filter: %w", err)
	}
	if err := a.do(ctx, http.MethodPost, "/api/v1/replays", req, http.StatusOK, &out); err != nil {
		return 0, nil, err
	}
	sample := make([]lookback.Record, 0, len(out.Sample))
	for _, raw := range out.Sample {
		r, err := sampleRecord(raw)
		if err != nil {
			return 0, nil, fmt.Errorf("lookback: a sample event: %w", err)
		}
		sample = append(sample, r)
	}
	return out.Matched, sample, nil
}

// sampleRecord reads the fields a dry run prints from an event of the API.
func sampleRecord(raw json.RawMessage) (lookback.Record, error) {
	var ev eventkit.Event // its JSON decoding undoes key_encoding
	if err := json.Unmarshal(raw, &ev); err != nil {
		return lookback.Record{}, err
	}
	return lookback.Record{Topic: ev.Topic, Partition: ev.Partition, Offset: ev.Offset, Timestamp: ev.Timestamp,
		Key: ev.Key, ID: ev.ID, Type: ev.Type}, nil
}

func (a *lookbackAPI) Start(ctx context.Context, spec replay.Spec) (replay.Job, error) {
	req, err := replay.RequestOf(spec)
	if err != nil {
		return replay.Job{}, fmt.Errorf("--filter: %w", err)
	}
	var j replay.Job
	return j, a.do(ctx, http.MethodPost, "/api/v1/replays", req, http.StatusAccepted, &j)
}

func (a *lookbackAPI) Get(ctx context.Context, id string) (replay.Job, error) {
	var j replay.Job
	return j, a.do(ctx, http.MethodGet, "/api/v1/replays/"+url.PathEscape(id), nil, http.StatusOK, &j)
}

func (a *lookbackAPI) Cancel(ctx context.Context, id string) (replay.Job, error) {
	var j replay.Job
	err := a.do(ctx, http.MethodDelete, "/api/v1/replays/"+url.PathEscape(id), nil, http.StatusOK, &j)
	var se *statusError
	if errors.As(err, &se) && se.status == http.StatusConflict {
		j, gerr := a.Get(ctx, id)
		if gerr != nil {
			return j, gerr
		}
		return j, fmt.Errorf("%w: %v", replay.ErrJobFinished, err)
	}
	return j, err
}

// statusError is an answer of the API other than the one expected.
type statusError struct {
	method, path string
	status       int
	msg          string
}

func (e *statusError) Error() string {
	hint := ""
	switch e.status {
	case http.StatusUnauthorized:
		hint = " (check --token)"
	case http.StatusForbidden:
		hint = " (the token's role must be operator)"
	}
	return fmt.Sprintf("lookback: %s %s: %d %s: %s%s", e.method, e.path, e.status, http.StatusText(e.status), e.msg, hint)
}

func (a *lookbackAPI) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base.String()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("lookback: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("lookback: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
		return &statusError{method: method, path: path, status: resp.StatusCode, msg: e.Error}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("lookback: %s %s: the answer is not what this version reads: %w", method, path, err)
	}
	return nil
}
