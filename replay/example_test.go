package replay_test

import (
	"context"
	"fmt"
	"log"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/replay"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A group that stopped after five payments reads the last two again: the
// plan shows the move, and nothing changes until it is executed.
func ExamplePlanReset() {
	broker, err := kafka.StartBroker(kafka.BrokerConfig{Topics: []string{"payments"}})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for i := range 5 {
		ev := &eventkit.Event{ID: fmt.Sprint("p-", i), Source: "/payments", Type: "payment.created"}
		if err := cl.ProduceSync(ctx, kafka.RecordOf("payments", ev)).FirstErr(); err != nil {
			log.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	// Where a stopped consumer of group billing left off.
	if err := adm.CommitAllOffsets(ctx, "billing", kadm.Offsets{"payments": {0: {Topic: "payments", At: 5, LeaderEpoch: -1}}}); err != nil {
		log.Fatal(err)
	}

	back := int64(-2)
	plan, err := replay.PlanReset(ctx, adm, replay.ResetRequest{Group: "billing", ShiftBy: &back})
	if err != nil {
		log.Fatal(err) // errors.Is(err, replay.ErrGroupActive) while a consumer runs
	}
	for _, m := range plan.Rows {
		fmt.Printf("%s/%d: %d -> %d, lag %d -> %d\n", m.Topic, m.Partition, m.Current, m.New, m.LagBefore, m.LagAfter)
	}
	if plan, err = replay.ExecuteReset(ctx, adm, plan); err != nil {
		log.Fatal(err)
	}
	fmt.Println("executed:", plan.Executed)
	// Output:
	// payments/0: 5 -> 3, lag 0 -> 2
	// executed: true
}
