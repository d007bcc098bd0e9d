package main

import (
	"strings"
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
			if got := envOf(cmd.Flags().Lookup(flag)); got != env {
				t.Errorf("--%s falls back to %s, kafka.ConfigFromEnv reads %s", flag, got, env)
			}
		})
	}
}

// A flag's help names the variable it reads, and no other: the lookback
// ingest's group must not come from EVENTKIT_GROUP, set for an
// application's relay.
func TestFlagsReadTheVariableTheirHelpNames(t *testing.T) {
	root := newRoot(&streams{})
	for _, tc := range []struct{ path, flag, env string }{
		{"lookback serve", "group", "EVENTKIT_LOOKBACK_GROUP"},
		{"relay", "to", "EVENTKIT_RELAY_TO"},
		{"relay", "topic", "EVENTKIT_TOPICS"},
		{"relay", "group", "EVENTKIT_GROUP"},
		{"broker", "topics", "EVENTKIT_BROKER_TOPICS"},
		{"tail", "topic", "EVENTKIT_TOPIC"},
		// A relay's container sets EVENTKIT_GROUP: tail run there must not
		// join the relay's group and commit what the application never saw.
		{"tail", "group", "EVENTKIT_TAIL_GROUP"},
	} {
		cmd, _, err := root.Find(strings.Fields(tc.path))
		if err != nil {
			t.Fatal(err)
		}
		f := cmd.Flags().Lookup(tc.flag)
		if f == nil {
			t.Fatalf("%s has no --%s", tc.path, tc.flag)
		}
		if got := envOf(f); got != tc.env {
			t.Errorf("%s --%s reads %s, want %s", tc.path, tc.flag, got, tc.env)
		}
		if !strings.Contains(f.Usage, "(env "+tc.env+")") {
			t.Errorf("%s --%s: help %q does not name %s", tc.path, tc.flag, f.Usage, tc.env)
		}
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
