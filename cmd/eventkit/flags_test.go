package main

import (
	"testing"

	"github.com/eventkit/eventkit/kafka"
	"github.com/spf13/cobra"
)

// The connection flags must read the variables kafka.ConfigFromEnv reads,
// so that a library service and the CLI share one configuration.
func TestKafkaFlagsUseConfigFromEnvNames(t *testing.T) {
	cmd := &cobra.Command{}
	new(kafkaFlags).bind(cmd)
	want := map[string]string{
		"brokers": kafka.EnvBrokers, "client-id": kafka.EnvClientID,
		"tls": kafka.EnvTLS, "tls-ca": kafka.EnvTLSCA, "tls-cert": kafka.EnvTLSCert, "tls-key": kafka.EnvTLSKey,
		"tls-server-name": kafka.EnvTLSServerName, "tls-insecure": kafka.EnvTLSInsecure,
		"sasl-mechanism": kafka.EnvSASLMechanism, "sasl-username": kafka.EnvSASLUsername, "sasl-password": kafka.EnvSASLPassword,
	}
	for flag, env := range want {
		t.Run(flag, func(t *testing.T) {
			if cmd.Flags().Lookup(flag) == nil {
				t.Fatalf("no --%s flag", flag)
			}
			if got := envName(flag); got != env {
				t.Errorf("--%s falls back to %s, kafka.ConfigFromEnv reads %s", flag, got, env)
			}
		})
	}
}

func TestShowBytes(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"text", "hello world", "hello world"},
		{"json", `{"a":1}`, `{"a":1}`},
		{"unicode", "grüße 日本", "grüße 日本"},
		{"empty", "", ""},
		{"newline", "a\nb", "base64:YQpi"},
		{"tab", "a\tb", "base64:YQli"},
		{"binary", "\x00\x01", "base64:AAE="},
		{"not utf-8", "\xff", "base64:/w=="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := showBytes([]byte(tc.in)); got != tc.want {
				t.Errorf("showBytes(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
