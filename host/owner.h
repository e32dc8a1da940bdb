/* Who holds a claim: a service instance in a process, with the identity of its machine
 * and pid namespace. Liveness by pid is decided only for owners on this machine and in
 * this pid namespace (from /proc); any other owner is judged by its lease alone. */
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
	uint8_t machine_id[16]; /* /etc/machine-id; zeros when unknown (then the boot id
				   tells the machine: LMDB's records keep no machine id,
				   and all their owners share one machine) */
} th_owner;

enum th_liveness {
	TH_OWNER_DEAD = 0,   /* certainly gone */
	TH_OWNER_ALIVE = 1,  /* certainly still there */
	TH_OWNER_UNKNOWN = 2 /* on another machine or in another pid namespace: only its
				lease tells */
};

/* The calling process, with a fresh instance id. */
void th_owner_self(th_owner *o);
/* Unknown when it lives on another machine (both machine ids known and different) or
 * in another pid namespace; else dead when its machine rebooted since, its pid does not
 * exist or is a zombie, or the pid belongs to a process started at another time. */
enum th_liveness th_owner_alive(const th_owner *o);

#endif
