/* Who holds a claim: a service instance in a process on this machine. Enough to tell,
 * from another process, whether that owner is still alive. */
#ifndef TH_OWNER_H
#define TH_OWNER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct th_owner {
	uint64_t instance;    /* random per service instance; never 0 */
	uint32_t pid;
	uint64_t start_ticks; /* the process's start time (/proc/PID/stat), against pid reuse */
	uint8_t boot_id[16];  /* this boot of this machine; zeros when unknown */
} th_owner;

/* The calling process, with a fresh instance id. */
void th_owner_self(th_owner *o);
/* false when the owner is certainly gone: its machine rebooted, its pid does not exist,
 * or the pid now belongs to a process started at another time. */
bool th_owner_alive(const th_owner *o);

#endif
