package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/internal/buildinfo"
)

func TestVersionCommandPrintsVersionCommitAndGoVersion(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, envOf(nil), &out, &bytes.Buffer{}))
	want := buildinfo.Read()
	require.True(t, strings.HasPrefix(out.String(), "wuyoud "+want.Version+"\n"), out.String())
	require.Contains(t, out.String(), "commit:     "+want.Revision)
	require.Contains(t, out.String(), "go:         "+runtime.Version()+"\n")
}

func TestVersionTheLinkerSetsIsTheOnePrinted(t *testing.T) {
	defer func(v string) { buildinfo.Version = v }(buildinfo.Version)
	buildinfo.Version = "v9.8.7-1-gabcdef"
	var out bytes.Buffer
	require.NoError(t, runVersion(&out))
	require.True(t, strings.HasPrefix(out.String(), "wuyoud v9.8.7-1-gabcdef\n"), out.String())
}

func TestVersionBuildInfoMetricIsScrapedAsOne(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildInfoCollector())
	families, err := reg.Gather()
	require.NoError(t, err)
	require.Len(t, families, 1)
	require.Equal(t, "wuyou_build_info", families[0].GetName())
	m := families[0].GetMetric()[0]
	require.Equal(t, 1.0, m.GetGauge().GetValue())
	labels := map[string]string{}
	for _, l := range m.GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	i := buildinfo.Read()
	require.Equal(t, map[string]string{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion}, labels)
	n, err := testutil.GatherAndCount(reg, "wuyou_build_info")
	require.NoError(t, err)
	require.Equal(t, 1, n)
}
