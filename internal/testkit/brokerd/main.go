// Command brokerd runs an embedded broker seeded with a backlog, in a
// process of its own, so that a test can measure the memory of a consumer
// without the broker's in it.
//
//	brokerd -topic orders -partitions 8 -records 1000000 -size 200
//
// It prints "ready ADDR" once the backlog is written and runs until killed
// or until its standard input closes.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	topic := flag.String("topic", "orders", "topic to create and fill")
	partitions := flag.Int("partitions", 8, "partitions of the topic")
	records := flag.Int("records", 1000, "records to write before ready")
	size := flag.Int("size", 200, "value size in bytes")
	keys := flag.Int("keys", 0, "distinct keys (0: no keys)")
	flag.Parse()
	if err := run(*topic, int32(*partitions), *records, *size, *keys); err != nil {
		fmt.Fprintln(os.Stderr, "brokerd:", err)
		os.Exit(1)
	}
}

func run(topic string, partitions int32, records, size, keys int) error {
	b, err := kafka.StartBroker(kafka.BrokerConfig{Partitions: partitions, Topics: []string{topic}})
	if err != nil {
		return err
	}
	defer b.Close()
	if err := Seed(b.Addr(), topic, records, size, keys); err != nil {
		return err
	}
	fmt.Println("ready", b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin, or dies
	return nil
}

// Seed writes records CloudEvents of size bytes each to topic.
func Seed(addr, topic string, records, size, keys int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(100000))
	if err != nil {
		return err
	}
	defer cl.Close()
	// Random letters compress about as well as real payloads do; a
	// repeating pattern would compress tenfold and flatter every figure.
	rng := rand.New(rand.NewPCG(1, 2))
	values := make([][]byte, 1024)
	for i := range values {
		values[i] = make([]byte, size)
		for j := range values[i] {
			values[i][j] = 'a' + byte(rng.IntN(26))
		}
	}
	ctx := context.Background()
	errc := make(chan error, 1)
	for i := range records {
		ev := &eventkit.Event{ID: "e-" + strconv.Itoa(i), Source: "/brokerd", Type: "bench.event", ContentType: "text/plain", Data: values[i%len(values)]}
		if keys > 0 {
			ev.Key = []byte("k" + strconv.Itoa(i%keys))
		}
		cl.Produce(ctx, kafka.RecordOf(topic, ev), func(_ *kgo.Record, err error) {
			if err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
