// Package seed writes backlogs of CloudEvents for tests and benchmarks.
package seed

import (
	"context"
	"math/rand/v2"
	"strconv"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Events writes records CloudEvents of size bytes each to topic on the
// broker at addr, keyed over keys distinct keys (none when keys is 0).
// Values are random letters: they compress about as well as real payloads,
// where a repeating pattern would compress tenfold and flatter every figure.
func Events(addr, topic string, records, size, keys int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(100000))
	if err != nil {
		return err
	}
	defer cl.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	values := make([][]byte, 1024)
	for i := range values {
		values[i] = make([]byte, size)
		for j := range values[i] {
			values[i][j] = 'a' + byte(rng.IntN(26))
		}
	}
	return Produce(context.Background(), cl, records, func(i int) *kgo.Record {
		ev := &eventkit.Event{ID: "e-" + strconv.Itoa(i), Source: "/seed", Type: "bench.event", ContentType: "text/plain", Data: values[i%len(values)]}
		if keys > 0 {
			ev.Key = []byte("k" + strconv.Itoa(i%keys))
		}
		return kafka.RecordOf(topic, ev)
	})
}

// Produce writes the records record(0) … record(n-1) through cl without
// waiting for each, and returns once all are acknowledged, with the first
// error if any failed.
func Produce(ctx context.Context, cl *kgo.Client, n int, record func(i int) *kgo.Record) error {
	errc := make(chan error, 1)
	for i := range n {
		cl.Produce(ctx, record(i), func(_ *kgo.Record, err error) {
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
