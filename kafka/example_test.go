package kafka_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Publish an event to an embedded broker and read it back.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := kafka.StartBroker(kafka.BrokerConfig{Topics: []string{"transfers"}})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	cl, err := kafka.Connect(ctx, kafka.Config{Brokers: []string{b.Addr()}},
		kgo.ConsumeTopics("transfers"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	pub := kafka.NewPublisher(cl, kafka.Source("/payments/transfers"))
	sent := &eventkit.Event{
		Type:        "payments.transfer.created",
		Key:         []byte("acct-42"),
		ContentType: "application/json",
		Data:        []byte(`{"amount":100,"currency":"EUR"}`),
	}
	if err := pub.Publish(ctx, "transfers", sent); err != nil {
		log.Fatal(err)
	}

	fetches := cl.PollFetches(ctx)
	if err := fetches.Err(); err != nil {
		log.Fatal(err)
	}
	got := kafka.EventOf(fetches.Records()[0])
	fmt.Println(got.Coordinates(), got.Type, got.Source)
	fmt.Println(string(got.Key), got.ContentType, string(got.Data))
	fmt.Println("same id:", got.ID == sent.ID)
	// Output:
	// transfers/0/0 payments.transfer.created /payments/transfers
	// acct-42 application/json {"amount":100,"currency":"EUR"}
	// same id: true
}

// Write records and wait for them, at most as long as the context allows,
// whatever the broker does.
func ExampleProduceSync() {
	b, err := kafka.StartBroker(kafka.BrokerConfig{Topics: []string{"audit"}})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := &kgo.Record{Topic: "audit", Value: []byte("job 42 done")}
	if err := kafka.ProduceSync(ctx, cl, r); err != nil {
		log.Fatal(err) // after 10 s at most; the record may still be written
	}
	fmt.Println("written at offset", r.Offset)
	// Output: written at offset 0
}
