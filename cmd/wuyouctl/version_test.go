package main

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wuyou/wuyou/internal/buildinfo"
)

func TestVersionPrintsVersionCommitAndGoVersionWithoutAServer(t *testing.T) {
	defer func(v string) { buildinfo.Version = v }(buildinfo.Version)
	buildinfo.Version = "v1.4.0-2-g0123abc-dirty"
	var out, errOut bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, &out, &errOut))
	require.True(t, strings.HasPrefix(out.String(), "wuyouctl v1.4.0-2-g0123abc-dirty\n"), out.String())
	require.Contains(t, out.String(), "commit:     "+buildinfo.Read().Revision)
	require.Contains(t, out.String(), "go:         "+runtime.Version()+"\n")
	require.Empty(t, errOut.String())
}
