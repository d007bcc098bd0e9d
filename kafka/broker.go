package kafka

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerConfig configures the embedded broker.
type BrokerConfig struct {
	// Listen is the address to bind. The embedded broker binds 127.0.0.1
	// only; the port may be 0 for any free port. Default "127.0.0.1:0".
	Listen string
	// DataDir persists records and group offsets across restarts when set.
	// Empty keeps everything in memory (for tests). One broker at a time
	// may use it: a second one on the same directory refuses to start.
	DataDir string
	// Partitions is the partition count of Topics and of topics created
	// without a count. Default 1.
	Partitions int32
	// Topics are created at start when missing.
	Topics []string
	// Opts are extra kfake options, for tests that inject faults or tune
	// group timeouts.
	Opts []kfake.Opt
}

// Broker is an in-process Kafka-protocol broker (franz-go's kfake) serving
// real TCP on 127.0.0.1: one node, the wire protocol real clients speak.
// It backs `eventkit dev`, `eventkit broker` and the tests.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	unlock  func() // of DataDir
}

// StartBroker starts an embedded broker. Close stops it.
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Partitions <= 0 {
		cfg.Partitions = 1
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker listen address %q: %w", cfg.Listen, err)
	}
	if host != "127.0.0.1" && host != "localhost" && host != "" {
		return nil, fmt.Errorf("broker listen address %q: the embedded broker binds 127.0.0.1 only", cfg.Listen)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("broker listen address %q: bad port", cfg.Listen)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DefaultNumPartitions(int(cfg.Partitions)),
	}
	unlock := func() {}
	if cfg.DataDir != "" {
		if unlock, err = lockDataDir(cfg.DataDir); err != nil {
			return nil, fmt.Errorf("start embedded broker: %w", err)
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	opts = append(opts, cfg.Opts...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	b := &Broker{cluster: c, addr: c.ListenAddrs()[0], unlock: unlock}
	// Seeding is skipped when DataDir holds earlier state, so create each
	// topic explicitly and accept the ones that survived a restart.
	for _, t := range cfg.Topics {
		if err := b.CreateTopic(t, cfg.Partitions); err != nil {
			b.Close()
			return nil, err
		}
	}
	return b, nil
}

// Addr returns host:port of the broker, for use as a seed broker.
func (b *Broker) Addr() string { return b.addr }

// Cluster returns the underlying kfake cluster, for fault injection in tests.
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// CreateTopic creates topic with the given partition count (0: the broker's
// default). A topic that exists already is not an error.
func (b *Broker) CreateTopic(topic string, partitions int32) error {
	err := b.cluster.CreateTopic(topic, partitions, nil)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// Close stops the broker; with a DataDir, its state is flushed to disk and
// the directory is free for another broker.
func (b *Broker) Close() {
	b.cluster.Close()
	b.unlock()
}
