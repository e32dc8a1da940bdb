#!/bin/sh
# End to end, the dashboard in headless Chromium (dashboard.mjs, with playwright-core
# from npm, installed here once into the build dir): a host with jobs in every status,
# each page loaded, filter, search, retry, cancel, bulk changes, pause clicked, a
# progress bar seen moving, a job's timeline, a cron job's last run, a read token that
# changes nothing, CSRF refused; screenshots in tests/e2e/screenshots.
. "$(dirname "$0")/lib.sh"

CHROMIUM=$(command -v chromium || true)
for tool in curl node npm python3; do
	command -v $tool >/dev/null || {
		echo "dashboard.sh: $tool is missing (scripts/deps installs it)" >&2
		exit 1
	}
done
[ -n "$CHROMIUM" ] || {
	echo "dashboard.sh: chromium is missing (scripts/deps installs it)" >&2
	exit 1
}
NODE_DIR="$(pwd)/tests/node"
if [ ! -d "$NODE_DIR/node_modules/playwright-core" ]; then
	mkdir -p "$NODE_DIR"
	(cd "$NODE_DIR" && npm install --no-audit --no-fund --silent playwright-core@1) || {
		echo "dashboard.sh: npm install playwright-core failed" >&2
		exit 1
	}
fi
SHOTS="$(pwd)/tests/e2e/screenshots"
mkdir -p "$SHOTS"

SOCK="$W/var/api.sock"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
READ=read-token-0123456789abcdef
ADMIN=admin-token-0123456789abcdef
printf 'viewer read %s\nboss admin %s\n' "$READ" "$ADMIN" >"$W/tokens"
chmod 600 "$W/tokens"
write_config "listen = 127.0.0.1:$PORT" "token_file = $W/tokens" -- "max_threads = 4" \
	"wait_time = 0.05"
printf '[queue mail]\nstrategy = simple\n' >>"$CFG"

th add echo hello
done_id=$out
th add fail boom
failed_id=$out
for i in $(seq 1 60); do echo "m$i"; done | "$TASKHOST" -c "$CFG" add echo --queue mail --lines >/dev/null
th add echo --hold held
held_id=$out
# for the bulk changes and the search: two more failures, two more held, a unique key
th add fail boom2
fail2_id=$out
th add fail boom3
fail3_id=$out
th add echo --hold held2
held2_id=$out
th add echo --hold held3
held3_id=$out
th add echo --hold --unique report-42 uniq
unique_id=$out
start_host || exit 1
th wait "$done_id" "$failed_id" "$fail2_id" "$fail3_id" --timeout 30
curl -s -o /dev/null --unix-socket "$SOCK" -d '{"task":"echo","cron":"*/5 * * * *","input":"tick"}' http://x/v1/cron
# a cron job that ran once, in error, then paused: its last run on the cron page
cron_id=$(curl -s --unix-socket "$SOCK" -d '{"task":"fail","cron":"every 1s","input":"tock","max_attempts":1}' \
	http://x/v1/cron | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
cron_ran() { curl -s --unix-socket "$SOCK" http://x/v1/cron | grep -q '"last_run_status": *"error"'; }
check "the every-second cron job ran" wait_until 20 cron_ran
curl -s -o /dev/null --unix-socket "$SOCK" -X POST "http://x/v1/cron/$cron_id/pause"
th add sleep '{"seconds":60,"id":1}'
running_id=$out
wait_until 10 sh -c '"$1" -c "$2" status "$3" | grep -qx processing' - "$TASKHOST" "$CFG" "$running_id"
check "the long job is running" test $? = 0

NODE_MODULES="$NODE_DIR/node_modules" BASE="http://127.0.0.1:$PORT" ADMIN=$ADMIN READ=$READ \
	SHOTS=$SHOTS CHROMIUM=$CHROMIUM \
	JOBS="{\"done\":$done_id,\"failed\":$failed_id,\"held\":$held_id,\"running\":$running_id,\"fail2\":$fail2_id,\"fail3\":$fail3_id,\"held2\":$held2_id,\"held3\":$held3_id,\"unique\":$unique_id,\"cron\":$cron_id}" \
	timeout 120 node "$(dirname "$0")/dashboard.mjs" >"$W/browser.out" 2>&1
cat "$W/browser.out"
passed=$((passed + $(grep -c '^ok - ' "$W/browser.out")))
failed=$((failed + $(grep -c '^not ok - ' "$W/browser.out")))
check "the browser run ended with a result for each step" grep -q '^ok - no console errors' "$W/browser.out"
for f in signin overview jobs jobs-select jobs-search job job-timeline progress queues cron hosts; do
	check "screenshot $f.png saved" test -s "$SHOTS/$f.png"
done
th cancel "$running_id"
th wait "$running_id" --timeout 20
stop_host "$HOST_PID"
counts_agree "the counts agree with a recount of the records"
finish
