#!/bin/sh
# End to end: the data dir on a small tmpfs that fills up. A host started on a full file
# system, new data dir or old; a host whose file system fills while a task reports
# progress; files a crashed start left short or full of holes. Never a SIGBUS: a clear
# "no space left on device: PATH", and everything works again once there is room;
# `taskhost clean` works on the full disk.
# The tmpfs is mounted in a mount namespace of this script's own (unshare -m, as root).
if [ -z "${TH_FULLDISK_NS:-}" ]; then
	if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
		TH_FULLDISK_NS=1 exec unshare -m sh "$0" "$@"
	fi
	echo "SKIP: a small tmpfs needs root and a mount namespace (unshare -m)"
	echo "RESULT: 0 passed, 0 failed"
	exit 77
fi
. "$(dirname "$0")/lib.sh"

# is_status ID STATUS
is_status() {
	[ "$("$TASKHOST" -c "$CFG" status "$1")" = "$2" ]
}

cp "$FIXTURES/fx_progress.so" "$W/plugins/"
VAR="$W/var"
mkdir -m 0700 "$VAR"
mount -t tmpfs -o size=1m,mode=0700 tmpfs "$VAR" || exit 1
trap 'umount "$VAR" 2>/dev/null; cleanup' EXIT

fill() {
	dd if=/dev/zero of="$VAR/filler" bs=4k 2>/dev/null
	[ "$(df --output=avail "$VAR" | tail -n 1 | tr -d ' ')" = 0 ]
}

# run_once LOG: `taskhost run` that is expected to exit by itself; $run_rc (137 if it
# still ran after 20 s and was killed)
run_once() {
	timeout -s KILL 20 "$TASKHOST" -c "$CFG" run 2>"$1"
	run_rc=$?
}

# no_signal DESC RC: the process exited, not killed by a signal (a SIGBUS is 135)
no_signal() {
	if [ "$2" -lt 128 ]; then ok "$1"; else not_ok "$1: exit status $2"; fi
}

write_config "lease_time = 2s" -- "max_threads = 2" "wait_time = 0.1"

# ---- a new data dir on a full file system ----
check "the file system is full" fill
run_once "$W/a.log"
same "a host on a full file system exits" "$run_rc" 1
no_signal "without a crash" "$run_rc"
check "saying what is full" grep -q "cannot open the data dir $VAR: no space left on device: $VAR/lock.mdb" "$W/a.log"
th list
expect "so do commands" 1
check "with the same words" sh -c 'echo "$1" | grep -q "no space left on device: $2/lock.mdb"' - "$err" "$VAR"
rm "$VAR/filler"

# ---- an old data dir, then the disk fills ----
th add fx_progress "$W/go-1" --hold
expect "with room, a job is added" 0
check "the file system is full again" fill
start_host "$W/b.log"
b=$HOST_PID
check "a host starts on the full file system with the data dir it had" kill -0 "$b"
check "saying it cannot make its inflight file" grep -q "no space left on device: $VAR/inflight-" "$W/b.log"
th list
expect "commands read the data dir on a full disk" 0
stop_host "$b"
no_signal "the host stops cleanly" "$host_rc"
rm "$VAR/filler"

# ---- the disk fills while a host runs and a task reports progress ----
start_host "$W/c.log"
c=$HOST_PID
th start 1
check "the job is running" wait_until 20 is_status 1 processing
check "the file system fills up under the running host" fill
touch "$W/go-1"
check "the task reports progress on the full disk" wait_until 20 grep -q "fx_progress job=1 task=fx_progress: reported progress" "$W/c.log"
check "the host is still alive" kill -0 "$c"
rm "$VAR/filler"
th wait 1 --timeout 30
expect "with room again the job completes" 0
th result 1
same "with its result" "$out" reported
stop_host "$c"
same "the host stops cleanly" "$host_rc" 0

# ---- files a crashed start left behind ----
: >"$VAR/progress"
check "a short progress file, and the disk full" fill
run_once "$W/d.log"
same "a host refuses to start" "$run_rc" 1
no_signal "without a crash" "$run_rc"
check "naming the file" grep -q "cannot open the data dir $VAR: no space left on device: $VAR/progress" "$W/d.log"
rm "$VAR/filler"
th add fx_progress "$W/go-2"
expect "with room the data dir works" 0
touch "$W/go-2"

truncate -s 1M "$VAR/inflight-00000000000000dd-0"
touch -d '2 hours ago' "$VAR/inflight-00000000000000dd-0"
check "an inflight file of holes, and the disk full" fill
write_config "lease_time = 2s" -- "strategy = simple" "wait_time = 0.1"
start_host "$W/e.log"
e=$HOST_PID
check "a host starts: the leftover is read, not mapped" kill -0 "$e"
check "and removed as a start that never finished" wait_until 20 sh -c '[ ! -e "$1" ]' - "$VAR/inflight-00000000000000dd-0"
rm "$VAR/filler"
th wait 2 --timeout 30
expect "and the job waiting runs" 0
stop_host "$e"
same "the host stops cleanly" "$host_rc" 0

# ---- clean on a full disk: the command that makes room ----
seq 1 40 | "$TASKHOST" -c "$CFG" add fx_progress --hold --lines >"$W/ids"
for id in $(cat "$W/ids"); do "$TASKHOST" -c "$CFG" cancel "$id" >/dev/null; done
check "the file system is full once more" fill
th clean
expect "clean works on the full disk" 0
check "and removes the finished jobs" sh -c 'echo "$1" | grep -q "^removed [0-9]* finished jobs$"' - "$out"
th list --status cancelled --limit 0
same "none is left" "$(echo "$out" | tail -n +2)" ""
rm "$VAR/filler"

finish
