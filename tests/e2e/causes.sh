#!/bin/sh
# End to end: a data dir the store cannot use (a full device, a read-only mount, files
# the user may not write). Every message names the cause and the path, for `run` as for
# the other commands, and the jobs committed before are all there afterwards.
# Needs root (mount, setpriv); skipped (77) where it cannot mount.
. "$(dirname "$0")/lib.sh"

M="$W/mnt"
D="$M/var"
mkdir "$M"
if ! mount -t tmpfs -o size=1m tmpfs "$M" 2>/dev/null; then
	echo "cannot mount a tmpfs here: skipped"
	exit 77
fi
trap 'umount "$M" 2>/dev/null; cleanup' EXIT
write_config "data_dir = $D" "map_size = 4MiB"

# ---- a full device ----
head -c 200000 /dev/urandom >"$W/chunk"
add_until_refused 10
case $err in
"taskhost: add: no space left on the device of the data dir $D"*) ok "a full device is named as such: $err" ;;
*) not_ok "a full device: '$err' after $added adds" ;;
esac
th status "$added"
same "the jobs added before it are kept" "$out" queued
th status $((added + 1))
expect "the refused one was not added" 1 "taskhost: unknown job id $((added + 1))"

# ---- a read-only mount ----
mount -o remount,ro "$M"
th run
expect "run on a read-only data dir" 2 "taskhost: cannot open the data dir $D: Read-only file system"
th status 1
expect "status on a read-only data dir" 2 "taskhost: cannot open the data dir $D: Read-only file system"
mount -o remount,rw "$M"
th status "$added"
same "writable again: the jobs are there" "$out" queued

# ---- files the user may not write (as nobody) ----
if ! command -v setpriv >/dev/null; then
	echo "no setpriv: the permission cases are not run"
	finish
	exit
fi
chmod 0755 "$W" "$M"
chmod 0644 "$CFG"
nobody() {
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$TASKHOST" -c "$CFG" "$@" 2>"$W/stderr")
	rc=$?
	err=$(cat "$W/stderr")
}
nobody run
expect "run without write permission on the data dir" 2 "taskhost: cannot open the data dir $D: Permission denied"
nobody status 1
expect "status without write permission on the data dir" 2 "taskhost: cannot open the data dir $D: Permission denied"
# the data dir and data.mdb are nobody's, lock.mdb still root's
chown 65534:65534 "$D" "$D/data.mdb"
nobody run
expect "run with a lock file of another user" 1 "taskhost: cannot open the data dir $D: $D/lock.mdb is owned by uid 0 (root), not by this user (uid 65534 (nobody)): refused"
chown 0:0 "$D" "$D/data.mdb"
th status "$added"
same "nothing was lost" "$out" queued

finish
