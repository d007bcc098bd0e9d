package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrAuth is matched (errors.Is) by the error [Connect] returns when the
// brokers refuse the client's credentials or the client refuses the
// brokers' certificate: retrying will not help, the configuration must
// change.
var ErrAuth = errors.New("authentication failed")

// Connect builds a franz-go client from c and opts (added after c's own) and
// checks, within ctx, that it reaches a broker and authenticates. A client
// retries connection failures for as long as it lives, so without this check
// a wrong password or an untrusted certificate shows only as requests that
// never finish; Connect turns it into an error that says what is wrong. ctx
// bounds the check only, not the client. Connect does not wait for a cluster
// that is not up yet.
func Connect(ctx context.Context, c Config, opts ...kgo.Opt) (*kgo.Client, error) {
	base, err := c.Opts()
	if err != nil {
		return nil, err
	}
	w := new(connWatch)
	cl, err := kgo.NewClient(append(append(base, kgo.WithHooks(w)), opts...)...)
	if err != nil {
		return nil, err
	}
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		return nil, c.explain(w.saslFailed(), err)
	}
	return cl, nil
}

// explain turns a failed ping into an error naming the brokers and, where it
// can tell, the cause a user can act on.
func (c Config) explain(saslEOF bool, err error) error {
	where := "connect to " + strings.Join(c.Brokers, ",")
	sasl := fmt.Sprintf("sasl %s as %q", strings.ToUpper(c.SASL.Mechanism), c.SASL.Username)
	var (
		unknownCA x509.UnknownAuthorityError
		badName   x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		netErr    net.Error
	)
	switch {
	case saslEOF:
		return fmt.Errorf("%s: %w: %s: the broker closed the connection (wrong username or password?)", where, ErrAuth, sasl)
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.UnsupportedSaslMechanism), errors.Is(err, kerr.IllegalSaslState):
		return fmt.Errorf("%s: %w: %s: %v", where, ErrAuth, sasl, err)
	case errors.As(err, &unknownCA), errors.As(err, &badName), errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Errorf("%s: %w: the broker's TLS certificate is not trusted: %v", where, ErrAuth, err)
	case c.TLS.Enabled && (errors.As(err, &record) || errors.As(err, &netErr) && netErr.Timeout()):
		// A TLS client on a plaintext listener waits for a server hello
		// that never comes.
		return fmt.Errorf("%s: %w (TLS is on: is the listener plaintext?)", where, err)
	}
	return fmt.Errorf("%s: %w", where, err)
}

// connWatch is a franz-go hook that notices a connection closed during SASL
// authentication. Kafka answers bad credentials with an error, but some
// brokers (the embedded one among them) just hang up, which franz-go reports
// as a bare EOF.
type connWatch struct {
	mu      sync.Mutex
	saslEOF bool
}

var _ kgo.HookBrokerRead = (*connWatch)(nil)

func (w *connWatch) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil && kmsg.Key(key) == kmsg.SASLAuthenticate {
		w.mu.Lock()
		w.saslEOF = true
		w.mu.Unlock()
	}
}

func (w *connWatch) saslFailed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.saslEOF
}
