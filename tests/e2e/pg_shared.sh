#!/bin/sh
# End to end: the tests that are not about LMDB itself run again on a PostgreSQL store
# ($TASKHOST_TEST_PG; skipped without one): each in a database of its own, the store
# given through TASKHOST_STORE (a dead host is then seen by its lease: lib.sh's DIED).
# Tests of what depends on this machine (the data dir's files, a full map) stay LMDB's.
set -u
: "${TASKHOST:?TASKHOST must name the taskhost binary}"
: "${PLUGINS:?PLUGINS must name the built plugins directory}"
# (arguments name the tests to run instead: sh pg_shared.sh api cli_remote)
TESTS=${*:-"lifecycle input cancelled daemon dashboard api cli_remote progress"}

if [ -z "${TASKHOST_TEST_PG:-}" ]; then
	echo "RESULT: 0 passed, 0 failed (skipped: TASKHOST_TEST_PG is not set)"
	exit 77
fi
dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/taskhost-e2e-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
printf '[host]\ndata_dir = %s/var\nplugin_dir = %s\n' "$tmp" "$PLUGINS" >"$tmp/migrate.ini"
passed=0
failed=0
for t in $TESTS; do
	db=th_e2e_${t}_$$
	psql "$TASKHOST_TEST_PG" -X -q -c "CREATE DATABASE $db" || exit 1
	TASKHOST_STORE="postgresql:$TASKHOST_TEST_PG dbname=$db"
	export TASKHOST_STORE
	if ! "$TASKHOST" -c "$tmp/migrate.ini" migrate >/dev/null; then
		echo "not ok - $t: migrate"
		failed=$((failed + 1))
	fi
	sh "$dir/$t.sh" >"$tmp/$t.log" 2>&1
	sed "s/^/$t: /" "$tmp/$t.log"
	line=$(grep -a '^RESULT: ' "$tmp/$t.log" | tail -n 1)
	if [ -z "$line" ]; then
		failed=$((failed + 1))
	else
		passed=$((passed + $(echo "$line" | sed 's/^RESULT: \([0-9]*\) passed.*/\1/')))
		failed=$((failed + $(echo "$line" | sed 's/^RESULT: [0-9]* passed, \([0-9]*\) failed.*/\1/')))
	fi
	psql "$TASKHOST_TEST_PG" -X -q -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
done
echo "RESULT: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
