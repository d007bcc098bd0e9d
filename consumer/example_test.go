package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/consumer"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The agent hands each event to the handler; the handler's flag decides
// what happens next. Here the second event fails once and is redelivered.
func Example() {
	broker, err := kafka.StartBroker(kafka.BrokerConfig{Topics: []string{"payments"}})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	producer, err := kgo.NewClient(kgo.SeedBrokers(broker.Addr()))
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Close()
	for _, id := range []string{"p-1", "p-2", "p-3"} {
		ev := &eventkit.Event{ID: id, Source: "/payments", Type: "payment.created", Data: []byte(`{}`)}
		if err := producer.ProduceSync(context.Background(), kafka.RecordOf("payments", ev)).FirstErr(); err != nil {
			log.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	handled := 0
	h := eventkit.HandlerFunc(func(ctx context.Context, ev *eventkit.Event) error {
		attempt := consumer.Attempt(ctx)
		fmt.Printf("%s attempt %d\n", ev.ID, attempt)
		if ev.ID == "p-2" && attempt == 1 {
			return eventkit.Retry(errors.New("bank API timed out"))
		}
		if handled++; handled == 3 {
			cancel() // stop after the third event: Run drains, commits and returns nil
		}
		return nil
	})
	c, err := consumer.New(h,
		consumer.Brokers(broker.Addr()),
		consumer.Group("ledger"),
		consumer.Topics("payments"),
		consumer.Backoff(10*time.Millisecond, time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// p-1 attempt 1
	// p-2 attempt 1
	// p-2 attempt 2
	// p-3 attempt 1
}
