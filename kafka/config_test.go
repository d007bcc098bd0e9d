package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/internal/testkit"
	"github.com/eventkit/eventkit/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestConfigValidate(t *testing.T) {
	ok := []string{"127.0.0.1:9092"}
	for _, tc := range []struct {
		name string
		cfg  kafka.Config
		want []string // substrings of the error, all of them; none: valid
	}{
		{name: "brokers only", cfg: kafka.Config{Brokers: ok}},
		{name: "host without port", cfg: kafka.Config{Brokers: []string{"kafka-1", "[::1]"}}},
		{name: "ipv6 with port", cfg: kafka.Config{Brokers: []string{"[::1]:9093"}}},
		{name: "no brokers", cfg: kafka.Config{}, want: []string{"no brokers"}},
		{name: "bad port", cfg: kafka.Config{Brokers: []string{"kafka:http"}}, want: []string{`broker "kafka:http": port`}},
		{name: "port out of range", cfg: kafka.Config{Brokers: []string{"kafka:70000"}}, want: []string{`broker "kafka:70000": port`}},
		{name: "empty host", cfg: kafka.Config{Brokers: []string{":9092"}}, want: []string{`broker ":9092": want host:port`}},
		{name: "url instead of address", cfg: kafka.Config{Brokers: []string{"http://kafka:9092"}}, want: []string{`broker "http://kafka:9092"`}},
		{name: "tls with everything", cfg: kafka.Config{Brokers: ok, TLS: kafka.TLSConfig{
			Enabled: true, CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", ServerName: "kafka", InsecureSkipVerify: true,
		}}},
		{name: "tls files without tls", cfg: kafka.Config{Brokers: ok, TLS: kafka.TLSConfig{CAFile: "ca.pem"}}, want: []string{"TLS is not enabled"}},
		{name: "insecure without tls", cfg: kafka.Config{Brokers: ok, TLS: kafka.TLSConfig{InsecureSkipVerify: true}}, want: []string{"TLS is not enabled"}},
		{name: "certificate without key", cfg: kafka.Config{Brokers: ok, TLS: kafka.TLSConfig{Enabled: true, CertFile: "c.pem"}}, want: []string{"certificate and key go together"}},
		{name: "key without certificate", cfg: kafka.Config{Brokers: ok, TLS: kafka.TLSConfig{Enabled: true, KeyFile: "k.pem"}}, want: []string{"certificate and key go together"}},
		{name: "sasl plain", cfg: kafka.Config{Brokers: ok, SASL: kafka.SASLConfig{Mechanism: "PLAIN", Username: "u", Password: "p"}}},
		{name: "sasl mechanism in lower case", cfg: kafka.Config{Brokers: ok, SASL: kafka.SASLConfig{Mechanism: "scram-sha-512", Username: "u", Password: "p"}}},
		{name: "sasl unknown mechanism", cfg: kafka.Config{Brokers: ok, SASL: kafka.SASLConfig{Mechanism: "GSSAPI", Username: "u", Password: "p"}}, want: []string{`unknown mechanism "GSSAPI"`}},
		{name: "sasl without credentials", cfg: kafka.Config{Brokers: ok, SASL: kafka.SASLConfig{Mechanism: "PLAIN"}}, want: []string{"no username", "no password"}},
		{name: "credentials without mechanism", cfg: kafka.Config{Brokers: ok, SASL: kafka.SASLConfig{Username: "u", Password: "p"}}, want: []string{"no mechanism"}},
		{name: "every problem at once", cfg: kafka.Config{
			TLS:  kafka.TLSConfig{ServerName: "kafka"},
			SASL: kafka.SASLConfig{Mechanism: "NTLM"},
		}, want: []string{"no brokers", "TLS is not enabled", "unknown mechanism", "no username", "no password"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: nil, want an error with %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate: %q, want it to say %q", err, w)
				}
			}
			if _, err := tc.cfg.Opts(); err == nil {
				t.Error("Opts accepted a config Validate refuses")
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Run("every variable", func(t *testing.T) {
		for k, v := range map[string]string{
			"EVENTKIT_BROKERS": " a:9092, b:9093 ,", "EVENTKIT_CLIENT_ID": "reports",
			"EVENTKIT_TLS": "true", "EVENTKIT_TLS_CA": "/ca.pem", "EVENTKIT_TLS_CERT": "/c.pem", "EVENTKIT_TLS_KEY": "/k.pem",
			"EVENTKIT_TLS_SERVER_NAME": "kafka.internal", "EVENTKIT_TLS_INSECURE": "1",
			"EVENTKIT_SASL_MECHANISM": "SCRAM-SHA-256", "EVENTKIT_SASL_USERNAME": "svc", "EVENTKIT_SASL_PASSWORD": "pw",
		} {
			t.Setenv(k, v)
		}
		want := kafka.Config{
			Brokers: []string{"a:9092", "b:9093"}, ClientID: "reports",
			TLS: kafka.TLSConfig{
				Enabled: true, CAFile: "/ca.pem", CertFile: "/c.pem", KeyFile: "/k.pem",
				ServerName: "kafka.internal", InsecureSkipVerify: true,
			},
			SASL: kafka.SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "svc", Password: "pw"},
		}
		got := kafka.ConfigFromEnv()
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("ConfigFromEnv:\n got %+v\nwant %+v", got, want)
		}
		if err := got.Validate(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unset", func(t *testing.T) {
		for _, k := range []string{"EVENTKIT_BROKERS", "EVENTKIT_TLS", "EVENTKIT_TLS_INSECURE", "EVENTKIT_SASL_MECHANISM"} {
			t.Setenv(k, "")
		}
		got := kafka.ConfigFromEnv()
		if len(got.Brokers) != 0 || got.TLS.Enabled || got.SASL.Mechanism != "" {
			t.Fatalf("ConfigFromEnv with nothing set: %+v", got)
		}
	})
	t.Run("switch that is not a boolean", func(t *testing.T) {
		t.Setenv("EVENTKIT_BROKERS", "a:9092")
		t.Setenv("EVENTKIT_TLS", "ture")
		err := kafka.ConfigFromEnv().Validate()
		if err == nil || !strings.Contains(err.Error(), `EVENTKIT_TLS="ture"`) {
			t.Fatalf("Validate: %v, want it to name EVENTKIT_TLS", err)
		}
	})
}

// roundTrip publishes one event with opts and reads it back, bounded by a
// deadline, proving the connection both ways.
func roundTrip(t *testing.T, b *kafka.Broker, cfg kafka.Config) {
	t.Helper()
	ctx := testCtx(t)
	cl, err := kafka.Connect(ctx, cfg, testkit.ClientOpts()...)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer cl.Close()
	ev := &eventkit.Event{Type: "test.roundtrip", Data: []byte("hello")}
	if err := kafka.NewPublisher(cl).Publish(ctx, "t", ev); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	opts, err := cfg.Opts()
	if err != nil {
		t.Fatal(err)
	}
	rs := testkit.ReadAll(t, b.Addr(), "t", opts...)
	if len(rs) == 0 || kafka.EventOf(rs[len(rs)-1]).ID != ev.ID {
		t.Fatalf("read back %d records, want the last to be %s", len(rs), ev.ID)
	}
}

// refused checks that Connect fails at once with an error that says what is
// wrong, instead of retrying until the deadline.
func refused(t *testing.T, cfg kafka.Config, want ...string) error {
	t.Helper()
	ctx := testCtx(t)
	cl, err := kafka.Connect(ctx, cfg, testkit.ClientOpts()...)
	if err == nil {
		cl.Close()
		t.Fatal("Connect succeeded, want it refused")
	}
	t.Logf("Connect: %v", err)
	if ctx.Err() != nil {
		t.Fatalf("Connect waited for the deadline: %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Connect: %q, want it to say %q", err, w)
		}
	}
	return err
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{kafka.SASLPlain, kafka.SASLScramSHA256, kafka.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			b, err := kafka.StartBroker(kafka.BrokerConfig{
				Topics: []string{"t"},
				Opts:   []kfake.Opt{kfake.EnableSASL(), kfake.Superuser(mech, "alice", "s3cret")},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			cfg := func(user, pass string) kafka.Config {
				return kafka.Config{Brokers: []string{b.Addr()}, SASL: kafka.SASLConfig{Mechanism: mech, Username: user, Password: pass}}
			}

			t.Run("right credentials", func(t *testing.T) { roundTrip(t, b, cfg("alice", "s3cret")) })
			t.Run("wrong password", func(t *testing.T) {
				err := refused(t, cfg("alice", "guess"), mech, `"alice"`, "wrong username or password")
				if !errors.Is(err, kafka.ErrAuth) {
					t.Errorf("Connect: %v, want it to match ErrAuth", err)
				}
			})
			t.Run("unknown user", func(t *testing.T) { refused(t, cfg("mallory", "s3cret"), "wrong username or password") })
			t.Run("no sasl", func(t *testing.T) {
				refused(t, kafka.Config{Brokers: []string{b.Addr()}}, "SASL is required but not provided")
			})
		})
	}
}

// pki is a throwaway certificate authority with a broker certificate and a
// client certificate, written as PEM files.
type pki struct {
	caFile, certFile, keyFile string // the CA, and the client's pair
	pool                      *x509.CertPool
	server                    tls.Certificate
}

// brokerName is the only name on the broker's certificate: connecting to
// 127.0.0.1 must set ServerName to it.
const brokerName = "broker.eventkit.test"

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, caCert := issue(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "eventkit test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}, nil, nil)
	p := &pki{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "client.pem"), keyFile: filepath.Join(dir, "client-key.pem")}
	writePEM(t, p.caFile, "CERTIFICATE", caCert.Raw)
	p.pool = x509.NewCertPool()
	p.pool.AddCert(caCert)

	srvKey, srvCert := issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: brokerName},
		DNSNames:    []string{brokerName},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, caKey)
	p.server = tls.Certificate{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}

	cliKey, cliCert := issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "eventkit-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, caKey)
	writePEM(t, p.certFile, "CERTIFICATE", cliCert.Raw)
	der, err := x509.MarshalECPrivateKey(cliKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, p.keyFile, "EC PRIVATE KEY", der)
	return p
}

// issue signs tmpl with parent's key, or self-signs it when parent is nil.
func issue(t *testing.T, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, cert
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tlsBroker(t *testing.T, cfg *tls.Config) *kafka.Broker {
	t.Helper()
	b, err := kafka.StartBroker(kafka.BrokerConfig{Topics: []string{"t"}, Opts: []kfake.Opt{kfake.TLS(cfg)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func TestTLS(t *testing.T) {
	ca := newPKI(t)
	b := tlsBroker(t, &tls.Config{Certificates: []tls.Certificate{ca.server}, MinVersion: tls.VersionTLS12})
	withTLS := func(tc kafka.TLSConfig) kafka.Config {
		tc.Enabled = true
		return kafka.Config{Brokers: []string{b.Addr()}, TLS: tc}
	}

	t.Run("trusted CA", func(t *testing.T) {
		roundTrip(t, b, withTLS(kafka.TLSConfig{CAFile: ca.caFile, ServerName: brokerName}))
	})
	t.Run("insecure skip verify", func(t *testing.T) {
		roundTrip(t, b, withTLS(kafka.TLSConfig{InsecureSkipVerify: true}))
	})
	t.Run("name not on the certificate", func(t *testing.T) {
		err := refused(t, withTLS(kafka.TLSConfig{CAFile: ca.caFile}), "not trusted", "127.0.0.1")
		if !errors.Is(err, kafka.ErrAuth) {
			t.Errorf("Connect: %v, want it to match ErrAuth", err)
		}
	})
	t.Run("unknown CA", func(t *testing.T) {
		other := newPKI(t)
		refused(t, withTLS(kafka.TLSConfig{CAFile: other.caFile, ServerName: brokerName}), "not trusted", "unknown authority")
	})
	t.Run("CA file missing", func(t *testing.T) {
		_, err := withTLS(kafka.TLSConfig{CAFile: filepath.Join(t.TempDir(), "nope.pem")}).Opts()
		if err == nil || !strings.Contains(err.Error(), "read CA file") {
			t.Fatalf("Opts: %v, want a CA file error", err)
		}
	})
	t.Run("CA file not PEM", func(t *testing.T) {
		junk := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := withTLS(kafka.TLSConfig{CAFile: junk}).Opts()
		if err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
			t.Fatalf("Opts: %v, want a PEM error", err)
		}
	})

	t.Run("client certificate", func(t *testing.T) {
		mtls := tlsBroker(t, &tls.Config{
			Certificates: []tls.Certificate{ca.server},
			ClientCAs:    ca.pool,
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		})
		cfg := kafka.Config{Brokers: []string{mtls.Addr()}, TLS: kafka.TLSConfig{
			Enabled: true, CAFile: ca.caFile, ServerName: brokerName, CertFile: ca.certFile, KeyFile: ca.keyFile,
		}}
		t.Run("presented", func(t *testing.T) { roundTrip(t, mtls, cfg) })
		t.Run("missing", func(t *testing.T) {
			cfg := cfg
			cfg.TLS.CertFile, cfg.TLS.KeyFile = "", ""
			refused(t, cfg, "certificate required")
		})
	})
}

func TestConnectPlaintextBroker(t *testing.T) {
	b := testkit.Broker(t, 1, "t")
	t.Run("reachable", func(t *testing.T) { roundTrip(t, b, kafka.Config{Brokers: []string{b.Addr()}}) })
	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		refused(t, kafka.Config{Brokers: []string{addr}}, "connect to "+addr, "connection refused")
	})
	t.Run("invalid config", func(t *testing.T) {
		_, err := kafka.Connect(context.Background(), kafka.Config{})
		if err == nil || !strings.Contains(err.Error(), "no brokers") {
			t.Fatalf("Connect: %v, want the validation error", err)
		}
	})
}
