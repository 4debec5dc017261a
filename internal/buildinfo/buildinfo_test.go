package buildinfo

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestBuildInfoTakesTheRevisionFromTheVCSStampWhenTheLinkerWasToldNothing(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.10", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"},
	}}
	i := fromBuildInfo(bi, true, "", "", "")
	require.Equal(t, Info{Version: "dev", Revision: "0123abcd", Modified: true, CommitTime: "2026-12-01T10:00:00Z", GoVersion: "go1.26.10"}, i)
}

func TestBuildInfoLinkerValuesWinOverTheVCSStamp(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.10", Main: debug.Module{Version: "v0.9.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123abcd"}}}
	i := fromBuildInfo(bi, true, "v1.2.3-4-gabcdef-dirty", "fedcba98", "2026-12-02T04:00:00Z")
	require.Equal(t, "v1.2.3-4-gabcdef-dirty", i.Version)
	require.Equal(t, "fedcba98", i.Revision)
	require.Equal(t, "2026-12-02T04:00:00Z", i.BuildTime)
}

func TestBuildInfoWithoutAnyStampSaysUnknownCommitAndOmitsTheTimes(t *testing.T) {
	i := fromBuildInfo(nil, false, "", "", "")
	require.Equal(t, "unknown", i.Revision)
	var buf bytes.Buffer
	require.NoError(t, i.Write(&buf, "wuyoud"))
	require.True(t, strings.HasPrefix(buf.String(), "wuyoud dev\n"), buf.String())
	require.Contains(t, buf.String(), "commit:     unknown\n")
	require.Contains(t, buf.String(), "go:         go1.")
	require.NotContains(t, buf.String(), "built:")
	require.NotContains(t, buf.String(), "committed:")
}

func TestBuildInfoMetricIsOneLabelledWithTheBuild(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Info{Version: "v1.2.3", Revision: "0123abcd", GoVersion: "go1.26.10"}.Collector())
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP wuyou_build_info Always 1; its labels name the build of this wuyoud: version, VCS revision, Go version.
# TYPE wuyou_build_info gauge
wuyou_build_info{goversion="go1.26.10",revision="0123abcd",version="v1.2.3"} 1
`), "wuyou_build_info"))
}
