/* LMDB-backed job store: jobs, blobs, the ready index and the running index.
 * Write transactions go through one helper that grows the map on MDB_MAP_FULL. */
#include "store.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "record.h"

#define FORMAT_VERSION 1
#define DEFAULT_MAP (64ull << 20)
#define DEFAULT_MAX_MAP (16ull << 30)
#define CLEAN_CHUNK 10000
#define READY_KEY_MAX (TH_QUEUE_NAME_MAX + 1 + 4 + 8)

struct th_store {
	MDB_env *env;
	MDB_dbi meta, jobs, blobs, ready, running;
	uint64_t map_size, max_map_size;
	/* Held shared by every transaction and exclusively to change the map size, which
	 * LMDB allows only while this process has no transaction open. */
	pthread_rwlock_t resize;
	_Atomic(th_store_commit_hook) hook;
	void *_Atomic hook_ud;
};

/* ---- keys ---- */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

/* Ready keys sort by queue, then higher priority first, then id (the order added). */
static size_t ready_key(uint8_t *k, const char *queue, int32_t prio, uint64_t id)
{
	size_t qn = queue ? strnlen(queue, TH_QUEUE_NAME_MAX) : 0;
	if (qn)
		memcpy(k, queue, qn);
	k[qn] = 0;
	put_be32(k + qn + 1, (uint32_t)((int64_t)INT32_MAX - prio));
	put_be64(k + qn + 5, id);
	return qn + 13;
}

static size_t queue_prefix(uint8_t *k, const char *queue)
{
	size_t qn = queue ? strnlen(queue, TH_QUEUE_NAME_MAX) : 0;
	if (qn)
		memcpy(k, queue, qn);
	k[qn] = 0;
	return qn + 1;
}

/* ---- errors and transactions ---- */

static int map_err(int rc, const char *what)
{
	switch (rc) {
	case MDB_SUCCESS: return 0;
	case MDB_MAP_FULL: return TH_EFULL;
	case MDB_NOTFOUND: return TH_ENOTFOUND;
	case ENOMEM: return TH_ENOMEM;
	}
	if (rc < 0 && rc >= TH_ESYS) /* already one of ours */
		return rc;
	th_log_error("store", "%s: %s", what, mdb_strerror(rc));
	return TH_EIO;
}

/* Another process grew the map: adopt its size. */
static int adopt_map_size(th_store *st)
{
	pthread_rwlock_wrlock(&st->resize);
	int rc = mdb_env_set_mapsize(st->env, 0);
	if (rc == 0) {
		MDB_envinfo info;
		mdb_env_info(st->env, &info);
		st->map_size = info.me_mapsize;
	}
	pthread_rwlock_unlock(&st->resize);
	return rc;
}

static int grow_map(th_store *st, uint64_t seen)
{
	int rc = 0, dead = 0;
	mdb_reader_check(st->env, &dead); /* their pinned pages may be all that is missing */
	pthread_rwlock_wrlock(&st->resize);
	if (st->map_size == seen) { /* else another thread grew it already */
		if (st->map_size >= st->max_map_size) {
			rc = MDB_MAP_FULL;
		} else {
			uint64_t next = st->map_size * 2;
			if (next > st->max_map_size)
				next = st->max_map_size;
			rc = mdb_env_set_mapsize(st->env, next);
			if (rc == 0) {
				th_log_info("store", "database grown to %llu MiB",
					    (unsigned long long)(next >> 20));
				st->map_size = next;
			}
		}
	}
	pthread_rwlock_unlock(&st->resize);
	return rc;
}

static int txn_begin(th_store *st, unsigned flags, MDB_txn **txn)
{
	for (;;) {
		pthread_rwlock_rdlock(&st->resize);
		int rc = mdb_txn_begin(st->env, NULL, flags, txn);
		if (rc != MDB_MAP_RESIZED) {
			if (rc)
				pthread_rwlock_unlock(&st->resize);
			return rc;
		}
		pthread_rwlock_unlock(&st->resize);
		if ((rc = adopt_map_size(st)))
			return rc;
	}
}

static void txn_end(th_store *st, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->resize);
}

typedef int (*txn_fn)(th_store *st, MDB_txn *txn, void *ud);

/* Runs fn in a write transaction and commits. fn may run again (after the map grew),
 * so it must reset whatever it returns through ud before filling it. */
static int write_txn(th_store *st, const char *what, txn_fn fn, void *ud)
{
	for (;;) {
		MDB_txn *txn;
		int rc = txn_begin(st, 0, &txn);
		if (rc)
			return map_err(rc, what);
		uint64_t seen = st->map_size;
		rc = fn(st, txn, ud);
		th_store_commit_hook hook = atomic_load(&st->hook);
		if (rc == 0 && hook)
			rc = hook(atomic_load(&st->hook_ud), what);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		pthread_rwlock_unlock(&st->resize);
		if (rc == MDB_MAP_FULL) {
			int grc = grow_map(st, seen);
			if (grc == 0)
				continue;
			if (grc != MDB_MAP_FULL)
				return map_err(grc, "growing the map");
		}
		return map_err(rc, what);
	}
}

/* ---- records ---- */

static int get_job(th_store *st, MDB_txn *txn, uint64_t id, th_job *job)
{
	uint8_t k[8];
	put_be64(k, id);
	MDB_val key = {8, k}, val;
	int rc = mdb_get(txn, st->jobs, &key, &val);
	if (rc)
		return rc;
	if (th_record_decode(val.mv_data, val.mv_size, job)) {
		th_log_error("store", "job %llu: damaged record", (unsigned long long)id);
		return TH_EFORMAT;
	}
	return 0;
}

static int put_job(th_store *st, MDB_txn *txn, const th_job *job, unsigned flags)
{
	uint8_t k[8], buf[TH_RECORD_MAX];
	put_be64(k, job->id);
	MDB_val key = {8, k}, val = {th_record_encode(job, buf), buf};
	return mdb_put(txn, st->jobs, &key, &val, flags);
}

static int put_blob(th_store *st, MDB_txn *txn, uint64_t id, enum th_blob kind,
		    const void *data, size_t len)
{
	uint8_t k[9];
	put_be64(k, id);
	k[8] = (uint8_t)kind;
	MDB_val key = {9, k}, val = {len, (void *)data};
	return mdb_put(txn, st->blobs, &key, &val, 0);
}

static int del_blobs(th_store *st, MDB_txn *txn, uint64_t id)
{
	uint8_t k[9];
	put_be64(k, id);
	for (int kind = TH_BLOB_INPUT; kind <= TH_BLOB_ERROR; kind++) {
		k[8] = (uint8_t)kind;
		MDB_val key = {9, k};
		int rc = mdb_del(txn, st->blobs, &key, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}

static int put_ready(th_store *st, MDB_txn *txn, const th_job *job)
{
	uint8_t k[READY_KEY_MAX];
	MDB_val key = {ready_key(k, job->queue, job->priority, job->id), k}, val = {0, ""};
	return mdb_put(txn, st->ready, &key, &val, 0);
}

static int del_ready(th_store *st, MDB_txn *txn, const th_job *job)
{
	uint8_t k[READY_KEY_MAX];
	MDB_val key = {ready_key(k, job->queue, job->priority, job->id), k};
	return mdb_del(txn, st->ready, &key, NULL);
}

/* A running entry: who holds the job, under which claim, until when. */
#define RUNNING_LEN (8 + 4 + 8 + 16 + 8 + 8 + 8)

struct running {
	th_owner owner;
	uint64_t gen;
	int64_t lease_until; /* th_clock_boot_us() */
};

static int put_running(th_store *st, MDB_txn *txn, uint64_t id, const struct running *r)
{
	uint8_t k[8], v[RUNNING_LEN];
	put_be64(k, id);
	put_be64(v, r->owner.instance);
	put_be32(v + 8, r->owner.pid);
	put_be64(v + 12, r->owner.start_ticks);
	memcpy(v + 20, r->owner.boot_id, 16);
	put_be64(v + 36, r->gen);
	put_be64(v + 44, (uint64_t)r->lease_until);
	put_be64(v + 52, r->owner.pidns);
	MDB_val key = {8, k}, val = {sizeof(v), v};
	return mdb_put(txn, st->running, &key, &val, 0);
}

static int get_running(const MDB_val *val, struct running *r)
{
	const uint8_t *v = val->mv_data;
	if (val->mv_size != RUNNING_LEN)
		return TH_EFORMAT;
	r->owner.instance = get_be64(v);
	r->owner.pid = get_be32(v + 8);
	r->owner.start_ticks = get_be64(v + 12);
	memcpy(r->owner.boot_id, v + 20, 16);
	r->gen = get_be64(v + 36);
	r->lease_until = (int64_t)get_be64(v + 44);
	r->owner.pidns = get_be64(v + 52);
	return 0;
}

static int del_running(th_store *st, MDB_txn *txn, uint64_t id)
{
	uint8_t k[8];
	put_be64(k, id);
	MDB_val key = {8, k};
	int rc = mdb_del(txn, st->running, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- open and close ---- */

static int open_dbis(th_store *st, MDB_txn *txn, void *ud)
{
	(void)ud;
	int rc;
	if ((rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta)) ||
	    (rc = mdb_dbi_open(txn, "jobs", MDB_CREATE, &st->jobs)) ||
	    (rc = mdb_dbi_open(txn, "blobs", MDB_CREATE, &st->blobs)) ||
	    (rc = mdb_dbi_open(txn, "ready", MDB_CREATE, &st->ready)) ||
	    (rc = mdb_dbi_open(txn, "running", MDB_CREATE, &st->running)))
		return rc;
	MDB_val key = {6, "format"}, val;
	rc = mdb_get(txn, st->meta, &key, &val);
	if (rc == MDB_NOTFOUND) {
		uint8_t v[4];
		put_be32(v, FORMAT_VERSION);
		val.mv_size = 4;
		val.mv_data = v;
		return mdb_put(txn, st->meta, &key, &val, 0);
	}
	if (rc)
		return rc;
	const uint8_t *p = val.mv_data;
	uint32_t found = val.mv_size == 4 ? get_be32(p) : 0;
	if (found != FORMAT_VERSION) {
		th_log_error("store", "data format version %u, this taskhost reads version %u",
			     found, FORMAT_VERSION);
		return TH_EFORMAT;
	}
	return 0;
}

int th_store_open(th_store **out, const char *dir, const th_store_opts *opts)
{
	*out = NULL;
	th_store *st = calloc(1, sizeof(*st));
	if (!st)
		return TH_ENOMEM;
	st->map_size = opts && opts->map_size ? opts->map_size : DEFAULT_MAP;
	st->max_map_size = opts && opts->max_map_size ? opts->max_map_size : DEFAULT_MAX_MAP;
	if (st->max_map_size < st->map_size)
		st->max_map_size = st->map_size;
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&st->resize, &attr);
	pthread_rwlockattr_destroy(&attr);

	/* an existing environment keeps the size it grew to: adopt it (0) and grow to the
	 * configured size after opening if that is larger */
	char path[4096];
	struct stat fsb;
	bool exists = snprintf(path, sizeof(path), "%s/data.mdb", dir) < (int)sizeof(path) &&
		      stat(path, &fsb) == 0 && fsb.st_size > 0;
	unsigned flags = MDB_NOTLS;
	if (opts && opts->durability == TH_RELAXED)
		flags |= MDB_NOSYNC;
	int rc;
	if ((rc = mdb_env_create(&st->env)) || (rc = mdb_env_set_maxdbs(st->env, 8)) ||
	    (rc = mdb_env_set_maxreaders(st->env, 1024)) ||
	    (rc = mdb_env_set_mapsize(st->env, exists ? 0 : st->map_size)) ||
	    (rc = mdb_env_open(st->env, dir, flags, 0644))) {
		int err = rc == ENOENT || rc == EACCES || rc == ENOTDIR ? TH_ESYS
			  : rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ? TH_EFORMAT
			  : TH_EIO;
		th_log_error("store", "cannot open %s: %s", dir, mdb_strerror(rc));
		th_store_close(st);
		errno = rc > 0 ? rc : errno;
		return err;
	}
	/* the map: what the file grew to or what is configured, whichever is larger, but
	 * not past max_map_size unless the data already is */
	MDB_envinfo info;
	MDB_stat mst;
	mdb_env_info(st->env, &info);
	mdb_env_stat(st->env, &mst);
	uint64_t used = (uint64_t)(info.me_last_pgno + 1) * mst.ms_psize;
	uint64_t want = info.me_mapsize > st->map_size ? info.me_mapsize : st->map_size;
	if (want > st->max_map_size)
		want = st->max_map_size > used ? st->max_map_size : used;
	if (want != info.me_mapsize)
		mdb_env_set_mapsize(st->env, want); /* no transaction is open yet */
	st->map_size = want;
	if (st->max_map_size < st->map_size)
		st->max_map_size = st->map_size;
	int dead = 0;
	mdb_reader_check(st->env, &dead);
	if ((rc = write_txn(st, "opening the store", open_dbis, NULL))) {
		th_store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void th_store_close(th_store *st)
{
	if (!st)
		return;
	if (st->env)
		mdb_env_close(st->env);
	pthread_rwlock_destroy(&st->resize);
	free(st);
}

/* ---- add ---- */

struct add_args {
	const th_store_new *jobs;
	size_t n;
	uint64_t *ids;
};

static int add_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct add_args *a = ud;
	MDB_val key = {7, "next_id"}, val;
	uint64_t next = 1;
	int rc = mdb_get(txn, st->meta, &key, &val);
	if (rc == 0 && val.mv_size == 8)
		next = get_be64(val.mv_data);
	else if (rc && rc != MDB_NOTFOUND)
		return rc;
	int64_t now = th_clock_now_us();
	for (size_t i = 0; i < a->n; i++) {
		const th_store_new *n = &a->jobs[i];
		th_job job = {.id = next++, .status = TH_JOB_QUEUED, .priority = n->priority,
			      .added_us = now, .input_len = n->input_len,
			      .max_attempts = n->max_attempts ? n->max_attempts
							      : TH_DEFAULT_MAX_ATTEMPTS};
		snprintf(job.task, sizeof(job.task), "%s", n->task);
		snprintf(job.queue, sizeof(job.queue), "%s", n->queue ? n->queue : "");
		if ((rc = put_job(st, txn, &job, MDB_APPEND)) ||
		    (n->input_len && (rc = put_blob(st, txn, job.id, TH_BLOB_INPUT, n->input,
						    n->input_len))) ||
		    (rc = put_ready(st, txn, &job)))
			return rc;
		a->ids[i] = job.id;
	}
	uint8_t v[8];
	put_be64(v, next);
	val.mv_size = 8;
	val.mv_data = v;
	return mdb_put(txn, st->meta, &key, &val, 0);
}

int th_store_add(th_store *st, const th_store_new *jobs, size_t n, uint64_t *ids)
{
	for (size_t i = 0; i < n; i++) {
		size_t tn = jobs[i].task ? strlen(jobs[i].task) : 0;
		size_t qn = jobs[i].queue ? strlen(jobs[i].queue) : 0;
		if (tn == 0 || tn > TH_TASK_NAME_MAX || qn > TH_QUEUE_NAME_MAX)
			return TH_EINVAL;
	}
	struct add_args a = {jobs, n, ids};
	return write_txn(st, "adding jobs", add_fn, &a);
}

/* ---- reads ---- */

int th_store_get(th_store *st, uint64_t id, th_job *out)
{
	MDB_txn *txn;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading a job");
	rc = get_job(st, txn, id, out);
	txn_end(st, txn);
	return map_err(rc, "reading a job");
}

int th_store_blob(th_store *st, uint64_t id, enum th_blob kind, void **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	MDB_txn *txn;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading job data");
	th_job job;
	uint8_t k[9];
	put_be64(k, id);
	k[8] = (uint8_t)kind;
	MDB_val key = {9, k}, val = {0, NULL};
	if ((rc = get_job(st, txn, id, &job)) == 0) {
		rc = mdb_get(txn, st->blobs, &key, &val);
		if (rc == MDB_NOTFOUND)
			rc = 0;
	}
	if (rc == 0) {
		char *copy = malloc(val.mv_size + 1);
		if (!copy) {
			rc = TH_ENOMEM;
		} else {
			if (val.mv_size)
				memcpy(copy, val.mv_data, val.mv_size);
			copy[val.mv_size] = 0;
			*data = copy;
			*len = val.mv_size;
		}
	}
	txn_end(st, txn);
	return map_err(rc, "reading job data");
}

#define LIST_CHUNK 256

/* Reads up to LIST_CHUNK matching jobs after (or before, reverse) *pos into out. */
static int list_chunk(th_store *st, unsigned mask, uint64_t *pos, bool reverse, bool *end,
		      th_job *out, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	*n = 0;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return rc;
	if ((rc = mdb_cursor_open(txn, st->jobs, &cur))) {
		txn_end(st, txn);
		return rc;
	}
	uint8_t k[8];
	MDB_val key = {8, k}, val;
	MDB_cursor_op op;
	if (!*pos) {
		op = reverse ? MDB_LAST : MDB_FIRST;
	} else if (!reverse) {
		put_be64(k, *pos + 1);
		op = MDB_SET_RANGE;
	} else {
		/* position at the first id >= pos, then step back to the one before */
		put_be64(k, *pos);
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		op = rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV;
	}
	while (*n < LIST_CHUNK && (rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
		op = reverse ? MDB_PREV : MDB_NEXT;
		th_job *job = &out[*n];
		if (th_record_decode(val.mv_data, val.mv_size, job)) {
			rc = TH_EFORMAT;
			break;
		}
		*pos = job->id;
		if (mask & (1u << job->status))
			(*n)++;
	}
	*end = rc == MDB_NOTFOUND;
	mdb_cursor_close(cur);
	txn_end(st, txn);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int th_store_list(th_store *st, unsigned mask, uint64_t from, bool reverse,
		  th_store_list_fn fn, void *ud)
{
	/* jobs are copied out in chunks and fn runs with no transaction open, so it may
	 * call the store itself */
	th_job *chunk = malloc(LIST_CHUNK * sizeof(*chunk));
	if (!chunk)
		return TH_ENOMEM;
	uint64_t pos = from;
	bool end = false;
	int rc = 0;
	while (!end && rc == 0) {
		size_t n;
		if ((rc = list_chunk(st, mask, &pos, reverse, &end, chunk, &n)))
			break;
		for (size_t i = 0; i < n; i++) {
			if (fn(&chunk[i], ud)) {
				end = true;
				break;
			}
		}
		if (reverse && pos == 1)
			end = true;
	}
	free(chunk);
	return map_err(rc, "listing jobs");
}

static int count_fn(const th_job *job, void *ud)
{
	((uint64_t *)ud)[job->status]++;
	return 0;
}

int th_store_count(th_store *st, uint64_t counts[TH_JOB_STATUS_MAX + 1])
{
	memset(counts, 0, sizeof(uint64_t) * (TH_JOB_STATUS_MAX + 1));
	return th_store_list(st, ~0u, 0, false, count_fn, counts);
}

int th_store_has_ready(th_store *st, const char *queue, bool *out)
{
	*out = false;
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading the queue");
	if ((rc = mdb_cursor_open(txn, st->ready, &cur)) == 0) {
		uint8_t k[READY_KEY_MAX];
		size_t plen = queue_prefix(k, queue);
		MDB_val key = {plen, k}, val;
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		*out = rc == 0 && key.mv_size == plen + 12 && memcmp(key.mv_data, k, plen) == 0;
		mdb_cursor_close(cur);
	}
	txn_end(st, txn);
	return rc == MDB_NOTFOUND ? 0 : map_err(rc, "reading the queue");
}

int th_store_usage(th_store *st, uint64_t *map_size, uint64_t *used)
{
	MDB_envinfo info;
	MDB_stat stat;
	pthread_rwlock_rdlock(&st->resize);
	mdb_env_info(st->env, &info);
	mdb_env_stat(st->env, &stat);
	pthread_rwlock_unlock(&st->resize);
	*map_size = info.me_mapsize;
	*used = (uint64_t)(info.me_last_pgno + 1) * stat.ms_psize;
	return 0;
}

/* ---- state changes ---- */

static int cancel_fn(th_store *st, MDB_txn *txn, void *ud)
{
	uint64_t id = *(uint64_t *)ud;
	th_job job;
	int rc = get_job(st, txn, id, &job);
	if (rc)
		return rc;
	if (job.status != TH_JOB_QUEUED)
		return TH_ESTATE;
	job.status = TH_JOB_CANCELLED;
	job.finished_us = th_clock_now_us();
	if ((rc = del_ready(st, txn, &job)) && rc != MDB_NOTFOUND)
		return rc;
	return put_job(st, txn, &job, 0);
}

int th_store_cancel(th_store *st, uint64_t id)
{
	return write_txn(st, "cancelling a job", cancel_fn, &id);
}

struct clean_args {
	uint64_t from, next, done;
	bool more;
};

/* Removes up to CLEAN_CHUNK finished jobs from args->from on, so one clean of a long
 * history never needs one giant transaction. */
static int clean_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct clean_args *a = ud;
	MDB_cursor *cur;
	a->done = 0;
	a->more = false;
	int rc = mdb_cursor_open(txn, st->jobs, &cur);
	if (rc)
		return rc;
	uint8_t k[8];
	put_be64(k, a->from);
	MDB_val key = {8, k}, val;
	MDB_cursor_op op = MDB_SET_RANGE;
	while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
		op = MDB_NEXT;
		th_job job;
		if (th_record_decode(val.mv_data, val.mv_size, &job)) {
			rc = TH_EFORMAT;
			break;
		}
		if (!th_job_status_final(job.status))
			continue;
		if (a->done == CLEAN_CHUNK) {
			a->more = true;
			a->next = job.id; /* taken up only once this chunk is committed */
			break;
		}
		/* after a delete, MDB_NEXT yields the record that followed it */
		if ((rc = mdb_cursor_del(cur, 0)) || (rc = del_blobs(st, txn, job.id)))
			break;
		a->done++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int th_store_clean(th_store *st, uint64_t *removed)
{
	struct clean_args a = {0};
	*removed = 0;
	do {
		int rc = write_txn(st, "cleaning jobs", clean_fn, &a);
		if (rc)
			return rc;
		*removed += a.done;
		a.from = a.next;
	} while (a.more);
	return 0;
}

void th_claim_clear(th_claim *c)
{
	free(c->input);
	c->input = NULL;
	c->input_len = 0;
}

static int record_outcome(th_store *st, MDB_txn *txn, const th_outcome *o,
			  const th_owner *owner, int64_t now, size_t *stale)
{
	th_job job;
	int rc = get_job(st, txn, o->id, &job);
	if (rc == MDB_NOTFOUND || (rc == 0 && (job.status != TH_JOB_PROCESSING ||
					       job.claim_gen != o->gen ||
					       job.owner != owner->instance))) {
		th_log_warn("store", "job %llu: outcome of a stale claim refused (the job was "
			    "taken back from this host)", (unsigned long long)o->id);
		(*stale)++;
		return 0;
	}
	if (rc)
		return rc;
	if ((rc = del_running(st, txn, job.id)))
		return rc;
	job.owner = 0;
	job.owner_pid = 0;
	job.status = o->status;
	if (o->status == TH_JOB_QUEUED) {
		if (o->not_started && job.attempts > 0)
			job.attempts--;
		if ((rc = put_ready(st, txn, &job)))
			return rc;
		/* run again after a failure: keep why, for the user to see meanwhile */
		if (o->error && (rc = put_blob(st, txn, job.id, TH_BLOB_ERROR, o->error,
					       strlen(o->error))))
			return rc;
	} else {
		job.finished_us = now;
		job.result_len = o->result_len;
		if (o->result_len &&
		    (rc = put_blob(st, txn, job.id, TH_BLOB_RESULT, o->result, o->result_len)))
			return rc;
		if (o->error && (rc = put_blob(st, txn, job.id, TH_BLOB_ERROR, o->error,
					       strlen(o->error))))
			return rc;
	}
	return put_job(st, txn, &job, 0);
}

/* A job whose record or input is gone from the store cannot run: end it (or drop its
 * ready entry) so that it does not stop every claim behind it. */
static int bury_damaged(th_store *st, MDB_txn *txn, th_job *job, int64_t now)
{
	th_log_error("store", "job %llu: its input is missing from the store; ended in error",
		     (unsigned long long)job->id);
	static const char msg[] = "job input missing from the store (damaged data)";
	job->status = TH_JOB_ERROR;
	job->finished_us = now;
	job->owner = 0;
	job->owner_pid = 0;
	int rc = put_blob(st, txn, job->id, TH_BLOB_ERROR, msg, sizeof(msg) - 1);
	return rc ? rc : put_job(st, txn, job, 0);
}

/* Claims the first ready job of the queue into c->claims[c->nclaimed]. MDB_NOTFOUND
 * when the queue is empty; EAGAIN when it took a damaged job out of line instead. */
static int claim_one(th_store *st, MDB_txn *txn, MDB_cursor *cur, th_cycle *c, int64_t now)
{
	uint8_t k[READY_KEY_MAX];
	size_t plen = queue_prefix(k, c->queue);
	MDB_val key = {plen, k}, val;
	int rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
	if (rc)
		return rc;
	if (key.mv_size != plen + 12 || memcmp(key.mv_data, k, plen) != 0)
		return MDB_NOTFOUND;
	uint64_t id = get_be64((const uint8_t *)key.mv_data + plen + 4);
	if ((rc = mdb_cursor_del(cur, 0)))
		return rc;
	th_claim *cl = &c->claims[c->nclaimed];
	th_job *job = &cl->job;
	rc = get_job(st, txn, id, job);
	if (rc == MDB_NOTFOUND || rc == TH_EFORMAT) {
		th_log_error("store", "job %llu: ready, but its record is %s; taken out of the "
			     "queue", (unsigned long long)id, rc == MDB_NOTFOUND ? "gone" : "damaged");
		return EAGAIN;
	}
	if (rc)
		return rc;
	cl->input = NULL;
	cl->input_len = 0;
	if (job->input_len) {
		uint8_t bk[9];
		put_be64(bk, id);
		bk[8] = TH_BLOB_INPUT;
		MDB_val bkey = {9, bk}, bval;
		rc = mdb_get(txn, st->blobs, &bkey, &bval);
		if (rc == MDB_NOTFOUND)
			return (rc = bury_damaged(st, txn, job, now)) ? rc : EAGAIN;
		if (rc)
			return rc;
		if (!(cl->input = malloc(bval.mv_size)))
			return TH_ENOMEM;
		memcpy(cl->input, bval.mv_data, bval.mv_size);
		cl->input_len = bval.mv_size;
	}
	job->status = TH_JOB_PROCESSING;
	job->attempts++;
	job->claim_gen++;
	job->started_us = now;
	job->owner = c->owner->instance;
	job->owner_pid = c->owner->pid;
	struct running r = {*c->owner, job->claim_gen, th_clock_boot_us() + c->lease_us};
	if ((rc = put_job(st, txn, job, 0)) || (rc = put_running(st, txn, id, &r))) {
		th_claim_clear(cl);
		return rc;
	}
	c->nclaimed++;
	return 0;
}

static void clear_claims(th_cycle *c)
{
	for (size_t i = 0; i < c->nclaimed; i++)
		th_claim_clear(&c->claims[i]);
	c->nclaimed = 0;
}

static int cycle_fn(th_store *st, MDB_txn *txn, void *ud)
{
	th_cycle *c = ud;
	clear_claims(c); /* from a run before the map grew */
	c->stale = 0;
	int64_t now = th_clock_now_us();
	int rc;
	for (size_t i = 0; i < c->nout; i++)
		if ((rc = record_outcome(st, txn, &c->outs[i], c->owner, now, &c->stale)))
			return rc;
	if (c->max == 0)
		return 0;
	MDB_cursor *cur;
	if ((rc = mdb_cursor_open(txn, st->ready, &cur)))
		return rc;
	while (c->nclaimed < c->max &&
	       ((rc = claim_one(st, txn, cur, c, now)) == 0 || rc == EAGAIN))
		;
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int th_store_cycle(th_store *st, th_cycle *c)
{
	c->nclaimed = 0;
	int rc = write_txn(st, "recording outcomes and claiming", cycle_fn, c);
	if (rc) /* claims filled before a failed commit are void */
		clear_claims(c);
	return rc;
}

struct renew_args {
	const th_owner *owner;
	int64_t until;
	size_t n;
};

static int renew_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct renew_args *a = ud;
	MDB_cursor *cur;
	a->n = 0;
	int rc = mdb_cursor_open(txn, st->running, &cur);
	if (rc)
		return rc;
	MDB_val key, val;
	MDB_cursor_op op = MDB_FIRST;
	while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
		op = MDB_NEXT;
		struct running r;
		if (get_running(&val, &r) || r.owner.instance != a->owner->instance)
			continue;
		r.lease_until = a->until;
		uint64_t id = get_be64(key.mv_data);
		if ((rc = put_running(st, txn, id, &r)))
			break;
		a->n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

int th_store_renew(th_store *st, const th_owner *owner, int64_t lease_us, size_t *n)
{
	struct renew_args a = {owner, th_clock_boot_us() + lease_us, 0};
	int rc = write_txn(st, "renewing leases", renew_fn, &a);
	if (n)
		*n = rc ? 0 : a.n;
	return rc;
}

/* What recovery found to take back: job id and the claim it had. */
struct orphan {
	uint64_t id, gen;
	bool dead; /* owner gone, rather than its lease over */
};

struct recover_args {
	const th_owner *self;
	struct orphan *orphans;
	size_t n, done;
};

static int recover_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct recover_args *a = ud;
	int64_t now = th_clock_now_us();
	a->done = 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct orphan *o = &a->orphans[i];
		th_job job;
		int rc = get_job(st, txn, o->id, &job);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc)
			return rc;
		if (job.status != TH_JOB_PROCESSING || job.claim_gen != o->gen)
			continue; /* finished or re-claimed since the scan */
		if ((rc = del_running(st, txn, job.id)))
			return rc;
		const char *why = o->dead ? "host died while running" : "lease expired";
		job.owner = 0;
		job.owner_pid = 0;
		if (job.attempts < job.max_attempts) {
			job.status = TH_JOB_QUEUED;
			if ((rc = put_ready(st, txn, &job)))
				return rc;
			th_log_warn("store", "job %llu: %s (attempt %u of %u): queued again",
				    (unsigned long long)job.id, why, job.attempts, job.max_attempts);
		} else {
			char msg[128];
			snprintf(msg, sizeof(msg), "%s, attempts exhausted (%u of %u)", why,
				 job.attempts, job.max_attempts);
			job.status = TH_JOB_ERROR;
			job.finished_us = now;
			if ((rc = put_blob(st, txn, job.id, TH_BLOB_ERROR, msg, strlen(msg))))
				return rc;
			th_log_warn("store", "job %llu: %s", (unsigned long long)job.id, msg);
		}
		if ((rc = put_job(st, txn, &job, 0)))
			return rc;
		a->done++;
	}
	return 0;
}

int th_store_recover(th_store *st, const th_owner *self, size_t *n)
{
	*n = 0;
	/* readers that died inside a transaction pin old pages: let LMDB free their slots */
	int dead_readers = 0;
	mdb_reader_check(st->env, &dead_readers);
	/* find the orphans with a read transaction, then take them back in a write
	 * transaction that checks each is still held under the same claim */
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "scanning running jobs");
	if ((rc = mdb_cursor_open(txn, st->running, &cur))) {
		txn_end(st, txn);
		return map_err(rc, "scanning running jobs");
	}
	struct orphan *orphans = NULL;
	size_t norphans = 0, cap = 0;
	int64_t now = th_clock_boot_us();
	MDB_val key, val;
	MDB_cursor_op op = MDB_FIRST;
	while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
		op = MDB_NEXT;
		struct running r;
		if (get_running(&val, &r) || r.owner.instance == self->instance)
			continue;
		/* an owner known to be alive keeps its jobs whatever its lease says (it may be
		 * stopped, or its clock jumped); the lease speaks only for owners this process
		 * cannot see */
		enum th_liveness live = th_owner_alive(&r.owner);
		bool dead = live == TH_OWNER_DEAD;
		if (live == TH_OWNER_ALIVE || (!dead && r.lease_until > now))
			continue;
		if (norphans == cap) {
			cap = cap ? cap * 2 : 16;
			struct orphan *o = realloc(orphans, cap * sizeof(*o));
			if (!o) {
				rc = ENOMEM;
				break;
			}
			orphans = o;
		}
		orphans[norphans++] = (struct orphan){get_be64(key.mv_data), r.gen, dead};
	}
	mdb_cursor_close(cur);
	txn_end(st, txn);
	if (rc && rc != MDB_NOTFOUND) {
		free(orphans);
		return map_err(rc, "scanning running jobs");
	}
	rc = 0;
	if (norphans) {
		struct recover_args a = {self, orphans, norphans, 0};
		rc = write_txn(st, "recovering jobs", recover_fn, &a);
		*n = rc ? 0 : a.done;
	}
	free(orphans);
	return rc;
}

void th_store_set_commit_hook(th_store *st, th_store_commit_hook fn, void *ud)
{
	atomic_store(&st->hook_ud, ud);
	atomic_store(&st->hook, fn);
}
