#!/bin/sh
# End to end: every command and option given bad input. Each is refused with one line
# that says what is wrong and echoes the input escaped, numbers and times out of range
# included, and none of them adds a job.
. "$(dirname "$0")/lib.sh"

write_config
version=$("$TASKHOST" --help >/dev/null; "$TASKHOST" status --version)

# bad INVOCATION... EXPECTED-STDERR: exit 2 with exactly that line
bad() {
	_want=$1
	shift
	th "$@"
	expect "refused: $(echo "$*" | tr -c '[:print:]' '?')" 2 "$_want"
}

# ---- --version, offered by the usage text ----
th --version
expect "--version before the command" 0
same "prints the version" "$out" "$version"
case $version in "taskhost "[0-9]*) ok "the version is taskhost N" ;; *) not_ok "version '$version'" ;; esac
th --help
check "--help offers --version" sh -c 'echo "$1" | grep -q -- "--version"' - "$out"

# ---- what is echoed back stays one line ----
nl='
'
esc=$(printf 'a\nb\033[31m\377')
bad "taskhost: add: bad task name 'a\\nb\\x1b[31m\\xff': task names are 1 to 255 printable ASCII characters, no spaces" add "$esc" x
bad "taskhost: 'a\\nb\\x1b[31m\\xff' is not a job id (a whole number from 1)" status "$esc"
bad "taskhost: '1\\n2' is not a job id (a whole number from 1)" wait "1${nl}2"
bad "taskhost: cron next: bad schedule 'every\\n1h': expected 5 fields (minute hour day-of-month month day-of-week), got 1" cron next "every${nl}1h"
bad "taskhost: unknown command 'x\\ty' (try --help)" "$(printf 'x\ty')"
bad "taskhost: status: unknown option '--x\\ny' (try 'taskhost status --help')" status 1 "--x${nl}y"
bad "taskhost: add: bad --queue 'q\\nr' (1 to 64 letters, digits, '_', '.', '-')" add echo --queue "q${nl}r"
bad "taskhost: unknown status 'done\\r' (expected queued, processing, completed, error, cancelled, delayed, held or cronjob)" list --status "$(printf 'done\r')"
th add "$(head -c 5000 /dev/zero | tr '\0' y)" x
check "a long input is cut short in the message" sh -c '[ "$(echo "$1" | wc -l)" = 1 ] && [ "${#1}" -lt 2100 ] && echo "$1" | grep -q "\\.\\.\\.$"' - "$err"

# ---- times and durations past their range ----
bad "taskhost: add: bad --at '9300000000000' (a UTC time from 1970 to 9999: 2026-12-01T08:00:00Z, or seconds since 1970)" add echo --at 9300000000000
bad "taskhost: add: bad --at '10000-01-01T00:00:00Z' (a UTC time from 1970 to 9999: 2026-12-01T08:00:00Z, or seconds since 1970)" add echo --at 10000-01-01T00:00:00Z
bad "taskhost: add: bad --at '-5' (a UTC time from 1970 to 9999: 2026-12-01T08:00:00Z, or seconds since 1970)" add echo --at -5
bad "taskhost: add: bad --at '' (a UTC time from 1970 to 9999: 2026-12-01T08:00:00Z, or seconds since 1970)" add echo --at ""
bad "taskhost: add: --delay '99999999999999999999d' is out of range (from 0 to 36500d)" add echo --delay 99999999999999999999d
bad "taskhost: add: --delay '1e300' is out of range (from 0 to 36500d)" add echo --delay 1e300
for v in nan inf -1 1e999 "" 5x; do
	bad "taskhost: add: bad --delay '$v' (a duration: seconds, or 500ms, 30s, 2m, 1h, 7d)" add echo --delay "$v"
done
bad "taskhost: add: --timeout '0' is out of range (from 1ms to 7d; leave it out for the default)" add echo --timeout 0
bad "taskhost: add: --timeout '8d' is out of range (from 1ms to 7d; leave it out for the default)" add echo --timeout 8d
bad "taskhost: add: --backoff '0' is out of range (from 1ms to 1d; leave it out for the default)" add echo --backoff 0
bad "taskhost: cron: --backoff '2d' is out of range (from 1ms to 1d; leave it out for the default)" cron add echo --schedule "every 1h" --backoff 2d
bad "taskhost: clean: --older-than '1e300' is out of range (from 0 to 36500d)" clean --older-than 1e300
bad "taskhost: wait: --timeout '1e300' is out of range (from 0 to 36500d)" wait 1 --timeout 1e300
bad "taskhost: cron: bad --from '99999999999999' (a UTC time from 1970 to 9999: 2026-12-01T08:00:00Z, or seconds since 1970)" cron next "* * * * *" --from 99999999999999

bad "taskhost: add: --at and --delay both say when: give one" add echo --at 2030-01-01T00:00:00Z --delay 5s
bad "taskhost: add: --at and --delay both say when: give one" add echo --delay 5s --at 2030-01-01T00:00:00Z

# ---- whole numbers past their range ----
for v in 0 +1 1.5 18446744073709551616 " 1" "1 " 0x10 ""; do
	bad "taskhost: '$v' is not a job id (a whole number from 1)" status "$v"
done
bad "taskhost: add: bad --priority '99999999999' (a whole number from -1000000 to 1000000)" add echo --priority 99999999999
bad "taskhost: add: bad --max-attempts '0' (a whole number from 1 to 1000)" add echo --max-attempts 0
bad "taskhost: add: bad --max-attempts '1001' (a whole number from 1 to 1000)" add echo --max-attempts 1001
bad "taskhost: cron: bad --count '-1' (a whole number from 1 to 1000)" cron next "* * * * *" --count -1
bad "taskhost: cron: bad --count '1001' (a whole number from 1 to 1000)" cron next "* * * * *" --count 1001
bad "taskhost: list: bad --limit '-1' (a whole number, 0 for all)" list --limit -1
bad "taskhost: list: bad --limit '99999999999999999999' (a whole number, 0 for all)" list --limit 99999999999999999999

# ---- empty strings ----
bad "taskhost: -c: the config path is empty" -c "" status 1
bad "taskhost: add: bad task name '': task names are 1 to 255 printable ASCII characters, no spaces" add "" x
bad "taskhost: add: bad --queue '' (1 to 64 letters, digits, '_', '.', '-')" add echo --queue ""
bad "taskhost: add: bad --unique: a key of 1 to 255 bytes" add echo --unique ""
bad "taskhost: cron add: bad schedule '': expected 5 fields (minute hour day-of-month month day-of-week), got 0" cron add echo --schedule ""
bad "taskhost: bad status list '' (statuses separated by commas)" list --status ""
bad "taskhost: bad queue name '' (1 to 64 letters, digits, '_', '.', '-'; the default queue is 'default')" pause ""

# ---- a schedule that never fires is said to, whatever the command ----
bad "taskhost: cron next: schedule '0 0 30 2 *' never fires" cron next "0 0 30 2 *"
bad "taskhost: cron add: schedule '0 0 30 2 *' never fires" cron add echo --schedule "0 0 30 2 *"
th cron next "0 0 29 2 *" --count 1 --from 2026-01-01T00:00:00Z
expect "February 29th fires" 0
same "in the next leap year" "$out" "2028-02-29T00:00:00.000Z"

th list --json
same "none of the refused commands added a job" "$(echo "$out" | tr -d ' \n')" "[]"

# ---- what is in range is taken, and waits as long as it says ----
th add echo --delay 36500d
same "the longest --delay" "$out" 1
th status 1
same "is delayed, not run at once" "$out" delayed
th add echo --at 9999-12-31T23:59:59Z
th status "$out"
same "the latest --at is delayed" "$out" delayed
th add echo --timeout 7d --backoff 1d
th status "$out" --json
check "the longest --timeout" sh -c 'echo "$1" | grep -q "\"timeout\": 604800"' - "$out"
th cron add echo --schedule "0 0 30 2 *,1"
expect "a schedule that fires on one of its days" 0
th cron update "$out" --schedule "0 0 30 2 *"
expect "cron update to a schedule that never fires" 2 "taskhost: cron update: schedule '0 0 30 2 *' never fires"

finish
