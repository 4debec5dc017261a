#!/usr/bin/env bash
# Starts a throwaway 3-master Redis Cluster (no replicas, no persistence) on
# 127.0.0.1 and prints its addresses, comma-separated, on stdout — the value
# for WUYOU_TEST_REDIS_ADDRS. Everything else goes to stderr.
#
#   scripts/test-redis-cluster.sh          start (or reuse) the cluster, print the addresses
#   scripts/test-redis-cluster.sh --stop   stop it and remove its temp dir
#
# Ports: three free ones from 7301 upwards. Installs Debian's redis-server
# (which brings redis-cli) with apt-get when missing and we are root.
set -euo pipefail

state_dir="${TMPDIR:-/tmp}/wuyou-test-redis-cluster"

say() { echo "test-redis-cluster: $*" >&2; }

port_taken() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

cluster_ok() { # cluster_ok PORT
	timeout 3 redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

stop_ours() {
	local pidfile pid
	for pidfile in "$state_dir"/*/redis.pid; do
		[[ -f $pidfile ]] || continue
		pid=$(cat "$pidfile")
		if kill "$pid" 2>/dev/null; then
			say "stopped redis-server pid $pid"
		fi
	done
	rm -rf "$state_dir"
}

if [[ ${1:-} == --stop ]]; then
	stop_ours
	exit 0
fi

if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		say "installing redis-server and redis-tools with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update >&2
		apt-get install -y --no-install-recommends redis-server redis-tools >&2
	fi
fi
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
	say "redis-server/redis-cli are not installed and cannot be installed here (needs root and apt-get)"
	exit 1
fi

# Reuse a cluster this script started before, when all its nodes are healthy.
if [[ -f $state_dir/addrs ]]; then
	healthy=1
	for port in $(cat "$state_dir/ports"); do
		cluster_ok "$port" || healthy=0
	done
	if ((healthy)); then
		say "reusing the cluster at $(cat "$state_dir/addrs") (stop it with: $0 --stop)"
		cat "$state_dir/addrs"
		exit 0
	fi
	stop_ours
fi

# Three free ports, plus their cluster bus ports (port + 10000).
ports=()
port=7301
while ((${#ports[@]} < 3)); do
	if ((port > 7400)); then
		say "no three free ports between 7301 and 7400"
		exit 1
	fi
	if ! port_taken "$port" && ! port_taken $((port + 10000)); then
		ports+=("$port")
	fi
	port=$((port + 1))
done

mkdir -p "$state_dir"
echo "${ports[*]}" >"$state_dir/ports"
addrs=()
for port in "${ports[@]}"; do
	dir="$state_dir/$port"
	mkdir -p "$dir"
	if ! redis-server --port "$port" --bind 127.0.0.1 \
		--cluster-enabled yes \
		--cluster-config-file "$dir/nodes.conf" \
		--cluster-node-timeout 5000 \
		--save "" --appendonly no \
		--daemonize yes \
		--dir "$dir" \
		--pidfile "$dir/redis.pid" \
		--logfile "$dir/redis.log" >&2; then
		say "redis-server on port $port failed to start; its log:"
		tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
		stop_ours
		exit 1
	fi
	addrs+=("127.0.0.1:$port")
done

for port in "${ports[@]}"; do
	for _ in $(seq 1 100); do
		[[ $(timeout 3 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true) == PONG ]] && break
		sleep 0.1
	done
done

say "creating the cluster on ${addrs[*]}"
if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >&2; then
	say "redis-cli --cluster create failed"
	stop_ours
	exit 1
fi

for _ in $(seq 1 300); do
	ok=1
	for port in "${ports[@]}"; do
		cluster_ok "$port" || ok=0
	done
	if ((ok)); then
		joined=$(IFS=,; echo "${addrs[*]}")
		echo "$joined" >"$state_dir/addrs"
		say "cluster_state:ok on all ${#ports[@]} masters (stop it with: $0 --stop)"
		echo "$joined"
		exit 0
	fi
	sleep 0.1
done
say "the cluster did not reach cluster_state:ok within 30s"
for port in "${ports[@]}"; do
	redis-cli -h 127.0.0.1 -p "$port" cluster info >&2 || true
done
stop_ours
exit 1
