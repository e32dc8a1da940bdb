/* Wall and monotonic clocks.
 * The wall clock goes through a hook so schedule tests can move time by hand. */
#include "clock.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error.h"

#define TIME_MAX_S 253402300799LL /* 9999-12-31T23:59:59Z */

static _Atomic(th_clock_fn) hook_fn;
static void *_Atomic hook_ud;

static int64_t read_clock(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t th_clock_now_us(void)
{
	th_clock_fn fn = atomic_load(&hook_fn);
	if (fn)
		return fn(atomic_load(&hook_ud));
	return read_clock(CLOCK_REALTIME);
}

int64_t th_clock_mono_us(void)
{
	return read_clock(CLOCK_MONOTONIC);
}

int64_t th_clock_boot_us(void)
{
	return read_clock(CLOCK_BOOTTIME);
}

void th_clock_set_hook(th_clock_fn fn, void *ud)
{
	atomic_store(&hook_ud, ud);
	atomic_store(&hook_fn, fn);
}

void th_clock_format(int64_t us, char *buf, unsigned size)
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (int)(us % 1000000 / 1000));
}

int th_clock_parse(const char *s, int64_t *us)
{
	struct tm tm = {0};
	const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (!end || *end) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%dT%H:%MZ", &tm);
	}
	long long v;
	if (end && !*end) {
		v = (long long)timegm(&tm);
	} else {
		char *e;
		errno = 0;
		v = s[0] >= '0' && s[0] <= '9' ? strtoll(s, &e, 10) : -1;
		if (errno || v < 0 || *e)
			return TH_EINVAL;
	}
	if (v < 0 || v > TIME_MAX_S)
		return TH_EINVAL;
	*us = (int64_t)v * 1000000;
	return 0;
}
