#!/bin/sh
# End to end: the data dir's own files. lock.mdb removed under a running host (no second
# writer, no duplicate id, nothing damaged, the host stops by itself), data.mdb removed
# (the host stops and says why); links planted for wake, progress, lock.mdb
# and data.mdb, a FIFO named like an inflight file, a FIFO and a link named like hosts'
# records (GET /v1/hosts skips them), a world-writable dir, a dir of
# another user, and a dir shared with data_dir_group.
. "$(dirname "$0")/lib.sh"

# is_status ID STATUS
is_status() {
	[ "$("$TASKHOST" -c "$CFG" status "$1")" = "$2" ]
}

cp "$FIXTURES/fx_good.so" "$W/plugins/"
VAR="$W/var"

# has DESC TEXT WORDS...: TEXT contains each of WORDS
has() {
	_desc=$1
	_text=$2
	shift 2
	for _w in "$@"; do
		case $_text in
		*"$_w"*) ;;
		*)
			not_ok "$_desc: '$_w' not in: $_text"
			return
			;;
		esac
	done
	ok "$_desc"
}

# ids DESC N: the list has N jobs, each id once, 1 .. N
ids() {
	th list --limit 0
	_ids=$(echo "$out" | awk 'NR > 1 { print $1 }' | sort -n)
	_n=$(echo "$_ids" | grep -c .)
	_dups=$(echo "$_ids" | uniq -d | grep -c .)
	if [ "$_n" = "$2" ] && [ "$_dups" = 0 ] && [ "$(echo "$_ids" | tail -n 1)" = "$2" ]; then
		ok "$1"
	else
		not_ok "$1: $_n jobs, $_dups ids twice, last $(echo "$_ids" | tail -n 1)"
	fi
}

# ---- lock.mdb removed while a host runs ----

# a long lease: the keeper's writes, which make the host stop, come every 10 s
write_config "lease_time = 30s" -- "max_threads = 2" "wait_time = 0.1"
start_host "$W/a.log"
a=$HOST_PID
i=0
while [ $i -lt 20 ]; do
	th add fx_record "$W/runs"
	i=$((i + 1))
done
th wait $(seq 1 20) --timeout 60
expect "20 jobs completed before the lock file goes" 0
th add fx_wait 1000
long=$out
check "a job is running" wait_until 20 is_status "$long" processing
rm "$VAR/lock.mdb"

th add echo x
expect "an add through the host is refused" 1
# the host stops by itself at its keeper's next write: an add that comes after that
# finds no host and is refused by the data dir itself
case $err in
*"the host at unix socket $VAR/api.sock: add: data dir file (lock.mdb or data.mdb) removed or replaced"* | \
	*"$VAR/lock.mdb is missing while other processes"*) ok "it says why" ;;
*) not_ok "it says why: $err" ;;
esac
th --local add echo x
expect "an add on the data dir itself is refused" 1
has "it says why and what to do" "$err" "$VAR/lock.mdb is missing while other processes" \
	"stop every process that uses $VAR"
check "and makes no lock file of its own" [ ! -e "$VAR/lock.mdb" ]
"$TASKHOST" -c "$CFG" run 2>"$W/b.log"
same "a second host refuses to start" "$?" 1
has "naming the lock file" "$(cat "$W/b.log")" "cannot open the data dir $VAR: $VAR/lock.mdb is missing"
check "the first host notices at its next write" wait_until 20 \
	grep -q "lock.mdb was removed or replaced while this process had the data dir open: writes refused" "$W/a.log"
wait "$a"
same "and stops by itself, with exit status 1" "$?" 1
has "saying why" "$(cat "$W/a.log")" \
	"stopping: the store in $VAR can no longer be used (data dir file (lock.mdb or data.mdb) removed or replaced)"

# every process gone: the next makes a new lock file, and nothing is lost or damaged
th status "$long"
expect "the data dir reads after" 0
same "the lost host's outcome was not written" "$out" processing
ids "21 jobs, each id once" 21
start_host "$W/c.log"
c=$HOST_PID
th wait "$long" --timeout 60
expect "the job the lost host held runs again and completes" 0
th add echo y
same "ids go on from 22" "$out" 22
th wait 22 --timeout 30
expect "and new jobs run" 0
stop_host "$c"
ids "22 jobs, each id once" 22
th stats
expect "stats reads the data dir" 0
check "each recorded job ran once" sh -c '[ "$(sort -n "$1" | uniq -d | wc -l)" = 0 ] && [ "$(wc -l <"$1")" = 20 ]' - "$W/runs"

# ---- data.mdb removed while a host runs: it stops, and says so ----
write_config "data_dir = ./gone" "lease_time = 2s" -- "max_threads = 2" "wait_time = 0.1"
start_host "$W/d.log"
d=$HOST_PID
th add echo z
th wait 1 --timeout 30
expect "a job ran before data.mdb goes" 0
rm "$W/gone/data.mdb"
check "the host notices at its next write" wait_until 20 \
	grep -q "$W/gone/data.mdb was removed or replaced while this process had it open: writes refused" "$W/d.log"
wait "$d"
same "and stops by itself, with exit status 1" "$?" 1
has "saying why" "$(cat "$W/d.log")" "stopping: the store in $W/gone can no longer be used"
write_config "lease_time = 2s" -- "max_threads = 2" "wait_time = 0.1"

# ---- planted files ----

printf 'precious\n' >"$W/target"
for f in wake progress lock.mdb data.mdb; do
	mv "$VAR/$f" "$W/saved-$f"
	ln -s "$W/target" "$VAR/$f"
	"$TASKHOST" -c "$CFG" run 2>"$W/run.log"
	same "run refuses a planted $f link" "$?" 1
	has "naming it and the cause" "$(cat "$W/run.log")" "$VAR/$f is a symbolic link, not a regular file: refused"
	th status 1
	expect "status refuses it too" 1
	same "its target is untouched" "$(cat "$W/target")" precious
	rm "$VAR/$f"
	mv "$W/saved-$f" "$VAR/$f"
done

mkfifo "$VAR/inflight-00000000000000aa-0"
# and a FIFO and a link named like hosts' records
mkfifo "$VAR/host-00000000000000bb"
echo precious >"$W/target"
ln -s "$W/target" "$VAR/host-00000000000000cc"
check "a FIFO named like an inflight file does not hang a host" start_host "$W/d.log"
has "it is skipped with a log line" "$(cat "$W/d.log")" \
	"$VAR/inflight-00000000000000aa-0 is a FIFO, not a regular file: refused (left as it is)"
th add echo z
th wait "$out" --timeout 30
expect "and the host runs jobs" 0
same "GET /v1/hosts skips the FIFO and the link named like records: this host alone" \
	"$(curl -s --unix-socket "$VAR/api.sock" http://x/v1/hosts | jq -r '[.hosts[].pid] | join(",")')" \
	"$HOST_PID"
has "the link is refused with a log line" "$(cat "$W/d.log")" \
	"$VAR/host-00000000000000cc is a symbolic link, not a regular file: refused"
curl -s --unix-socket "$VAR/api.sock" http://x/v1/hosts >/dev/null
same "once, however often the hosts are listed" \
	"$(grep -c "host-00000000000000cc is a symbolic link" "$W/d.log")" 1
same "its target is untouched" "$(cat "$W/target")" precious
stop_host "$HOST_PID"
rm "$VAR/inflight-00000000000000aa-0" "$VAR/host-00000000000000bb" "$VAR/host-00000000000000cc"

chmod 0777 "$VAR"
th list
expect "a world-writable data dir is refused" 1
has "with its path and mode" "$err" "data dir $VAR is writable by every user (mode 0777): refused"
chmod 0700 "$VAR"

if [ "$(id -u)" = 0 ]; then
	chown nobody "$VAR"
	th list
	expect "a data dir of another user is refused, root or not" 1
	has "naming its owner" "$err" "data dir $VAR is owned by uid $(id -u nobody) (nobody), not by this user (uid 0"
	chown root "$VAR"
else
	echo "SKIP: a data dir of another user (chown needs root)"
fi

# ---- a data dir shared with a group ----

group=$(id -gn)
if [ "$(id -u)" = 0 ]; then
	for g in nogroup daemon users; do
		if getent group "$g" >/dev/null; then
			group=$g
			break
		fi
	done
fi
write_config "data_dir = ./shared" "data_dir_group = $group" --
th add echo shared
expect "a shared data dir is made" 0
same "its mode lets the group in, files inherit its group" "$(stat -c '%a %G' "$W/shared")" "2770 $group"
same "its files are the group's" "$(stat -c '%a %G' "$W/shared/data.mdb" "$W/shared/lock.mdb" "$W/shared/wake" | sort -u)" "660 $group"
write_config "data_dir = ./shared" --
th list
expect "without data_dir_group the group-writable dir is refused" 1
has "saying how to share it" "$err" "is writable by group $group (mode 2770): refused" "data_dir_group = $group"
write_config "data_dir = ./shared" "data_dir_group = no-such-group-here" --
th list
expect "an unknown group is a config error" 2
has "naming the line" "$err" "taskhost.ini:$(grep -n data_dir_group "$CFG" | cut -d: -f1): bad value 'no-such-group-here' for data_dir_group in [host]: no such group"

finish
