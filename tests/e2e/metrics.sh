#!/bin/sh
# End to end, GET /metrics: the text parsed by a strict parser of the Prometheus format
# (promparse.pl, itself shown to refuse what breaks the format), over the unix socket and
# TCP with tokens, and its values against what the test did: jobs added through the API
# by task and queue, completed, retried and failed runs, held jobs, run durations, the
# store's counts after the host restarts, a killed host's job recovered by task and
# queue; GET /v1/stats/history and `stats --history` against the same jobs; a cron
# job's last run and its status in GET /v1/cron. On LMDB, or
# with METRICS_PG=1 (pg_metrics.sh) on a PostgreSQL database of its own, reached through
# a proxy (tcpcut.py) that the test cuts: the connection's state and reconnects.
. "$(dirname "$0")/lib.sh"

for tool in curl perl python3; do
	command -v $tool >/dev/null || {
		echo "metrics.sh: $tool is missing (scripts/deps installs it)" >&2
		exit 1
	}
done
PARSE="perl $(dirname "$0")/promparse.pl"
SOCK="$W/var/api.sock"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
READ=read-token-0123456789abcdef
printf 'reader read %s\n' "$READ" >"$W/tokens"
chmod 600 "$W/tokens"

# ---- the parser refuses what breaks the format ----
refuses() { # refuses DESC TEXT: the parser exits 1 on TEXT
	if printf '%b' "$2" | $PARSE >/dev/null 2>&1; then not_ok "the parser refuses $1"; else ok "the parser refuses $1"; fi
}
refuses "a sample before its TYPE" 'a 1\n# TYPE a gauge\n'
refuses "a counter not named _total" '# TYPE a counter\na 1\n'
refuses "a bad escape in a label value" '# TYPE a gauge\na{x="\\q"} 1\n'
refuses "a series twice" '# TYPE a gauge\na{x="1"} 1\na{x="1"} 2\n'
refuses "a family split in two" '# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x="1"} 1\n'
refuses "buckets that go down" '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
refuses "a histogram without +Inf" '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'
refuses "+Inf other than _count" '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 2\n'
refuses "a value that is no number" '# TYPE a gauge\na one\n'
refuses "a missing last newline" '# TYPE a gauge\na 1'
if printf '# HELP a x\n# TYPE a gauge\na{x="q\\"\\\\"} 1.5e3\n' | $PARSE >/dev/null; then
	ok "the parser takes what is well formed"
else
	not_ok "the parser takes what is well formed"
fi

# metrics [curl options]: GET /metrics over the unix socket, parsed into $W/m; $code
metrics() {
	code=$(curl -s -o "$W/raw" -w '%{http_code}' --unix-socket "$SOCK" "$@" http://localhost/metrics)
	$PARSE <"$W/raw" >"$W/m" 2>"$W/parse.err"
	parsed=$?
}
# value SERIES: the value of one series ('name{labels}' as the parser prints it)
value() {
	awk -v s="$1" '$1 == s { print $2; f = 1 } END { if (!f) print "missing" }' "$W/m"
}

if [ -n "${METRICS_PG:-}" ]; then
	pg_database th_e2emet_$$
	pgport=$(echo "$TASKHOST_TEST_PG" | sed 's/.*port=\([0-9]*\).*/\1/')
	python3 "$(dirname "$0")/tcpcut.py" "$pgport" >"$W/proxy.port" &
	proxy=$!
	trap 'kill $proxy 2>/dev/null; cleanup; psql "$TASKHOST_TEST_PG" -X -q -c "DROP DATABASE IF EXISTS $PGNAME WITH (FORCE)" >/dev/null 2>&1' EXIT
	wait_until 10 test -s "$W/proxy.port"
	store="store = postgresql:host=127.0.0.1 port=$(cat "$W/proxy.port") user=postgres dbname=$PGNAME"
	write_config "listen = 127.0.0.1:$PORT" "token_file = $W/tokens" "$store" "migrate = true" \
		"lease_time = 2s" -- "max_threads = 4" "wait_time = 0.05"
else
	write_config "listen = 127.0.0.1:$PORT" "token_file = $W/tokens" -- "max_threads = 4" \
		"wait_time = 0.05"
fi
printf '[queue mail]\nstrategy = simple\n' >>"$CFG"
start_host || exit 1
metrics
same "a host that did nothing answers 200" "$code" 200
same "and it parses" "$parsed" 0
same "no job is counted" "$(value 'taskhost_jobs_added_total{queue="default",task="echo"}')" missing
add() { # add JSON: POST /v1/jobs
	curl -s -o /dev/null --unix-socket "$SOCK" -H 'Content-Type: application/json' \
		-d "$1" http://localhost/v1/jobs
}
for i in 1 2 3; do add "{\"task\":\"echo\",\"input\":\"d$i\"}"; done
for i in 1 2; do add "{\"task\":\"echo\",\"queue\":\"mail\",\"input\":\"m$i\"}"; done
add '{"task":"fail","max_attempts":2,"backoff":0.01}'
add '{"task":"echo","hold":true}'
th wait 1 2 3 4 5 6 --timeout 30
expect "the jobs ended (one in error)" 1
metrics
same "metrics parse after the jobs ran" "$parsed" 0
same "content type is the text format's" "$(curl -s -o /dev/null -w '%{content_type}' --unix-socket "$SOCK" http://localhost/metrics)" \
	"text/plain; version=0.0.4; charset=utf-8"
same "completed in default" "$(value 'taskhost_jobs{queue="default",status="completed"}')" 3
same "completed in mail" "$(value 'taskhost_jobs{queue="mail",status="completed"}')" 2
same "in error" "$(value 'taskhost_jobs{queue="default",status="error"}')" 1
same "held" "$(value 'taskhost_jobs{queue="default",status="held"}')" 1
same "none queued in mail" "$(value 'taskhost_jobs{queue="mail",status="queued"}')" 0
same "added echo, default" "$(value 'taskhost_jobs_added_total{queue="default",task="echo"}')" 4
same "added echo, mail" "$(value 'taskhost_jobs_added_total{queue="mail",task="echo"}')" 2
same "added fail" "$(value 'taskhost_jobs_added_total{queue="default",task="fail"}')" 1
same "completed echo, default" "$(value 'taskhost_jobs_completed_total{queue="default",task="echo"}')" 3
same "completed echo, mail" "$(value 'taskhost_jobs_completed_total{queue="mail",task="echo"}')" 2
same "fail retried once" "$(value 'taskhost_jobs_retried_total{queue="default",task="fail"}')" 1
same "then failed" "$(value 'taskhost_jobs_failed_total{queue="default",task="fail"}')" 1
same "no echo failed" "$(value 'taskhost_jobs_failed_total{queue="default",task="echo"}')" 0
same "echo ran 5 times" "$(value 'taskhost_job_run_duration_seconds_count{task="echo"}')" 5
same "fail ran twice" "$(value 'taskhost_job_run_duration_seconds_count{task="fail"}')" 2
same "every run has a start delay" "$(value 'taskhost_job_start_delay_seconds_count{}')" 7
same "7 adds, one commit each" "$(value 'taskhost_store_commit_duration_seconds_count{op="add"}')" 7
same "of one job each" "$(value 'taskhost_group_commit_batch_size_bucket{le="1"}')" 7
cycles=$(value 'taskhost_store_commit_duration_seconds_count{op="cycle"}')
check "cycles were committed ($cycles)" test "$cycles" -ge 1
same "nothing recovered" "$(value 'taskhost_jobs_recovered_total{queue="default",task="echo"}')" 0
same "the store could be read" "$(value 'taskhost_up{}')" 1
if [ -n "${METRICS_PG:-}" ]; then
	same "no LMDB map on PostgreSQL" "$(value 'taskhost_lmdb_map_size_bytes{}')" missing
	same "connected" "$(value 'taskhost_store_connected{}')" 1
	same "no reconnect yet" "$(value 'taskhost_store_reconnects_total{}')" 0
else
	map=$(value 'taskhost_lmdb_map_size_bytes{}')
	used=$(value 'taskhost_lmdb_map_used_bytes{}')
	check "the map's use ($used) is within its size ($map)" test "$used" -gt 0 -a "$used" -le "$map"
	same "no connection state on LMDB" "$(value 'taskhost_store_connected{}')" missing
fi

# ---- the history of the same jobs: 7 added, 5 completed, 1 failed (its retry not) ----
# history [QUERY]: GET /v1/stats/history?QUERY; $code, and $W/h the body
history() {
	code=$(curl -s -o "$W/h" -w '%{http_code}' --unix-socket "$SOCK" "http://localhost/v1/stats/history$1")
}
# sums: "N added completed failed" over the minutes of $W/h, or why its shape is wrong
sums() {
	python3 - "$W/h" "$(date +%s)" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["minutes"]
now = int(sys.argv[2])
bad = [i for i in range(1, len(m)) if m[i]["start"] != m[i - 1]["start"] + 60]
if bad or m[-1]["start"] % 60 or not now - 120 < m[-1]["start"] <= now:
    print("minutes out of order or not up to now:", m[-1]["start"], now)
else:
    print(len(m), *(sum(x[k] for x in m) for k in ("added", "completed", "failed")))
PY
}
history ""
same "history: 200" "$code" 200
same "the hour, one entry a minute: 7 added, 5 completed, 1 failed" "$(sums)" "60 7 5 1"
history "?minutes=5&queue=mail"
same "five minutes of queue mail" "$(sums)" "5 2 2 0"
history "?minutes=1&queue=default"
last=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]))["minutes"]; print(len(m), sorted(m[0]))' "$W/h")
same "one minute, with its four fields" "$last" "1 ['added', 'completed', 'failed', 'start']"
for bad in "minutes=0" "minutes=61" "minutes=ten" "queue=no%20such"; do
	history "?$bad"
	same "history?$bad: 400" "$code" 400
done
history "?minutes=0"
same "it says why" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"]["message"])' "$W/h")" \
	"minutes: expected a whole number from 1 to 60"
rate=$(curl -s --unix-socket "$SOCK" http://localhost/v1/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs_per_second"])')
# 6 jobs ended over the last whole minute and the one under way: 60 to 120 seconds
check "stats: jobs_per_second from the minutes ($rate)" python3 -c "import sys; sys.exit(not 6 / 120 <= $rate <= 6 / 60)"
th stats --history --json
printf '%s' "$out" >"$W/h"
same "stats --history --json: the same minutes" "$(sums)" "60 7 5 1"
th stats --minutes 3
same "stats --minutes 3: a heading and 3 lines" "$(echo "$out" | wc -l)" 4
same "its heading" "$(echo "$out" | head -n 1 | tr -s ' ')" "minute (UTC) added completed failed"
th stats --minutes 61
expect "stats --minutes 61 is refused" 2 "taskhost: stats: bad --minutes '61' (a whole number from 1 to 60)"
th list --history
expect "--history is for stats" 2 "taskhost: list: option '--history' does not apply (try 'taskhost list --help')"

if [ -n "${METRICS_PG:-}" ]; then
	# ---- the connection cut, then let through again ----
	kill -USR1 "$proxy"
	metrics
	same "with the store away /metrics still answers" "$code" 200
	same "and parses" "$parsed" 0
	same "the store could not be read" "$(value 'taskhost_up{}')" 0
	same "the connection is lost" "$(value 'taskhost_store_connected{}')" 0
	same "no job gauges meanwhile" "$(value 'taskhost_jobs{queue="mail",status="completed"}')" missing
	kill -USR2 "$proxy"
	# the host tries again after a pause (at most a fifth of the lease, 1 s) in which
	# calls fail at once: it is back within a few of them
	read_back() { metrics && [ "$(value 'taskhost_up{}')" = 1 ]; }
	check "back within 10 s" wait_until 10 read_back
	same "back: the store is read again" "$(value 'taskhost_jobs{queue="mail",status="completed"}')" 2
	same "connected again" "$(value 'taskhost_store_connected{}')" 1
	same "one reconnect" "$(value 'taskhost_store_reconnects_total{}')" 1
fi

# ---- TCP: a read token is enough, none is refused ----
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")
same "TCP without a token: 401" "$code" 401
code=$(curl -s -o "$W/raw" -w '%{http_code}' -H "Authorization: Bearer $READ" "http://127.0.0.1:$PORT/metrics")
same "TCP with a read token: 200" "$code" 200
check "and it parses" sh -c "$PARSE <'$W/raw' >/dev/null"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" http://localhost/v1/metrics)
same "not under /v1" "$code" 404
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -X POST http://localhost/metrics)
same "GET only" "$code" 405

# ---- a killed host: its running job is recovered by the next, counted by task and queue;
# the host's counters start again, the store's counts stay ----
add '{"task":"sleep","queue":"mail","input":"{\"seconds\":600}"}'
running() { th status 8 --json && echo "$out" | grep -q '"status": "processing"'; }
check "the sleep job runs" wait_until 20 running
kill -KILL "$HOST_PID"
wait "$HOST_PID" 2>/dev/null
start_host "$W/host2.log" || exit 1
recovered() {
	metrics
	[ "$(value 'taskhost_jobs_recovered_total{queue="mail",task="sleep"}')" = 1 ]
}
check "the next host recovered the job: recovered{task=sleep,queue=mail} 1" wait_until 20 recovered
same "after a restart it parses" "$parsed" 0
same "the counts are the store's" "$(value 'taskhost_jobs{queue="mail",status="completed"}')" 2
same "this host added nothing" "$(value 'taskhost_jobs_added_total{queue="default",task="echo"}')" missing
th cancel 8

# ---- GET /v1/cron: each schedule's last run and how it went ----
cron=$(curl -s --unix-socket "$SOCK" -H 'Content-Type: application/json' \
	-d '{"task":"fail","cron":"every 1s","input":"tick","max_attempts":1}' http://localhost/v1/cron |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# cron_last: "LAST_RUN STATUS FINISHED?" of that cron job as GET /v1/cron lists it
cron_last() {
	curl -s --unix-socket "$SOCK" http://localhost/v1/cron | python3 -c '
import json, sys
c = [x for x in json.load(sys.stdin)["cron"] if x["id"] == int(sys.argv[1])][0]
print(c.get("last_run"), c.get("last_run_status"), c.get("last_run_finished") is not None)' "$cron"
}
ran() { cron_last | grep -q ' error True$'; }
check "GET /v1/cron: the last run's status (error) and when it ended" wait_until 20 ran
last=$(cron_last | cut -d' ' -f1)
th status "$last"
same "it is the status of job last_run ($last)" "$out" error
curl -s -o /dev/null -X DELETE --unix-socket "$SOCK" "http://localhost/v1/cron/$cron"
stop_host "$HOST_PID"
counts_agree "the counts agree with a recount of the records"
finish
