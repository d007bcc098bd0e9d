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
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/eventkit/eventkit/internal/testkit/seed"
	"github.com/eventkit/eventkit/kafka"
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
	if err := seed.Events(b.Addr(), topic, records, size, keys); err != nil {
		return err
	}
	fmt.Println("ready", b.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // the parent closes stdin, or dies
	return nil
}
