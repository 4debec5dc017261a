#!/usr/bin/env bash
# Wuyou's benchmarks in one command (`make bench` runs it). It builds the
# measurement programs of bench/cmd, runs each against a real Redis and
# PostgreSQL with a baseline measured in the same run, prints the table and
# writes BENCHMARKS.md from what they printed. Figures are never typed by
# hand.
#
#   bash bench/run.sh
#   BENCH_ONLY="sessions" bash bench/run.sh   # only these steps (names as
#       measure's, space-separated): their lines go into a section of
#       BENCHMARKS.md of their own, the full run's lines are kept
#
# Redis: $WUYOU_TEST_REDIS_ADDRS, else whatever scripts/test-redis.sh finds
# or starts. PostgreSQL: $WUYOU_TEST_POSTGRES_URL (a server on which each
# measurement creates a fresh database and drops it), else the machine's
# own at 127.0.0.1:5432. wrk is installed with apt-get when missing and we
# are root. Bounded in time: every step has a timeout, and all of them
# together share a budget of $BENCH_BUDGET seconds (default 1500; the
# catch-up drain of 1,000,000 events, now stored in PostgreSQL too, is the
# longest step). Exits non-zero when a measurement failed; BENCHMARKS.md is
# still written, showing that line as not measured.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

budget=${BENCH_BUDGET:-1500}
started=$SECONDS
say() { printf '== %s\n' "$*" >&2; }

# step_timeout WANT: seconds a step may take, WANT at most, within the budget.
step_timeout() {
	local left=$((budget - (SECONDS - started)))
	((left < $1)) && echo "$left" || echo "$1"
}

addrs=${WUYOU_TEST_REDIS_ADDRS:-}
if [[ -z $addrs ]]; then
	addrs=$(bash scripts/test-redis.sh)
fi
export WUYOU_TEST_REDIS_ADDRS=$addrs
postgres=${WUYOU_TEST_POSTGRES_URL:-postgres://root@127.0.0.1:5432/test?sslmode=disable}
export WUYOU_TEST_POSTGRES_URL=$postgres
only=${BENCH_ONLY:-}
command_line="WUYOU_TEST_REDIS_ADDRS=$addrs WUYOU_TEST_POSTGRES_URL='$postgres' bash bench/run.sh"
if [[ -n $only ]]; then
	command_line="BENCH_ONLY='$only' $command_line"
fi
# selected NAME: whether the step NAME runs (all of them without BENCH_ONLY).
selected() { [[ -z $only || " $only " == *" $1 "* ]]; }

date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)
go_version=$(go version)

work=$(mktemp -d "${TMPDIR:-/tmp}/wuyou-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
bin=$work/bin
results=$work/results
: >"$results"
failed=()

say "building bench/cmd/... (Redis at $addrs, PostgreSQL at ${postgres%%\?*})"
timeout "$(step_timeout 180)" go build -o "$bin/" ./bench/cmd/...

# measure NAME WANT CMD...: runs one measurement, its figures into $results.
measure() {
	local name=$1 want=$2 secs
	shift 2
	selected "$name" || return 0
	secs=$(step_timeout "$want")
	if ((secs < 10)); then
		say "$name: skipped, the ${budget}s budget is spent"
		echo "info $name.skipped the run's time budget was spent" >>"$results"
		failed+=("$name")
		return
	fi
	say "$name (at most ${secs}s)"
	if ! timeout "$secs" "$@" >>"$results"; then
		say "$name: FAILED"
		echo "info $name.skipped failed (see the run's output)" >>"$results"
		failed+=("$name")
	fi
}

measure metering 200 "$bin/wuyoubench" metering
# Catch-up drains a backlog of 1,000,000 events: 20-30 s to enrol and
# produce, then the drain, every batch stored in PostgreSQL as well as
# Redis. Its drain limit (6 minutes) ends before the step's timeout, so a
# slow drain still reports the rate over what it applied.
measure catchup 450 "$bin/wuyoubench" catchup
measure issuance 90 "$bin/wuyoubench" issuance
# A recurring programme's month to 100,000 seafarers (COPYed into the
# registry in a few seconds, not timed): bare writes of the same grants,
# then one sweep issuing them, then idle sweeps; about 60-90 s.
measure recurring 240 "$bin/wuyoubench" recurring

# wrk for the allowance reads: Debian packages it; wrk2 is not packaged, so
# bench/cmd/loadgen measures the p99 at a fixed rate instead.
if ! selected allowance; then
	:
elif ! command -v wrk >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
	say "installing wrk with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y -qq wrk || { apt-get update -qq && apt-get install -y -qq wrk; }; } >&2 || true
fi
if ! selected allowance; then
	:
elif command -v wrk >/dev/null; then
	measure allowance 120 "$bin/wuyoubench" allowance -wrk "$(command -v wrk)" -loadgen "$bin/loadgen"
else
	say "allowance: skipped, wrk is missing (install it, or run as root so this script can)"
	echo "info allowance.skipped wrk is not installed" >>"$results"
	failed+=(allowance)
fi

# Redis memory and metering scaling each start a redis-server of their own
# (from PATH), so INFO and commandstats count nothing but their keys.
# Memory carries 2,000 seafarers to the steady state (90 calls each through
# the consumer's path: 180,000 calls); every figure is per seafarer or per
# identity.
measure memory 180 "$bin/wuyoubench" memory -seafarers 2000
profile=$work/metering.pprof
measure scaling 120 "$bin/wuyoubench" scaling -cpuprofile "$profile"
# Where the metering path's CPU goes: the profile's top functions, by own
# time (flat) and, for Wuyou's and the libraries' entry points, by time
# including callees (cum), as info lines for the report.
if [[ -s $profile ]]; then
	go tool pprof -top -nodecount=10 "$bin/wuyoubench" "$profile" 2>/dev/null |
		awk '/^ *[0-9.]+(m?s)? +[0-9.]+%/ { n++; printf "info profile.flat%02d own %s (%s), with callees %s (%s): %s\n", n, $1, $2, $4, $5, $6 }' >>"$results" || true
	go tool pprof -top -cum -nodecount=80 "$bin/wuyoubench" "$profile" 2>/dev/null |
		awk '/^ *[0-9.]+(m?s)? +[0-9.]+%/ && $6 ~ /wuyou\/wuyou\/(carrier|quota|crew)|encoding\/json\.(Marshal|Unmarshal)$|go-redis\/v9\.\(\*Pipeline\)\.Exec|kafka-go\.\(\*Writer\)\.WriteMessages|kafka-go\.\(\*Reader\)\.FetchMessage|kfake/ && n < 14 { n++; printf "info profile.cum%02d with callees %s (%s): %s\n", n, $4, $5, $6 }' >>"$results" || true
fi

# The ledger and the statements are Go benchmarks of quota (they need its
# unexported SQL); wuyoubench gobench runs them and prints their metrics as
# figures. The ledger's Append and its baseline, a bare COPY of the same
# rows, alternate over three rounds, so both share the machine's noise.
measure ledger 180 "$bin/wuyoubench" gobench -key ledger -rounds 3 -- \
	go test -run '^$' -bench '^BenchmarkAppend(BareCopy)?$' -benchtime 100x ./quota/
# The debit script alone against an empty script with the same keys and
# arguments (the floor of any script call), and against a script of the
# debit's commands alone (the floor of any debit done by a script),
# alternating over three rounds.
measure script 420 "$bin/wuyoubench" gobench -key script -rounds 3 -- \
	go test -run '^$' -bench '^Benchmark(Debit|Empty|CommandsOnly)ScriptRedisTime$' -benchtime 20000x ./quota/
measure statements 300 "$bin/wuyoubench" gobench -key statements -- \
	go test -run '^$' -bench '^BenchmarkPGProgrammeStatement$' -benchtime 3x -timeout 10m ./quota/

# The carrier's real-time sessions (CONTRACT 7.3): open+terminate pairs/s
# against the allowance read rate, same client; the maximum open rate, then
# the p99 of opens at half of it against a plain fiber handler. 10,000
# seafarers enrolled (about 20 s), then 2 rounds of each load, 10 s a run:
# about 2 minutes.
sessions_profile=$work/sessions.pprof
measure sessions 300 "$bin/wuyoubench" sessions -cpuprofile "$sessions_profile"
# Where a pair's server CPU goes: the profile's entry points of Wuyou, the
# drivers and the kernel, by time including callees.
if [[ -s $sessions_profile ]]; then
	go tool pprof -top -cum -nodecount=120 "$bin/wuyoubench" "$sessions_profile" 2>/dev/null |
		awk '/^ *[0-9.]+(m?s)? +[0-9.]+%/ && $6 ~ /wuyou\/wuyou\/(api\.\(\*Server\)\.(open|terminate)Session|carrier\.|quota\.\(\*(RedisStore|PGLedger)\)\.(OpenSession|TerminateSession|Settle|Append|SessionCallOf)$)|^syscall\.(Syscall|write|read)$|encoding\/json\.(Marshal|Unmarshal)$|kfake\.\(\*Cluster\)\.run$|runtime\.gcBgMarkWorker$/ && n < 16 { n++; printf "info sessions.profile%02d %s %s (%s)\n", n, $6, $4, $5 }' >>"$results" || true
fi

# Bulk enrolment is a Go benchmark of its own; its rows/s metric goes in the table.
bulk_command="go test -run x -bench BulkEnrol10k -benchtime 3x ./bench/"
if ! selected bulk_enrol; then
	:
elif [[ -f bench/bulk_enrol_test.go ]]; then
	secs=$(step_timeout 240)
	say "bulk enrolment: $bulk_command (at most ${secs}s)"
	echo "info bulk_enrol.command $bulk_command" >>"$results"
	if out=$(timeout "$secs" $bulk_command 2>&1); then
		printf '%s\n' "$out" >&2
		# "BenchmarkBulkEnrol10k-2  3  123 ns/op  8100 rows/s ...": every value-unit pair.
		line=$(grep -m1 '^BenchmarkBulkEnrol10k' <<<"$out" || true)
		rate=$(awk '{ for (i = 3; i < NF; i++) if ($(i + 1) == "rows/s") print $i }' <<<"$line")
		if [[ -n $rate ]]; then
			echo "bulk_enrol.rate $rate rows/s" >>"$results"
			metrics=$(awk '{ s = ""; for (i = 3; i < NF; i += 2) s = s (s == "" ? "" : ", ") $i " " $(i + 1); print s }' <<<"$line")
			echo "info bulk_enrol.setup posts a 10,000-row CSV to the bulk enrolment route of the real API over Redis, 3 times; it reported $metrics" >>"$results"
		else
			echo "info bulk_enrol.skipped the benchmark reported no rows/s" >>"$results"
			failed+=(bulk_enrol)
		fi
	else
		printf '%s\n' "$out" >&2
		echo "info bulk_enrol.skipped failed (see the run's output)" >>"$results"
		failed+=(bulk_enrol)
	fi
else
	echo "info bulk_enrol.skipped bench/bulk_enrol_test.go is not there yet" >>"$results"
fi

say "done in $((SECONDS - started))s"
# BENCH_KEEP_RESULTS=FILE keeps the collected lines, so that the report can
# be rendered again (wuyoubench report -results FILE) without measuring.
if [[ -n ${BENCH_KEEP_RESULTS:-} ]]; then
	cp "$results" "$BENCH_KEEP_RESULTS"
fi
echo
report_only=()
if [[ -n $only ]]; then
	report_only=(-only "$only")
fi
"$bin/wuyoubench" report -results "$results" -out BENCHMARKS.md "${report_only[@]}" \
	-date "$date_utc" -nproc "$(nproc)" -cpu "${cpu:-unknown}" -load "$load" -go "$go_version" -command "$command_line"
echo
say "wrote BENCHMARKS.md"
if ((${#failed[@]} > 0)); then
	say "not measured: ${failed[*]}"
	exit 1
fi
