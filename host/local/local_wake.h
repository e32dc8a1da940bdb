/* Cross-process wake-ups for one data directory: sequence numbers in a small shared
 * file, one per kind of event, that sleepers wait on (futexes). Adds bump
 * TH_WAKE_ADDED, which idle processors sleep on; recorded outcomes bump
 * TH_WAKE_FINISHED, which `taskhost wait` sleeps on. */
#ifndef TH_WAKE_H
#define TH_WAKE_H

#include <stdint.h>

#include "coord.h"

typedef struct th_wake th_wake;

int th_wake_open(th_wake **out, const char *dir);
void th_wake_close(th_wake *w);

uint32_t th_wake_seq(th_wake *w, enum th_wake_event ev);
/* Bumps the sequence and wakes every sleeper on it, in every process. */
void th_wake_notify(th_wake *w, enum th_wake_event ev);
/* Sleeps while the sequence still equals seq, at most timeout_us (< 0: no limit).
 * Returns early on a notify; spurious returns are possible. */
void th_wake_wait(th_wake *w, enum th_wake_event ev, uint32_t seq, int64_t timeout_us);

#endif
