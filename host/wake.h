/* Cross-process wake-ups for one data directory: a sequence number in a small shared
 * file that every add bumps, and that idle processors sleep on (a futex). */
#ifndef TH_WAKE_H
#define TH_WAKE_H

#include <stdint.h>

typedef struct th_wake th_wake;

int th_wake_open(th_wake **out, const char *dir);
void th_wake_close(th_wake *w);

uint32_t th_wake_seq(th_wake *w);
/* Bumps the sequence and wakes every sleeper, in every process. */
void th_wake_notify(th_wake *w);
/* Sleeps while the sequence still equals seq, at most timeout_us (< 0: no limit).
 * Returns early on a notify; spurious returns are possible. */
void th_wake_wait(th_wake *w, uint32_t seq, int64_t timeout_us);

#endif
