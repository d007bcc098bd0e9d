package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Config says how to reach a Kafka cluster: the seed brokers and how to
// authenticate. Services and the command-line tool fill it from flags and
// the environment ([ConfigFromEnv]), check it with [Config.Validate] and turn
// it into franz-go options with [Config.Opts].
//
// The embedded broker needs only Brokers. Confluent Cloud, MSK with SCRAM and
// most managed clusters need SASL over TLS:
//
//	cfg := kafka.Config{
//		Brokers: []string{"pkc-xxxxx.europe-west1.gcp.confluent.cloud:9092"},
//		TLS:     kafka.TLSConfig{Enabled: true}, // the system's CAs
//		SASL:    kafka.SASLConfig{Mechanism: "PLAIN", Username: apiKey, Password: apiSecret},
//	}
//	opts, err := cfg.Opts()
//	cl, err := kgo.NewClient(opts...)
//
// SASL without TLS sends the credentials (PLAIN) or at least the whole
// session (SCRAM) in the clear: use it on a trusted network only.
type Config struct {
	// Brokers are the seed brokers, host:port each (a missing port means
	// 9092). Required.
	Brokers []string
	// ClientID names the client in the brokers' logs and quotas. Default
	// "eventkit".
	ClientID string
	// TLS encrypts connections and may authenticate the client with a
	// certificate. Default off.
	TLS TLSConfig
	// SASL authenticates the client with a username and password. Default
	// off.
	SASL SASLConfig

	// envErr holds environment values ConfigFromEnv could not read, so
	// that Validate reports them instead of acting on a guess.
	envErr error
}

// TLSConfig configures TLS to the brokers.
type TLSConfig struct {
	// Enabled turns TLS on. The other fields count only when it is set.
	Enabled bool
	// CAFile is a PEM file of the certificate authorities that sign the
	// brokers' certificates. Default: the system's roots.
	CAFile string
	// CertFile and KeyFile are the client's PEM certificate and key, for
	// brokers that authenticate clients by certificate (mTLS). Both or
	// neither. Default none.
	CertFile, KeyFile string
	// ServerName is the name the brokers' certificates must carry. Default:
	// the host of the broker being dialled.
	ServerName string
	// InsecureSkipVerify accepts any broker certificate. For tests against
	// throwaway certificates only: it gives up the protection TLS exists
	// for. Default false.
	InsecureSkipVerify bool
}

// SASL mechanisms [SASLConfig] accepts.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// SASLConfig configures SASL authentication.
type SASLConfig struct {
	// Mechanism is "" (no SASL, the default), "PLAIN", "SCRAM-SHA-256" or
	// "SCRAM-SHA-512", in any case. Confluent Cloud uses PLAIN with an API
	// key and secret; MSK and Redpanda use SCRAM.
	Mechanism string
	// Username and Password are the credentials (for Confluent Cloud, the
	// API key and secret). Required with a Mechanism.
	Username, Password string
}

// Environment variables ConfigFromEnv reads.
const (
	EnvBrokers       = "EVENTKIT_BROKERS"
	EnvClientID      = "EVENTKIT_CLIENT_ID"
	EnvTLS           = "EVENTKIT_TLS"
	EnvTLSCA         = "EVENTKIT_TLS_CA"
	EnvTLSCert       = "EVENTKIT_TLS_CERT"
	EnvTLSKey        = "EVENTKIT_TLS_KEY"
	EnvTLSServerName = "EVENTKIT_TLS_SERVER_NAME"
	EnvTLSInsecure   = "EVENTKIT_TLS_INSECURE"
	EnvSASLMechanism = "EVENTKIT_SASL_MECHANISM"
	EnvSASLUsername  = "EVENTKIT_SASL_USERNAME"
	EnvSASLPassword  = "EVENTKIT_SASL_PASSWORD"
)

const (
	defaultClientID   = "eventkit"
	defaultBrokerPort = "9092"
)

// ConfigFromEnv reads a Config from the environment: EVENTKIT_BROKERS
// (comma-separated), EVENTKIT_CLIENT_ID, EVENTKIT_TLS, EVENTKIT_TLS_CA,
// EVENTKIT_TLS_CERT, EVENTKIT_TLS_KEY, EVENTKIT_TLS_SERVER_NAME,
// EVENTKIT_TLS_INSECURE, EVENTKIT_SASL_MECHANISM, EVENTKIT_SASL_USERNAME and
// EVENTKIT_SASL_PASSWORD. The two switches take true/1 or false/0 (as
// strconv.ParseBool reads them); another value is reported by
// [Config.Validate] rather than guessed at.
func ConfigFromEnv() Config {
	var errs []error
	flag := func(name string) bool {
		v := strings.TrimSpace(os.Getenv(name))
		if v == "" {
			return false
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true, false, 1 or 0", name, v))
		}
		return b
	}
	c := Config{
		Brokers:  splitList(os.Getenv(EnvBrokers)),
		ClientID: os.Getenv(EnvClientID),
		TLS: TLSConfig{
			Enabled:            flag(EnvTLS),
			CAFile:             os.Getenv(EnvTLSCA),
			CertFile:           os.Getenv(EnvTLSCert),
			KeyFile:            os.Getenv(EnvTLSKey),
			ServerName:         os.Getenv(EnvTLSServerName),
			InsecureSkipVerify: flag(EnvTLSInsecure),
		},
		SASL: SASLConfig{
			Mechanism: os.Getenv(EnvSASLMechanism),
			Username:  os.Getenv(EnvSASLUsername),
			Password:  os.Getenv(EnvSASLPassword),
		},
	}
	c.envErr = errors.Join(errs...)
	return c
}

// splitList splits a comma-separated list, trimming spaces and dropping
// empty items.
func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Validate reports every problem with c at once, each on its own line. It
// does not read the TLS files; Opts does.
func (c Config) Validate() error {
	errs := []error{c.envErr}
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("no brokers: want at least one host:port"))
	}
	for _, b := range c.Brokers {
		if err := checkBroker(b); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.TLS.validate(), c.SASL.validate())
	return errors.Join(errs...)
}

func checkBroker(b string) error {
	host, port, err := net.SplitHostPort(b)
	if err != nil {
		// A bare host (or bracketed IPv6 address) takes Kafka's port.
		host, port, err = net.SplitHostPort(b + ":" + defaultBrokerPort)
	}
	if err != nil || host == "" || strings.ContainsAny(host, " /") {
		return fmt.Errorf("broker %q: want host:port", b)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("broker %q: port must be a number from 1 to 65535", b)
	}
	return nil
}

func (t TLSConfig) validate() error {
	switch {
	case !t.Enabled && t != (TLSConfig{}):
		// Settings that would silently do nothing are a mistake worth
		// naming: the user meant to use TLS.
		return errors.New("tls: CA, certificate, key, server name or insecure set, but TLS is not enabled")
	case (t.CertFile == "") != (t.KeyFile == ""):
		return errors.New("tls: client certificate and key go together: set both or neither")
	}
	return nil
}

// config builds the crypto/tls configuration, reading the files.
func (t TLSConfig) config() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // documented as for tests only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read CA file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: CA file %s holds no PEM certificate", t.CAFile)
		}
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (s SASLConfig) validate() error {
	var errs []error
	switch strings.ToUpper(s.Mechanism) {
	case "":
		if s.Username != "" || s.Password != "" {
			errs = append(errs, errors.New("sasl: username or password set but no mechanism: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"))
		}
		return errors.Join(errs...)
	case SASLPlain, SASLScramSHA256, SASLScramSHA512:
	default:
		errs = append(errs, fmt.Errorf("sasl: unknown mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism))
	}
	if s.Username == "" {
		errs = append(errs, errors.New("sasl: no username"))
	}
	if s.Password == "" {
		errs = append(errs, errors.New("sasl: no password"))
	}
	return errors.Join(errs...)
}

func (s SASLConfig) mechanism() sasl.Mechanism {
	switch strings.ToUpper(s.Mechanism) {
	case SASLPlain:
		return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()
	case SASLScramSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()
	case SASLScramSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()
	}
	return nil
}

// Opts validates c and returns the franz-go options that connect with it:
// seed brokers, client id, TLS (kgo.DialTLSConfig) and SASL. Add the options
// of the job at hand (consumer group, producer settings) after them.
func (c Config) Opts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	id := c.ClientID
	if id == "" {
		id = defaultClientID
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(id)}
	if c.TLS.Enabled {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.SASL.mechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}
