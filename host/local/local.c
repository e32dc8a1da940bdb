/* The single-machine coordination (th_coord_open_local): wake-ups on futexes in the
 * data dir's `wake` file, the `progress` table, `inflight-*` notes, `host-*` records,
 * pid liveness. */
#include "coord.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "local/local_hosts.h"
#include "local/local_inflight.h"
#include "local/local_progress.h"
#include "local/local_wake.h"

struct th_coord {
	const th_coord_ops *ops; /* &local_ops */
	th_wake *wake;
	th_progress_map *progress;
	char *dir;
};

static void local_close(th_coord *c)
{
	th_wake_close(c->wake);
	th_progress_close(c->progress);
	free(c->dir);
	free(c);
}

static uint32_t local_seq(th_coord *c, enum th_wake_event ev)
{
	return th_wake_seq(c->wake, ev);
}

static void local_notify(th_coord *c, enum th_wake_event ev)
{
	th_wake_notify(c->wake, ev);
}

static void local_wait(th_coord *c, enum th_wake_event ev, uint32_t seq, int64_t timeout_us)
{
	th_wake_wait(c->wake, ev, seq, timeout_us);
}

static void local_progress_set(th_coord *c, uint64_t id, double done)
{
	th_progress_set(c->progress, id, done);
}

static void local_progress_clear(th_coord *c, uint64_t id)
{
	th_progress_clear(c->progress, id);
}

static bool local_progress_get(th_coord *c, uint64_t id, double *done)
{
	return th_progress_get(c->progress, id, done);
}

static enum th_liveness local_alive(th_coord *c, const th_owner *o)
{
	(void)c;
	return th_owner_alive(o);
}

/* A th_notes of this coordination is a th_inflight. */
static int local_notes_open(th_coord *c, const th_owner *self, size_t cap, th_notes **out)
{
	th_inflight *f;
	int rc = th_inflight_open(&f, c->dir, self, cap);
	*out = rc ? NULL : (th_notes *)(void *)f;
	return rc;
}

static void local_notes_close(th_coord *c, th_notes *n, bool keep)
{
	(void)c;
	th_inflight_close((th_inflight *)(void *)n, keep);
}

static void local_notes_add(th_coord *c, th_notes *n, uint64_t id, uint64_t gen)
{
	(void)c;
	th_inflight_add((th_inflight *)(void *)n, id, gen);
}

static size_t local_notes_pairs(th_coord *c, const th_notes *n, const uint64_t **pairs)
{
	(void)c;
	return th_inflight_pairs((const th_inflight *)(const void *)n, pairs);
}

static void local_notes_clear(th_coord *c, th_notes *n)
{
	(void)c;
	th_inflight_clear((th_inflight *)(void *)n);
}

static int local_notes_collect(th_coord *c, const th_owner *self, th_notes_fn fn, void *ud)
{
	return th_inflight_collect(c->dir, self, fn, ud);
}

static int local_host_put(th_coord *c, const th_host_rec *h)
{
	return th_local_host_put(c->dir, h);
}

static int local_host_remove(th_coord *c, const th_owner *o)
{
	return th_local_host_remove(c->dir, o);
}

static int local_host_list(th_coord *c, th_host_rec **out, size_t *n)
{
	return th_local_host_list(c->dir, out, n);
}

static const th_coord_ops local_ops = {
	.name = "local",
	.close = local_close,
	.seq = local_seq,
	.notify = local_notify,
	.wait = local_wait,
	.progress_set = local_progress_set,
	.progress_clear = local_progress_clear,
	.progress_get = local_progress_get,
	.alive = local_alive,
	.notes_open = local_notes_open,
	.notes_close = local_notes_close,
	.notes_add = local_notes_add,
	.notes_pairs = local_notes_pairs,
	.notes_clear = local_notes_clear,
	.notes_collect = local_notes_collect,
	.host_put = local_host_put,
	.host_remove = local_host_remove,
	.host_list = local_host_list,
};

int th_coord_open_local(th_coord **out, const char *dir)
{
	*out = NULL;
	th_coord *c = calloc(1, sizeof(*c));
	if (!c)
		return TH_ENOMEM;
	c->ops = &local_ops;
	int rc = TH_ENOMEM;
	if (!(c->dir = strdup(dir)) || (rc = th_wake_open(&c->wake, dir)) ||
	    (rc = th_progress_open(&c->progress, dir))) {
		local_close(c);
		return rc;
	}
	*out = c;
	return 0;
}
