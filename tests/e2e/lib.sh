# Shared by the end-to-end tests: a temp dir with a config and plugins, running the
# taskhost binary, starting and stopping hosts, waiting for conditions with deadlines,
# and counting results. Sourced, not run.
# shellcheck shell=sh
set -u

: "${TASKHOST:?TASKHOST must name the taskhost binary}"
: "${PLUGINS:?PLUGINS must name the built plugins directory}"
: "${FIXTURES:?FIXTURES must name the built test fixtures directory}"

passed=0
failed=0
HOSTS=""
W=$(mktemp -d "${TMPDIR:-/tmp}/taskhost-e2e-XXXXXX")
CFG="$W/taskhost.ini"
mkdir "$W/plugins"
for p in echo fail sleep; do
	cp "$PLUGINS/$p.so" "$W/plugins/"
done

cleanup() {
	for pid in $HOSTS; do
		kill -KILL "$pid" 2>/dev/null
	done
	rm -rf "$W"
}
trap cleanup EXIT

# write_config [lines for [host]] -- [lines for [processor]]: the defaults below are
# written only for keys the arguments do not set
write_config() {
	{
		echo "[host]"
		host_has() {
			for l in "$@"; do
				[ "$l" = "--" ] && return 1
				case $l in "$key "* | "$key="*) return 0 ;; esac
			done
			return 1
		}
		for kv in "data_dir = ./var" "plugin_dir = ./plugins" "grace_period = 20s"; do
			key=${kv%% *}
			host_has "$@" || echo "$kv"
		done
		while [ $# -gt 0 ] && [ "$1" != "--" ]; do
			echo "$1"
			shift
		done
		[ $# -gt 0 ] && shift
		echo "[processor]"
		case " $* " in *" strategy"*) ;; *) echo "strategy = multi" ;; esac
		for l in "$@"; do
			echo "$l"
		done
	} >"$CFG"
}

ok() {
	passed=$((passed + 1))
	echo "ok - $1"
}

not_ok() {
	failed=$((failed + 1))
	echo "not ok - $1"
}

# th ARGS: runs taskhost with the test config; sets $out, $err and $rc
th() {
	out=$("$TASKHOST" -c "$CFG" "$@" 2>"$W/stderr")
	rc=$?
	err=$(cat "$W/stderr")
}

# expect DESC RC [STDERR]: the last th call exited RC (and printed exactly STDERR)
expect() {
	if [ "$rc" != "$2" ]; then
		not_ok "$1: exit $rc, expected $2 (stderr: $err)"
	elif [ $# -ge 3 ] && [ "$err" != "$3" ]; then
		not_ok "$1: stderr '$err', expected '$3'"
	else
		ok "$1"
	fi
}

# same DESC GOT WANT
same() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', expected '$3'"; fi
}

# check DESC CMD...: CMD succeeds
check() {
	_desc=$1
	shift
	if "$@"; then ok "$_desc"; else not_ok "$_desc"; fi
}

# counts_agree DESC: `taskhost check` recounts the records and finds the counts that
# stats read (and every index) agree with them
counts_agree() {
	th check
	if [ "$rc" = 0 ] && echo "$out" | grep -q ": clean$"; then
		ok "$1"
	else
		not_ok "$1: exit $rc: $out $err"
	fi
}

# wait_until SECONDS CMD...: polls CMD until it succeeds; false after SECONDS
wait_until() {
	_end=$(($(date +%s) + $1))
	shift
	until "$@"; do
		[ "$(date +%s)" -ge "$_end" ] && return 1
		sleep 0.02
	done
}

# start_host [LOGFILE]: starts `taskhost run` in the background, waits until it runs
start_host() {
	log=${1:-$W/host.log}
	"$TASKHOST" -c "$CFG" run 2>"$log" &
	HOST_PID=$!
	HOSTS="$HOSTS $HOST_PID"
	if ! wait_until 20 grep -q -E 'host: started|"source":"host","msg":"started' "$log"; then
		echo "host did not start:" >&2
		cat "$log" >&2
		return 1
	fi
}

# stop_host PID: SIGTERM, then waits; $host_rc is its exit status
stop_host() {
	kill -TERM "$1"
	wait "$1"
	host_rc=$?
}

# stop_now PID: SIGTERM twice: the second cuts the grace period short
stop_now() {
	kill -TERM "$1"
	wait_until 20 grep -q -E 'host: stopping|"source":"host","msg":"stopping' "$log"
	kill -TERM "$1"
	wait "$1"
	host_rc=$?
}

# add_until_refused MAX: adds noop jobs with $W/chunk as input until an add fails (or
# MAX succeeded); $added counts those added, $err is the failed add's stderr
add_until_refused() {
	added=0
	while "$TASKHOST" -c "$CFG" add noop - <"$W/chunk" >/dev/null 2>"$W/stderr"; do
		added=$((added + 1))
		[ $added -gt "$1" ] && break
	done
	err=$(cat "$W/stderr")
}

# A dead host's jobs are taken back once its pid is gone on LMDB, once its lease ran
# out on a PostgreSQL store (TASKHOST_STORE, as pg_shared.sh runs the tests): DIED is
# why, as the job's error says it. Tests that kill hosts set a short lease_time.
case ${TASKHOST_STORE:-} in
postgresql*) DIED="lease expired" ;;
*) DIED="host died while running" ;;
esac

# lmdb_only DESC [WHY]: true on an LMDB store; on a PostgreSQL store (TASKHOST_STORE)
# false, and DESC is noted as skipped (and why, where PostgreSQL's store differs):
# `lmdb_only "a full map: 503" && { ...; }`
lmdb_only() {
	case ${TASKHOST_STORE:-} in
	postgresql*)
		echo "ok - $1 # skip: LMDB only${2:+ ($2)}"
		return 1
		;;
	esac
}

# fresh_store [DIR]: the next host starts on an empty store: its data dir DIR ($W/var)
# goes, and on a PostgreSQL store (TASKHOST_STORE) schema taskhost is dropped and
# migrated again
fresh_store() {
	rm -rf "${1:-$W/var}"
	case ${TASKHOST_STORE:-} in
	postgresql://*) _conn=$TASKHOST_STORE ;;
	postgresql:*) _conn=${TASKHOST_STORE#postgresql:} ;;
	*) return 0 ;;
	esac
	psql "$_conn" -X -q -c "SET client_min_messages = warning; DROP SCHEMA taskhost CASCADE" &&
		"$TASKHOST" -c "$CFG" migrate >/dev/null
}

# pg_database NAME: for tests on a PostgreSQL store, a database of their own on the
# server of $TASKHOST_TEST_PG (scripts/check starts one), dropped at exit; $PGDB is its
# connection string, `sql TEXT` runs TEXT there. Without a server the test is skipped.
pg_database() {
	if [ -z "${TASKHOST_TEST_PG:-}" ]; then
		echo "RESULT: 0 passed, 0 failed (skipped: TASKHOST_TEST_PG is not set)"
		exit 77
	fi
	PGNAME=$1
	PGDB="$TASKHOST_TEST_PG dbname=$PGNAME"
	psql "$TASKHOST_TEST_PG" -X -q -c "CREATE DATABASE $PGNAME" || exit 1
	trap 'cleanup; psql "$TASKHOST_TEST_PG" -X -q -c "DROP DATABASE IF EXISTS $PGNAME WITH (FORCE)" >/dev/null 2>&1' EXIT
}

sql() {
	psql "$PGDB" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"
}

# pg_proxied_hosts PORT USER DB: two hosts running fx_good's tasks on database DB of the
# PostgreSQL server at 127.0.0.1:PORT, each in a dir of its own ($W/a, $W/b: the
# relative path in a job's input is its host's), lease_time $LEASE: host a through a TCP
# proxy that the test controls (tcpcut.py, pid $proxy), host b straight to the server.
# Their pids are $a and $b, their logs $W/a.log and $W/b.log; $CFG is host b's config.
pg_proxied_hosts() {
	python3 "$(dirname "$0")/tcpcut.py" "$1" >"$W/proxy.port" &
	proxy=$!
	wait_until 10 test -s "$W/proxy.port"
	cp "$FIXTURES/fx_good.so" "$W/plugins/"
	for h in a b; do
		mkdir "$W/$h"
		case $h in a) p=$(cat "$W/proxy.port") ;; b) p=$1 ;; esac
		write_config "store = postgresql:host=127.0.0.1 port=$p user=$2 dbname=$3" \
			"migrate = true" "lease_time = ${LEASE}s" "data_dir = $W/$h/var" \
			"plugin_dir = $W/plugins" -- "max_threads = 4" "wait_time = 0.5"
		cp "$CFG" "$W/$h.ini"
	done
	(cd "$W/a" && exec "$TASKHOST" -c "$W/a.ini" run 2>"$W/a.log") &
	a=$!
	(cd "$W/b" && exec "$TASKHOST" -c "$W/b.ini" run 2>"$W/b.log") &
	b=$!
	HOSTS="$HOSTS $a $b"
	both_started() { grep -q "host: started" "$W/a.log" && grep -q "host: started" "$W/b.log"; }
	check "both hosts started" wait_until 20 both_started
	both_started || cat "$W/a.log" "$W/b.log" >&2
	CFG="$W/b.ini"
}

finish() {
	echo "RESULT: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
