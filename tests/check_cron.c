/* Cron schedules: the published examples of lovely.remotetask's cron jobs, standard
 * 5-field expressions, month ends, leap years, and what is refused. */
#include <check.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cron.h"
#include "error.h"

#define DAY (86400LL * 1000000)
#define HOUR (3600LL * 1000000)
#define MIN (60LL * 1000000)

/* "1970-05-01 00:00" for a fire time */
static const char *when(int64_t us)
{
	static char buf[64];
	time_t t = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M %a", &tm);
	return buf;
}

static int64_t at(int y, int mo, int d, int h, int mi)
{
	struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			.tm_min = mi};
	return (int64_t)timegm(&tm) * 1000000;
}

static th_cron parse(const char *spec)
{
	th_cron c;
	char err[256] = "";
	ck_assert_msg(th_cron_parse(spec, &c, err, sizeof(err)) == 0, "%s: %s", spec, err);
	return c;
}

static void next_is(const char *spec, int64_t after, const char *want)
{
	th_cron c = parse(spec);
	int64_t n = th_cron_next(&c, after);
	ck_assert_msg(n > after, "%s: no fire after %s", spec, when(after));
	ck_assert_str_eq(when(n), want);
}

START_TEST(seed_examples)
{
	/* lovely.remotetask's own examples, from 1970-01-01 00:00 (a Thursday); its
	 * weekdays count from Monday = 0 */
	next_is("minute=0,10", 0, "1970-01-01 00:10 Thu");
	next_is("minute=0,10", 10 * MIN, "1970-01-01 01:00 Thu");
	next_is("hour=2,13", 0, "1970-01-01 02:00 Thu");
	next_is("hour=2,13", 2 * HOUR, "1970-01-01 13:00 Thu");
	next_is("month=1,5,12", 0, "1970-05-01 00:00 Fri");
	next_is("month=1,5,12", at(1970, 5, 1, 0, 0), "1970-12-01 00:00 Tue");
	next_is("weekday=0,2,4,5", 0, "1970-01-02 00:00 Fri");
	next_is("weekday=0,2,4,5", DAY, "1970-01-03 00:00 Sat");
	next_is("weekday=0,2,4,5", 2 * DAY, "1970-01-05 00:00 Mon");
	next_is("dayOfWeek=0,2,4,5", 4 * DAY, "1970-01-07 00:00 Wed");
	next_is("day=1,12,21,30", 0, "1970-01-12 00:00 Mon");
	next_is("dayOfMonth=1,12,21,30", 12 * DAY, "1970-01-21 00:00 Wed");
	next_is("minute=10 day=1,12,21,30", 0, "1970-01-01 00:10 Thu");
	next_is("minute=10 day=1,12,21,30", 10 * MIN, "1970-01-01 01:10 Thu");
	next_is("minute=10 hour=4 day=1,12,21,30", 0, "1970-01-01 04:10 Thu");
	next_is("minute=10 hour=4 day=1,12,21,30", 10 * MIN, "1970-01-01 04:10 Thu");
	/* and its delay: an interval after the previous fire */
	th_cron c = parse("every 10s");
	ck_assert_int_eq(th_cron_next(&c, 0), 10 * 1000000LL);
	ck_assert_int_eq(th_cron_next(&c, 1000000), 11 * 1000000LL);
}
END_TEST

START_TEST(standard_expressions)
{
	int64_t t = at(2026, 11, 28, 4, 9); /* a Saturday */
	next_is("* * * * *", t, "2026-11-28 04:10 Sat");
	next_is("*/15 * * * *", t, "2026-11-28 04:15 Sat");
	next_is("5/15 * * * *", t, "2026-11-28 04:20 Sat");
	next_is("0 9-17/4 * * *", t, "2026-11-28 09:00 Sat");
	next_is("30 8 * * mon-fri", t, "2026-11-30 08:30 Mon");
	next_is("30 8 * * 1-5", t, "2026-11-30 08:30 Mon");
	next_is("0 0 * * 7", t, "2026-11-29 00:00 Sun");
	next_is("0 0 * * sun", t, "2026-11-29 00:00 Sun");
	next_is("0 12 1 jan,jul *", t, "2027-01-01 12:00 Fri");
	next_is("0 0 1,15 * *", t, "2026-12-01 00:00 Tue");
	/* both day fields restricted: either matches, as cron(8) does */
	next_is("0 0 13 * fri", t, "2026-12-04 00:00 Fri");
	next_is("0 0 13 * fri", at(2026, 12, 4, 0, 0), "2026-12-11 00:00 Fri");
	next_is("0 0 13 * fri", at(2026, 12, 11, 0, 0), "2026-12-13 00:00 Sun");
}
END_TEST

START_TEST(month_ends_and_leap_years)
{
	next_is("0 0 31 * *", at(2026, 1, 31, 0, 0), "2026-03-31 00:00 Tue");
	next_is("0 0 30 * *", at(2026, 1, 30, 0, 0), "2026-03-30 00:00 Mon");
	next_is("0 0 29 2 *", at(2025, 1, 1, 0, 0), "2028-02-29 00:00 Tue");
	next_is("0 0 29 2 *", at(2028, 2, 29, 0, 0), "2032-02-29 00:00 Sun");
	next_is("59 23 28-31 2 *", at(2100, 2, 27, 0, 0), "2100-02-28 23:59 Sun");
	next_is("59 23 28-31 2 *", at(2100, 2, 28, 23, 59), "2101-02-28 23:59 Mon");
	next_is("0 0 1 1 *", at(2026, 12, 31, 23, 59), "2027-01-01 00:00 Fri");
	next_is("0 0 29 2 mon", at(2026, 1, 1, 0, 0), "2026-02-02 00:00 Mon"); /* or */
	next_is("day=29 month=2 weekday=0", at(2000, 1, 1, 0, 0), "2016-02-29 00:00 Mon");
	/* never */
	th_cron c = parse("0 0 30 2 *");
	ck_assert_int_eq(th_cron_next(&c, 0), -1);
}
END_TEST

static void refused(const char *spec, const char *why)
{
	th_cron c;
	char err[256] = "";
	ck_assert_int_eq(th_cron_parse(spec, &c, err, sizeof(err)), TH_EINVAL);
	ck_assert_msg(strstr(err, why), "%s: '%s' does not say '%s'", spec, err, why);
}

START_TEST(refusals)
{
	refused("* * * *", "expected 5 fields");
	refused("* * * * * *", "expected 5 fields");
	refused("60 * * * *", "field 1 (minute): 60-60 is out of 0..59");
	refused("* 24 * * *", "field 2 (hour)");
	refused("* * 0 * *", "field 3 (day of month)");
	refused("* * * 13 *", "field 4 (month)");
	refused("* * * * 8", "field 5 (day of week)");
	refused("5-1 * * * *", "5-1 is out of");
	refused("*/0 * * * *", "step 0 is out of");
	refused("x * * * *", "cannot read 'x'");
	refused("1,,2 * * * *", "cannot read");
	refused("* * * smarch *", "cannot read 'smarch'");
	refused("minute=61", "minute: '61' is not a list of numbers in 0..59");
	refused("weekday=7", "weekday");
	refused("minute=1 minute=2", "minute given twice");
	refused("second=5", "expected minute=, hour=");
	refused("every 0s", "expected every DURATION");
	refused("every soon", "expected every DURATION");
}
END_TEST

Suite *cron_suite(void);
Suite *cron_suite(void)
{
	Suite *s = suite_create("cron");
	TCase *tc = tcase_create("schedules");
	tcase_add_test(tc, seed_examples);
	tcase_add_test(tc, standard_expressions);
	tcase_add_test(tc, month_ends_and_leap_years);
	tcase_add_test(tc, refusals);
	suite_add_tcase(s, tc);
	return s;
}
