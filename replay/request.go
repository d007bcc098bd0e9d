package replay

import (
	"github.com/eventkit/eventkit"
	"github.com/eventkit/eventkit/lookback"
)

// Request is a [Spec] as POST /api/v1/replays takes it: {"filter",
// "target", "mode", "rate", "dry_run"}, the filter in lookback's JSON form.
// Lookback's API decodes it, and a client builds it with [RequestOf].
type Request struct {
	Filter lookback.FilterJSON `json:"filter"`
	Target Target              `json:"target"`
	Mode   eventkit.ReplayMode `json:"mode,omitempty"`
	Rate   float64             `json:"rate,omitempty"`
	DryRun bool                `json:"dry_run,omitempty"`
}

// RequestOf returns spec as a request, or an error when its filter has text
// that is not UTF-8, which the JSON form would change: the request would
// select other records than spec does.
func RequestOf(spec Spec) (Request, error) {
	if err := spec.Filter.CheckJSON(); err != nil {
		return Request{}, err
	}
	return Request{Filter: spec.Filter.JSON(), Target: spec.Target, Mode: spec.Mode, Rate: spec.Rate, DryRun: spec.DryRun}, nil
}

// Spec checks r and returns the spec it describes.
func (r Request) Spec() (Spec, error) {
	f, err := r.Filter.Filter()
	if err != nil {
		return Spec{}, err
	}
	spec := Spec{Filter: f, Target: r.Target, Mode: r.Mode, Rate: r.Rate, DryRun: r.DryRun}
	return spec, spec.Validate()
}
