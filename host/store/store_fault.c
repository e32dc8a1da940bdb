/* A store that fails chosen operations and forwards the others (store_fault.h): what
 * tests use to see how the host meets a store that refuses. */
#include "store/store_fault.h"

#include <stdlib.h>

#include "error.h"

struct th_store {
	const th_store_ops *ops; /* &fault_ops */
	th_store *inner;
	th_store_fault_fn fn;
	void *ud;
};

/* Every operation: fails when fn says so, else is the inner store's. */
static int fault_add(th_store *st, const th_store_new *jobs, size_t n, uint64_t *ids,
		bool *existed)
{
	int rc = st->fn(st->ud, "add");
	return rc ? rc : th_store_add(st->inner, jobs, n, ids, existed);
}

static int fault_cycle(th_store *st, th_cycle *c)
{
	int rc = st->fn(st->ud, "cycle");
	if (rc) { /* as a failed commit leaves it: nothing claimed or started */
		c->nclaimed = c->started = c->lost = c->stale = c->promoted = 0;
		return rc;
	}
	return th_store_cycle(st->inner, c);
}

static int fault_confirm(th_store *st, const th_owner *owner, int64_t lease_us,
		const uint64_t *pairs, size_t n, bool *lost)
{
	int rc = st->fn(st->ud, "confirm");
	return rc ? rc : th_store_confirm(st->inner, owner, lease_us, pairs, n, lost);
}

static int fault_renew(th_store *st, const th_owner *owner, int64_t lease_us, size_t *n)
{
	int rc = st->fn(st->ud, "renew");
	return rc ? rc : th_store_renew(st->inner, owner, lease_us, n);
}

static int fault_recover(th_store *st, const th_owner *self, th_store_alive_fn alive,
			 void *ud, size_t *n, th_recovered *by)
{
	int rc = st->fn(st->ud, "recover");
	return rc ? rc : th_store_recover(st->inner, self, alive, ud, n, by);
}

static int fault_coord_open(th_store *st, struct th_coord **out)
{
	return th_store_coord_open(st->inner, out);
}

static int fault_recover_started(th_store *st, const uint64_t *pairs, size_t n, size_t *done)
{
	int rc = st->fn(st->ud, "recover_started");
	return rc ? rc : th_store_recover_started(st->inner, pairs, n, done);
}

static int fault_cancel(th_store *st, uint64_t id)
{
	int rc = st->fn(st->ud, "cancel");
	return rc ? rc : th_store_cancel(st->inner, id);
}

static int fault_start(th_store *st, uint64_t id)
{
	int rc = st->fn(st->ud, "start");
	return rc ? rc : th_store_start(st->inner, id);
}

static int fault_retry(th_store *st, uint64_t id)
{
	int rc = st->fn(st->ud, "retry");
	return rc ? rc : th_store_retry(st->inner, id);
}

static int fault_change(th_store *st, th_change what, const uint64_t *ids, size_t n,
			int *rcs)
{
	int rc = st->fn(st->ud, "change");
	return rc ? rc : th_store_change(st->inner, what, ids, n, rcs);
}

static int fault_cron_update(th_store *st, uint64_t id, const char *spec, int catchup)
{
	int rc = st->fn(st->ud, "cron_update");
	return rc ? rc : th_store_cron_update(st->inner, id, spec, catchup);
}

static int fault_cron_pause(th_store *st, uint64_t id, bool paused)
{
	int rc = st->fn(st->ud, "cron_pause");
	return rc ? rc : th_store_cron_pause(st->inner, id, paused);
}

static int fault_pause_queue(th_store *st, const char *queue, bool paused)
{
	int rc = st->fn(st->ud, "pause_queue");
	return rc ? rc : th_store_pause_queue(st->inner, queue, paused);
}

static int fault_clean(th_store *st, int64_t before, uint64_t *removed)
{
	int rc = st->fn(st->ud, "clean");
	return rc ? rc : th_store_clean(st->inner, before, removed);
}

static int fault_get(th_store *st, uint64_t id, th_job *out)
{
	int rc = st->fn(st->ud, "get");
	return rc ? rc : th_store_get(st->inner, id, out);
}

static int fault_blob(th_store *st, uint64_t id, enum th_blob kind, void **data, size_t *len)
{
	int rc = st->fn(st->ud, "blob");
	return rc ? rc : th_store_blob(st->inner, id, kind, data, len);
}

static int fault_list(th_store *st, unsigned mask, uint64_t from, bool reverse,
		th_store_list_fn fn, void *ud)
{
	int rc = st->fn(st->ud, "list");
	return rc ? rc : th_store_list(st->inner, mask, from, reverse, fn, ud);
}

static int fault_count(th_store *st, uint64_t counts[TH_JOB_STATUS_MAX + 1])
{
	int rc = st->fn(st->ud, "count");
	return rc ? rc : th_store_count(st->inner, counts);
}

static int fault_count_queues(th_store *st, th_store_queue_fn fn, void *ud)
{
	int rc = st->fn(st->ud, "count_queues");
	return rc ? rc : th_store_count_queues(st->inner, fn, ud);
}

static int fault_finished_since(th_store *st, int64_t since, uint64_t *n)
{
	int rc = st->fn(st->ud, "finished_since");
	return rc ? rc : th_store_finished_since(st->inner, since, n);
}

static int fault_minutes(th_store *st, const char *queue, int64_t first, size_t n,
			 th_minute *out)
{
	int rc = st->fn(st->ud, "minutes");
	return rc ? rc : th_store_minutes(st->inner, queue, (first + (int64_t)n - 1) * 60, n, out);
}

static int fault_pending(th_store *st, uint64_t *queued, uint64_t *processing)
{
	int rc = st->fn(st->ud, "pending");
	return rc ? rc : th_store_pending(st->inner, queued, processing);
}

static int fault_peek(th_store *st, const char *queue, bool *ready, int64_t *next_due)
{
	int rc = st->fn(st->ud, "peek");
	return rc ? rc : th_store_peek(st->inner, queue, ready, next_due);
}

static int fault_queue_paused(th_store *st, const char *queue, bool *paused)
{
	int rc = st->fn(st->ud, "queue_paused");
	return rc ? rc : th_store_queue_paused(st->inner, queue, paused);
}

static int fault_check(th_store *st, th_store_problem_fn fn, void *ud, uint64_t *jobs,
		       uint64_t *problems)
{
	int rc = st->fn(st->ud, "check");
	return rc ? rc : th_store_check(st->inner, fn, ud, jobs, problems);
}

static int fault_cancel_requested(th_store *st, const uint64_t *ids, size_t n, bool *requested)
{
	int rc = st->fn(st->ud, "cancel_requested");
	return rc ? rc : th_store_cancel_requested(st->inner, ids, n, requested);
}

static void fault_close(th_store *st)
{
	th_store_close(st->inner);
	free(st);
}

static const th_store_ops fault_ops = {
	.name = "fault",
	.scheme = "",
	.close = fault_close,
	.coord_open = fault_coord_open,
	.add = fault_add,
	.cycle = fault_cycle,
	.confirm = fault_confirm,
	.renew = fault_renew,
	.recover = fault_recover,
	.recover_started = fault_recover_started,
	.cancel = fault_cancel,
	.start = fault_start,
	.retry = fault_retry,
	.change = fault_change,
	.cron_update = fault_cron_update,
	.cron_pause = fault_cron_pause,
	.pause_queue = fault_pause_queue,
	.clean = fault_clean,
	.get = fault_get,
	.blob = fault_blob,
	.list = fault_list,
	.count = fault_count,
	.count_queues = fault_count_queues,
	.finished_since = fault_finished_since,
	.minutes = fault_minutes,
	.pending = fault_pending,
	.peek = fault_peek,
	.queue_paused = fault_queue_paused,
	.cancel_requested = fault_cancel_requested,
	.check = fault_check,
};

int th_store_fault_open(th_store **out, th_store *inner, th_store_fault_fn fn, void *ud)
{
	*out = NULL;
	th_store *st = calloc(1, sizeof(*st));
	if (!st)
		return TH_ENOMEM;
	*st = (th_store){&fault_ops, inner, fn, ud};
	*out = st;
	return 0;
}
