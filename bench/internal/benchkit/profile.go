package benchkit

import (
	"os"
	"runtime/pprof"
)

// Profile writes a CPU profile of what a benchmark measures to a file. The
// Profile of an empty path does nothing, so that a benchmark calls Start
// and Stop around its measured rounds whether -cpuprofile was given or not.
type Profile struct{ f *os.File }

// OpenProfile creates the profile's file at path; an empty path gives a
// Profile that does nothing.
func OpenProfile(path string) (*Profile, error) {
	if path == "" {
		return &Profile{}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &Profile{f: f}, nil
}

// Start starts profiling.
func (p *Profile) Start() {
	if p.f != nil {
		_ = pprof.StartCPUProfile(p.f)
	}
}

// Stop stops profiling; the samples so far are in the file.
func (p *Profile) Stop() {
	if p.f != nil {
		pprof.StopCPUProfile()
	}
}

// Close closes the file.
func (p *Profile) Close() error {
	if p.f == nil {
		return nil
	}
	return p.f.Close()
}

// Profiled runs measure with the Profile of path (nothing when path is
// empty), and closes its file after: measure starts and stops it around
// what it measures.
func Profiled(path string, measure func(p *Profile) error) error {
	p, err := OpenProfile(path)
	if err != nil {
		return err
	}
	defer p.Close()
	return measure(p)
}
