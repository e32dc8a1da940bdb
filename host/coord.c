/* The coordination front: th_coord_* call the table of the coordination they are
 * given; a NULL coordination does nothing. */
#include "coord.h"

#include <stdlib.h>

#include "error.h"

static const th_coord_ops *ops(th_coord *c)
{
	return *(const th_coord_ops *const *)(const void *)c;
}

void th_coord_close(th_coord *c)
{
	if (c)
		ops(c)->close(c);
}

uint32_t th_coord_seq(th_coord *c, enum th_wake_event ev)
{
	return c ? ops(c)->seq(c, ev) : 0;
}

void th_coord_notify(th_coord *c, enum th_wake_event ev)
{
	if (c)
		ops(c)->notify(c, ev);
}

void th_coord_wait(th_coord *c, enum th_wake_event ev, uint32_t seq, int64_t timeout_us)
{
	if (c)
		ops(c)->wait(c, ev, seq, timeout_us);
}

void th_coord_progress_set(th_coord *c, uint64_t id, double done)
{
	if (c)
		ops(c)->progress_set(c, id, done);
}

void th_coord_progress_clear(th_coord *c, uint64_t id)
{
	if (c)
		ops(c)->progress_clear(c, id);
}

bool th_coord_progress_get(th_coord *c, uint64_t id, double *done)
{
	return c && ops(c)->progress_get(c, id, done);
}

enum th_liveness th_coord_alive(th_coord *c, const th_owner *o)
{
	return c ? ops(c)->alive(c, o) : TH_OWNER_UNKNOWN;
}

enum th_liveness th_coord_alive_cb(void *coord, const th_owner *o)
{
	return th_coord_alive(coord, o);
}

int th_coord_notes_open(th_coord *c, const th_owner *self, size_t cap, th_notes **out)
{
	*out = NULL;
	return c ? ops(c)->notes_open(c, self, cap, out) : TH_EINVAL;
}

void th_coord_notes_close(th_coord *c, th_notes *n, bool keep)
{
	if (c && n)
		ops(c)->notes_close(c, n, keep);
}

void th_coord_notes_add(th_coord *c, th_notes *n, uint64_t id, uint64_t gen)
{
	if (c && n)
		ops(c)->notes_add(c, n, id, gen);
}

size_t th_coord_notes_pairs(th_coord *c, const th_notes *n, const uint64_t **pairs)
{
	*pairs = NULL;
	return c && n ? ops(c)->notes_pairs(c, n, pairs) : 0;
}

void th_coord_notes_clear(th_coord *c, th_notes *n)
{
	if (c && n)
		ops(c)->notes_clear(c, n);
}

int th_coord_notes_collect(th_coord *c, const th_owner *self, th_notes_fn fn, void *ud)
{
	return c ? ops(c)->notes_collect(c, self, fn, ud) : 0;
}

int th_coord_host_put(th_coord *c, const th_host_rec *h)
{
	return c ? ops(c)->host_put(c, h) : 0;
}

int th_coord_host_remove(th_coord *c, const th_owner *o)
{
	return c ? ops(c)->host_remove(c, o) : 0;
}

static int by_start(const void *a, const void *b)
{
	const th_host_info *x = a, *y = b;
	return x->started_us < y->started_us ? -1 : x->started_us > y->started_us;
}

int th_coord_hosts(th_coord *c, int64_t now_us, th_host_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	th_host_rec *recs = NULL;
	size_t nrecs = 0;
	int rc = c ? ops(c)->host_list(c, &recs, &nrecs) : 0;
	if (rc || nrecs == 0) {
		free(recs);
		return rc;
	}
	th_host_info *hosts = malloc(nrecs * sizeof(*hosts));
	if (!hosts) {
		free(recs);
		return TH_ENOMEM;
	}
	for (size_t i = 0; i < nrecs; i++) {
		th_host_info *h = &recs[i].info;
		int64_t silent = now_us - h->heartbeat_us;
		h->gone = silent > h->lease_us || th_coord_alive(c, &recs[i].owner) == TH_OWNER_DEAD;
		if (h->gone && silent > TH_HOST_FORGET_US)
			ops(c)->host_remove(c, &recs[i].owner);
		else
			hosts[(*n)++] = *h;
	}
	free(recs);
	qsort(hosts, *n, sizeof(*hosts), by_start);
	*out = hosts;
	return 0;
}
