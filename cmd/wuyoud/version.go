package main

import (
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wuyou/wuyou/internal/buildinfo"
)

// runVersion prints this binary's version, commit, build time when known
// and Go version (`wuyoud version`).
func runVersion(stdout io.Writer) error {
	return buildinfo.Read().Write(stdout, "wuyoud")
}

// buildInfoCollector is the wuyou_build_info gauge of this binary, which
// start registers beside the Go and process collectors.
func buildInfoCollector() prometheus.Collector {
	return buildinfo.Read().Collector()
}
