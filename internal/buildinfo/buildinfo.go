// Package buildinfo owns what a binary knows about its own build: the
// version it was released as, the commit it was built from, when, and with
// which Go. `wuyoud version`, `wuyouctl version` and the wuyou_build_info
// metric all read it from here.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Set at link time, e.g.
//
//	go build -ldflags "-X github.com/wuyou/wuyou/internal/buildinfo.Version=$(git describe --always --dirty)"
//
// The Makefile's build target and the Dockerfile do. Revision is only
// needed where the build has no VCS information to stamp (a Docker build
// context without .git); BuildTime is never known otherwise.
var (
	Version   = ""
	Revision  = ""
	BuildTime = ""
)

// Unknown stands for what the build did not record.
const Unknown = "unknown"

// Info is one binary's build.
type Info struct {
	Version    string // -X Version, else the module version `go install` stamps, else "dev"
	Revision   string // -X Revision, else vcs.revision, else "unknown"
	Modified   bool   // the working tree had uncommitted changes (vcs.modified)
	CommitTime string // vcs.time, RFC 3339; empty when unknown
	BuildTime  string // -X BuildTime; empty when unknown
	GoVersion  string
}

// Read is the running binary's build.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(bi, ok, Version, Revision, BuildTime)
}

// fromBuildInfo merges what the linker was told with what the Go toolchain
// stamped into the binary; the linker's values win.
func fromBuildInfo(bi *debug.BuildInfo, ok bool, version, revision, buildTime string) Info {
	i := Info{Version: version, Revision: revision, BuildTime: buildTime, GoVersion: runtime.Version()}
	if ok && bi != nil {
		if bi.GoVersion != "" {
			i.GoVersion = bi.GoVersion
		}
		if i.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if i.Revision == "" {
					i.Revision = s.Value
				}
			case "vcs.time":
				i.CommitTime = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Revision == "" {
		i.Revision = Unknown
	}
	return i
}

// Write prints the build of program, one fact a line, leaving out the
// times that are not known.
func (i Info) Write(w io.Writer, program string) error {
	revision := i.Revision
	if i.Modified {
		revision += " (modified)"
	}
	lines := fmt.Sprintf("%s %s\ncommit:     %s\n", program, i.Version, revision)
	if i.CommitTime != "" {
		lines += fmt.Sprintf("committed:  %s\n", i.CommitTime)
	}
	if i.BuildTime != "" {
		lines += fmt.Sprintf("built:      %s\n", i.BuildTime)
	}
	lines += fmt.Sprintf("go:         %s\n", i.GoVersion)
	_, err := io.WriteString(w, lines)
	return err
}

// Collector is the wuyou_build_info gauge: always 1, labelled with the
// version, revision and Go version, so a dashboard can join any series to
// the build that produced it.
func (i Info) Collector() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "wuyou_build_info",
		Help: "Always 1; its labels name the build of this wuyoud: version, VCS revision, Go version.",
		ConstLabels: prometheus.Labels{
			"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion,
		},
	}, func() float64 { return 1 })
}
