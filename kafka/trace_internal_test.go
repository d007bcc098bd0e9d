package kafka

import (
	"slices"
	"testing"
)

// DefaultPropagator uses W3C until the application sets a global
// propagator, which it can only tell by recognising the unset global: a
// change in OpenTelemetry's internals must fail here, not silently turn
// W3C propagation off.
func TestRecognisesTheUnsetGlobalPropagator(t *testing.T) {
	if unsetPropagator == nil {
		t.Fatal("the unset global propagator was not recognised")
	}
	if got := DefaultPropagator().Fields(); !slices.Contains(got, "traceparent") {
		t.Fatalf("with no global propagator set, DefaultPropagator carries %q, want W3C's traceparent", got)
	}
}
