package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/eventkit/eventkit/kafka"
	"github.com/eventkit/eventkit/lookback"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { commands = append(commands, newTailCmd) }

// Group timeouts of `tail --group`: short, so that a restarted tail takes
// its partitions back quickly, and the rebalance timeout below the session
// timeout, or a member killed while joining can stall the group.
const (
	tailSessionTimeout   = 10 * time.Second
	tailRebalanceTimeout = 8 * time.Second
	tailCommitTimeout    = 10 * time.Second
)

type tailFlags struct {
	kafka         kafkaFlags
	topic         string
	group         string
	fromBeginning bool
	json          bool
}

func newTailCmd(s *streams) *cobra.Command {
	f := &tailFlags{}
	cmd := &cobra.Command{
		Use:   "tail",
		Short: "Print the events of a topic as they arrive",
		Long: `tail prints each record of --topic as it arrives, one line each:

  topic/partition/offset id=ID type=TYPE key=KEY VALUE

Key and value are shown as text when they are printable UTF-8, else as
base64:…. With --json each line is instead the event as lookback's API shows
it. Without --group tail reads every partition directly, from the end, or
from the start with --from-beginning; with --group it consumes as a member
of that group and commits what it printed. It runs until interrupted.`,
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
	fl.StringVar(&f.topic, "topic", "", "topic to read (required)")
	fl.StringVar(&f.group, "group", "", "consume as a member of this consumer group and commit (default: no group) (env EVENTKIT_TAIL_GROUP)")
	fl.BoolVar(&f.fromBeginning, "from-beginning", false, "start at the oldest record (with --group: where the group has no commit)")
	fl.BoolVar(&f.json, "json", false, "print one JSON object per event")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

func (f *tailFlags) run(ctx context.Context, s *streams) error {
	start := kgo.NewOffset().AtEnd()
	if f.fromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	opts := []kgo.Opt{kgo.ConsumeTopics(f.topic), kgo.ConsumeResetOffset(start)}
	if f.group != "" {
		opts = append(opts,
			kgo.ConsumerGroup(f.group),
			kgo.SessionTimeout(tailSessionTimeout),
			kgo.RebalanceTimeout(tailRebalanceTimeout),
		)
	}
	cl, err := f.kafka.connect(ctx, opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := topicExists(ctx, cl, f.topic); err != nil {
		return err
	}

	w := bufio.NewWriter(s.out)
	for ctx.Err() == nil {
		// A poll cut short by the interrupt may still return records; they
		// are printed too, since a group commit counts them as read.
		fs := cl.PollFetches(ctx)
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.Canceled) {
				fmt.Fprintf(s.err, "eventkit tail: %s/%d: %v\n", fe.Topic, fe.Partition, fe.Err)
			}
		}
		var werr error
		fs.EachRecord(func(r *kgo.Record) {
			if werr == nil {
				werr = f.print(w, r)
			}
		})
		if werr == nil {
			werr = w.Flush()
		}
		if werr != nil {
			return fmt.Errorf("write: %w", werr)
		}
	}
	if f.group != "" {
		// Commit what was printed before leaving; the interrupted ctx is
		// done, so the commit gets a bounded one of its own.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tailCommitTimeout)
		defer cancel()
		if err := cl.CommitUncommittedOffsets(cctx); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
	}
	return nil
}

func (f *tailFlags) print(w io.Writer, r *kgo.Record) error {
	if f.json { // the form lookback's API shows, every header included
		rec := lookback.RecordOf(r)
		b, err := json.Marshal(rec.Event())
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	}
	ev := kafka.EventOf(r)
	_, err := fmt.Fprintf(w, "%s id=%s type=%s key=%s %s\n", ev.Coordinates(), showBytes([]byte(ev.ID)), showBytes([]byte(ev.Type)),
		showBytes(ev.Key), showBytes(ev.Data))
	return err
}

// showBytes returns b as text when it is printable UTF-8 (spaces allowed,
// no line breaks or other control characters, so one record stays one
// line), else as "base64:" and its standard encoding.
func showBytes(b []byte) string {
	printable := utf8.Valid(b)
	for i := 0; printable && i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		printable = unicode.IsPrint(r)
		i += n
	}
	if printable {
		return string(b)
	}
	return "base64:" + base64.StdEncoding.EncodeToString(b)
}
