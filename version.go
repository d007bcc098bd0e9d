package eventkit

import "runtime/debug"

// Version returns the version of the eventkit module built into the running
// program, as Go's build information records it: a release tag, a
// pseudo-version, or "(devel)" for a build from a work tree.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	if bi.Main.Path == "github.com/eventkit/eventkit" {
		return bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/eventkit/eventkit" {
			if d.Replace != nil {
				return d.Replace.Version
			}
			return d.Version
		}
	}
	return "(unknown)"
}
