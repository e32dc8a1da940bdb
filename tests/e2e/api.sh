#!/bin/sh
# End to end, the HTTP API: every route over the unix socket and TCP (and TLS), every
# error status, tokens of each scope and wrong, missing and revoked ones, limits (body
# size, batch size, slow clients, waits), 500 connections at once and one past the
# limit waiting, the OpenAPI document
# against what the server answered, and group commit through a SIGKILL of the host.
. "$(dirname "$0")/lib.sh"

for tool in curl jq openssl python3; do
	command -v $tool >/dev/null || {
		echo "api.sh: $tool is missing (scripts/deps installs it)" >&2
		exit 1
	}
done
SOCK="$W/var/api.sock"
TOKENS="$W/tokens"
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
READ=read-token-0123456789abcdef
WRITE=write-token-0123456789abcdef
ADMIN=admin-token-0123456789abcdef
cat >"$TOKENS" <<EOF
# name scope token
reader read $READ
writer write $WRITE
boss   admin $ADMIN
EOF
chmod 600 "$TOKENS"

# api METHOD PATH [BODY] [curl options...]: over the unix socket; $code and $body;
# what was answered is noted (method, route, status) for the OpenAPI check
SEEN="$W/seen"
: >"$SEEN"
note() {
	route=$(printf '%s' "${2%%\?*}" | sed -E -e '/^\/v1\/jobs\/(batch|bulk)$/b' \
		-e 's#^/v1/jobs/[^/]+#/v1/jobs/{id}#' -e 's#^/v1/cron/[^/]+#/v1/cron/{id}#' \
		-e 's#^/v1/queues/[^/]+/#/v1/queues/{name}/#')
	case $(printf '%s' "$body" | jq -r '.error.code? // ""' 2>/dev/null) in
	no_route | method_not_allowed) ;;
	*) echo "$1 $route $code" >>"$SEEN" ;;
	esac
}
call() {
	_m=$1 _p=$2 _url=$3
	shift 3
	_data=""
	if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
		_data=$1
		shift
	fi
	if [ -n "$_data" ]; then
		body=$(curl -s -w '\n%{http_code}' -X "$_m" -H 'Content-Type: application/json' \
			--data-binary "$_data" "$@" "$_url$_p")
	else
		body=$(curl -s -w '\n%{http_code}' -X "$_m" "$@" "$_url$_p")
	fi
	code=$(printf '%s' "$body" | tail -n 1)
	body=$(printf '%s' "$body" | sed '$d')
	note "$_m" "$_p"
}
api() {
	_m=$1 _p=$2
	shift 2
	call "$_m" "$_p" http://localhost "$@" --unix-socket "$SOCK"
}
tcp() { # tcp TOKEN METHOD PATH [BODY] [options]
	_t=$1
	shift
	_m=$1 _p=$2
	shift 2
	if [ -n "$_t" ]; then
		call "$_m" "$_p" "http://127.0.0.1:$PORT" "$@" -H "Authorization: Bearer $_t"
	else
		call "$_m" "$_p" "http://127.0.0.1:$PORT" "$@"
	fi
}
# is DESC STATUS [JQ-EXPR]: the last call answered STATUS (and JQ-EXPR holds of its body)
is() {
	if [ "$code" != "$2" ]; then
		not_ok "$1: status $code, expected $2 (body: $body)"
	elif [ $# -ge 3 ] && ! printf '%s' "$body" | jq -e "$3" >/dev/null 2>&1; then
		not_ok "$1: body $body does not satisfy $3"
	else
		ok "$1"
	fi
}

# ---- config errors name the key and the cause ----
write_config "listen = 127.0.0.1:$PORT"
th run
expect "listen without token_file is refused" 2 \
	"taskhost: $CFG:5: listen in [host] needs token_file: without tokens only the unix socket in the data dir is served"
write_config "listen = 127.0.0.1" "token_file = $TOKENS"
th run
expect "a listen value without a port is refused" 2 \
	"taskhost: $CFG:5: bad value '127.0.0.1' for listen in [host]: expected HOST:PORT such as 127.0.0.1:7070 or [::1]:7070"
write_config "tls_cert = $W/cert.pem"
th run
expect "tls_cert without tls_key is refused" 2 \
	"taskhost: $CFG: tls_cert in [host] without tls_key: TLS needs both"
chmod 644 "$TOKENS"
write_config "listen = 127.0.0.1:$PORT" "token_file = $TOKENS"
th run
expect "a token file others can read is refused, naming path and mode" 2 \
	"taskhost: token_file $TOKENS: group or others can read or write it (mode 0644): it must be a file only its owner can read (chmod 600)"
chmod 600 "$TOKENS"

# ---- the main host: unix socket, TCP with tokens, small limits ----
write_config "listen = 127.0.0.1:$PORT" "token_file = $TOKENS" "max_input_size = 1KiB" \
	"max_batch = 5" "connection_timeout = 2s" "max_connections = 520" -- \
	"max_threads = 2" "wait_time = 0.05"
start_host || exit 1
check "the socket is api.sock in the data dir, mode 0660" \
	test "$(stat -c %a "$SOCK")" = 660

api GET /v1/health
is "health" 200 '.status == "ok"'
api GET /v1/hosts
is "hosts: this one, alive, with its strategy, workers, jobs running, heartbeat" 200 \
	".hosts | length == 1 and (.[0] | .pid == $HOST_PID and .gone == false and
	 .strategy == \"default: multi\" and .workers == 2 and .running == 0 and
	 .lease_seconds == 30 and (.instance | test(\"^[0-9a-f]{16}\$\")) and .heartbeat >= .started)"
tcp "" GET /v1/hosts
is "hosts over TCP need a token" 401
tcp "$READ" GET /v1/hosts
is "a read token is enough" 200 '.hosts | length == 1'
api POST /v1/jobs '{"task":"echo","input":"hello","priority":3,"max_attempts":2,"timeout":5,"backoff":1}'
is "add one job" 201 '.id == 1 and .existed == false'
api POST /v1/wait '{"ids":[1],"timeout":10}'
is "wait for it" 200 '.timed_out == false and .jobs[0].status == "completed"'
api GET /v1/jobs/1
is "get it: the JSON of taskhost status --json" 200 \
	'.id == 1 and .task == "echo" and .priority == 3 and .max_attempts == 2 and .timeout == 5'
th status 1 --json
same "the CLI prints the same job" "$(printf '%s' "$out" | jq -c .)" "$(printf '%s' "$body" | jq -c .)"
api GET /v1/jobs/1/input
is "its input" 200 '.input == "hello"'
api GET /v1/jobs/1/result
is "its result" 200 '.result == "hello"'
api GET /v1/jobs/1/error
is "no error: 409" 409 '.error.code == "conflict"'
api GET /v1/jobs/1/errors
is "no errors" 200 '.errors == []'
api GET /v1/jobs/1/progress
is "progress of a completed job" 200 '.progress == 1'
api POST /v1/jobs '{"task":"echo","input_base64":"AAEC/w=="}'
is "binary input as base64" 201
id=$(printf '%s' "$body" | jq .id)
api GET "/v1/jobs/$id/input"
is "binary input comes back as base64" 200 '.input_base64 == "AAEC/w=="'
api POST /v1/jobs '{"task":"fail","input":"boom","max_attempts":1}'
fid=$(printf '%s' "$body" | jq .id)
api POST /v1/wait "{\"ids\":[$fid],\"timeout\":10}"
api GET "/v1/jobs/$fid/error"
is "the error of a failed job" 200 '.error | length > 0'
api GET "/v1/jobs/$fid/errors"
is "its error history" 200 '.errors | length == 1'
api GET "/v1/jobs/$fid/result"
is "a failed job has no result: 409" 409
api POST "/v1/jobs/$fid/retry"
is "retry it" 200 '.status == "queued" or .status == "processing" or .status == "error"'
api POST /v1/jobs '{"task":"echo","hold":true,"unique":"held-1"}'
is "add a held job" 201
hid=$(printf '%s' "$body" | jq .id)
api POST /v1/jobs '{"task":"echo","hold":true,"unique":"held-1"}'
is "the same unique key gives the same job" 200 ".id == $hid and .existed == true"
api GET "/v1/jobs?unique=held-1"
is "list by unique key" 200 ".jobs | length == 1 and .[0].id == $hid"
api POST "/v1/jobs/$hid/start"
is "start the held job" 200
api POST "/v1/jobs/$hid/start"
is "start it again: 409" 409 '.error.code == "conflict"'
api POST /v1/jobs '{"task":"echo","delay":3600}'
did=$(printf '%s' "$body" | jq .id)
api POST /v1/jobs '{"task":"echo","at":"2099-01-01T00:00:00Z","queue":"default"}'
is "add with at" 201
api POST "/v1/jobs/$did/cancel"
is "cancel a delayed job" 200 '.status == "cancelled"'
api POST "/v1/jobs/$did/cancel"
is "cancel a finished job: 409" 409
api POST /v1/jobs '{"task":"sleep","input":"{\"seconds\":30}"}'
sid=$(printf '%s' "$body" | jq .id)
wait_until 10 sh -c "curl -s --unix-socket '$SOCK' http://x/v1/jobs/$sid | jq -e '.status == \"processing\"' >/dev/null"
api GET "/v1/jobs/$sid/progress"
is "progress of a running job" 200 '.status == "processing"'
api POST "/v1/jobs/$sid/cancel"
# (the job is read again after the commit: on a fast host it may have stopped by then)
is "cancel a running job: 202, it is asked to stop" 202 '.cancel_requested == true or .status == "cancelled"'
api POST /v1/jobs/batch '{"jobs":[{"task":"echo","input":"b1"},{"task":"noop"},{"task":"echo","input":"b3"}]}'
is "a batch" 201 '(.ids | length) == 3 and .ids[0] + 2 == .ids[2]'
api POST /v1/wait "{\"ids\":$(printf '%s' "$body" | jq -c .ids),\"timeout\":10}"
is "wait for the batch" 200 '[.jobs[].status] == ["completed","completed","completed"]'
api POST /v1/wait "{\"ids\":[$hid, 999999],\"timeout\":1}"
is "wait for an unknown job: 404" 404 '.error.message == "job 999999 not found"'
api POST /v1/jobs '{"task":"echo","hold":true}'
h2=$(printf '%s' "$body" | jq .id)
api POST /v1/wait "{\"ids\":[$h2],\"timeout\":0.5}"
is "a wait that times out says so" 200 '.timed_out == true and .jobs[0].status == "held"'
api GET "/v1/jobs?status=completed&task=echo&limit=2"
is "list a page" 200 '(.jobs | length) == 2 and .next_cursor != null and all(.jobs[]; .status == "completed" and .task == "echo")'
cursor=$(printf '%s' "$body" | jq -r .next_cursor)
first=$(printf '%s' "$body" | jq '.jobs[1].id')
api GET "/v1/jobs?status=completed&task=echo&limit=2&cursor=$cursor"
is "the next page starts after the last" 200 ".jobs[0].id > $first"
api GET "/v1/jobs?limit=1000"
last=$(printf '%s' "$body" | jq '.jobs[-1].id')
api GET "/v1/jobs?order=newest&limit=2"
is "order=newest: the last job first" 200 ".jobs[0].id == $last and .jobs[1].id < $last and .next_cursor != null"
cursor=$(printf '%s' "$body" | jq -r .next_cursor)
second=$(printf '%s' "$body" | jq '.jobs[1].id')
api GET "/v1/jobs?order=newest&limit=2&cursor=$cursor"
is "and its next page goes on before it" 200 ".jobs[0].id < $second"
api GET "/v1/jobs?order=sideways"
is "a bad order: 400" 400 '.error.message == "order: expected oldest or newest"'
api GET "/v1/jobs?added_after=2000-01-01T00:00:00Z&added_before=2099-01-01T00:00:00Z&finished_after=0&finished_before=4000000000&queue=default&limit=1000"
is "list by time ranges and queue" 200 '(.jobs | length) > 3 and .next_cursor == null'
api GET "/v1/jobs?status=nonsense"
is "a bad status filter: 400" 400 '.error.message | startswith("status: unknown status")'
api GET "/v1/jobs?limit=0"
is "a bad limit: 400" 400
api GET "/v1/jobs?added_after=yesterday"
is "a bad time: 400" 400
api GET /v1/stats
is "stats" 200 '.counts.completed >= 5 and .group_commit.writes > 0'
api GET "/v1/stats/history?minutes=2"
is "stats history: two minutes, the last the one now" 200 \
	"(.minutes | length) == 2 and .minutes[1].start % 60 == 0 and $(date +%s) - .minutes[1].start < 120 and .minutes[1].start - .minutes[0].start == 60"
api GET "/v1/stats/history?minutes=100"
is "stats history: at most an hour" 400 '.error.message == "minutes: expected a whole number from 1 to 60"'
api GET /v1/tasks
is "tasks" 200 '[.tasks[].name] | index("echo") != null'
api GET /v1/queues
is "queues" 200 '.queues[0].name == "default" and .queues[0].paused == false'
api POST /v1/queues/default/pause
is "pause a queue" 200 '.paused == true'
api POST /v1/jobs '{"task":"echo"}'
qid=$(printf '%s' "$body" | jq .id)
api GET /v1/queues
is "it shows paused" 200 '.queues[0].paused == true'
api POST /v1/queues/default/resume
is "resume it" 200 '.paused == false'
api POST /v1/wait "{\"ids\":[$qid],\"timeout\":10}"
is "its job ran once resumed" 200 '.jobs[0].status == "completed"'
api POST '/v1/queues/bad%20name/pause'
is "a bad queue name: 400" 400
api POST /v1/cron '{"task":"echo","cron":"*/5 * * * *","input":"tick"}'
is "add a cron job" 201
cid=$(printf '%s' "$body" | jq .id)
api GET /v1/cron
is "list cron jobs" 200 ".cron[0].id == $cid and .cron[0].schedule == \"*/5 * * * *\""
api GET "/v1/cron/$cid/next?count=3"
is "its next fire times" 200 '.paused == false and (.next | length) == 3'
api PATCH "/v1/cron/$cid" '{"schedule":"every 90s","catchup":true}'
is "update it" 200 '.schedule == "every 90s" and .catch_up == true'
api POST "/v1/cron/$cid/pause"
is "pause it" 200 '.paused == true'
api GET "/v1/cron/$cid/next?count=3"
is "a paused one says so and lists no fire times" 200 '.paused == true and .next == []'
api GET "/v1/cron/$cid/next?count=0"
is "a bad count, paused or not: 400" 400 '.error.message | startswith("count: expected")'
api POST "/v1/cron/$cid/resume"
is "resume it" 200 '.paused == false'
api GET "/v1/cron/$cid/next?count=2"
is "resumed, it lists them again" 200 '.paused == false and (.next | length) == 2'
api GET "/v1/cron/1/next"
is "next of a job that is no cron job: 409" 409 '.error.message == "job 1 is completed, not a cron job"'
api PATCH "/v1/cron/$cid" '{"schedule":"61 * * * *"}'
is "a bad schedule: 400" 400 '.error.message | startswith("schedule: bad cron schedule")'
api PATCH "/v1/cron/$cid" '{}'
is "an update that changes nothing: 400" 400
api POST /v1/cron '{"task":"echo"}'
is "a cron job without schedule: 400" 400
api DELETE "/v1/cron/$cid"
is "remove it" 200 '.status == "cancelled"'
api DELETE "/v1/cron/999999"
is "remove an unknown one: 404" 404 '.error.message == "job 999999 not found"'
api GET /v1/openapi.json
is "the OpenAPI document" 200 '.openapi | startswith("3.")'
echo "$body" >"$W/openapi.json"

# ---- bad requests ----
api GET /v1/jobs/999999
is "an unknown job: 404 naming it" 404 '.error == {"code":"not_found","message":"job 999999 not found"}'
api GET /v1/jobs/abc
is "a path id that is no id: 400" 400
api GET /v1/nothing
is "an unknown path: 404" 404 '.error.code == "no_route"'
api DELETE /v1/jobs/1
is "a method a path does not take: 405" 405 '.error.code == "method_not_allowed"'
api POST /v1/jobs '{"task":"echo",'
is "malformed JSON: 400" 400 '.error.code == "bad_json"'
api POST /v1/jobs '{"task":"echo","colour":"red"}'
is "an unknown field: 400 naming it" 400 '.error.message == "unknown field '"'colour'"'"'
api POST /v1/jobs '{"task":"echo","priority":"high"}'
is "a field of the wrong type: 400 naming it" 400 '.error.message | startswith("priority:")'
api POST /v1/jobs '{"task":"echo","delay":5,"at":"2099-01-01T00:00:00Z"}'
is "delay and at: 400" 400
api POST /v1/jobs '{"task":"no-such-task"}'
is "an unknown task: 400" 400 '.error.code == "unknown_task"'
api POST /v1/jobs '{"task":"echo","input_base64":"!!"}'
is "bad base64: 400" 400
big=$(head -c 2000 /dev/zero | tr '\0' x)
api POST /v1/jobs "{\"task\":\"echo\",\"input\":\"$big\"}"
is "an input over max_input_size: 413" 413 '.error.code == "too_large"'
head -c 100000 /dev/zero | tr '\0' ' ' >"$W/bigbody"
api POST /v1/jobs "@$W/bigbody"
is "a body over the limit: 413" 413 '.error.code == "too_large"'
api POST /v1/jobs/batch '{"jobs":[{"task":"noop"},{"task":"noop"},{"task":"noop"},{"task":"noop"},{"task":"noop"},{"task":"noop"}]}'
is "a batch over max_batch: 413" 413 '.error.message | contains("max_batch (5)")'
api POST /v1/jobs/batch '{"jobs":[{"task":"noop"},{"task":"nope"}]}'
is "a batch with a bad job: 400 naming it, none added" 400 '.error.message | startswith("jobs[1]: ")'

# ---- bulk changes: the jobs named, or every job a filter matches ----
api POST /v1/jobs/batch '{"jobs":[{"task":"noop","hold":true,"queue":"bulk"},{"task":"noop","hold":true,"queue":"bulk"},{"task":"noop","hold":true,"queue":"bulk"}]}'
held=$(printf '%s' "$body" | jq -c .ids)
api POST /v1/jobs/bulk "{\"action\":\"cancel\",\"ids\":$held}"
is "bulk cancel of three held jobs by id" 200 \
	'. == {"action":"cancel","changed":3,"stopping":0,"skipped":0,"not_found":0}'
api POST /v1/jobs/bulk "{\"action\":\"cancel\",\"ids\":$(printf '%s' "$held" | jq -c '. + [999999]')}"
is "again: each skipped (cancelled already), the unknown one not found" 200 \
	'.changed == 0 and .skipped == 3 and .not_found == 1'
api POST /v1/jobs/bulk '{"action":"retry","filter":{"queue":"bulk","status":"cancelled"}}'
is "bulk retry of what a filter matches" 200 '.changed == 3 and .skipped == 0'
api GET "/v1/jobs/$(printf '%s' "$held" | jq '.[0]')"
is "a retried job is queued again" 200 '.status == "queued" and .attempts == 0'
api POST /v1/jobs/bulk '{"action":"delete","filter":{"queue":"bulk"}}'
is "bulk delete refuses jobs not finished" 200 '.changed == 0 and .skipped == 3'
api POST /v1/jobs/bulk '{"action":"cancel","filter":{"queue":"bulk","status":"queued"}}'
api POST /v1/jobs/bulk "{\"action\":\"delete\",\"filter\":{\"queue\":\"bulk\",\"added_after\":$(($(date +%s) - 3600))}}"
is "bulk delete of the cancelled ones, a time as seconds" 200 '.changed == 3 and .skipped == 0'
api GET "/v1/jobs/$(printf '%s' "$held" | jq '.[1]')"
is "a deleted job is gone" 404
api POST /v1/jobs/bulk '{"action":"frob","ids":[1]}'
is "bulk: an unknown action: 400 naming it" 400 \
	'.error.message == "action: unknown action '"'frob'"' (retry, cancel or delete)"'
api POST /v1/jobs/bulk '{"ids":[1]}'
is "bulk: no action: 400" 400 '.error.message | startswith("action: missing")'
api POST /v1/jobs/bulk '{"action":"retry","ids":[1],"filter":{}}'
is "bulk: ids and filter both: 400" 400 '.error.message == "body: give ids or filter, not both"'
api POST /v1/jobs/bulk '{"action":"retry"}'
is "bulk: neither ids nor filter: 400" 400 '.error.message | startswith("body: expected ids")'
api POST /v1/jobs/bulk '{"action":"retry","ids":[]}'
is "bulk: empty ids: 400" 400 '.error.message == "ids: expected an array of job ids, not empty"'
api POST /v1/jobs/bulk '{"action":"retry","ids":[1,"two"]}'
is "bulk: an id that is no id: 400 naming it" 400 '.error.message | startswith("ids[1]: ")'
api POST /v1/jobs/bulk '{"action":"retry","ids":[1,2,3,4,5,6]}'
is "bulk: more ids than max_batch: 413" 413 '.error.message | contains("max_batch (5)")'
api POST /v1/jobs/bulk '{"action":"retry","filter":{"colour":"red"}}'
is "bulk: an unknown filter field: 400 naming it" 400 '.error.message | startswith("filter: unknown field '"'colour'"'")'
api POST /v1/jobs/bulk '{"action":"retry","filter":{"status":"done"}}'
is "bulk: an unknown status: 400" 400 '.error.message | startswith("filter.status: unknown status '"'done'"'")'
api POST /v1/jobs/bulk '{"action":"retry","filter":{"added_after":"yesterday"}}'
is "bulk: a bad time: 400" 400 '.error.message | startswith("filter.added_after: expected a time")'
api POST /v1/jobs/bulk '{"action":"retry","filter":{"task":5}}'
is "bulk: a filter value of the wrong type: 400" 400 '.error.message == "filter.task: expected a string"'
api POST /v1/jobs/bulk '[1,2]'
is "bulk: a body that is no object: 400" 400

# ---- tokens on TCP ----
tcp "" GET /v1/health
is "TCP without a token: 401" 401 '.error.code == "unauthorized"'
tcp "wrong-token-0123456789abcdef" GET /v1/health
is "TCP with a wrong token: 401" 401
tcp $READ GET /v1/stats
is "a read token reads" 200
tcp $READ POST /v1/jobs '{"task":"noop"}'
is "a read token cannot add: 403" 403 '.error.code == "forbidden"'
tcp $WRITE POST /v1/jobs '{"task":"noop"}'
is "a write token adds" 201
tcp $READ POST /v1/jobs/bulk '{"action":"cancel","filter":{}}'
is "a read token cannot change jobs in bulk: 403" 403 '.error.code == "forbidden"'
tcp $WRITE POST /v1/jobs/bulk '{"action":"delete","ids":[999999]}'
is "a write token can" 200 '.not_found == 1'
tcp $WRITE POST /v1/queues/default/pause
is "a write token cannot pause a queue: 403" 403
tcp $ADMIN POST /v1/queues/default/pause
is "an admin token pauses a queue" 200
tcp $ADMIN POST /v1/queues/default/resume
is "and resumes it" 200
tcp $WRITE POST /v1/clean '{"older_than":"36500d"}'
is "a write token cannot clean: 403" 403 \
	'.error.message == "POST /v1/clean needs a token of scope admin; '"'writer'"' has write"'
tcp $READ POST /v1/clean
is "nor a read token" 403 '.error.code == "forbidden"'
tcp $ADMIN POST /v1/clean '{"older_than":"36500d"}'
is "an admin token cleans" 200 '.removed == 0'
grep -v '^writer' "$TOKENS" >"$W/tokens.new"
chmod 600 "$W/tokens.new"
mv "$W/tokens.new" "$TOKENS"
kill -HUP "$HOST_PID"
wait_until 10 grep -q "tokens reread" "$log"
tcp $WRITE POST /v1/jobs '{"task":"noop"}'
is "a removed token is refused after SIGHUP" 401
tcp $ADMIN GET /v1/health
is "the others still work" 200

# ---- slow and many clients ----
python3 - "$SOCK" >"$W/slow" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
start = time.time()
cut = False
try:
    for b in b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n":
        s.send(bytes([b]))
        time.sleep(1)
        s.settimeout(0.01)
        try:
            if s.recv(100) == b"":
                cut = True
                break
        except socket.timeout:
            pass
        s.settimeout(None)
except OSError:
    cut = True
print("cut after %.0f s" % (time.time() - start) if cut else "not cut")
EOF
slow=$!
api GET /v1/health
is "others are served while a slow client trickles" 200
wait $slow
case $(cat "$W/slow") in
"cut after "[2-6]" s") ok "a client sending a byte a second is cut off ($(cat "$W/slow"))" ;;
*) not_ok "slow client: $(cat "$W/slow")" ;;
esac

# 500 connections open at once, each with an add in flight before any is answered; then,
# while 520 (the limit) are open, they are served and one more waits for a free one
python3 - "$SOCK" "$HOST_PID" >"$W/many" 2>&1 <<'EOF'
import json, os, socket, sys, time

def host_sockets():
    n = 0
    for fd in os.listdir("/proc/%s/fd" % sys.argv[2]):
        try:
            n += os.readlink("/proc/%s/fd/%s" % (sys.argv[2], fd)).startswith("socket:")
        except OSError:
            pass
    return n

def connect():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(sys.argv[1])
    return s

def send_add(s, key):
    body = json.dumps({"task": "noop", "unique": key}).encode()
    s.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

def status(s):
    data = b""
    while b"\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return "closed"
        data += chunk
    return data.split(b" ")[1].decode()

socks = [connect() for _ in range(500)]
for i, s in enumerate(socks):
    send_add(s, "many-%d" % (i + 1))
codes = [status(s) for s in socks]
print("answered", sum(c == "201" for c in codes), "of", len(codes))
for s in socks:
    s.close()
# the host lets go of the closed ones before the limit is tried
deadline = time.time() + 20
while host_sockets() > 50 and time.time() < deadline:
    time.sleep(0.05)

held = [connect() for _ in range(520)]
for i, s in enumerate(held[:20]):
    send_add(s, "held-%d" % i)
print("held answered", sum(status(s) == "201" for s in held[:20]), "of 20")
extra = connect()
send_add(extra, "past-the-limit")
extra.settimeout(0.5)
try:
    print("extra answered at once:", status(extra))
except socket.timeout:
    print("extra waits")
for s in held:
    s.close()
extra.settimeout(20)
print("then", status(extra))
EOF
same "500 connections at once: every add answered 201" "$(sed -n 1p "$W/many")" "answered 500 of 500"
same "with max_connections open, each of them is served" "$(sed -n 2p "$W/many")" "held answered 20 of 20"
same "one past the limit waits to be accepted" "$(sed -n 3p "$W/many")" "extra waits"
same "and is served once a connection closes" "$(sed -n 4p "$W/many")" "then 201"
api GET "/v1/jobs?unique=many-77"
is "and each job is there" 200 '(.jobs | length) == 1'
api GET /v1/stats
is "their adds shared commits" 200 '.group_commit.commits < .group_commit.jobs_added'

# ---- clean: bad bodies say which field and why; then finished jobs go ----
for bad in '{"older_than":"5x"}' '{"older_than":true}' '{"older_than":""}'; do
	api POST /v1/clean "$bad"
	is "clean with $bad: 400" 400 '.error.message == "clean: older_than: expected seconds, or a duration such as 500ms, 30s, 2m, 1h, 7d"'
done
for bad in '{"older_than":-1}' '{"older_than":"36501d"}' '{"older_than":1e300}'; do
	api POST /v1/clean "$bad"
	is "clean with $bad: 400" 400 '.error.message == "clean: older_than: out of range (from 0 to 36500d)"'
done
api POST /v1/clean '{"older":"1h"}'
is "clean with an unknown field: 400" 400 '.error.message == "clean: unknown field '"'older'"'"'
api POST /v1/clean '[1]'
is "clean with a body that is no object: 400" 400 '.error.message == "clean: body: expected an object"'
api POST /v1/clean '{"older_than":'
is "clean with a body that is not JSON: 400" 400 '.error.code == "bad_json"'
idle() {
	curl -s --unix-socket "$SOCK" http://localhost/v1/health |
		jq -e '.queued == 0 and .processing == 0' >/dev/null
}
check "the jobs added so far have all run" wait_until 30 idle
api GET /v1/stats
finished=$(printf '%s' "$body" | jq '.counts.completed + .counts.error + .counts.cancelled')
api POST /v1/clean '{"older_than":"1h"}'
is "clean older_than 1h: none finished that long ago" 200 '.removed == 0'
api GET /v1/jobs/1
is "so job 1 stays" 200 '.status == "completed"'
api POST /v1/clean '{"older_than":0.001}'
is "clean older_than 1 ms (seconds as a number): every finished job" 200 ".removed == $finished"
api GET /v1/jobs/1
is "job 1 is gone" 404
api POST /v1/clean
is "clean without a body: nothing is left to remove" 200 '.removed == 0'

# ---- /metrics (tests/e2e/metrics.sh checks its text): the API's listeners and tokens ----
api GET /metrics
is "GET /metrics over the socket" 200
tcp "" GET /metrics
is "GET /metrics over TCP needs a token" 401
tcp "$READ" GET /metrics
is "a read token is enough" 200

# ---- the OpenAPI document: what was answered is documented, what is documented is served
jq -r '.paths | to_entries[] | .key as $p | .value | keys[] | "\(ascii_upcase) \($p)"' \
	"$W/openapi.json" | sort -u >"$W/documented"
undoc=""
while read -r m r c; do
	jq -e --arg p "$r" --arg m "$(echo "$m" | tr 'A-Z' 'a-z')" --arg c "$c" \
		'.paths[$p][$m].responses[$c]' "$W/openapi.json" >/dev/null ||
		undoc="$undoc $m $r $c;"
done <"$SEEN"
same "every status the server answered is documented for its route" "$undoc" ""
unserved=$(awk '{print $1, $2}' "$SEEN" | sort -u | comm -13 - "$W/documented" | tr '\n' ';')
same "every documented route was called and answered" "$unserved" ""
stop_host "$HOST_PID"
same "the host stopped cleanly" "$host_rc" 0
check "and removed its socket" test ! -e "$SOCK"

# ---- TLS ----
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-days 1 -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
chmod 600 "$W/key.pem"
write_config "listen = 127.0.0.1:$PORT" "token_file = $TOKENS" "tls_cert = $W/cert.pem" \
	"tls_key = $W/key.pem"
start_host || exit 1
call GET /v1/health "https://127.0.0.1:$PORT" --cacert "$W/cert.pem" -H "Authorization: Bearer $READ"
is "TLS with the host's certificate" 200 '.status == "ok"'
call GET /v1/health "https://127.0.0.1:$PORT" --cacert "$W/cert.pem"
is "TLS without a token: 401" 401
curl -s -o /dev/null "http://127.0.0.1:$PORT/v1/health"
check "plain HTTP to the TLS port gets no answer" test $? -ne 0
api GET /v1/health
is "the unix socket stays plain" 200
stop_host "$HOST_PID"

# ---- waits are bounded: 429 ----
write_config "max_connections = 4"
start_host || exit 1
api POST /v1/jobs '{"task":"echo","hold":true}'
wid=$(printf '%s' "$body" | jq .id)
waiters=""
for i in 1 2; do
	curl -s --unix-socket "$SOCK" -d "{\"ids\":[$wid],\"timeout\":4}" http://x/v1/wait >"$W/wait$i" &
	waiters="$waiters $!"
done
wait_until 5 sh -c "curl -s --unix-socket '$SOCK' http://x/v1/stats | jq -e '.waits == 2' >/dev/null"
api POST /v1/wait "{\"ids\":[$wid],\"timeout\":1}"
is "more waits than half of max_connections: 429" 429 '.error.code == "busy"'
# shellcheck disable=SC2086
wait $waiters
same "the waits going on end timed out" "$(jq -s -c '[.[].timed_out]' "$W/wait1" "$W/wait2")" "[true,true]"
stop_host "$HOST_PID"

# ---- a full store (an LMDB map at max_map_size): 503 ----
lmdb_only "a full database: 503, and the host still answers" && {
	rm -rf "$W/var"
	write_config "map_size = 1MiB" "max_map_size = 1MiB" "max_input_size = 200KiB"
	start_host || exit 1
	api POST /v1/queues/default/pause
	chunk=$(head -c 150000 /dev/zero | tr '\0' y)
	printf '{"task":"noop","input":"%s"}' "$chunk" >"$W/chunk.json"
	n=0
	while [ $n -lt 30 ]; do
		api POST /v1/jobs "@$W/chunk.json"
		[ "$code" = 201 ] || break
		n=$((n + 1))
	done
	is "a full database: 503" 503 '.error.code == "full"'
	api GET /v1/health
	is "the host still answers" 200
	stop_host "$HOST_PID"
}

# ---- group commit: every acknowledged add survives a SIGKILL, and nothing else is there
write_config
fresh_store
start_host || exit 1
api POST /v1/queues/default/pause
CLIENTS=8
clients=""
for c in $(seq 1 $CLIENTS); do
	(
		k=0
		while :; do
			k=$((k + 1))
			echo "c$c-$k" >>"$W/tried.$c"
			r=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" \
				-d "{\"task\":\"noop\",\"input\":\"c$c-$k\"}" http://x/v1/jobs) || break
			[ "$r" = 201 ] || break
			echo "c$c-$k" >>"$W/acked.$c"
		done
	) &
	clients="$clients $!"
done
sleep "1.$(printf '%03d' $(($(od -An -N2 -tu2 /dev/urandom) % 1000)))"
kill -KILL "$HOST_PID"
# shellcheck disable=SC2086
wait $clients
start_host "$W/host2.log" || exit 1
api GET /v1/stats
total=$(printf '%s' "$body" | jq '.counts.queued')
cat "$W"/acked.* | sort >"$W/acked"
cat "$W"/tried.* | sort >"$W/tried"
curl -s --unix-socket "$SOCK" "http://x/v1/jobs/[1-$total]/input" | jq -r .input | sort >"$W/present"
check "the clients' adds were acknowledged ($(wc -l <"$W/acked") of them, $total jobs)" \
	test "$(wc -l <"$W/acked")" -gt 0
same "every acknowledged job is there after the SIGKILL" "$(comm -23 "$W/acked" "$W/present")" ""
same "no job is there that no client added" "$(comm -13 "$W/tried" "$W/present")" ""
same "none is there twice" "$(uniq -d "$W/present")" ""
# a client that gives up while its add is committing: the add happened or not, and a
# retry with the same unique key does not add a second job
curl -s -m 0.002 --unix-socket "$SOCK" -d '{"task":"noop","unique":"gone-1"}' \
	http://x/v1/jobs >/dev/null 2>&1
api POST /v1/jobs '{"task":"noop","unique":"gone-1"}'
check "the retry of an add whose client went away is answered ($code)" \
	test "$code" = 200 -o "$code" = 201
api GET "/v1/jobs?unique=gone-1"
is "and there is one job with its key" 200 '(.jobs | length) == 1'
stop_host "$HOST_PID"
counts_agree "after the SIGKILL under load the counts agree with a recount of the records"
finish
