// Package replay moves consumer groups back (or forward) over their topics.
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
package replay
