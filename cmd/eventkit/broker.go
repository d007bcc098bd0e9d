package main

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/eventkit/eventkit/kafka"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
)

func init() { commands = append(commands, newBrokerCmd) }

// maxMessageBytes is the largest record batch the embedded broker takes:
// 16 MiB, where Kafka's default is 1 MiB, so that `eventkit produce` can
// send the long lines development sometimes needs. A real cluster keeps its
// own limit (message.max.bytes, the topic's max.message.bytes).
const maxMessageBytes = 16 << 20

// brokerFlags are what both `eventkit broker` and `eventkit dev` need to
// start the embedded broker.
type brokerFlags struct {
	listen     string
	data       string
	partitions int32
	topics     string
}

// start starts the embedded broker. Its state lives in DIR/broker, the same
// place for `eventkit broker --data DIR` and `eventkit dev --data DIR`, so
// that either can pick up what the other wrote.
func (f *brokerFlags) start() (*kafka.Broker, error) {
	if f.partitions < 1 {
		return nil, &exitCodeError{code: exitUsage, err: fmt.Errorf("--partitions %d: want at least 1", f.partitions)}
	}
	cfg := kafka.BrokerConfig{
		Listen:     f.listen,
		Partitions: f.partitions,
		Topics:     splitList(f.topics),
		Opts: []kfake.Opt{kfake.BrokerConfigs(map[string]string{
			"message.max.bytes": strconv.Itoa(maxMessageBytes),
		})},
	}
	if f.data != "" {
		cfg.DataDir = filepath.Join(f.data, "broker")
	}
	return kafka.StartBroker(cfg)
}

func newBrokerCmd(s *streams) *cobra.Command {
	f := brokerFlags{}
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka-protocol broker",
		Long: `broker runs an in-process broker that speaks the Kafka protocol on
127.0.0.1, for development and tests. It prints "broker: ADDR" and then
"ready" once it listens, and runs until interrupted.

Without --data it keeps everything in memory; with it, records and group
offsets survive a restart (under DIR/broker). Topics are not created on
first use: name them with --topics, or create them with any Kafka tool.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := f.start()
			if err != nil {
				return err
			}
			defer b.Close()
			fmt.Fprintf(s.out, "broker: %s\nready\n", b.Addr())
			<-cmd.Context().Done()
			return nil
		},
	}
	f.bind(cmd, "listen", "", "127.0.0.1:9092")
	cmd.Flags().Int32Var(&f.partitions, "partitions", 1, "partitions of --topics and of topics created without a count")
	cmd.Flags().StringVar(&f.topics, "topics", "", "topics to create at start, comma-separated (env EVENTKIT_BROKER_TOPICS)")
	return cmd
}

// bind binds the listen address and data directory flags under the names
// and defaults each command gives them.
func (f *brokerFlags) bind(cmd *cobra.Command, listenFlag, dataDefault, listenDefault string) {
	cmd.Flags().StringVar(&f.listen, listenFlag, listenDefault, "address to listen on; the embedded broker binds 127.0.0.1 only (port 0: any free port)")
	cmd.Flags().StringVar(&f.data, "data", dataDefault, "directory that keeps records and offsets across restarts (empty: memory only)")
}
