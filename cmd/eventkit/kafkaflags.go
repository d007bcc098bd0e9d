package main

import (
	"errors"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kafkaFlags are the connection flags every command that talks to Kafka
// shares, with environment fallbacks.
type kafkaFlags struct {
	brokers string
}

func (f *kafkaFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.brokers, "brokers", envOr("EVENTKIT_BROKERS", ""), "seed brokers, comma-separated host:port (env EVENTKIT_BROKERS)")
}

// opts returns the franz-go options that connect to the brokers.
func (f *kafkaFlags) opts() ([]kgo.Opt, error) {
	brokers := splitList(f.brokers)
	if len(brokers) == 0 {
		return nil, errors.New("no brokers: set --brokers or EVENTKIT_BROKERS")
	}
	return []kgo.Opt{kgo.SeedBrokers(brokers...)}, nil
}
