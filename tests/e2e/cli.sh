#!/bin/sh
# End to end: every subcommand and every user error, through the taskhost binary.
. "$(dirname "$0")/lib.sh"

# ---- config errors name the file, the line and the key ----
bad_config() {
	printf '%s\n' "$@" >"$CFG"
	th status 1
}
bad_config "[host]" "data_dir = ./var" "plugin_dir = ./plugins" "[processor]" \
	"strategy = multi" "" "max_thread = 4"
expect "unknown key" 2 "taskhost: $CFG:7: unknown key 'max_thread' in [processor]"
bad_config "[hots]" "data_dir = ./var"
expect "unknown section" 2 "taskhost: $CFG:1: unknown section [hots] (expected [host], [processor] or [queue NAME] with NAME of letters, digits, '_', '.', '-')"
bad_config "[processor]" "strategy = quantum"
expect "bad strategy" 2 "taskhost: $CFG:2: bad value 'quantum' for strategy in [processor]: expected simple, multi or process"
bad_config "[processor]" "max_threads = 0"
expect "bad max_threads" 2 "taskhost: $CFG:2: bad value '0' for max_threads in [processor]: expected a whole number from 1 to 1024"
bad_config "[processor]" "wait_time = soon"
expect "bad wait_time" 2 "taskhost: $CFG:2: bad value 'soon' for wait_time in [processor]: expected a duration such as 1.0, 250ms or 30s (at most 1d)"
bad_config "[host]" "log_level = loud"
expect "bad log_level" 2 "taskhost: $CFG:2: bad value 'loud' for log_level in [host]: expected error, warn, info or debug"
bad_config "[host]" "map_size = 12XB"
expect "bad size" 2 "taskhost: $CFG:2: bad value '12XB' for map_size in [host]: expected a size such as 64MiB, 1GiB or 4096"
bad_config "[host]" "plugin_dir = ./plugins" "plugin_dir = ./plugins"
expect "duplicate key" 2 "taskhost: $CFG:3: 'plugin_dir' given twice in [host]"
bad_config "[host]" "this line is nonsense"
expect "syntax error" 2 "taskhost: $CFG:2: syntax error: expected [section], key = value, or a comment"
bad_config "[host]" "plugin_dir = ./nowhere"
expect "missing plugin dir" 2 "taskhost: $CFG:2: plugin_dir '$W/nowhere': no such directory"
bad_config "[host]" "data_dir = ./plugins/echo.so/var" "plugin_dir = ./plugins"
expect "data dir that cannot be made" 2 "taskhost: $CFG:2: cannot create data_dir '$W/plugins/echo.so/var': Not a directory"
th -c "$W/none.ini" status 1
expect "missing config file" 2 "taskhost: $W/none.ini: cannot open: No such file or directory"
# what is not a regular file is refused before a byte is read: a FIFO would block
mkfifo "$W/fifo.ini"
for c in "status 1" run; do
	out=$(timeout 20 "$TASKHOST" -c "$W/fifo.ini" $c 2>"$W/stderr")
	rc=$?
	err=$(cat "$W/stderr")
	expect "${c% *} with a FIFO as config" 2 "taskhost: $W/fifo.ini: not a regular file (a FIFO): a config is an INI text file"
done
out=$(timeout 20 "$TASKHOST" -c /dev/zero status 1 2>"$W/stderr")
rc=$?
err=$(cat "$W/stderr")
expect "a device as config" 2 "taskhost: /dev/zero: not a regular file (a character device): a config is an INI text file"
th -c "$W" status 1
expect "a directory as config" 2 "taskhost: $W: cannot open: Is a directory"
{
	echo "[host]"
	head -c 1048576 /dev/zero | tr '\0' ';'
} >"$W/big.ini"
th -c "$W/big.ini" status 1
expect "a config over 1 MiB" 2 "taskhost: $W/big.ini: larger than 1 MiB: too large for a config file"
printf '[host]\nlog_level = info\000\n' >"$W/nul.ini"
th -c "$W/nul.ini" status 1
expect "a config with a NUL byte" 2 "taskhost: $W/nul.ini: holds a NUL byte: a config is an INI text file"
{
	printf '[host]\nplugin_dir = ./plugins\n'
	for i in $(seq 1 33); do printf '[queue q%d]\nstrategy = simple\n' "$i"; done
} >"$W/queues.ini"
th -c "$W/queues.ini" status 1
expect "a 33rd queue section" 2 "taskhost: $W/queues.ini:67: [queue q33]: too many [queue NAME] sections (at most 32)"
head -n 66 "$W/queues.ini" >"$W/queues32.ini"
th -c "$W/queues32.ini" status 1
expect "32 queue sections are fine" 1 "taskhost: unknown job id 1"
(cd "$W/plugins" && "$TASKHOST" status 1 2>"$W/stderr")
rc=$?
err=$(cat "$W/stderr")
expect "default config missing" 2 "taskhost: taskhost.ini: cannot open: No such file or directory (use -c FILE or set TASKHOST_CONFIG)"

# ---- usage errors ----
cp "$FIXTURES/fx_crash.so" "$W/plugins/" # for crash_hang: a job that ignores cancels
write_config -- "kill_grace = 200ms"
th
expect "no command" 2 "taskhost: no command given (try --help)"
th frobnicate
expect "unknown command" 2 "taskhost: unknown command 'frobnicate' (try --help)"
th status
expect "missing argument" 2 "taskhost: status: expected ID (try 'taskhost status --help')"
th status abc
expect "not a job id" 2 "taskhost: 'abc' is not a job id (a whole number from 1)"
th list --limit many
expect "bad --limit" 2 "taskhost: list: bad --limit 'many' (a whole number, 0 for all)"
th list --status finished
expect "bad --status" 2 "taskhost: unknown status 'finished' (expected queued, processing, completed, error, cancelled, delayed, held or cronjob)"
th status 1 --limit 3
expect "option of another command" 2 "taskhost: status: option '--limit' does not apply (try 'taskhost status --help')"
th wait 1 --timeout
expect "option without value" 2 "taskhost: wait: option '--timeout' needs a value"
for c in run add status result error cancel start retry cron pause resume clean list tasks wait stats; do
	th "$c" --help
	if [ "$rc" -eq 0 ] && echo "$out" | grep -q "^usage: taskhost \[-c FILE\] $c"; then
		ok "$c --help"
	else
		not_ok "$c --help (exit $rc)"
	fi
done
th --help
check "--help lists the commands" sh -c 'echo "$1" | grep -q "^  wait    ID\.\.\. \[--timeout S\]"' - "$out"

# ---- adding while no host runs ----
th tasks
check "tasks lists the shipped tasks" sh -c 'for t in echo noop fail sleep; do echo "$1" | grep -q "^$t " || exit 1; done' - "$out"
th tasks --json
check "tasks --json" sh -c 'echo "$1" | grep -q "\"name\": \"sleep\""' - "$out"
th add echo hello
expect "add" 0
same "first id" "$out" 1
th add "bad name" x
expect "add with a bad task name" 2 "taskhost: add: bad task name 'bad name': task names are 1 to 255 printable ASCII characters, no spaces"
th add nosuchtask x
expect "add of an unknown task" 1 "taskhost: add: unknown task 'nosuchtask': no plugin in $W/plugins provides it (see 'taskhost tasks')"
th add echo
same "add with empty input" "$out" 2
printf 'a\000b\000\377c' >"$W/binary"
out=$("$TASKHOST" -c "$CFG" add echo - <"$W/binary")
same "binary input from stdin" "$out" 3
head -c 10485760 /dev/urandom >"$W/big"
out=$("$TASKHOST" -c "$CFG" add echo - <"$W/big")
same "10 MiB input" "$out" 4
th add fail "disk on fire"
same "add fail" "$out" 5
th add sleep '{"seconds": 600, "id": 6}' # cancelled below, however slow the steps before
same "add a long job" "$out" 6
th add echo cancel-me
same "add one to cancel" "$out" 7
th add echo -- --json
same "an input that looks like an option goes after --" "$out" 8
th add --json echo x
check "add --json" sh -c 'echo "$1" | grep -q "\"id\": 9"' - "$out"
th add crash_hang
same "add a job that ignores cancels" "$out" 10
th status 1
same "queued until a host runs" "$out" queued
th status 999
expect "status of an unknown id" 1 "taskhost: unknown job id 999"
th result 999
expect "result of an unknown id" 1 "taskhost: unknown job id 999"
th error 999
expect "error of an unknown id" 1 "taskhost: unknown job id 999"
th cancel 999
expect "cancel of an unknown id" 1 "taskhost: unknown job id 999"
th wait 999
expect "wait for an unknown id" 1 "taskhost: unknown job id 999"
th result 1
expect "result of a queued job" 1 "taskhost: job 1 has no result: it is queued"
th cancel 7
same "cancel a queued job" "$out" "job 7 cancelled"
th status 7
same "cancelled" "$out" cancelled
th cancel 7
expect "cancel twice" 1 "taskhost: cannot cancel job 7: it is cancelled, and a finished job cannot be cancelled"

# ---- a host runs them ----
start_host
th wait 1 2 3 4 --timeout 60
expect "wait for completed jobs" 0
th result 1
same "result" "$out" hello
th result 2
same "empty result" "$out" ""
th wait 8 --timeout 60
th result 8
same "input after --" "$out" "--json"
"$TASKHOST" -c "$CFG" result 3 >"$W/binary.out"
check "binary result equals input, NUL bytes and all" cmp -s "$W/binary" "$W/binary.out"
"$TASKHOST" -c "$CFG" result 4 >"$W/big.out"
check "10 MiB result equals input" cmp -s "$W/big" "$W/big.out"
th result 3 --json
check "binary result as base64 in JSON" sh -c 'echo "$1" | grep -q "\"result_base64\": \"YQBiAP9j\""' - "$out"
th wait 5 --timeout 60
expect "wait for a failing job" 1 "taskhost: job 5 failed: disk on fire"
th error 5
same "error message" "$out" "disk on fire"
th error 1
expect "error of a completed job" 1 "taskhost: job 1 has no error: it is completed"
th result 5
expect "result of a failed job" 1 "taskhost: job 5 has no result: it is error"
th cancel 1
expect "cancel a finished job" 1 "taskhost: cannot cancel job 1: it is completed, and a finished job cannot be cancelled"
wait_until 20 sh -c '[ "$("$1" -c "$2" status 6)" = processing ]' - "$TASKHOST" "$CFG"
th cancel 6
expect "cancel a running job" 0
same "is a request" "$out" "cancel requested: job 6 ends cancelled when its task returns"
th wait 6 --timeout 30
expect "the running job stopped and was cancelled" 1 "taskhost: job 6 was cancelled"
wait_until 20 sh -c '[ "$("$1" -c "$2" status 10)" = processing ]' - "$TASKHOST" "$CFG"
th wait 10 --timeout 0.3
expect "wait times out" 1 "taskhost: wait: timed out after 0.3 s: job 10 is processing"
th wait 7
expect "wait for a cancelled job" 1 "taskhost: job 7 was cancelled"
th wait 5 7 1
expect "several failures make one line" 1 "taskhost: job 5 failed: disk on fire; job 7 was cancelled"
"$TASKHOST" -c "$CFG" status 1 >/dev/full 2>"$W/stderr"
rc=$?
err=$(cat "$W/stderr")
expect "output that cannot be written" 1 "taskhost: status: cannot write the output: No space left on device"
th status 5 --json
check "status --json" sh -c 'echo "$1" | grep -q "\"status\": \"error\""' - "$out"
th list --status error
check "list --status" sh -c '[ "$(echo "$1" | wc -l)" = 2 ] && echo "$1" | grep -q "^5 .*fail .*error"' - "$out"
th list --limit 2
check "list --limit keeps the newest" sh -c 'echo "$1" | tail -n 2 | head -n 1 | grep -q "^9 "' - "$out"
th wait 9 --timeout 60
th list --json
check "list --json" sh -c '[ "$(echo "$1" | grep -c "\"id\":")" = 10 ]' - "$out"
th stats
check "stats counts" sh -c 'echo "$1" | grep -q "^completed *6$" && echo "$1" | grep -q "^processing *1$" && echo "$1" | grep -q "^cancelled *2$"' - "$out"
th stats --json
check "stats --json" sh -c 'echo "$1" | grep -q "\"error\": 1"' - "$out"
th clean
same "clean" "$out" "removed 9 finished jobs"
th status 1
expect "cleaned jobs are gone" 1 "taskhost: unknown job id 1"
th status 10
same "clean keeps running jobs" "$out" processing
stop_now "$HOST_PID"

# ---- plugin directory others could write to ----
chmod 0777 "$W/plugins"
th tasks
expect "world-writable plugin dir" 2 "taskhost: plugin_dir $W/plugins: plugin directory $W/plugins refused: world-writable (anyone could replace the code the host runs; set allow_insecure_plugins = true to load it anyway)"
write_config "allow_insecure_plugins = true"
th tasks
expect "allowed by the config" 0
chmod 0755 "$W/plugins"
write_config
printf 'junk' >"$W/plugins/junk.so"
th tasks
check "tasks names refused plugins" sh -c 'echo "$1" | grep -q "^refused: .*/junk.so: not an ELF file"' - "$out"
rm "$W/plugins/junk.so"

# ---- error messages that are not UTF-8 ----
start_host "$W/utf.log"
th add fail "$(printf 'bad \377 byte')"
id=$out
th wait "$id" --timeout 30
th error "$id" --json
check "a message that is not UTF-8 comes as base64" sh -c 'echo "$1" | grep -q "\"error_base64\": \"YmFkIP8gYnl0ZQ==\""' - "$out"
stop_host "$HOST_PID"

# ---- add --lines: one job per line of stdin ----
mkdir "$W/lines"
write_config "data_dir = ./lines/var" "max_input_size = 8"
printf 'one\n\nthree\nfour' >"$W/in"
th add echo --lines --priority 3 <"$W/in"
expect "add --lines" 0
same "one id per line, a last line without its newline too" "$out" "$(printf '1\n2\n3\n4')"
th status 2 --json
check "an empty line is an empty input" sh -c 'echo "$1" | grep -q "\"input_size\": 0"' - "$out"
th status 4 --json
check "options apply to every line" sh -c 'echo "$1" | grep -q "\"priority\": 3" && echo "$1" | grep -q "\"input_size\": 4"' - "$out"
seq 1 2500 >"$W/in"
th add noop --lines <"$W/in"
same "2,500 lines: ids in order across commits" "$(echo "$out" | wc -l) $(echo "$out" | head -n 1) $(echo "$out" | tail -n 1)" "2500 5 2504"
printf 'ok\n123456789\nnever\n' >"$W/in"
th add echo --lines <"$W/in"
expect "a line over max_input_size stops the add" 1 "taskhost: add: input larger than max_input_size (8 bytes)
taskhost: add: stopped at line 2: 1 job added from the lines before it, none from it on"
same "the lines before it are added" "$out" 2505
th status 2506
expect "nothing from the long line on" 1 "taskhost: unknown job id 2506"
printf 'a\nb\n' >"$W/in"
th add echo --lines --json <"$W/in"
check "add --lines --json" sh -c '[ "$(echo "$1" | tr -d " \n")" = "{\"ids\":[2506,2507]}" ]' - "$out"
th add nosuchtask --lines <"$W/in"
expect "add --lines of an unknown task" 1 "taskhost: add: unknown task 'nosuchtask': no plugin in $W/plugins provides it (see 'taskhost tasks')"
th add nosuchtask --lines </dev/null
expect "an unknown task is an error even without lines" 1 "taskhost: add: unknown task 'nosuchtask': no plugin in $W/plugins provides it (see 'taskhost tasks')"
th add echo --lines <"$W"
expect "stdin that cannot be read" 1 "taskhost: add: cannot read stdin: Is a directory
taskhost: add: stopped at line 1: 0 jobs added from the lines before it, none from it on"
th add echo --lines </dev/null
expect "no lines, no jobs" 0
same "nothing printed" "$out" ""
th add echo x --lines
expect "--lines with an INPUT" 2 "taskhost: add: --lines reads every input from stdin; give no INPUT with it"
th add echo --lines --unique k </dev/null
expect "--lines with --unique" 2 "taskhost: add: --lines reads every input from stdin: --unique would give all its jobs one key"
th status 2508
expect "none of them added a job" 1 "taskhost: unknown job id 2508"

# ---- limits ----
write_config "max_input_size = 1KiB"
th add echo "$(head -c 1025 /dev/zero | tr '\0' x)"
expect "input over max_input_size" 1 "taskhost: add: input larger than max_input_size (1024 bytes)"
head -c 2000 /dev/zero | "$TASKHOST" -c "$CFG" add echo - 2>"$W/stderr" >/dev/null
rc=$?
err=$(cat "$W/stderr")
expect "stdin input over max_input_size" 1 "taskhost: add: input larger than max_input_size (1024 bytes)"

# a full database refuses new jobs and keeps the ones it has
mkdir "$W/full"
write_config "data_dir = ./full/var" "map_size = 1MiB" "max_map_size = 1MiB"
head -c 200000 /dev/urandom >"$W/chunk"
add_until_refused 50
same "database full" "$err" "taskhost: add: database full ($W/full/var reached max_map_size); job not added"
th status "$added"
same "jobs added before it was full are kept" "$out" queued
th status $((added + 1))
expect "the refused job does not exist" 1 "taskhost: unknown job id $((added + 1))"
{
	tr -c x x <"$W/chunk"
	echo
	echo small
} >"$W/in"
th add noop --lines <"$W/in"
expect "add --lines on a full database" 1 "taskhost: add: database full ($W/full/var reached max_map_size); job not added
taskhost: add: stopped at line 1: 0 jobs added from the lines before it, none from it on"
th status $((added + 1))
expect "--lines added nothing" 1 "taskhost: unknown job id $((added + 1))"
# a host on the full database keeps running, and runs what it has
start_host "$W/full.log"
th wait $(seq 1 "$added") --timeout 60
expect "a host on a full database runs the jobs it has" 0
check "it is still running" kill -0 "$HOST_PID"
stop_host "$HOST_PID"

finish
