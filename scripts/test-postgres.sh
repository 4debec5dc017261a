#!/usr/bin/env bash
# Prints the PostgreSQL URL the tests should use (WUYOU_TEST_POSTGRES_URL),
# making sure one answers. Tests create a database of their own on it for
# each test (internal/pgtest) and drop it afterwards, so the URL only needs
# to name a database the role may connect to and a role that may CREATE
# DATABASE. Only the URL goes to stdout; everything else goes to stderr.
# In order:
#   1. $WUYOU_TEST_POSTGRES_URL, when set, as given;
#   2. postgres://root@127.0.0.1:5432/test?sslmode=disable, when it answers;
#   3. the machine's Debian cluster (pg_lsclusters; the one on port 5432,
#      else the newest), started with pg_ctlcluster when it is down; as
#      root, the role and database `test` are created in it when missing;
#      then its URL over TCP, else over its unix socket (peer authentication);
#   4. when there are no PostgreSQL server binaries at all and we are root:
#      Debian's postgresql installed with apt-get, then as 3;
#   5. a throwaway cluster this script started earlier, if still alive, else
#      a new one: initdb into $TMPDIR/wuyou-test-postgres, trust
#      authentication, a free port from 55432 on 127.0.0.1, no fsync. As
#      root it runs as the `postgres` user (else `nobody`): PostgreSQL
#      refuses to run as root;
#   6. otherwise it fails, saying what is missing.
#
#   scripts/test-postgres.sh          print the URL
#   scripts/test-postgres.sh --stop   stop the throwaway cluster, if any
set -euo pipefail

default_url="postgres://root@127.0.0.1:5432/test?sslmode=disable"
# Where the throwaway cluster keeps its data, socket, log, port and URL.
state_dir="${TMPDIR:-/tmp}/wuyou-test-postgres"

say() { echo "test-postgres: $*" >&2; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# newest_bin_dir: the newest /usr/lib/postgresql/<version>/bin holding the
# server binaries, or nothing.
newest_bin_dir() {
	local dir
	for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
		if [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
			echo "$dir"
			return 0
		fi
	done
	return 1
}

# server_bin_dir: the folder of initdb and pg_ctl: initdb's on PATH (links
# followed), else the newest Debian one.
server_bin_dir() {
	local initdb dir
	if initdb=$(command -v initdb 2>/dev/null); then
		dir=$(dirname "$(readlink -f "$initdb")")
		if [[ -x $dir/pg_ctl ]]; then
			echo "$dir"
			return 0
		fi
	fi
	newest_bin_dir
}

# psql_cmd: a psql to check with (PATH, else beside the server binaries).
psql_cmd() {
	local dir
	if command -v psql >/dev/null 2>&1; then
		command -v psql
	elif dir=$(server_bin_dir) && [[ -x $dir/psql ]]; then
		echo "$dir/psql"
	else
		return 1
	fi
}

# pg_answers URL: true when a query over URL succeeds. Without psql, only
# whether 127.0.0.1:5432 accepts connections can be checked, for the default.
pg_answers() {
	local url=$1 psql
	if psql=$(psql_cmd); then
		PGCONNECT_TIMEOUT=3 timeout 10 "$psql" "$url" -Atqc 'SELECT 1' >/dev/null 2>&1
	else
		[[ $url == "$default_url" ]] && port_taken 5432
	fi
}

# port_taken PORT: true when something listens on 127.0.0.1:PORT.
port_taken() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# as_user USER CMD...: run CMD as USER (we are root).
as_user() {
	local u=$1
	shift
	if command -v runuser >/dev/null 2>&1; then
		runuser -u "$u" -- "$@"
	else
		su -s /bin/sh "$u" -c "$(printf '%q ' "$@")"
	fi
}

# The throwaway cluster's OS user: ourselves, or postgres/nobody when root.
server_user() {
	if ! is_root; then
		id -un
	elif id postgres >/dev/null 2>&1; then
		echo postgres
	else
		echo nobody
	fi
}

as_server() {
	if is_root; then
		as_user "$(server_user)" "$@"
	else
		"$@"
	fi
}

stop_ours() {
	if [[ -f $state_dir/data/postmaster.pid && -f $state_dir/bindir ]]; then
		if as_server "$(cat "$state_dir/bindir")/pg_ctl" -D "$state_dir/data" -m fast -w -t 30 stop >&2; then
			say "stopped the throwaway PostgreSQL in $state_dir"
		fi
	fi
	rm -rf "$state_dir"
}

if [[ ${1:-} == --stop ]]; then
	stop_ours
	exit 0
fi

# 1. Whatever the caller chose.
if [[ -n ${WUYOU_TEST_POSTGRES_URL:-} ]]; then
	echo "$WUYOU_TEST_POSTGRES_URL"
	exit 0
fi

# 2. The machine's own PostgreSQL, as this machine is set up.
if pg_answers "$default_url"; then
	echo "$default_url"
	exit 0
fi

# debian_cluster: "version name port status owner" of the cluster to use:
# the one on 5432, else the newest.
debian_cluster() {
	command -v pg_lsclusters >/dev/null 2>&1 || return 1
	local lines
	lines=$(pg_lsclusters -h 2>/dev/null) || return 1
	[[ -n $lines ]] || return 1
	awk '$3 == 5432 { print; found = 1; exit } { last = $0 } END { if (!found && last != "") print last }' <<<"$lines" |
		awk '{ print $1, $2, $3, $4, $5 }'
}

# use_debian_cluster: start the Debian cluster if down, make sure our role
# and database `test` exist (as root), and print a URL that answers.
use_debian_cluster() {
	local cluster version name port status owner me url
	cluster=$(debian_cluster) || return 1
	read -r version name port status owner <<<"$cluster"
	if [[ $status != online* ]]; then
		if ! is_root; then
			say "the Debian cluster $version/$name is $status and only root (or $owner) may start it: pg_ctlcluster $version $name start"
			return 1
		fi
		say "starting the Debian cluster $version/$name (port $port): pg_ctlcluster --skip-systemctl-redirect $version $name start"
		if ! pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start >&2; then
			say "pg_ctlcluster failed to start $version/$name"
			return 1
		fi
	fi
	me=$(id -un)
	if is_root && command -v psql >/dev/null 2>&1; then
		# Over the unix socket as the cluster's owner (peer authentication).
		as_user "$owner" psql -p "$port" -d postgres -Atq >&2 <<-SQL || say "could not create role $me or database test in $version/$name"
			SELECT format('CREATE ROLE %I SUPERUSER LOGIN', '$me') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$me') \gexec
			SELECT format('CREATE DATABASE test OWNER %I', '$me') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'test') \gexec
		SQL
	fi
	local socket_dir=/var/run/postgresql
	for _ in 1 2 3 4 5; do
		for url in "postgres://$me@127.0.0.1:$port/test?sslmode=disable" \
			"postgres://$me@/test?host=$socket_dir&port=$port&sslmode=disable"; do
			if pg_answers "$url"; then
				echo "$url"
				return 0
			fi
		done
		sleep 0.5
	done
	say "the Debian cluster $version/$name runs on port $port but does not let $me into database test"
	return 1
}

# 3. The machine's Debian cluster, started if need be.
if url=$(use_debian_cluster); then
	echo "$url"
	exit 0
fi

# 4. No server at all: install Debian's, which creates and starts a cluster.
if ! server_bin_dir >/dev/null && is_root && command -v apt-get >/dev/null 2>&1; then
	say "no PostgreSQL answers on 127.0.0.1:5432 and no server is installed: installing Debian's postgresql with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2
	apt-get install -y --no-install-recommends postgresql >&2
	if url=$(use_debian_cluster); then
		echo "$url"
		exit 0
	fi
fi

# 5. A throwaway cluster of our own: one started before (a previous `make
# test`), else a new one.
if [[ -f $state_dir/url ]]; then
	url=$(cat "$state_dir/url")
	if pg_answers "$url"; then
		say "reusing the throwaway PostgreSQL in $state_dir (stop it with: $0 --stop)"
		echo "$url"
		exit 0
	fi
	stop_ours
fi
if ! bin_dir=$(server_bin_dir); then
	say "no PostgreSQL answers on 127.0.0.1:5432 and there are no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin, and they cannot be installed here (needs root and apt-get)."
	say "Install PostgreSQL server binaries (Debian: apt-get install postgresql), start a PostgreSQL on 127.0.0.1:5432, or set WUYOU_TEST_POSTGRES_URL=postgres://user@host:port/db."
	exit 1
fi
port=55432
while port_taken "$port"; do
	port=$((port + 1))
	if ((port > 55532)); then
		say "no free port between 55432 and 55532 for a throwaway PostgreSQL"
		exit 1
	fi
done
owner=$(server_user)
say "no PostgreSQL answers on 127.0.0.1:5432: starting a throwaway one from $bin_dir on port $port as user $owner (data in $state_dir, no fsync; stop it with: $0 --stop)"
mkdir -p "$state_dir"
chmod 700 "$state_dir"
is_root && chown "$owner:" "$state_dir"
echo "$bin_dir" >"$state_dir/bindir"
if ! (cd "$state_dir" && as_server "$bin_dir/initdb" -D "$state_dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$state_dir/initdb.log" 2>&1); then
	say "initdb failed; its output:"
	tail -n 20 "$state_dir/initdb.log" >&2
	exit 1
fi
cat >>"$state_dir/data/postgresql.conf" <<EOF

# scripts/test-postgres.sh: a throwaway server for tests
listen_addresses = '127.0.0.1'
unix_socket_directories = '$state_dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
if ! (cd "$state_dir" && as_server "$bin_dir/pg_ctl" -D "$state_dir/data" -l "$state_dir/postgres.log" -o "-p $port" -w -t 30 start >&2); then
	say "the throwaway PostgreSQL failed to start; its log:"
	tail -n 20 "$state_dir/postgres.log" >&2 2>/dev/null || true
	exit 1
fi
url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "$url" >"$state_dir/url"
echo "$url"
