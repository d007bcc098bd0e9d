package kafka_test

import (
	"strings"
	"testing"

	"github.com/eventkit/eventkit/kafka"
)

// One broker at a time on a data directory: a second one would write over
// the first one's log and offsets while both looked healthy. Once the
// first stops, the directory is free again.
func TestDataDirTakesOneBroker(t *testing.T) {
	dir := t.TempDir()
	first, err := kafka.StartBroker(kafka.BrokerConfig{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if second, err := kafka.StartBroker(kafka.BrokerConfig{DataDir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another broker") {
		if second != nil {
			second.Close()
		}
		first.Close()
		t.Fatalf("second broker on the same data directory: %v, want it refused", err)
	}
	first.Close()
	again, err := kafka.StartBroker(kafka.BrokerConfig{DataDir: dir})
	if err != nil {
		t.Fatalf("after the first stopped: %v", err)
	}
	again.Close()
}
