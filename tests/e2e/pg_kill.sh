#!/bin/sh
# End to end, many machines on one box: 3 hosts on one PostgreSQL store, each in a pid
# namespace of its own (unshare, as root) with a machine id of its own, share N jobs of
# fx_record; a random host is SIGKILLed every few hundred ms and started again, one is
# SIGSTOPped for longer than the lease and then let go on. Every job completes, none is
# lost or stuck, a job ran twice only when a host that ran it was killed or stopped, and
# the stopped host's outcomes of jobs taken back from it were refused (fencing).
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ] || ! unshare --pid --fork --mount-proc true 2>/dev/null; then
	echo "SKIP: unshare --pid needs root and a kernel that allows it"
	echo "RESULT: 0 passed, 0 failed (skipped)"
	exit 77
fi
pg_database th_e2ek_$$
DB=$PGNAME

# the sanitizers make hosts slow to start and jobs slow to run: fewer of each
if [ -n "${ASAN_OPTIONS:-}${TSAN_OPTIONS:-}" ]; then
	JOBS=600 KILLS=12
else
	JOBS=5000 KILLS=40
fi
LEASE=2        # seconds
STOP_FOR=5     # seconds the stopped host stays stopped: longer than the lease

cp "$FIXTURES/fx_good.so" "$W/plugins/"
write_config "store = postgresql:$TASKHOST_TEST_PG dbname=$DB" "migrate = true" \
	"lease_time = ${LEASE}s" "data_dir = $W/var" "plugin_dir = $W/plugins" \
	-- "max_threads = 8" "wait_time = 0.5"

# Each start of a host is an incarnation, run in its own directory $W/i.K (K counts the
# starts): its log, and the file `runs` the relative path in each job's input names, so
# every run is known by the incarnation that made it.
incs=0
start_inc() { # start_inc SLOT: starts host SLOT (1..3); $inc_SLOT its incarnation
	incs=$((incs + 1))
	d=$W/i.$incs
	mkdir "$d"
	echo "$1" >"$d/slot"
	# a machine id per host (the slot's), over /etc/machine-id in its mount namespace
	printf '%032x\n' "$1" >"$W/machine-id.$1"
	(cd "$d" && exec unshare --pid --fork --mount-proc --kill-child sh -c '
		[ -e /etc/machine-id ] && mount --bind "$1" /etc/machine-id
		exec "$2" -c "$3" run' - "$W/machine-id.$1" "$TASKHOST" "$CFG" 2>"$d/log") &
	u=$!
	HOSTS="$HOSTS $u"
	eval "inc_$1=$incs outer_$1=$u"
	wait_until 20 grep -q 'host: started' "$d/log" || { cat "$d/log" >&2; return 1; }
	# the host itself (pid 1 inside), as seen from here: unshare's only child
	eval "pid_$1=$(cat "/proc/$u/task/$u/children" | tr -d ' ')"
}
kill_inc() { # kill_inc SLOT: SIGKILL; its namespace goes with it
	eval "p=\$pid_$1 u=\$outer_$1 i=\$inc_$1"
	kill -KILL "$p"
	wait "$u" 2>/dev/null
	touch "$W/i.$i/killed"
}

for s in 1 2 3; do
	start_inc $s || exit 1
done
check "each host is pid 1 of a namespace of its own" \
	sh -c '[ "$(readlink /proc/$1/ns/pid)" != "$(readlink /proc/$2/ns/pid)" ] &&
		[ "$(readlink /proc/$2/ns/pid)" != "$(readlink /proc/$3/ns/pid)" ] &&
		[ "$(readlink /proc/$1/ns/pid)" != "$(readlink /proc/self/ns/pid)" ]' - \
	"$pid_1" "$pid_2" "$pid_3"

seq 1 $JOBS | sed 's/.*/runs 100/' | "$TASKHOST" -c "$CFG" add fx_record --lines --max-attempts 100 >/dev/null
same "$JOBS jobs added" "$(sql 'SELECT count(*) FROM taskhost.jobs')" $JOBS

done_count() { sql 'SELECT count(*) FROM taskhost.jobs WHERE status = 3'; }
some_done() { [ "$(done_count)" -gt 0 ]; }
check "the hosts run jobs" wait_until 30 some_done

# one host stopped for longer than the lease while it holds jobs; the others take them back
holds() { [ -s "$W/i.$inc_1/runs" ]; }
wait_until 20 holds
kill -STOP "$pid_1"
stopped=$inc_1
touch "$W/i.$stopped/stopped"
sleep $STOP_FOR # the point of the step: the lease runs out while the host cannot renew it
kill -CONT "$pid_1"
refused_any() { grep -q 'outcome of a stale claim refused' "$W/i.$stopped/log"; }
check "the stopped host, let go on, has an outcome refused" wait_until 20 refused_any

# kills: a random host every few hundred ms, started again at once
k=0
while [ $k -lt $KILLS ]; do
	s=$(($(od -An -N1 -tu1 /dev/urandom) % 3 + 1))
	kill_inc $s
	start_inc $s || break
	k=$((k + 1))
	sleep 0.$(($(od -An -N1 -tu1 /dev/urandom) % 4 + 2)) # 200-500 ms
done
same "$KILLS hosts killed and started again" $k $KILLS
left=$(sql 'SELECT count(*) FROM taskhost.jobs WHERE status <> 3')
echo "# $left of $JOBS jobs left when the kills ended"

all_done() { [ "$(done_count)" = $JOBS ]; }
check "every job completed" wait_until 60 all_done
all_done || sql 'SELECT id, status, attempts, owner, lease_until, now() FROM taskhost.jobs WHERE status <> 3' |
	sed 's/^/# not completed: /'
same "none in another status" "$(sql 'SELECT count(*) FROM taskhost.jobs WHERE status <> 3')" 0
for s in 1 2 3; do
	eval "p=\$pid_$s u=\$outer_$s"
	kill -TERM "$p"
	wait "$u"
	same "host $s stopped cleanly" $? 0
done

# every run by incarnation: "job incarnation" lines
for d in "$W"/i.*; do
	[ -f "$d/runs" ] && sed "s|\$| ${d##*.}|" "$d/runs"
done | sort -n >"$W/allruns"
same "every job ran" "$(cut -d' ' -f1 "$W/allruns" | uniq | wc -l | tr -d ' ')" $JOBS
# a run in an incarnation that was neither killed nor stopped is a clean run: a job ran
# more than once only with at most one clean run
marked() { [ -e "$W/i.$1/killed" ] || [ -e "$W/i.$1/stopped" ]; }
bad=""
twice=0
for id in $(cut -d' ' -f1 "$W/allruns" | uniq -d); do
	twice=$((twice + 1))
	clean=0
	for i in $(awk -v id="$id" '$1 == id {print $2}' "$W/allruns"); do
		marked "$i" || clean=$((clean + 1))
	done
	[ $clean -le 1 ] || bad="$bad $id"
done
echo "# $twice jobs ran more than once"
same "every job run twice was run by a killed or stopped host" "$bad" ""
runs_of() { grep -c "^$1 " "$W/allruns"; }
same "attempts are never fewer than the runs" \
	"$(sql 'SELECT id || '"' '"' || attempts FROM taskhost.jobs ORDER BY id' |
		while read -r id a; do [ "$(runs_of "$id")" -le "$a" ] || echo "$id"; done)" ""

# fencing: the stopped host finished the jobs it held after its lease ran out; each of
# those outcomes was refused, and the job was run again by another host
refused=$(sed -n 's/.*job \([0-9]*\): outcome of a stale claim refused.*/\1/p' "$W/i.$stopped/log")
check "the stopped host's outcomes of jobs taken back were refused" [ -n "$refused" ]
for id in $refused; do
	check "job $id: taken back, then run by another host and completed" \
		[ "$(awk -v id="$id" -v s="$stopped" '$1 == id && $2 != s' "$W/allruns" | wc -l)" -ge 1 \
		-a "$(sql "SELECT status FROM taskhost.jobs WHERE id = $id")" = 3 ]
done
counts_agree "the counts agree with the jobs"
finish
