/* Parsing cron schedules and finding their next fire time, in UTC.
 * The search steps a month, a day, an hour or a minute at a time, so it is quick and
 * plainly right at month ends and in leap years. */
#include "cron.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "error.h"

#define MINUTE_US 60000000LL
#define SEARCH_YEARS 40 /* the rarest match, Feb 29 on a given weekday, recurs within 28 */

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
					  "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct field {
	const char *name;
	int lo, hi;
	const char *const *names; /* value lo + i for names[i] */
	int nnames;
};

static const struct field fields[5] = {
	{"minute", 0, 59, NULL, 0},
	{"hour", 0, 23, NULL, 0},
	{"day of month", 1, 31, NULL, 0},
	{"month", 1, 12, month_names, 12},
	{"day of week", 0, 7, day_names, 7},
};

/* A number or a name at *s; advances *s. -1 when there is neither. */
static int value(const struct field *f, const char **s)
{
	if (isdigit((unsigned char)**s)) {
		char *end;
		long v = strtol(*s, &end, 10);
		*s = end;
		return v > 1000 ? 1000 : (int)v;
	}
	for (int i = 0; i < f->nnames; i++) {
		if (strncasecmp(*s, f->names[i], 3) == 0) {
			*s += 3;
			return f->lo + i;
		}
	}
	return -1;
}

/* One field of a standard expression ("1-5,10,*\/15") into bits. */
static int parse_field(const struct field *f, int index, const char *text, uint64_t *bits,
		       bool *any, char *err, size_t errlen)
{
	*bits = 0;
	*any = strcmp(text, "*") == 0;
	const char *s = text;
	for (;;) {
		int a, b, step = 1;
		if (*s == '*') {
			a = f->lo;
			b = f->hi;
			s++;
		} else {
			if ((a = value(f, &s)) < 0)
				goto bad;
			b = a;
			if (*s == '-') {
				s++;
				if ((b = value(f, &s)) < 0)
					goto bad;
			}
		}
		if (*s == '/') {
			s++;
			if (!isdigit((unsigned char)*s))
				goto bad;
			step = (int)strtol(s, (char **)&s, 10);
			if (step < 1 || step > f->hi) {
				snprintf(err, errlen, "field %d (%s): step %d is out of 1..%d",
					 index + 1, f->name, step, f->hi);
				return TH_EINVAL;
			}
			if (a == b && text[0] != '*')
				b = f->hi; /* "5/15": from 5 on */
		}
		if (a < f->lo || a > f->hi || b < f->lo || b > f->hi || a > b) {
			snprintf(err, errlen, "field %d (%s): %d-%d is out of %d..%d", index + 1,
				 f->name, a, b, f->lo, f->hi);
			return TH_EINVAL;
		}
		for (int v = a; v <= b; v += step)
			*bits |= 1ull << v;
		if (*s == 0)
			return 0;
		if (*s != ',')
			goto bad;
		s++;
	}
bad:
	snprintf(err, errlen, "field %d (%s): cannot read '%s'", index + 1, f->name, text);
	return TH_EINVAL;
}

static int parse_standard(const char *spec, th_cron *c, char *err, size_t errlen)
{
	char buf[256], *tok[6], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", spec);
	int n = 0;
	for (char *t = strtok_r(buf, " \t", &save); t && n < 6; t = strtok_r(NULL, " \t", &save))
		tok[n++] = t;
	if (n != 5) {
		snprintf(err, errlen, "expected 5 fields (minute hour day-of-month month "
			 "day-of-week), got %d", n);
		return TH_EINVAL;
	}
	uint64_t bits[5];
	bool any[5];
	for (int i = 0; i < 5; i++)
		if (parse_field(&fields[i], i, tok[i], &bits[i], &any[i], err, errlen))
			return TH_EINVAL;
	c->minute = bits[0];
	c->hour = (uint32_t)bits[1];
	c->dom = (uint32_t)bits[2];
	c->month = (uint16_t)bits[3];
	c->dow = (uint8_t)((bits[4] | bits[4] >> 7) & 0x7f); /* 7 is Sunday too */
	c->dom_any = any[2];
	c->dow_any = any[4];
	c->days_or = !any[2] && !any[4];
	return 0;
}

/* lovely.remotetask's fields: "minute=0,10 hour=2 day=1,12 month=5 weekday=0,2" */
static int parse_fields(const char *spec, th_cron *c, char *err, size_t errlen)
{
	static const struct {
		const char *key;
		int lo, hi;
	} keys[5] = {{"minute", 0, 59}, {"hour", 0, 23}, {"day", 1, 31}, {"month", 1, 12},
		     {"weekday", 0, 6}};
	uint64_t bits[5] = {0};
	char buf[256], *save = NULL;
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(t, '=');
		int k = -1;
		/* lovely.remotetask's own names work too */
		static const char *const alias[5] = {NULL, NULL, "dayOfMonth", NULL, "dayOfWeek"};
		for (int i = 0; eq && i < 5; i++) {
			size_t kl = (size_t)(eq - t);
			if ((kl == strlen(keys[i].key) && strncmp(t, keys[i].key, kl) == 0) ||
			    (alias[i] && kl == strlen(alias[i]) && strncmp(t, alias[i], kl) == 0))
				k = i;
		}
		if (k < 0) {
			snprintf(err, errlen, "'%s': expected minute=, hour=, day=, month= or "
				 "weekday= with a list of numbers", t);
			return TH_EINVAL;
		}
		if (bits[k]) {
			snprintf(err, errlen, "%s given twice", keys[k].key);
			return TH_EINVAL;
		}
		for (char *v = eq + 1;;) {
			char *end;
			long n = isdigit((unsigned char)*v) ? strtol(v, &end, 10) : -1;
			if (n < keys[k].lo || n > keys[k].hi) {
				snprintf(err, errlen, "%s: '%s' is not a list of numbers in %d..%d",
					 keys[k].key, eq + 1, keys[k].lo, keys[k].hi);
				return TH_EINVAL;
			}
			bits[k] |= 1ull << n;
			if (*end == 0)
				break;
			if (*end != ',') {
				snprintf(err, errlen, "%s: '%s' is not a list of numbers in %d..%d",
					 keys[k].key, eq + 1, keys[k].lo, keys[k].hi);
				return TH_EINVAL;
			}
			v = end + 1;
		}
	}
	/* the finest field given: finer ones are pinned to their first value */
	int finest = -1;
	for (int i = 0; i < 4; i++)
		if (bits[i] && finest < 0)
			finest = i;
	if (bits[4] && (finest < 0 || finest > 2))
		finest = 2; /* weekday ranks with day */
	if (finest < 0) {
		snprintf(err, errlen, "no field given");
		return TH_EINVAL;
	}
	for (int i = 0; i < finest; i++)
		if (!bits[i])
			bits[i] = 1ull << keys[i].lo;
	c->minute = bits[0] ? bits[0] : (1ull << 60) - 1;
	c->hour = (uint32_t)(bits[1] ? bits[1] : (1u << 24) - 1);
	c->dom_any = !bits[2];
	c->dom = (uint32_t)(bits[2] ? bits[2] : 0xfffffffeu);
	c->month = (uint16_t)(bits[3] ? bits[3] : 0x1ffe);
	c->dow_any = !bits[4];
	/* weekday 0 is Monday here, Sunday in struct tm */
	uint8_t dow = 0;
	for (int d = 0; d < 7; d++)
		if (bits[4] >> d & 1)
			dow |= (uint8_t)(1u << ((d + 1) % 7));
	c->dow = bits[4] ? dow : 0x7f;
	c->days_or = false; /* both given: both must match */
	return 0;
}

int th_cron_parse(const char *spec, th_cron *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	while (*spec == ' ')
		spec++;
	if (strncmp(spec, "every ", 6) == 0) {
		double s;
		if (th_parse_duration(spec + 6, &s) || s < 1 || s > 366 * 86400.0) {
			snprintf(err, errlen, "'%s': expected every DURATION, from 1s to 366d", spec);
			return TH_EINVAL;
		}
		out->every_us = (int64_t)(s * 1e6);
		return 0;
	}
	if (strchr(spec, '='))
		return parse_fields(spec, out, err, errlen);
	return parse_standard(spec, out, err, errlen);
}

static bool day_matches(const th_cron *c, const struct tm *tm)
{
	bool dom = c->dom >> tm->tm_mday & 1, dow = c->dow >> tm->tm_wday & 1;
	if (c->days_or)
		return dom || dow;
	return dom && dow;
}

int64_t th_cron_next(const th_cron *c, int64_t after)
{
	if (c->every_us)
		return after + c->every_us;
	/* the next whole minute strictly after `after` */
	time_t t = (time_t)((after >= 0 ? after / MINUTE_US : (after - MINUTE_US + 1) / MINUTE_US) + 1) * 60;
	time_t limit = t + (time_t)SEARCH_YEARS * 366 * 86400;
	while (t < limit) {
		struct tm tm;
		gmtime_r(&t, &tm);
		if (!(c->month >> (tm.tm_mon + 1) & 1)) {
			tm.tm_mon++; /* the first of the next month */
			tm.tm_mday = 1;
			tm.tm_hour = tm.tm_min = 0;
		} else if (!day_matches(c, &tm)) {
			tm.tm_mday++;
			tm.tm_hour = tm.tm_min = 0;
		} else if (!(c->hour >> tm.tm_hour & 1)) {
			tm.tm_hour++;
			tm.tm_min = 0;
		} else if (!(c->minute >> tm.tm_min & 1)) {
			tm.tm_min++;
		} else {
			return (int64_t)t * 1000000;
		}
		tm.tm_sec = 0;
		t = timegm(&tm); /* normalises the day, month and year carried over */
	}
	return -1;
}
