#!/usr/bin/env bash
# Browser tests of the web pages in headless Chromium (Debian's chromium
# package), driven from Go with chromedp: `go test ./web/` runs them whenever
# chromium is there. This script installs what they need when it is missing
# and the script runs as root, then runs them with their screenshots saved
# to test-artifacts/web/.
#
#   bash web/browser-test.sh            install if needed, then run the web tests
#   bash web/browser-test.sh --install  install if needed, nothing else
#
# The CJK fonts are only for the screenshots: without them Chinese text shows
# as empty boxes (the tests read the DOM and pass either way).
set -euo pipefail
cd "$(dirname "$0")/.."

have_chromium() {
	local c
	for c in "${WUYOU_CHROMIUM:-}" chromium chromium-browser google-chrome; do
		[[ -n "$c" ]] && command -v "$c" >/dev/null 2>&1 && return 0
	done
	return 1
}

have_cjk_fonts() {
	command -v fc-list >/dev/null 2>&1 && [[ -n "$(fc-list :lang=zh-cn family 2>/dev/null | head -n1)" ]]
}

packages=()
have_chromium || packages+=(chromium)
have_cjk_fonts || packages+=(fonts-noto-cjk)
if ((${#packages[@]} > 0)); then
	if [[ "$(id -u)" -ne 0 ]]; then
		echo "browser-test: missing ${packages[*]}; install them as root (apt-get install ${packages[*]})" >&2
		have_chromium || exit 1
	else
		echo "browser-test: installing ${packages[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get update >&2
		apt-get install -y --no-install-recommends "${packages[@]}" >&2
	fi
fi

[[ "${1:-}" == "--install" ]] && exit 0

mkdir -p test-artifacts/web
go test -race -count=1 -timeout 5m -run 'Browser|FirstView|ContentSecurityPolicy' -v ./web/
