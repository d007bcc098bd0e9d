package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/eventkit/eventkit/web"
)

// devTokenFile keeps the dev operator token under --data, so that a restart
// of `eventkit dev` keeps the browser signed in and the scripts working.
const devTokenFile = "lookback-token"

// devLookback is the lookback part of `eventkit dev`: SQLite under the data
// directory, an operator token of its own.
type devLookback struct {
	addr string
}

func (d *devLookback) start(ctx context.Context, env *devEnv) (func(), error) {
	dir, cleanup := env.data, func() {}
	if dir == "" { // memory only: the archive lives as long as the process
		tmp, err := os.MkdirTemp("", "eventkit-dev-")
		if err != nil {
			return nil, err
		}
		dir, cleanup = tmp, func() { os.RemoveAll(tmp) }
	}
	token, err := devToken(dir)
	if err != nil {
		cleanup()
		return nil, err
	}
	tokens, err := web.NewTokens(web.Token{Name: "dev", Role: web.Operator, Secret: token})
	if err != nil {
		cleanup()
		return nil, err
	}
	lb, err := startLookback(ctx, &lookbackConfig{
		kafka:      kafkaFlags{brokers: env.brokerAddr},
		db:         "sqlite://" + filepath.Join(dir, "lookback.db"),
		listen:     d.addr,
		listenFlag: "--lookback-addr",
		tokens:     tokens,
		log:        slog.New(slog.NewTextHandler(env.logOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		cleanup()
		return nil, err
	}
	// An ingest that stops by itself archives nothing more: dev stops with
	// it, as lookback serve exits, instead of showing a stale archive.
	env.watch(ctx, "lookback ingest", func() error { <-lb.ingestDone; return lb.ingestErr })
	env.lines = append(env.lines, "lookback: http://"+lb.addr)
	env.last = append(env.last, "token: "+token)
	env.hints = append(env.hints, fmt.Sprintf(`curl -H "Authorization: Bearer %s" http://%s/api/v1/events`, token, lb.addr))
	return func() { lb.stop(); cleanup() }, nil
}

// devToken returns the token kept in dir, making one the first time.
func devToken(dir string) (string, error) {
	path := filepath.Join(dir, devTokenFile)
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= web.MinTokenLen {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	token := "ek_dev_" + hex.EncodeToString(secret)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep the dev token: %w", err)
	}
	return token, nil
}
