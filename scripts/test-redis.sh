#!/usr/bin/env bash
# Prints the Redis address(es) the tests should use (WUYOU_TEST_REDIS_ADDRS),
# making sure one answers. Only the address goes to stdout; everything else
# goes to stderr. In order:
#   1. $WUYOU_TEST_REDIS_ADDRS, when set, as given;
#   2. 127.0.0.1:6379, when a Redis there answers PING;
#   3. a throwaway redis-server this script started earlier, if still alive;
#   4. a new throwaway redis-server (no persistence) on a free port from 6390,
#      installing Debian's redis-server first when it is missing and we are root;
#   5. otherwise it fails, saying what is missing.
#
#   scripts/test-redis.sh          print the address
#   scripts/test-redis.sh --stop   stop the throwaway server, if any
set -euo pipefail

# Where the throwaway server keeps its pidfile, log and port.
state_dir="${TMPDIR:-/tmp}/wuyou-test-redis"

say() { echo "test-redis: $*" >&2; }

# redis_answers PORT: true when a Redis on 127.0.0.1:PORT replies PONG.
redis_answers() {
	local port=$1 reply
	if command -v redis-cli >/dev/null 2>&1; then
		reply=$(timeout 3 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)
	else
		# No redis-cli: speak the protocol over bash's /dev/tcp.
		reply=$(timeout 3 bash -c '
			exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
			printf "PING\r\n" >&3
			IFS= read -r line <&3 && printf "%s" "$line"
		' _ "$port" 2>/dev/null || true)
		reply=${reply%$'\r'}
		reply=${reply#+}
	fi
	[[ $reply == PONG ]]
}

# port_taken PORT: true when something listens on 127.0.0.1:PORT.
port_taken() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

stop_ours() {
	if [[ -f $state_dir/redis.pid ]]; then
		local pid
		pid=$(cat "$state_dir/redis.pid")
		if kill "$pid" 2>/dev/null; then
			say "stopped the throwaway redis-server (pid $pid)"
		fi
	fi
	rm -rf "$state_dir"
}

if [[ ${1:-} == --stop ]]; then
	stop_ours
	exit 0
fi

# 1. Whatever the caller chose.
if [[ -n ${WUYOU_TEST_REDIS_ADDRS:-} ]]; then
	echo "$WUYOU_TEST_REDIS_ADDRS"
	exit 0
fi

# 2. The machine's own Redis.
if redis_answers 6379; then
	echo "127.0.0.1:6379"
	exit 0
fi

# 3. One this script started before (a previous `make test`).
if [[ -f $state_dir/port ]]; then
	port=$(cat "$state_dir/port")
	if redis_answers "$port"; then
		say "reusing the throwaway redis-server on port $port (stop it with: $0 --stop)"
		echo "127.0.0.1:$port"
		exit 0
	fi
	stop_ours
fi

# 4. Start one, installing it first if need be.
if ! command -v redis-server >/dev/null 2>&1; then
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		say "no Redis answers on 127.0.0.1:6379 and redis-server is not installed: installing it with apt-get"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update >&2
		apt-get install -y --no-install-recommends redis-server >&2
	fi
fi
if ! command -v redis-server >/dev/null 2>&1; then
	say "no Redis answers on 127.0.0.1:6379, redis-server is not installed and cannot be installed here (needs root and apt-get)."
	say "Install redis-server, start a Redis on 127.0.0.1:6379, or set WUYOU_TEST_REDIS_ADDRS=host:port."
	exit 1
fi
# Debian's package may have started its own service on 6379 just now.
if redis_answers 6379; then
	echo "127.0.0.1:6379"
	exit 0
fi

port=6390
while port_taken "$port"; do
	port=$((port + 1))
	if ((port > 6490)); then
		say "no free port between 6390 and 6490 for a throwaway redis-server"
		exit 1
	fi
done
mkdir -p "$state_dir"
say "no Redis answers on 127.0.0.1:6379: starting a throwaway redis-server on port $port (data in memory only; stop it with: $0 --stop)"
if ! redis-server --port "$port" --bind 127.0.0.1 \
	--save "" --appendonly no \
	--daemonize yes \
	--dir "$state_dir" \
	--pidfile "$state_dir/redis.pid" \
	--logfile "$state_dir/redis.log" >&2; then
	say "redis-server failed to start; its log:"
	cat "$state_dir/redis.log" >&2 2>/dev/null || true
	exit 1
fi
echo "$port" >"$state_dir/port"
for _ in $(seq 1 100); do
	if redis_answers "$port"; then
		echo "127.0.0.1:$port"
		exit 0
	fi
	sleep 0.1
done
say "redis-server on port $port did not answer PING within 10s; its log:"
tail -n 20 "$state_dir/redis.log" >&2 2>/dev/null || true
exit 1
