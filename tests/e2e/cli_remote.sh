#!/bin/sh
# End to end, the CLI through a host: the same commands on the same jobs give the same
# output and exit codes on the data dir itself (--local), through the host's unix socket
# (found by itself) and over TCP with a token (--url); and what can go wrong with a host
# (a bad URL, a refused connection, a wrong or missing token, a read token adding, the
# host gone during a command) says why and names the URL, with a non-zero exit.
. "$(dirname "$0")/lib.sh"

for tool in curl openssl python3; do
	command -v $tool >/dev/null || {
		echo "cli_remote.sh: $tool is missing (scripts/deps installs it)" >&2
		exit 1
	}
done
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
TOKENS="$W/tokens"
cat >"$TOKENS" <<EOF
reader read read-token-0123456789abcdef
boss   admin admin-token-0123456789abcdef
EOF
chmod 600 "$TOKENS"
echo admin-token-0123456789abcdef >"$W/admin.token"
echo read-token-0123456789abcdef >"$W/read.token"
echo wrong-token-0123456789abcdef >"$W/wrong.token"
chmod 600 "$W/admin.token" "$W/read.token" "$W/wrong.token"
printf 'a\000b\000\377c' >"$W/binary"
printf 'one\n\nthree\n' >"$W/lines"

# t ARGS...: runs taskhost in this mode ($MODE_ARGS) with stdin from $IN, and notes in
# the transcript $T the command, what it printed and its exit status
IN=/dev/null
t() {
	# shellcheck disable=SC2086
	"$TASKHOST" -c "$CFG" $MODE_ARGS "$@" <"$IN" >"$W/o" 2>"$W/e"
	echo "\$ $* (exit $?)" >>"$T"
	cat "$W/o" "$W/e" >>"$T"
	IN=/dev/null
}
status_is() { # status_is ID STATUS
	[ "$("$TASKHOST" -c "$CFG" $MODE_ARGS status "$1" 2>/dev/null)" = "$2" ]
}

# the same commands in each mode, on a data dir of its own with a host running on it
scenario() {
	t pause default # nothing runs until resume: the statuses stay as they are
	t add echo hello
	t add "bad name" x
	t add nosuchtask x
	t add echo
	IN="$W/binary" t add echo -
	t add fail "disk on fire" --max-attempts 1
	t add sleep '{"seconds": 30}'
	t add echo cancel-me
	t add echo -- --json
	t add --json echo x
	t add echo held --hold
	t add echo u --unique k
	t add echo u --unique k --json
	t add echo later --delay 1h
	t add echo p --priority 5 --queue q1 --max-attempts 2 --timeout 30s --backoff 2s
	IN="$W/lines" t add echo --lines
	IN="$W/lines" t add echo --lines --json
	IN="$W/lines" t add nosuchtask --lines
	t status 1
	t status 999
	t result 999
	t error 999
	t cancel 999
	t wait 999
	t result 1
	t error 1
	t cancel 6
	t status 6
	t cancel 6
	t status 9 --json
	t start 9
	t start 9
	t retry 1
	t list
	t list --status queued,held --limit 3
	t list --json
	t stats
	t tasks
	t tasks --json
	t cron add echo tick --schedule "0 3 * * *"
	t cron list
	t cron update 19 --schedule "0 4 * * *" --catch-up
	t cron update 19
	t cron pause 19
	t cron resume 19
	t cron list --json
	t cron update 19 --schedule "0 0 30 2 *"
	t cron pause 1
	t cron next "0 3 * * *" --count 2 --from 2026-01-01T00:00:00Z
	t cron remove 19
	t pause q1
	t resume q1
	t pause "bad name"
	t resume default
	t wait 1 2 3 4 --timeout 60
	t wait 1 2 3 --timeout 60
	t result 1
	t result 2
	t result 3
	t result 3 --json
	t status 4
	t error 4
	t error 4 --all
	t error 4 --json
	t retry 4
	t wait 4 --timeout 60
	t error 4 --all --json
	wait_until 20 status_is 5 processing
	t cancel 5
	t wait 5 --timeout 30
	t wait 11 --timeout 0.2
	t wait 1 2 3 7 8 9 10 13 14 15 16 17 18 --timeout 60
	t list --status error
	t list --limit 2
	t list --json
	t list --status cancelled --json
	t clean --older-than 1h
	t clean --older-than 36500d --json
	t clean --older-than 5x
	t clean --older-than 36501d
	t stats
	t status 12 --json
}

# times and rates differ from run to run; the data dirs from mode to mode
normalize() {
	sed -E -e 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z/TIME/g' \
		-e 's/[0-9]+\.[0-9]{3}s( |$)/Ns\1/g' -e 's/"took": [0-9.e-]+/"took": N/' -e 's/ for [0-9]+\.[0-9]{3} s:/ for N s:/' \
		-e 's/^(rate +)[0-9.]+/\1N/' -e 's/waiting [0-9.]+ s/waiting N s/' \
		-e "s#$W/$1/#DIR/#g" "$W/t.$1"
}

for mode in local sock tcp; do
	mkdir "$W/$mode"
	port=$(free_port)
	write_config "data_dir = ./$mode/var" "listen = 127.0.0.1:$port" "token_file = $TOKENS"
	cp "$CFG" "$W/$mode.ini"
	CFG="$W/$mode.ini"
	fresh_store "$W/$mode/var"
	case $mode in
	local) MODE_ARGS=--local ;;
	sock) MODE_ARGS="" ;;
	tcp) MODE_ARGS="--url http://127.0.0.1:$port --token-file $W/admin.token" ;;
	esac
	T="$W/t.$mode"
	: >"$T"
	start_host "$W/$mode.log"
	scenario
	stop_host "$HOST_PID"
	eval "PORT_$mode=$port"
	CFG="$W/taskhost.ini"
done
normalize local >"$W/n.local"
check "the local run did what it was asked" grep -q '^\$ wait 1 2 3 --timeout 60 (exit 0)' "$W/n.local"
for mode in sock tcp; do
	normalize $mode >"$W/n.$mode"
	if diff -u "$W/n.local" "$W/n.$mode" >"$W/diff.$mode"; then
		ok "through the $mode: the same output and exit codes as on the data dir ($(grep -c '^\$ ' "$W/n.$mode") commands)"
	else
		not_ok "through the $mode: not the same output and exit codes as on the data dir:"
		sed 's/^/#   /' "$W/diff.$mode"
	fi
done
# shellcheck disable=SC2154
PORT=$PORT_tcp

# ---- through a host: the socket is found by itself; what goes wrong says why ----
CFG="$W/tcp.ini"
start_host "$W/tcp2.log"
URL="http://127.0.0.1:$PORT"
th status 1
same "the socket, found by itself" "$out" completed
th --local status 1
same "--local opens the data dir" "$out" completed
th --url "$W/tcp/var/api.sock" status 1
same "--url with the socket's path" "$out" completed
th --local list --json --limit 0
here=$out
th list --json --limit 0
same "the same jobs, to the microsecond of took, on the data dir and through the socket" "$out" "$here"
th --url "$URL" --token-file "$W/admin.token" list --limit 0
there=$out
th --local list --limit 0
same "and over TCP" "$there" "$out"
out=$(TASKHOST_URL=$URL TASKHOST_TOKEN=read-token-0123456789abcdef "$TASKHOST" status 1 2>&1)
same "TASKHOST_URL and TASKHOST_TOKEN, without a config" "$out" completed
out=$(TASKHOST_URL=$URL TASKHOST_TOKEN_FILE=$W/read.token "$TASKHOST" status 1 2>&1)
same "TASKHOST_TOKEN_FILE" "$out" completed
out=$(TASKHOST_URL=$URL "$TASKHOST" -c "$CFG" --local status 1 2>&1)
same "--local wins over TASKHOST_URL" "$out" completed
th --url "$URL/" --token-file "$W/read.token" list --limit 1
check "a URL with a trailing slash" sh -c 'echo "$1" | grep -q "^19 "' - "$out"
th --url "$URL" --token-file "$W/read.token" add echo x
expect "a read token adding: 403" 1 "taskhost: add: the host at $URL refused the request (403 forbidden): POST /v1/jobs needs a token of scope write; 'reader' has read"
th --url "$URL" --token-file "$W/wrong.token" status 1
expect "a wrong token: 401" 1 "taskhost: reading the job: the host at $URL refused the request (401 unauthorized): the bearer token is not one of token_file's"
th --url "$URL" status 1
expect "no token: 401" 1 "taskhost: reading the job: the host at $URL refused the request (401 unauthorized): missing Authorization: Bearer TOKEN"
out=$(TASKHOST_URL=$URL TASKHOST_TOKEN=nope "$TASKHOST" -c "$CFG" add echo x 2>&1)
same "the wrong token of TASKHOST_TOKEN" "$out" "taskhost: add: the host at $URL refused the request (401 unauthorized): the bearer token is not one of token_file's"
chmod 644 "$W/read.token"
th --url "$URL" --token-file "$W/read.token" status 1
expect "a token file others can read" 2 "taskhost: token file $W/read.token: group or others can read or write it (mode 0644): it must be a file only its owner can read (chmod 600)"
th --url "$URL" --token-file "$W/none.token" status 1
expect "a token file that is not there" 2 "taskhost: token file $W/none.token: cannot open: No such file or directory"
th --url ftp://127.0.0.1 status 1
expect "a URL of another scheme" 2 "taskhost: --url 'ftp://127.0.0.1': expected http://HOST:PORT, https://HOST:PORT or the path of a host's unix socket"
th --url "http://" status 1
expect "a URL without a host" 2 "taskhost: --url: bad URL 'http://': expected http://HOST:PORT or https://HOST:PORT (or the path of a host's unix socket)"
th --url localhost:7070 status 1
expect "a URL without a scheme" 2 "taskhost: --url 'localhost:7070': No such file or directory (a URL starts with http:// or https://; a path names a host's unix socket, api.sock in its data dir)"
th --url "$CFG" status 1
expect "a path that is no socket" 2 "taskhost: --url '$CFG': not a socket (a URL starts with http:// or https://; a path names a host's unix socket, api.sock in its data dir)"
dead=$(free_port)
th --url "http://127.0.0.1:$dead" status 1
expect "a refused connection" 1
case $err in
"taskhost: reading the job: cannot reach the host at http://127.0.0.1:$dead (GET /v1/jobs/1): "*"onnect"*) ok "it says so, naming the URL" ;;
*) not_ok "a refused connection: $err" ;;
esac
chmod 600 "$W/read.token"
th --url "$URL" --token-file "$W/read.token" clean
expect "a read token cleaning: 403" 1 "taskhost: clean: the host at $URL refused the request (403 forbidden): POST /v1/clean needs a token of scope admin; 'reader' has read"
th --url "$URL" check
expect "check too" 2 "taskhost: this command works on the data dir itself, not through a host: run it on the host's machine, without --url or TASKHOST_URL ($URL)"
th --url "$URL" run
expect "run with --url" 2 "taskhost: run: starts a host here: --url does not apply"
th --url "$URL" --local status 1
expect "--url and --local" 2 "taskhost: --local and --url both say where: give one"
writes() {
	curl -s --unix-socket "$W/tcp/var/api.sock" http://localhost/v1/stats |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["group_commit"]["writes"])'
}
before=$(writes)
th clean
same "clean with a host running" "$out" "removed 17 finished jobs"
same "went through the host's socket: one write more" "$(writes)" "$((before + 1))"

# the host gone during a command: a wait through TCP, then SIGKILL
th add sleep '{"seconds": 30}'
long=$out
"$TASKHOST" -c "$CFG" --url "$URL" --token-file "$W/admin.token" wait "$long" >/dev/null 2>"$W/gone.err" &
waiter=$!
waits() {
	[ "$(curl -s --unix-socket "$W/tcp/var/api.sock" http://localhost/v1/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["waits"])')" -ge 1 ]
}
check "the wait is with the host" wait_until 20 waits
kill -KILL "$HOST_PID"
wait "$HOST_PID" 2>/dev/null
wait "$waiter"
rc=$?
err=$(cat "$W/gone.err")
expect "the host gone during a wait" 1
# (libcurl tries a request again on a new connection when the one it reused closed
# before any answer: then it cannot reach the host)
case $err in
"taskhost: wait: lost the host at $URL during POST /v1/wait: "* | \
	"taskhost: wait: cannot reach the host at $URL (POST /v1/wait): "*) ok "it says so, naming the URL" ;;
*) not_ok "the host gone: $err" ;;
esac
th status "$long"
same "with the host gone, its socket left: the data dir itself" "$out" processing
th --url "$W/tcp/var/api.sock" status 1
expect "--url at a dead host's socket" 1
case $err in
"taskhost: reading the job: cannot reach the host at unix socket $W/tcp/var/api.sock (GET /v1/jobs/1): "*) ok "it says so, naming the socket" ;;
*) not_ok "a dead host's socket: $err" ;;
esac

# ---- https: the host's certificate among --ca-file's, or refused ----
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	-days 1 -keyout "$W/key.pem" -out "$W/cert.pem" 2>/dev/null
chmod 600 "$W/key.pem"
write_config "data_dir = ./tcp/var" "listen = 127.0.0.1:$PORT" "token_file = $TOKENS" \
	"tls_cert = $W/cert.pem" "tls_key = $W/key.pem"
start_host "$W/tls.log"
th --url "https://127.0.0.1:$PORT" --token-file "$W/admin.token" --ca-file "$W/cert.pem" status 12
same "https with the host's certificate in --ca-file" "$out" queued
out=$(TASKHOST_CA_FILE=$W/cert.pem "$TASKHOST" --url "https://127.0.0.1:$PORT" --token-file "$W/admin.token" status 12 2>&1)
same "TASKHOST_CA_FILE" "$out" queued
th --url "https://127.0.0.1:$PORT" --token-file "$W/admin.token" status 1
expect "https with a certificate no CA signed" 1
case $err in
"taskhost: reading the job: cannot reach the host at https://127.0.0.1:$PORT (GET /v1/jobs/1) over TLS: "*) ok "it says so, naming the URL" ;;
*) not_ok "a certificate not trusted: $err" ;;
esac
th --url "https://127.0.0.1:$PORT" --ca-file "$W/none.pem" status 1
expect "a --ca-file that is not there" 2 "taskhost: --ca-file $W/none.pem: cannot read: No such file or directory"
th --url "http://127.0.0.1:$PORT" --token-file "$W/admin.token" status 1
expect "plain HTTP to a TLS host" 1
case $err in
"taskhost: reading the job: lost the host at http://127.0.0.1:$PORT during GET /v1/jobs/1: "*) ok "it says so, naming the URL" ;;
*) not_ok "plain HTTP to a TLS host: $err" ;;
esac
stop_host "$HOST_PID"

finish
