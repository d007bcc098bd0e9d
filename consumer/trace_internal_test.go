package consumer

import "testing"

// The agent starts no spans while OpenTelemetry's global tracer provider is
// unset, which it recognises by the provider's type; a rename upstream would
// silently cost every untraced application allocations per event.
func TestRecognisesTheUnsetGlobalTracerProvider(t *testing.T) {
	if unsetGlobal == nil {
		t.Fatal("the unset global tracer provider was not recognised")
	}
	if newTracing(&cfg{group: "g"}).enabled() {
		t.Fatal("tracing enabled with no tracer provider set")
	}
}
