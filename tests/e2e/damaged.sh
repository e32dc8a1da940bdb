#!/bin/sh
# End to end: a damaged data.mdb never crashes or hangs a command. Truncated (to 8 KiB,
# to half, to just before its last page in use): every command exits non-zero saying
# "data dir damaged", never by a signal; cut by only pages on LMDB's free list, it is
# whole and opens. A 0-byte data.mdb is refused in a data dir used before; a
# new data dir is fine. 16 random bytes flipped in a copy of a populated data dir, 100
# times with fixed seeds: status, list, get (result) and check each end, by themselves,
# within 10 s. `taskhost check` says a clean data dir is clean and names the job whose
# record was changed on purpose.
. "$(dirname "$0")/lib.sh"

write_config
for i in $(seq 1 400); do echo "input of job $i, some bytes to make it longer"; done >"$W/in"
th add echo --lines <"$W/in"
expect "400 jobs added" 0
for id in $(seq 10 10 200); do "$TASKHOST" -c "$CFG" cancel "$id" >/dev/null; done
th add echo --hold held
th add echo --delay 1h later
th check
expect "check of a clean data dir" 0
same "it says clean" "$out" "$W/var: 402 jobs, every index consistent: clean"
counts_agree "the counts agree with a recount of the records"
cp -a "$W/var" "$W/clean"
size=$(stat -c %s "$W/clean/data.mdb")

# runs CMD... against the data dir $W/var with a 10 s limit; $rc, $err
bounded() {
	out=$(timeout 10 "$TASKHOST" -c "$CFG" "$@" 2>"$W/stderr")
	rc=$?
	err=$(cat "$W/stderr")
}

# the offset of the last page of data.mdb in $1 that is not on LMDB's free list
# (mdb_stat -fff lists free pages one a line, runs as PAGE[COUNT])
last_used_page() {
	psize=$(mdb_stat -e "$1" | awk '/Page size:/ { print $NF }')
	used=$(mdb_stat -e "$1" | awk '/Number of pages used:/ { print $NF }')
	mdb_stat -fff "$1" | awk -v used="$used" -v psize="$psize" '
		/^ +[0-9]+(\[[0-9]+\])?$/ {
			n = split($1, a, /[][]/); c = n > 1 ? a[2] : 1
			for (i = 0; i < c; i++) free[a[1] + i] = 1
		}
		END { for (p = used - 1; p > 1 && free[p]; p--) ; print p * psize }'
}
last=$(last_used_page "$W/clean")
check "data.mdb has a page in use past its meta pages" [ "$last" -ge 8192 ]

# ---- cut by free pages only: whole ----
rm -rf "$W/var"
cp -a "$W/clean" "$W/var"
truncate -s $((last + 4096)) "$W/var/data.mdb"
th check
expect "cut to just after its last page in use ($((last + 4096)) of $size bytes): check" 0
same "says clean" "$out" "$W/var: 402 jobs, every index consistent: clean"

# ---- truncated ----
for cut in 8192 $((size / 2)) "$last"; do
	rm -rf "$W/var"
	cp -a "$W/clean" "$W/var"
	truncate -s "$cut" "$W/var/data.mdb"
	bad=0
	for cmd in "status 1" "list" "result 1" "add echo x" "check" "clean" "stats" "run"; do
		# shellcheck disable=SC2086
		bounded $cmd
		case $err in *"data dir damaged: $W/var/data.mdb is $cut bytes, its meta page names"*"(truncated?)"*) ;; *) bad=1 ;; esac
		if [ "$rc" = 0 ] || [ "$rc" -ge 124 ]; then bad=1; fi
		[ $bad = 1 ] && { echo "# $cmd on $cut bytes: exit $rc: $err"; break; }
	done
	same "truncated to $cut bytes: every command refuses it, no signal" "$bad" 0
done
same "the file was left as it was" "$(stat -c %s "$W/var/data.mdb")" "$last"

# ---- cut short under a running host ----
rm -rf "$W/var"
cp -a "$W/clean" "$W/var"
write_config "lease_time = 3s" -- "wait_time = 0.1"
start_host "$W/host.log"
th wait 1 --timeout 20
expect "the host runs the jobs" 0
truncate -s 8192 "$W/var/data.mdb"
check "the host notices" wait_until 20 grep -q "processor: the data dir is damaged: this host claims no more jobs" "$W/host.log"
check "saying where and what" grep -q "store: data dir damaged: $W/var/data.mdb: SIGBUS reading offset" "$W/host.log"
wait "$HOST_PID"
same "and stops by itself at its keeper's next write, with exit status 1" "$?" 1
check "saying why" grep -q "host: stopping: the store in $W/var can no longer be used (data dir damaged" "$W/host.log"
write_config

# ---- 0 bytes ----
rm -rf "$W/var"
cp -a "$W/clean" "$W/var"
: >"$W/var/data.mdb"
bounded status 1
expect "a 0-byte data.mdb in a used data dir" 1 "taskhost: cannot open the data dir $W/var: data dir damaged: $W/var/data.mdb is 0 bytes, too short for its meta pages, in a data dir used before (truncated?)"
rm "$W/var/lock.mdb"
bounded add echo first
expect "a 0-byte data.mdb beside no lock.mdb is a store being made" 0
same "and is made: ids start at 1" "$out" 1
rm -rf "$W/var"
bounded add echo first
expect "a new data dir is fine" 0
same "ids start at 1 there" "$out" 1
# two commands making the same new data dir at once: whichever takes the lock first
# makes the store, and the other is not told it is damaged
bad=0
for round in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
	rm -rf "$W/var"
	"$TASKHOST" -c "$CFG" add echo a >/dev/null 2>"$W/race1" &
	r1=$!
	"$TASKHOST" -c "$CFG" add echo b >/dev/null 2>"$W/race2"
	r2=$?
	wait $r1 || bad=$((bad + 1))
	[ $r2 -eq 0 ] || bad=$((bad + 1))
done
same "20 rounds of two adds making a new data dir: none refused" "$bad" 0

# ---- flipped bytes ----
# flip N SEED FILE: XORs N bytes, at offsets from perl's generator seeded with SEED
flip() {
	perl -e 'my ($n, $seed, $f) = @ARGV; srand($seed); my $size = -s $f;
		open(my $h, "+<:raw", $f) or die "$f: $!";
		for (1 .. $n) {
			my ($off, $mask) = (int(rand($size)), 1 + int(rand(255)));
			seek($h, $off, 0); read($h, my $b, 1);
			seek($h, $off, 0); print $h chr(ord($b) ^ $mask);
		}' "$@"
}
signals=0
hangs=0
damaged=0
seed=1
while [ $seed -le 100 ]; do
	rm -rf "$W/var"
	cp -a "$W/clean" "$W/var"
	flip 16 "$seed" "$W/var/data.mdb"
	for cmd in "status 7" "list --limit 0" "result 33" "check"; do
		# shellcheck disable=SC2086
		bounded $cmd
		if [ "$rc" = 124 ]; then
			hangs=$((hangs + 1))
			echo "# seed $seed: '$cmd' hung"
		elif [ "$rc" -gt 124 ]; then
			signals=$((signals + 1))
			echo "# seed $seed: '$cmd' exit $rc: $err"
		fi
		case $err in *"data dir damaged"*) damaged=$((damaged + 1)) ;; esac
	done
	seed=$((seed + 1))
done
same "100 x 16 flipped bytes: no command died by a signal" "$signals" 0
same "100 x 16 flipped bytes: no command hung" "$hangs" 0
echo "# $damaged of 400 commands said \"data dir damaged\""

# ---- check names a job changed on purpose ----
rm -rf "$W/var"
"$TASKHOST" -c "$CFG" add echo one >/dev/null
"$TASKHOST" -c "$CFG" add echo --queue zzqmark two >/dev/null
# the record ends with its task and queue, length-prefixed; its status byte is the
# second of its 122 fixed bytes. queued (1) becomes completed (3)
offs=$(LC_ALL=C grep -obUaP '\x04echo\x07zzqmark' "$W/var/data.mdb" | cut -d: -f1)
check "the record is found in data.mdb" test -n "$offs"
for off in $offs; do
	printf '\003' | dd of="$W/var/data.mdb" bs=1 seek=$((off - 122 + 1)) conv=notrunc 2>/dev/null
done
th status 2
same "the changed record still decodes" "$out" completed
th check
expect "check finds the problems" 1
check "it names the job and the index" sh -c 'echo "$1" | grep -qx "job 2: in the ready index but its record says completed"' - "$out"
check "and the missing index entry" sh -c 'echo "$1" | grep -qx "job 2: completed, but not in the finished index"' - "$out"
check "the by-status index names it" sh -c 'echo "$1" | grep -qx "job 2: in the by-status index but its record says completed"' - "$out"
check "the counts disagree with the recount" sh -c 'echo "$1" | grep -qx "the counts: queue \"zzqmark\", queued: 1 kept, 0 in the records" && echo "$1" | grep -qx "the counts: queue \"zzqmark\", completed: 0 kept, 1 in the records"' - "$out"
check "a summary line" sh -c 'echo "$1" | tail -n 1 | grep -qx "$2: 2 jobs, 6 problems found"' - "$out" "$W/var"
th check extra
expect "check takes no arguments" 2
rm -rf "$W/var"
mkdir -m 0700 "$W/var"
: >"$W/var/lock.mdb"
th -c "$W/none.ini" check
expect "check without a config" 2
finish
