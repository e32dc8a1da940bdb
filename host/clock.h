/* Time for the host: wall-clock microseconds (replaceable by tests) and a monotonic
 * clock for durations and timeouts. */
#ifndef TH_CLOCK_H
#define TH_CLOCK_H

#include <stdint.h>

/* Microseconds since the Unix epoch, UTC. */
int64_t th_clock_now_us(void);
/* Microseconds on a monotonic clock, for durations only. */
int64_t th_clock_mono_us(void);
/* Microseconds since this machine booted, the same in every process (and not stopped
 * by suspend): for deadlines that other processes check, such as leases. */
int64_t th_clock_boot_us(void);

/* Tests replace the wall clock; NULL restores the real one. */
typedef int64_t (*th_clock_fn)(void *ud);
void th_clock_set_hook(th_clock_fn fn, void *ud);

/* "2026-11-28T04:10:00.123Z" into buf (at least 25 bytes). */
void th_clock_format(int64_t us, char *buf, unsigned size);
/* "2026-12-01T08:00:00Z", "2026-12-01T08:00Z" (UTC) or seconds since the epoch, up to
 * the year 9999, -> microseconds; TH_EINVAL when it is none of these. */
int th_clock_parse(const char *s, int64_t *us);

#endif
