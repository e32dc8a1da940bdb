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
	uint64_t pidns;       /* the pid namespace's inode: pids mean something only in it */
} th_owner;

enum th_liveness {
	TH_OWNER_DEAD = 0,   /* certainly gone */
	TH_OWNER_ALIVE = 1,  /* certainly still there */
	TH_OWNER_UNKNOWN = 2 /* in another pid namespace: only its lease tells */
};

/* The calling process, with a fresh instance id. */
void th_owner_self(th_owner *o);
/* Dead when its machine rebooted since, its pid does not exist or is a zombie, or the
 * pid belongs to a process started at another time; unknown when it lives in another
 * pid namespace. */
enum th_liveness th_owner_alive(const th_owner *o);

#endif
