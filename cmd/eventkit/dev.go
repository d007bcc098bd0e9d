package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"

	payevents "github.com/eventkit/eventkit/examples/payments/events"
	"github.com/spf13/cobra"
)

func init() { commands = append(commands, newDevCmd) }

// devTopic is the topic `eventkit dev` creates so that the first produce
// and tail work without any setup.
const devTopic = "demo"

// devPart is one service `eventkit dev` runs. Parts start in order, each
// seeing in the devEnv what the earlier ones set up, and stop in reverse.
type devPart struct {
	name  string
	start func(ctx context.Context, env *devEnv) (stop func(), err error)
}

// devEnv is what the parts of `eventkit dev` share.
type devEnv struct {
	data       string // the --data directory; each part keeps its state below it
	brokerAddr string // set by the broker part
	// lines are printed once every part is up, "name: address" each, then
	// last (the token), then hints on what to try, then "ready".
	lines, last, hints []string
	logOut             io.Writer // where the parts log
	// failed receives the error of a part that stopped by itself: dev
	// then stops with it instead of serving dead addresses.
	failed   chan error
	watchers sync.WaitGroup
}

// watch reports the end of a part that runs by itself, unless dev is
// stopping it: wait returns when the part has stopped.
func (e *devEnv) watch(ctx context.Context, name string, wait func() error) {
	e.watchers.Go(func() { // ends with the part, which dev's stop ends
		err := wait()
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped")
		}
		select {
		case e.failed <- fmt.Errorf("%s: %w", name, err):
		default: // another part's failure is reported already
		}
	})
}

func newDevCmd(s *streams) *cobra.Command {
	// The payments topics exist before lookback starts, so that its first
	// look at the cluster finds them and the UI shows the platform's first
	// events at once, not at its next metadata refresh; 3 partitions, as
	// transfers would create them.
	broker := brokerFlags{partitions: 3, topics: strings.Join([]string{devTopic, payevents.TopicTransfers, payevents.TopicAccounts}, ",")}
	lb := &devLookback{}
	pay := &devPayments{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything a laptop needs: the embedded broker, with state on disk",
		Long: `dev runs the development environment in one process: the embedded
broker with a "demo" topic, its records and offsets kept under --data so that
they survive a restart, and lookback archiving every event into SQLite under
--data, its API and UI on --lookback-addr, and the payments reference
platform (transfers and reports, with --traffic transfers a second). Once
everything is up it prints one line per part ("broker: ADDR", "lookback:
http://ADDR", "transfers: http://ADDR", "reports: http://ADDR"), the operator token
of the UI and API ("token: ..."; kept under --data), a few commands to try,
and "ready"; it runs until interrupted and then stops cleanly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Checked before any part starts and writes under --data.
			if t := pay.traffic; t < 0 || math.IsNaN(t) || math.IsInf(t, 0) {
				return &exitCodeError{code: exitUsage, err: fmt.Errorf("--traffic %v: want 0 or more events/s", t)}
			}
			if pay.reportsSchema < 0 {
				return &exitCodeError{code: exitUsage, err: fmt.Errorf("--reports-schema %d: want a migration version, or 0 for the newest", pay.reportsSchema)}
			}
			parts := []devPart{
				{name: "broker", start: broker.devStart},
				{name: "lookback", start: lb.start},
				{name: "payments", start: pay.start},
			}
			return runDev(cmd.Context(), s, &devEnv{data: broker.data, logOut: s.err, failed: make(chan error, 1)}, parts)
		},
	}
	broker.bind(cmd, "broker-addr", "./eventkit-data", "127.0.0.1:9092")
	cmd.Flags().StringVar(&lb.addr, "lookback-addr", "127.0.0.1:8080", "address of the lookback API and UI")
	cmd.Flags().StringVar(&pay.transfersAddr, "transfers-addr", "127.0.0.1:8081", "address of the payments transfers API")
	cmd.Flags().StringVar(&pay.reportsAddr, "reports-addr", "127.0.0.1:8082", "address of the payments reports API")
	cmd.Flags().Float64Var(&pay.traffic, "traffic", 2, "events per second the traffic generator makes through the transfers API; 0 for none")
	cmd.Flags().Int64Var(&pay.reportsSchema, "reports-schema", 0, "hold the reports database at this migration version (0: the newest), to walk through a schema change")
	return cmd
}

// runDev starts parts in order, prints what they report, waits for ctx to
// end, or for a part to stop by itself (whose error it returns), and stops
// them in reverse order. A part that fails to start stops
// the ones before it.
func runDev(ctx context.Context, s *streams, env *devEnv, parts []devPart) error {
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		env.watchers.Wait() // the stopped parts end their watchers
	}()
	for _, p := range parts {
		stop, err := p.start(ctx, env)
		if err != nil {
			return fmt.Errorf("start %s: %w", p.name, err)
		}
		stops = append(stops, stop)
	}
	// The part lines and "ready" come first and alone, as scripts read
	// them; the commands to try follow, ended by an empty line.
	for _, l := range append(env.lines, env.last...) {
		fmt.Fprintln(s.out, l)
	}
	fmt.Fprintln(s.out, "ready")
	if len(env.hints) > 0 {
		fmt.Fprintln(s.out, "try:")
		for _, h := range env.hints {
			fmt.Fprintln(s.out, "  "+h)
		}
		fmt.Fprintln(s.out)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-env.failed:
		return err
	}
}

// devStart is the broker part of `eventkit dev`.
func (f *brokerFlags) devStart(_ context.Context, env *devEnv) (func(), error) {
	b, err := f.start()
	if err != nil {
		return nil, err
	}
	env.brokerAddr = b.Addr()
	env.lines = append(env.lines, "broker: "+b.Addr())
	self := selfCommand(os.Args[0])
	env.hints = append(env.hints,
		fmt.Sprintf(`echo '{"hello":"world"}' | %s produce --brokers %s --topic %s`, self, b.Addr(), devTopic),
		fmt.Sprintf("%s tail --brokers %s --topic %s --from-beginning", self, b.Addr(), devTopic),
	)
	return b.Close, nil
}

// selfCommand is how to run this program again in a hint: "go run
// ./cmd/eventkit" when it was started that way (its binary then sits in a
// go-build directory that is gone once it exits), else "eventkit".
func selfCommand(arg0 string) string {
	if strings.Contains(filepath.ToSlash(arg0), "/go-build") {
		return "go run ./cmd/eventkit"
	}
	return "eventkit"
}
