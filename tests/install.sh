#!/bin/sh
# Install check, run by scripts/check after the suites: `make install` into a staging
# dir, then use what was installed as a user would: build the README's tutorial plugin
# with pkg-config and nothing but the header, build a program against libtaskhost, and
# run the installed taskhost with the installed plugins and example config.
#   tests/install.sh BUILD_DIR SOURCE_DIR
set -u
build=$1
src=$2
passed=0
failed=0
ok() {
	passed=$((passed + 1))
	echo "ok - $1"
}
not_ok() {
	failed=$((failed + 1))
	echo "not ok - $1"
}
check() {
	d=$1
	shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}

W=$(mktemp -d "${TMPDIR:-/tmp}/taskhost-install-XXXXXX")
host=""
trap '[ -n "$host" ] && kill -KILL $host 2>/dev/null; rm -rf "$W"' EXIT
stage="$W/stage"
prefix=$(sed -n 's/^prefix = //p' "$build/Makefile")
root="$stage$prefix"

check "make install" make -s -C "$build" install DESTDIR="$stage" >/dev/null
for f in bin/taskhost lib/libtaskhost.so include/taskhost.h include/taskhost/service.h \
	include/taskhost/job.h include/taskhost/error.h lib/pkgconfig/taskhost-sdk.pc \
	lib/pkgconfig/libtaskhost.pc lib/taskhost/plugins/sleep.so lib/taskhost/plugins/echo.so \
	lib/taskhost/plugins/fail.so share/taskhost/taskhost.ini.example; do
	check "installed $f" test -e "$root/$f"
done
check "no libtool archives among the plugins" sh -c '! ls "$1"/lib/taskhost/plugins/*.la 2>/dev/null' - "$root"

export PKG_CONFIG_PATH="$root/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage"
sed -n '/<!-- tutorial: wordcount.c -->/,/^```$/p' "$src/README.md" | sed '1,2d;$d' >"$W/wordcount.c"
check "the README's tutorial plugin is there" grep -q TH_PLUGIN "$W/wordcount.c"
# shellcheck disable=SC2046
check "it builds with pkg-config and the header alone" \
	cc -Wall -Wextra -Werror -shared -fPIC $(pkg-config --cflags taskhost-sdk) \
	"$W/wordcount.c" -o "$W/wordcount.so"
check "it needs no host symbols" sh -c '! nm -D --undefined-only "$1" | grep -q " th_"' - "$W/wordcount.so"

cat >"$W/embed.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <taskhost/service.h>

int main(int argc, char **argv)
{
	th_service_opts o = {.data_dir = argv[1], .plugin_dir = argv[2]};
	th_service *svc;
	uint64_t id;
	bool ran;
	void *out;
	size_t len;
	if (argc != 3 || th_service_open(&svc, &o) ||
	    th_service_add(svc, "echo", "embedded", 8, &id) ||
	    th_service_process_next(svc, 0, &ran) || !ran ||
	    th_service_result(svc, id, &out, &len))
		return 1;
	printf("%.*s\n", (int)len, (char *)out);
	free(out);
	th_service_close(svc);
	return 0;
}
EOF
# shellcheck disable=SC2046
check "a program builds against libtaskhost" \
	cc -Wall -Werror "$W/embed.c" -o "$W/embed" $(pkg-config --cflags --libs libtaskhost)
mkdir "$W/embed-data"
out=$(LD_LIBRARY_PATH="$root/lib" "$W/embed" "$W/embed-data" "$root/lib/taskhost/plugins" 2>/dev/null)
check "and runs a job through it" [ "$out" = embedded ]

# the installed binary, plugins and example config, plus the tutorial plugin
mkdir "$W/user" "$W/user/plugins"
cp "$root"/lib/taskhost/plugins/*.so "$W/wordcount.so" "$W/user/plugins/"
sed 's|^plugin_dir *=.*|plugin_dir = ./plugins|' "$root/share/taskhost/taskhost.ini.example" >"$W/user/taskhost.ini"
th="$root/bin/taskhost"
export TASKHOST_CONFIG="$W/user/taskhost.ini"
"$th" run 2>"$W/host.log" &
host=$!
i=0
until grep -q "host: started" "$W/host.log" || [ $i -gt 1000 ]; do
	i=$((i + 1))
	sleep 0.01
done
check "the installed host starts with the example config" grep -q "host: started" "$W/host.log"
printf 'one two  three\nfour\tfive\n' >"$W/words"
id=$("$th" add wordcount - <"$W/words")
check "the tutorial task runs" "$th" wait "$id" --timeout 30
check "and counts the words" [ "$("$th" result "$id")" = 5 ]
id=$("$th" add wordcount "")
"$th" wait "$id" --timeout 30 2>/dev/null
check "an empty input fails with the tutorial's message" [ "$("$th" error "$id")" = "nothing to count" ]
check "its log line reached the host log" grep -q "info  wordcount job=[0-9]* task=wordcount: counted 5 words in 25 bytes" "$W/host.log"
kill -TERM "$host"
wait "$host"
check "the installed host stops with exit 0" [ $? -eq 0 ]
host=""

echo "RESULT: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
