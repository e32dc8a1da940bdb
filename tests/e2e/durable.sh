#!/bin/sh
# End to end: with durability = durable, the CLI (no host running: it opens the store
# itself) prints its answer only once what it answers for is synced to data.mdb.
# fx_syncwatch, preloaded, ends the process with exit 97 when it writes to its standard
# output while data.mdb holds writes not synced since; with durability = relaxed it
# must, which shows that it sees such writes.
. "$(dirname "$0")/lib.sh"

WATCH="$FIXTURES/fx_syncwatch.so"
# a sanitizer's runtime wants to come first; the shim only wraps a few libc calls
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
export ASAN_OPTIONS

# watched ARGS: th ARGS with the shim preloaded
watched() {
	out=$(LD_PRELOAD="$WATCH" "$TASKHOST" -c "$CFG" "$@" 2>"$W/stderr")
	rc=$?
	err=$(cat "$W/stderr")
}

write_config "durability = durable"
th add echo first # the store made, unwatched
expect "the store is made" 0
watched add echo one
expect "add: answered after the sync" 0
one=$out
watched add echo two --unique k
expect "add with a unique key: answered after the sync" 0
two=$out
watched add echo again --unique k
expect "add of a unique key taken: answered" 0
same "the unique key's job is the one there" "$out" "$two"
printf 'a\nb\nc\n' >"$W/lines"
out=$(LD_PRELOAD="$WATCH" "$TASKHOST" -c "$CFG" add echo --lines <"$W/lines" 2>"$W/stderr")
rc=$?
err=$(cat "$W/stderr")
expect "add --lines: answered after the sync" 0
same "add --lines printed an id a line" "$(echo "$out" | wc -l)" 3
watched add echo held --hold
expect "add --hold: answered after the sync" 0
held=$out
watched start "$held"
expect "start: answered after the sync" 0
watched cancel "$one"
expect "cancel: answered after the sync" 0
watched retry "$one"
expect "retry: answered after the sync" 0
watched cron add echo tick --schedule "*/5 * * * *"
expect "cron add: answered after the sync" 0
watched pause default
expect "pause: answered after the sync" 0
watched resume default
expect "resume: answered after the sync" 0
th status "$one"
same "the job cancelled and retried is queued" "$out" "queued"

write_config "durability = relaxed"
watched add echo relaxed
same "relaxed: the shim sees an answer given before the sync" "$rc" 97
th list --limit 100
same "every job added is in the store" "$(echo "$out" | grep -c echo)" 9
finish
