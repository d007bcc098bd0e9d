// Package replay sends events again: it moves consumer groups back (or
// forward) over their topics, and republishes archived events as jobs.
//
// An offset reset moves a group's committed offsets: to a time, an offset,
// the earliest or latest offset, or by N records from where the group is.
// [PlanReset] works out the move per partition without changing anything;
// [ExecuteReset] commits it. Kafka lets only an empty group's offsets be
// moved, so both refuse, matching [ErrGroupActive], while the group has
// members: stop its consumers first, reset, start them again.
//
//	adm := kadm.NewClient(cl)
//	since := time.Now().Add(-2 * time.Hour)
//	plan, err := replay.PlanReset(ctx, adm, replay.ResetRequest{
//		Group:  "billing",
//		Topics: []string{"payments"},
//		ToTime: &since,
//	})
//	if err != nil {
//		return err // errors.Is(err, replay.ErrGroupActive): consumers still running
//	}
//	for _, m := range plan.Rows {
//		fmt.Printf("%s/%d %d -> %d (lag %d -> %d)\n", m.Topic, m.Partition, m.Current, m.New, m.LagBefore, m.LagAfter)
//	}
//	plan, err = replay.ExecuteReset(ctx, adm, plan)
//
// The command line does the same: `eventkit offsets reset --group billing
// --to-time 2024-05-01T10:00:00Z` prints the plan, and commits it only with
// --execute.
//
// A replay job republishes the archived records a lookback filter selects,
// to a topic (every group sees them; deduplicate mode by default, so
// groups that processed the originals skip them) or to one group's replay
// topic (only that group sees them; reprocess mode by default, so it
// processes them once more). A [Runner] runs jobs at a rate, in the
// archive's order (by timestamp, then coordinates), counts what it sent,
// cancels, and resumes a job that a stopped or crashed process left
// unfinished, sending each record exactly once. Runners that share a job
// store (lookback and a command, say) never run one job both: a lease in
// the store gives it to one of them:
//
//	r := replay.NewRunner(cl, archive, jobStore, replay.Audit(auditLog))
//	go r.Run(ctx) // returns once ctx is done and every job has stopped
//	job, err := r.Start(ctx, replay.Spec{
//		Filter: lookback.Filter{Topic: "payments", Type: "payment.settled"},
//		Target: replay.Target{Group: "reports"},
//		Rate:   500, // records a second
//	}, replay.Actor{Name: "alice", Role: "operator"})
//	...
//	job, err = r.Get(ctx, job.ID) // job.Sent, job.Matched, job.Status
//
// The command line does the same: `eventkit replay --db sqlite://lookback.db
// --filter topic=payments,type=payment.settled --to-group reports --rate 500`.
package replay
