package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/eventkit/eventkit/examples/payments"
)

// devPayments is the payments part of `eventkit dev`: the transfers and
// reports services of the reference platform, and a traffic generator, so
// that a newcomer sees events flow, land in lookback and show up in reports.
type devPayments struct {
	transfersAddr, reportsAddr string
	traffic                    float64
	reportsSchema              int64
}

func (d *devPayments) start(ctx context.Context, env *devEnv) (func(), error) {
	dir, cleanup := filepath.Join(env.data, "payments"), func() {}
	if env.data == "" { // memory only: the databases live as long as the process
		tmp, err := os.MkdirTemp("", "eventkit-dev-")
		if err != nil {
			return nil, err
		}
		dir, cleanup = tmp, func() { os.RemoveAll(tmp) }
	}
	p, err := payments.Start(ctx, payments.Config{
		Brokers:       []string{env.brokerAddr},
		DataDir:       dir,
		TransfersAddr: d.transfersAddr,
		ReportsAddr:   d.reportsAddr,
		Traffic:       d.traffic,
		// Held back only to walk through a schema change: the README of
		// examples/payments shows reports before and after a migration.
		ReportsMigrateTo: d.reportsSchema,
		Logger:           slog.New(slog.NewTextHandler(env.logOut, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		cleanup()
		return nil, err
	}
	env.lines = append(env.lines, "transfers: "+p.TransfersURL(), "reports: "+p.ReportsURL())
	env.hints = append(env.hints,
		"curl "+p.ReportsURL()+"/transfers/failed",
		"curl "+p.ReportsURL()+"/totals/daily",
	)
	// A halt pauses its partition and keeps the platform up; anything that
	// still stops a service (a kill, a lost database) ends dev with it.
	env.watch(ctx, "payments", p.Wait)
	return func() { _ = p.Stop(); cleanup() }, nil
}
