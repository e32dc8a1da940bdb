/* Claims in flight: the jobs a processor started while their claim was still being
 * committed. A small file per processor in the data dir, written through a shared
 * mapping, so it outlives a host that is killed or crashes (not a power loss): the next
 * host counts the attempt of each job whose claim never reached the store, and a job
 * that crashes its host every time still runs out of attempts. */
#ifndef TH_INFLIGHT_H
#define TH_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "owner.h"

typedef struct th_inflight th_inflight;

/* Creates this processor's file in dir, with room for cap jobs. */
int th_inflight_open(th_inflight **out, const char *dir, const th_owner *owner, size_t cap);
/* Removes the file (nothing is in flight once the processor stopped), unless keep: the
 * noted claims never reached the store, and the file is left for recovery. */
void th_inflight_close(th_inflight *f, bool keep);

/* Notes a job about to start under claim generation gen (at most cap at once). */
void th_inflight_add(th_inflight *f, uint64_t id, uint64_t gen);
/* The (id, gen) pairs noted since the last clear; returns how many. */
size_t th_inflight_pairs(const th_inflight *f, const uint64_t **pairs);
/* The claims noted have committed. */
void th_inflight_clear(th_inflight *f);

/* For each file in dir left by an owner that is dead: fn with its (id, gen) pairs, then
 * the file is removed (kept if fn fails). Files of living owners, of self, and of owners
 * in another pid namespace are left alone. */
typedef int (*th_inflight_fn)(void *ud, const uint64_t *pairs, size_t n);
int th_inflight_collect(const char *dir, const th_owner *self, th_inflight_fn fn, void *ud);

#endif
