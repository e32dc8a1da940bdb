/* Coordination between the hosts and commands that share a store: wake-ups (new work,
 * finished jobs, cancel requests), the progress of running jobs, whether a claim's
 * owner is alive, and the notes of jobs started before their claim committed. `local`
 * (host/local/) is the single-machine implementation that goes with the LMDB backend;
 * a backend on a shared database brings its own (rows, LISTEN/NOTIFY, leases). */
#ifndef TH_COORD_H
#define TH_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "owner.h"
#include "service.h"

typedef struct th_coord th_coord;
typedef struct th_notes th_notes;

/* What a host tells of itself (th_coord_host_put): who it is and what it does. */
typedef struct th_host_rec {
	th_owner owner; /* a backend may keep only its instance and pid */
	th_host_info info;
} th_host_rec;

enum th_wake_event {
	TH_WAKE_ADDED = 0,    /* a job can be claimed: added, resumed, put back */
	TH_WAKE_FINISHED = 1, /* a job finished */
	TH_WAKE_CANCEL = 2    /* a running job was asked to stop */
};

/* Called with the (id, gen) pairs a dead owner noted; non-zero keeps the notes. */
typedef int (*th_notes_fn)(void *ud, const uint64_t *pairs, size_t n);

/* What an implementation provides. A coordination defines struct th_coord for itself,
 * its first member being `const th_coord_ops *ops`. */
typedef struct th_coord_ops {
	const char *name;
	void (*close)(th_coord *c);

	/* wake-ups: read the sequence, look at the store, then wait while it stays put */
	uint32_t (*seq)(th_coord *c, enum th_wake_event ev);
	void (*notify)(th_coord *c, enum th_wake_event ev);
	void (*wait)(th_coord *c, enum th_wake_event ev, uint32_t seq, int64_t timeout_us);

	/* progress of running jobs, 0..1; not durable */
	void (*progress_set)(th_coord *c, uint64_t id, double done);
	void (*progress_clear)(th_coord *c, uint64_t id);
	bool (*progress_get)(th_coord *c, uint64_t id, double *done);

	/* whether the owner of a claim lives: decided only for owners this implementation
	 * can see (local: same machine and pid namespace), TH_OWNER_UNKNOWN otherwise, and
	 * then the lease alone speaks (th_lifecycle_orphaned) */
	enum th_liveness (*alive)(th_coord *c, const th_owner *o);

	/* notes of claims in flight: room for cap at once, kept when the noting owner dies
	 * so that the next host counts their attempts; notes_open may give NULL notes (and
	 * 0) when its store commits claims before their jobs start, so none are needed */
	int (*notes_open)(th_coord *c, const th_owner *self, size_t cap, th_notes **out);
	void (*notes_close)(th_coord *c, th_notes *n, bool keep);
	void (*notes_add)(th_coord *c, th_notes *n, uint64_t id, uint64_t gen);
	size_t (*notes_pairs)(th_coord *c, const th_notes *n, const uint64_t **pairs);
	void (*notes_clear)(th_coord *c, th_notes *n);
	/* fn for the notes of each owner that is dead, then they are dropped */
	int (*notes_collect)(th_coord *c, const th_owner *self, th_notes_fn fn, void *ud);

	/* the hosts' records, one per owner instance: put replaces it (a reader sees the
	 * old record or the new one), remove drops it (none is no error), list gives all
	 * of them in *out (free()) with info.gone false */
	int (*host_put)(th_coord *c, const th_host_rec *h);
	int (*host_remove)(th_coord *c, const th_owner *o);
	int (*host_list)(th_coord *c, th_host_rec **out, size_t *n);
} th_coord_ops;

/* The single-machine coordination for the data dir `dir` (host/local/local.c). */
int th_coord_open_local(th_coord **out, const char *dir);

/* ---- the front: each calls the table of the coordination given (NULL: nothing) ---- */

void th_coord_close(th_coord *c);
uint32_t th_coord_seq(th_coord *c, enum th_wake_event ev);
/* Bumps the sequence and wakes every sleeper on it, wherever it sleeps. */
void th_coord_notify(th_coord *c, enum th_wake_event ev);
/* Sleeps while the sequence still equals seq, at most timeout_us (< 0: no limit).
 * Returns early on a notify; spurious returns are possible. */
void th_coord_wait(th_coord *c, enum th_wake_event ev, uint32_t seq, int64_t timeout_us);
void th_coord_progress_set(th_coord *c, uint64_t id, double done);
void th_coord_progress_clear(th_coord *c, uint64_t id);
/* false when the job reported no progress */
bool th_coord_progress_get(th_coord *c, uint64_t id, double *done);
enum th_liveness th_coord_alive(th_coord *c, const th_owner *o);
/* The same with the coordination as a void *: th_store_recover's alive callback. */
enum th_liveness th_coord_alive_cb(void *coord, const th_owner *o);
int th_coord_notes_open(th_coord *c, const th_owner *self, size_t cap, th_notes **out);
/* Drops the notes (nothing is in flight once the noting processor stopped), unless
 * keep: the noted claims never reached the store, and recovery needs them. */
void th_coord_notes_close(th_coord *c, th_notes *n, bool keep);
void th_coord_notes_add(th_coord *c, th_notes *n, uint64_t id, uint64_t gen);
/* The (id, gen) pairs noted since the last clear; returns how many. */
size_t th_coord_notes_pairs(th_coord *c, const th_notes *n, const uint64_t **pairs);
void th_coord_notes_clear(th_coord *c, th_notes *n);
int th_coord_notes_collect(th_coord *c, const th_owner *self, th_notes_fn fn, void *ud);
/* This host's record, told at every heartbeat; removed when it stops. */
int th_coord_host_put(th_coord *c, const th_host_rec *h);
int th_coord_host_remove(th_coord *c, const th_owner *o);
/* Every host's record, oldest start first, as of now_us: gone when its heartbeat is
 * older than its lease or its owner is dead; one gone for over TH_HOST_FORGET_US is
 * removed and left out. */
#define TH_HOST_FORGET_US (3600 * 1000000LL)
int th_coord_hosts(th_coord *c, int64_t now_us, th_host_info **out, size_t *n);

#endif
