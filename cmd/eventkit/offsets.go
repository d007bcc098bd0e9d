package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/eventkit/eventkit/kafka"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func init() { commands = append(commands, newOffsetsCmd) }

// offsetsSubcommands builds the children of `eventkit offsets`; each file
// that adds one appends to it in init, as commands does for the root.
var offsetsSubcommands = []func(*streams) *cobra.Command{newOffsetsShowCmd}

func newOffsetsCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "offsets",
		Short: "Inspect or move a consumer group's committed offsets",
		Args:  cobra.NoArgs,
	}
	for _, add := range offsetsSubcommands {
		cmd.AddCommand(add(s))
	}
	return cmd
}

type offsetsShowFlags struct {
	kafka kafkaFlags
	group string
	json  bool
}

func newOffsetsShowCmd(s *streams) *cobra.Command {
	f := &offsetsShowFlags{}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a group's committed offset, end offset and lag per partition",
		Long: `show prints, for every partition of every topic the group has committed
offsets on, the committed offset ("-" where it never committed), the end
offset and the lag, then the total lag. With --json it prints
{"group", "partitions": [{"topic", "partition", "committed", "end", "lag"}],
"total_lag"}, with -1 where the table shows "-".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd.Context(), s)
		},
	}
	f.kafka.bind(cmd)
	cmd.Flags().StringVar(&f.group, "group", "", "consumer group (required)")
	cmd.Flags().BoolVar(&f.json, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("group")
	return cmd
}

// groupOffsets is the JSON form of `offsets show`.
type groupOffsets struct {
	Group      string            `json:"group"`
	Partitions []partitionOffset `json:"partitions"`
	TotalLag   int64             `json:"total_lag"`
}

type partitionOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Lag       int64  `json:"lag"`
}

func (f *offsetsShowFlags) run(ctx context.Context, s *streams) error {
	cl, err := f.kafka.connect(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	lags, err := kafka.GroupLag(ctx, kadm.NewClient(cl), f.group)
	if err != nil {
		return err
	}
	out := groupOffsets{Group: f.group, Partitions: make([]partitionOffset, 0, len(lags))}
	for _, l := range lags {
		out.Partitions = append(out.Partitions, partitionOffset(l))
		if l.Lag > 0 {
			out.TotalLag += l.Lag
		}
	}
	if f.json {
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		_, err = s.out.Write(append(b, '\n'))
		return err
	}
	return out.table(s.out)
}

func (g groupOffsets) table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tEND\tLAG")
	for _, p := range g.Partitions {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p.Topic, p.Partition, orDash(p.Committed), orDash(p.End), orDash(p.Lag))
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t\t%d\n", g.TotalLag)
	return tw.Flush()
}

// orDash shows -1, which stands for "none", as "-".
func orDash(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}
