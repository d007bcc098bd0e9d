package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { commands = append(commands, newProduceCmd) }

const (
	// maxLine is the longest stdin line produce reads: far above what a
	// broker takes by default, so that the broker, not the reader, decides.
	maxLine = maxMessageBytes
	// batchEvents and batchBytes bound one Publish call: large enough to
	// keep throughput up on piped input, small enough to keep memory flat.
	batchEvents = 1000
	batchBytes  = 4 << 20
	// progressEvery is how many events pass between progress lines.
	progressEvery = 10000
)

type produceFlags struct {
	kafka       kafkaFlags
	topic       string
	key         string
	typ         string
	source      string
	contentType string
}

func newProduceCmd(s *streams) *cobra.Command {
	f := &produceFlags{}
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Publish one event per line of standard input",
		Long: `produce reads standard input and publishes one CloudEvent per line to
--topic, each with a fresh UUIDv7 id. A line that parses as JSON gets the
content type application/json, any other text/plain, unless --content-type
says otherwise. Empty lines are skipped. It reports on stderr how many events
it produced, with a progress line every 10000.

  echo '{"amount":100}' | eventkit produce --brokers 127.0.0.1:9092 --topic demo`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.topic == "" {
				return errNoTopic
			}
			return f.run(cmd.Context(), s)
		},
	}
	f.kafka.bind(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.topic, "topic", "", "topic to publish to (required)")
	fl.StringVar(&f.key, "key", "", "record key of every event (default: none)")
	fl.StringVar(&f.typ, "type", "eventkit.cli", "CloudEvents type of every event")
	fl.StringVar(&f.source, "source", "eventkit-cli", "CloudEvents source of every event")
	fl.StringVar(&f.contentType, "content-type", "", "content type of every event (default: application/json for JSON lines, else text/plain)")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

func (f *produceFlags) run(ctx context.Context, s *streams) error {
	cl, err := f.kafka.connect(ctx, kgo.ProducerBatchMaxBytes(maxLine+64<<10))
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := topicExists(ctx, cl, f.topic); err != nil {
		return err
	}
	pub := kafka.NewPublisher(cl, kafka.Source(f.source))

	lines := make(chan []byte, batchEvents)
	readErr := make(chan error, 1)
	// Reading stdin blocks until a line or EOF arrives and cannot be
	// interrupted; the reader lives as long as the process, so that an
	// interrupt is noticed while a terminal user is still typing.
	go func() { readErr <- readLines(s.in, lines) }()

	produced := 0
	defer func() { fmt.Fprintf(s.err, "produced %s to %s\n", events(produced), f.topic) }()
	for {
		batch, eof, err := f.nextBatch(ctx, lines, readErr)
		if len(batch) > 0 {
			if err := pub.Publish(ctx, f.topic, batch...); err != nil {
				return explainProduce(err)
			}
			before := produced
			produced += len(batch)
			if produced/progressEvery > before/progressEvery {
				fmt.Fprintf(s.err, "produced %s...\n", events(produced))
			}
		}
		if err != nil || eof {
			return err
		}
	}
}

// errNoTopic refuses a --topic given empty, which the required-flag check
// lets through.
var errNoTopic = &exitCodeError{code: exitUsage, err: errors.New("--topic: want a topic name")}

// events returns "1 event" or "N events".
func events(n int) string {
	if n == 1 {
		return "1 event"
	}
	return strconv.Itoa(n) + " events"
}

// nextBatch waits for at least one line, then takes what else is already
// read, up to one batch: interactive input goes out line by line, piped
// input in batches.
func (f *produceFlags) nextBatch(ctx context.Context, lines <-chan []byte, readErr <-chan error) (batch []*eventkit.Event, eof bool, err error) {
	size := 0
	add := func(line []byte) {
		batch = append(batch, f.event(line))
		size += len(line)
	}
	select {
	case <-ctx.Done():
		return nil, false, errors.New("interrupted")
	case line, ok := <-lines:
		if !ok {
			return nil, true, <-readErr
		}
		add(line)
	}
	for len(batch) < batchEvents && size < batchBytes {
		select {
		case line, ok := <-lines:
			if !ok {
				return batch, true, <-readErr
			}
			add(line)
		default:
			return batch, false, nil
		}
	}
	return batch, false, nil
}

func (f *produceFlags) event(line []byte) *eventkit.Event {
	ev := &eventkit.Event{Type: f.typ, Data: line, ContentType: f.contentType}
	if f.key != "" {
		ev.Key = []byte(f.key)
	}
	if ev.ContentType == "" {
		ev.ContentType = "text/plain"
		// JSON is UTF-8; json.Valid lets other bytes through inside strings.
		if json.Valid(line) && utf8.Valid(line) {
			ev.ContentType = "application/json"
		}
	}
	return ev
}

// readLines sends each non-empty line of r, without its line ending, and
// closes lines at the end of input.
func readLines(r io.Reader, lines chan<- []byte) error {
	defer close(lines)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		if len(sc.Bytes()) > 0 {
			lines <- bytes.Clone(sc.Bytes())
		}
	}
	switch err := sc.Err(); {
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("line %d is longer than %d MiB", n+1, maxLine>>20)
	case err != nil:
		return fmt.Errorf("read input: %w", err)
	}
	return nil
}

// topicExists turns a missing topic into an error that says so, instead of
// the retries a producer or consumer would go through.
func topicExists(ctx context.Context, cl *kgo.Client, topic string) error {
	_, err := kafka.PartitionCount(ctx, kadm.NewClient(cl), topic)
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("topic %s does not exist (create it, or start the embedded broker with --topics %s)", topic, topic)
	}
	return err
}

func explainProduce(err error) error {
	if errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) {
		return fmt.Errorf("%w (the broker's message.max.bytes or the topic's max.message.bytes is lower than this line)", err)
	}
	return err
}
