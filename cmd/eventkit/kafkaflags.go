package main

import (
	"context"
	"errors"
	"time"

	"github.com/eventkit/eventkit/kafka"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

// connectTimeout bounds the check that a command can reach and
// authenticate to the brokers before it starts its work.
const connectTimeout = 15 * time.Second

// kafkaFlags are the connection flags every command that talks to Kafka
// shares. Like every flag they fall back to the environment (EVENTKIT_BROKERS,
// EVENTKIT_TLS, …), the same variables kafka.ConfigFromEnv reads.
type kafkaFlags struct {
	brokers  string
	clientID string
	tls      kafka.TLSConfig
	sasl     kafka.SASLConfig
}

func (f *kafkaFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.brokers, "brokers", "", "seed brokers, comma-separated host:port")
	fl.StringVar(&f.clientID, "client-id", "", `client id the brokers log and apply quotas to (default "eventkit")`)
	fl.BoolVar(&f.tls.Enabled, "tls", false, "connect with TLS")
	fl.StringVar(&f.tls.CAFile, "tls-ca", "", "PEM file of the CAs that sign the brokers' certificates (default: the system's)")
	fl.StringVar(&f.tls.CertFile, "tls-cert", "", "PEM client certificate, for brokers that require one")
	fl.StringVar(&f.tls.KeyFile, "tls-key", "", "PEM key of the client certificate")
	fl.StringVar(&f.tls.ServerName, "tls-server-name", "", "name the brokers' certificates must carry (default: the broker's host)")
	fl.BoolVar(&f.tls.InsecureSkipVerify, "tls-insecure", false, "accept any broker certificate (for tests only)")
	fl.StringVar(&f.sasl.Mechanism, "sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Confluent Cloud: PLAIN with --tls)")
	fl.StringVar(&f.sasl.Username, "sasl-username", "", "SASL username (Confluent Cloud: the API key)")
	fl.StringVar(&f.sasl.Password, "sasl-password", "", "SASL password; prefer the environment, which keeps it out of the process list")
}

// config returns the connection the flags describe.
func (f *kafkaFlags) config() kafka.Config {
	return kafka.Config{Brokers: splitList(f.brokers), ClientID: f.clientID, TLS: f.tls, SASL: f.sasl}
}

// opts returns the franz-go options that connect to the brokers.
func (f *kafkaFlags) opts() ([]kgo.Opt, error) {
	if len(splitList(f.brokers)) == 0 {
		return nil, &exitCodeError{code: exitUsage, err: errors.New("no brokers: set --brokers or EVENTKIT_BROKERS")}
	}
	return f.config().Opts()
}

// connect returns a client with extra options after checking, within
// connectTimeout, that it reaches and authenticates to the brokers: a wrong
// address or password fails at once with an error that says so.
func (f *kafkaFlags) connect(ctx context.Context, extra ...kgo.Opt) (*kgo.Client, error) {
	if _, err := f.opts(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return kafka.Connect(ctx, f.config(), extra...)
}
