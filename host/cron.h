/* Cron schedules: when a cron job fires next. Three ways to write one:
 *   "*\/15 9-17 * * mon-fri"  standard 5 fields: minute hour day-of-month month day-of-week,
 *                            with lists, ranges, steps, and month and weekday names
 *                            (day of week 0 or 7 = Sunday); when both day fields are
 *                            restricted, a day matching either fires, as in cron(8)
 *   "minute=0,10 month=1,5"  lovely.remotetask's fields (minute, hour, day, month,
 *                            weekday with 0 = Monday): fields finer than the finest one
 *                            given are pinned to their first value, coarser ones are any
 *   "every 90s"              a fixed interval after the previous fire time
 * All times are UTC. */
#ifndef TH_CRON_H
#define TH_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct th_cron {
	uint64_t minute; /* bit n: minute n */
	uint32_t hour;
	uint32_t dom;    /* bits 1..31 */
	uint16_t month;  /* bits 1..12 */
	uint8_t dow;     /* bits 0..6, 0 = Sunday */
	bool dom_any, dow_any;
	bool days_or;     /* standard cron: both day fields restricted, either matches */
	int64_t every_us; /* an interval schedule when non-zero */
} th_cron;

/* 0, or TH_EINVAL with why in err ("field 2 (hour): 25 is out of 0..23"). */
int th_cron_parse(const char *spec, th_cron *out, char *err, size_t errlen);
/* The first fire time strictly after `after` (microseconds since the epoch), or -1 when
 * the schedule never fires (say, February 30th). */
int64_t th_cron_next(const th_cron *c, int64_t after);

#endif
