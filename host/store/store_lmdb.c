/* The LMDB backend of the store (th_store_lmdb): jobs, blobs, the ready, running,
 * schedule, finished, unique and by-status indexes, the counts per queue and status and
 * the jobs added, completed and failed per minute in one environment. It persists what the rules of lifecycle.c decide; write transactions
 * go through one helper that grows the map on MDB_MAP_FULL. */
#include "store/store_lmdb.h"

#include <errno.h>
#include <link.h>
#include <lmdb.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <ucontext.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "clock.h"
#include "error.h"
#include "log.h"
#include "coord.h"
#include "cron.h"
#include "store/store_envlock.h"
#include "lifecycle.h"
#include "store/store_record.h"

#define FORMAT_VERSION 5
#define FORMAT_UNCOUNTED 3 /* no counts, no by-status index: made on open */
#define FORMAT_UNRATED 4   /* no minutes table: made (empty) on open */
#define CLEAN_CHUNK 10000       /* jobs a clean removes per transaction, at most */
#define ERROR_MAX (64u << 10)   /* bytes of an error message kept; the rest is cut */
/* Map space kept for outcomes, claims and cleaning: adds and cron fires are refused
 * once they would eat into it (1/RESERVE_SHARE of max_map_size, from RESERVE_MIN up to
 * RESERVE_MAX, at most half the map); an outcome's bytes may use the first half
 * of it. LMDB reuses a freed page only two commits later: the reserve must hold the
 * pages of a few cycles. */
#define RESERVE_SHARE 8
#define BARE_KEEP 256 /* a result or error this short is always kept */
#define RESERVE_MIN (256ull << 10)
#define RESERVE_MAX (64ull << 20)
#define PROMOTE_MAX 1000        /* scheduled jobs queued per transaction */
#define READY_KEY_MAX (TH_QUEUE_NAME_MAX + 1 + 4 + 8)
#define MAX_READERS 1024

struct th_store {
	const th_store_ops *ops; /* &th_store_lmdb: first, for the front (store.c) */
	MDB_env *env;
	th_envlock *lock; /* lock.mdb's guard: see envlock.h */
	MDB_dbi main; /* the unnamed database: the named ones' records, and next_id */
	MDB_dbi meta, jobs, blobs, ready, running;
	MDB_dbi schedule; /* (due, id): delayed jobs, retries and cron jobs, by time */
	MDB_dbi finished; /* (finished, id): finished jobs, for clean and retention */
	MDB_dbi unique;   /* unique key -> id */
	MDB_dbi bystatus; /* (status, id): every job, for lists of some statuses */
	MDB_dbi counts;   /* (queue, NUL, status) -> jobs, kept by every write */
	MDB_dbi minutes;  /* (minute, queue, NUL) -> jobs added, completed, failed */
	int64_t pruned;   /* the minute whose write last dropped older minutes */
	/* what the write transaction under way changes in counts, added before it commits
	 * (only the holder of the write transaction touches it) */
	struct tally *tally;
	size_t ntally, tally_cap;
	_Atomic uint64_t rng; /* for backoff jitter */
	uint64_t map_size, max_map_size;
	/* Held shared by every transaction and exclusively to change the map size, which
	 * LMDB allows only while this process has no transaction open. */
	pthread_rwlock_t resize;
	_Atomic(th_store_commit_hook) hook;
	void *_Atomic hook_ud;
	char *dir;
	/* the map, for the fault guard: where it is, how long */
	_Atomic uintptr_t map_base;
	_Atomic size_t map_len;
	atomic_bool failed; /* a fault in the map: every call is TH_EDAMAGED from then on */
};

/* ---- keys ---- */

/* Ready keys sort by queue, then higher priority first, then id (the order added). */
static size_t ready_key(uint8_t *k, const char *queue, int32_t prio, uint64_t id)
{
	size_t qn = queue ? strnlen(queue, TH_QUEUE_NAME_MAX) : 0;
	if (qn)
		memcpy(k, queue, qn);
	k[qn] = 0;
	th_put_be32(k + qn + 1, (uint32_t)((int64_t)INT32_MAX - prio));
	th_put_be64(k + qn + 5, id);
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
	case ENOSPC: return TH_ENOSPC;
	}
	if (rc < 0 && rc >= TH_ELOCKLOST) /* already one of ours */
		return rc;
	th_log_error("store", "%s: %s", what, mdb_strerror(rc));
	return TH_EIO;
}

/* ---- damage: the fault guard, the meta pages ---- */

/* A damaged page can make LMDB read out of its map (SIGSEGV) or past the end of a
 * shortened file (SIGBUS), or follow a pointer it computed from damaged bytes. Each
 * store call runs its transaction under a guard: a fault in a guarded section whose
 * address lies in the map of the guarded store (or just past it), or that LMDB's own
 * code made, jumps back to the call, which marks the store failed and returns
 * TH_EDAMAGED. Any other fault goes on to the handler that was there before (a
 * sanitizer's) or the default action, with a core. */
struct guard {
	sigjmp_buf jb;
	th_store *st;
	struct guard *prev;
	int sig;
	uintptr_t offset; /* of the fault, in the map */
	char assert_msg[160]; /* with SIGABRT: an assertion of LMDB's failed (on_assert) */
	/* cursors of a read transaction, closed after a fault (volatile: set after
	 * sigsetjmp, read after the jump) */
	MDB_cursor *volatile cursors[4];
	volatile int ncursors;
};

static _Thread_local struct guard *active_guard;
static struct sigaction old_segv, old_bus;
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static uintptr_t lmdb_text, lmdb_text_end; /* liblmdb's code */
#define MAP_SLACK (64u << 10) /* a read that runs off the map's end faults this near it */

static int find_lmdb(struct dl_phdr_info *info, size_t size, void *ud)
{
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t from = info->dlpi_addr + ph->p_vaddr, fn = (uintptr_t)ud;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && fn >= from &&
		    fn < from + ph->p_memsz) {
			lmdb_text = from;
			lmdb_text_end = from + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

static uintptr_t fault_pc(void *uc)
{
#if defined(__x86_64__)
	return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
#elif defined(__aarch64__)
	return (uintptr_t)((ucontext_t *)uc)->uc_mcontext.pc;
#else
	(void)uc;
	return 0;
#endif
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	struct guard *g = active_guard;
	if (g) {
		uintptr_t a = (uintptr_t)si->si_addr, base = atomic_load(&g->st->map_base);
		uintptr_t pc = fault_pc(uc);
		if ((base && a >= base && a - base < atomic_load(&g->st->map_len) + MAP_SLACK) ||
		    (pc >= lmdb_text && pc < lmdb_text_end)) {
			active_guard = g->prev;
			g->sig = sig;
			g->offset = a - base;
			siglongjmp(g->jb, 1);
		}
	}
	const struct sigaction *old = sig == SIGBUS ? &old_bus : &old_segv;
	if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
		old->sa_sigaction(sig, si, uc);
	} else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
	} else {
		/* a real bug: returning runs the faulting access again, now fatal */
		signal(sig, SIG_DFL);
		if (si->si_code <= 0)
			raise(sig);
	}
}

/* LMDB checks pages as it changes them: one found inconsistent (a damaged page) is an
 * assertion that would abort the process. Within a guarded section of the store whose
 * environment it is, it jumps back like a fault. */
static void on_assert(MDB_env *env, const char *msg)
{
	struct guard *g = active_guard;
	if (!g || g->st->env != env)
		return; /* LMDB aborts */
	active_guard = g->prev;
	g->sig = SIGABRT;
	g->offset = 0;
	snprintf(g->assert_msg, sizeof(g->assert_msg), "%s", msg);
	siglongjmp(g->jb, 1);
}

static void install_guard(void)
{
	struct sigaction sa = {.sa_sigaction = on_fault,
			       .sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
	dl_iterate_phdr(find_lmdb, (void *)(uintptr_t)mdb_txn_begin);
}

/* The map moved or changed size: under the resize lock, held exclusively. LMDB does
 * not say where it mapped the file (me_mapaddr is only for MDB_FIXEDMAP): the mapping
 * of data.mdb's inode in /proc/self/maps does. */
static void note_map(th_store *st)
{
	int fd = -1;
	struct stat sb;
	MDB_envinfo info;
	FILE *f = fopen("/proc/self/maps", "re");
	if (!f || mdb_env_get_fd(st->env, &fd) || fstat(fd, &sb) || mdb_env_info(st->env, &info)) {
		if (f)
			fclose(f);
		return;
	}
	unsigned long from, to, ino;
	char line[4096];
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &from, &to, &ino) == 3 &&
		    ino == sb.st_ino && to - from == info.me_mapsize) {
			atomic_store(&st->map_len, to - from);
			atomic_store(&st->map_base, (uintptr_t)from);
			break;
		}
	}
	fclose(f);
}

static void guard_enter(struct guard *g, th_store *st)
{
	g->st = st;
	g->ncursors = 0;
	g->prev = active_guard;
	active_guard = g;
}

static void guard_leave(struct guard *g)
{
	active_guard = g->prev;
}

/* Cursors of read transactions, known to the guard (a write transaction's go with it). */
static int open_cursor(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cur)
{
	/* the table's record is read first, without allocating: a fault there leaks none */
	MDB_stat ms;
	int rc = mdb_stat(txn, dbi, &ms);
	if (rc == 0)
		rc = mdb_cursor_open(txn, dbi, cur);
	struct guard *g = active_guard;
	if (rc == 0 && g && g->ncursors < 4)
		g->cursors[g->ncursors++] = *cur;
	return rc;
}

static void close_cursor(MDB_cursor *cur)
{
	struct guard *g = active_guard;
	for (int i = 0; g && i < g->ncursors; i++)
		if (g->cursors[i] == cur)
			g->cursors[i] = g->cursors[--g->ncursors];
	mdb_cursor_close(cur);
}

static int store_damaged(th_store *st)
{
	th_log_error("store", "data dir damaged: %s/data.mdb: a read of its map faulted "
		     "before; closed to further use (run 'taskhost check')", st->dir);
	return TH_EDAMAGED;
}

/* After a fault: the transaction (read or write) is given up and the store closed to
 * further use. LMDB's own state is not touched beyond that: jobs committed stay. */
static int guard_fault(struct guard *g, MDB_txn *txn, bool write)
{
	th_store *st = g->st;
	atomic_store(&st->failed, true);
	if (g->sig == SIGABRT)
		th_log_error("store", "data dir damaged: %s/data.mdb: LMDB found a page "
			     "inconsistent (%s); closed to further use", st->dir, g->assert_msg);
	else
		th_log_error("store", "data dir damaged: %s/data.mdb: %s reading offset %llu of "
			     "its map (a damaged page, or a file cut short); closed to further use",
			     st->dir, g->sig == SIGBUS ? "SIGBUS" : "SIGSEGV",
			     (unsigned long long)g->offset);
	for (int i = 0; i < g->ncursors; i++)
		mdb_cursor_close(g->cursors[i]);
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->resize);
	if (write)
		th_envlock_write_end(st->lock);
	return TH_EDAMAGED;
}

/* Runs the statements given (no return or break at their top level) in the read
 * transaction `txn` begun with txn_begin, under the guard: on a fault, rc is
 * TH_EDAMAGED and txn NULL (over). */
#define GUARDED_READ(st, txn, rc, ...)                                     \
	do {                                                               \
		struct guard g_;                                           \
		guard_enter(&g_, (st));                                    \
		if (sigsetjmp(g_.jb, 0)) {                                 \
			(rc) = guard_fault(&g_, (txn), false);             \
			(txn) = NULL;                                      \
			break;                                             \
		}                                                          \
		__VA_ARGS__;                                               \
		guard_leave(&g_);                                          \
	} while (0)

/* LMDB's meta pages, read before the file is mapped: at page 0 and page 1, each a page
 * header then MDB_meta (lmdb.h's on-disk format, 64-bit). */
#define PAGE_HDR 16
#define META_MAGIC 0xBEEFC0DEu
#define META_VERSION 1
#define META_LEN (4 + 4 + 8 + 8 + 2 * 48 + 8 + 8)

struct meta {
	uint32_t magic, version, psize;
	uint64_t last_pg, txnid;
};

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static bool read_meta(int fd, off_t at, struct meta *m)
{
	uint8_t b[PAGE_HDR + META_LEN];
	if (pread(fd, b, sizeof(b), at) != (ssize_t)sizeof(b))
		return false;
	const uint8_t *p = b + PAGE_HDR;
	m->magic = (uint32_t)get_le64(p) & 0xffffffffu;
	m->version = (uint32_t)(get_le64(p) >> 32);
	m->psize = (uint32_t)get_le64(p + 24) & 0xffffffffu; /* the free db's md_pad */
	m->last_pg = get_le64(p + 24 + 96);
	m->txnid = get_le64(p + 24 + 96 + 8);
	return m->magic == META_MAGIC && m->version == META_VERSION && m->psize >= 512 &&
	       m->psize <= 65536 && !(m->psize & (m->psize - 1));
}

/* A data.mdb may be shorter than the last page its current meta page names: LMDB does
 * not write a page it allocated and freed again in one transaction, and at the end of
 * the file nothing else extends it. *short_at is then the file's size, and the pages
 * from there on must all be free (pages_past_end_free, once mapped); one that is not
 * was cut off. One of fewer bytes than two meta pages is refused here, unless this
 * open is the one making it (fresh). Not LMDB at all: left to LMDB to say. */
static int check_data_file(const char *dir, bool fresh, uint64_t *short_at, uint64_t *need_at)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return 0; /* th_envlock_open says why */
	struct stat sb;
	struct meta m0 = {0}, m1 = {0};
	int rc = 0;
	/* The meta pages first, the size after: a writer in another process writes a
	 * commit's pages before its meta page, so the size read later covers them. */
	bool v0 = read_meta(fd, 0, &m0);
	uint32_t psize = v0 ? m0.psize : (uint32_t)sysconf(_SC_PAGESIZE);
	bool v1 = read_meta(fd, psize, &m1);
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
		const struct meta *cur = v0 && (!v1 || m0.txnid >= m1.txnid) ? &m0 : v1 ? &m1 : NULL;
		uint64_t need = cur ? (cur->last_pg + 1) * (uint64_t)psize : 0;
		if (cur && (uint64_t)sb.st_size < need) {
			*short_at = (uint64_t)sb.st_size;
			*need_at = need;
		} else if (!cur && !fresh && sb.st_size < 2 * (off_t)psize) {
			th_log_error("store", "data dir damaged: %s is %lld bytes, too short for its "
				     "meta pages, in a data dir used before (truncated?)", path,
				     (long long)sb.st_size);
			rc = TH_EDAMAGED;
		}
	}
	close(fd);
	return rc;
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
		note_map(st);
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
				note_map(st);
			}
		}
	}
	pthread_rwlock_unlock(&st->resize);
	return rc;
}

static int txn_begin(th_store *st, unsigned flags, MDB_txn **txn)
{
	if (atomic_load(&st->failed))
		return store_damaged(st);
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
	if (!txn) /* ended by the fault guard */
		return;
	mdb_txn_abort(txn);
	pthread_rwlock_unlock(&st->resize);
}

static void short_file_damaged(const char *dir, uint64_t size, uint64_t need)
{
	th_log_error("store", "data dir damaged: %s/data.mdb is %llu bytes, its meta page names "
		     "%llu (truncated?)", dir, (unsigned long long)size, (unsigned long long)need);
}

/* Whether every page from byte `size` up to byte `need` is in LMDB's list of free pages
 * (never written, so never read), or was written since by a commit of another process
 * (the file is longer now). The list's own pages are read under the fault guard: one
 * past the end of the file is a SIGBUS, and the file was cut short. */
static bool pages_past_end_free(th_store *st, uint64_t size, uint64_t need)
{
	MDB_stat ms;
	mdb_env_stat(st->env, &ms);
	uint64_t from = size / ms.ms_psize, to = need / ms.ms_psize; /* [from, to) */
	uint8_t *seen = calloc(to - from, 1);
	MDB_txn *txn;
	if (!seen || txn_begin(st, MDB_RDONLY, &txn)) {
		free(seen);
		return false;
	}
	MDB_cursor *cur = NULL;
	struct guard g;
	guard_enter(&g, st);
	if (sigsetjmp(g.jb, 0)) {
		if (cur)
			mdb_cursor_close(cur);
		txn_end(st, txn);
		free(seen);
		return false;
	}
	MDB_val k, v;
	if (mdb_cursor_open(txn, 0, &cur) == 0) /* LMDB's free-page table */
		for (MDB_cursor_op op = MDB_FIRST; mdb_cursor_get(cur, &k, &v, op) == 0;
		     op = MDB_NEXT) {
			const size_t *idl = v.mv_data; /* a count, then page numbers */
			size_t cnt = v.mv_size / sizeof(size_t);
			for (size_t i = 1; i < cnt && i <= idl[0]; i++)
				if (idl[i] >= from && idl[i] < to)
					seen[idl[i] - from] = 1;
		}
	guard_leave(&g);
	if (cur)
		mdb_cursor_close(cur);
	txn_end(st, txn);
	int fd = -1;
	struct stat sb;
	uint64_t now = mdb_env_get_fd(st->env, &fd) == 0 && fstat(fd, &sb) == 0
			       ? (uint64_t)sb.st_size / ms.ms_psize
			       : from;
	bool whole = true;
	for (uint64_t p = now > from ? now : from; p < to; p++)
		whole = whole && seen[p - from];
	free(seen);
	return whole;
}

typedef int (*txn_fn)(th_store *st, MDB_txn *txn, void *ud);
static int tally_flush(th_store *st, MDB_txn *txn);

/* Runs fn in a write transaction and commits. fn may run again (after the map grew),
 * so it must reset whatever it returns through ud before filling it. */
static int write_txn(th_store *st, const char *what, txn_fn fn, void *ud)
{
	for (;;) {
		MDB_txn *txn;
		int rc = th_envlock_write_begin(st->lock);
		if (rc)
			return rc;
		if ((rc = txn_begin(st, 0, &txn))) {
			th_envlock_write_end(st->lock);
			return map_err(rc, what);
		}
		uint64_t seen = st->map_size;
		struct guard g;
		guard_enter(&g, st);
		if (sigsetjmp(g.jb, 0))
			return guard_fault(&g, txn, true);
		st->ntally = 0;
		rc = fn(st, txn, ud);
		if (rc == 0)
			rc = tally_flush(st, txn);
		th_store_commit_hook hook = atomic_load(&st->hook);
		if (rc == 0 && hook)
			rc = hook(atomic_load(&st->hook_ud), what);
		if (rc == 0)
			rc = th_envlock_write_check(st->lock);
		if (rc == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		guard_leave(&g);
		pthread_rwlock_unlock(&st->resize);
		th_envlock_write_end(st->lock);
		if (rc == TH_ELOCKLOST)
			return rc;
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

/* jobs and running are keyed by the id as a native integer (MDB_INTEGERKEY): LMDB
 * compares those as numbers, faster than bytes on every step down the tree */
static MDB_val id_key(uint64_t *k, uint64_t id)
{
	*k = id;
	return (MDB_val){sizeof(*k), k};
}

static uint64_t key_id(const MDB_val *key)
{
	uint64_t id;
	memcpy(&id, key->mv_data, sizeof(id));
	return id;
}

/* One step of a walk of an id-keyed table: the ids must go one way (a damaged tree can
 * walk in a circle). *last: the id before (0: none), then this one. */
static int walk_step(th_store *st, const char *table, const MDB_val *key, bool reverse,
		     uint64_t *last)
{
	uint64_t id = key->mv_size == 8 ? key_id(key) : 0;
	if (id == 0 || (*last && (reverse ? id >= *last : id <= *last))) {
		th_log_error("store", "data dir damaged: %s/data.mdb: the %s table goes from id "
			     "%llu to %llu", st->dir, table, (unsigned long long)*last,
			     (unsigned long long)id);
		return TH_EDAMAGED;
	}
	*last = id;
	return 0;
}

/* A record that does not decode, or names another id than its key. */
static int damaged_record(th_store *st, uint64_t id)
{
	th_log_error("store", "data dir damaged: %s/data.mdb: job %llu: its record does not "
		     "decode", st->dir, (unsigned long long)id);
	return TH_EDAMAGED;
}

static int get_job(th_store *st, MDB_txn *txn, uint64_t id, th_job *job)
{
	uint64_t k;
	MDB_val key = id_key(&k, id), val;
	int rc = mdb_get(txn, st->jobs, &key, &val);
	if (rc)
		return rc;
	if (th_record_decode(val.mv_data, val.mv_size, job) || job->id != id)
		return damaged_record(st, id);
	return 0;
}

/* ---- counts and the by-status index ---- */

/* What happens to jobs that the minutes table counts. */
enum { EV_ADDED, EV_COMPLETED, EV_FAILED, EV_MAX };

/* Jobs per status of one queue: a change a write transaction makes, or a recount; and
 * what happened to its jobs in the transaction (ev). */
struct tally {
	char queue[TH_QUEUE_NAME_MAX + 1];
	int64_t n[TH_JOB_STATUS_MAX + 1];
	uint64_t ev[EV_MAX];
};

#define COUNT_KEY_MAX (TH_QUEUE_NAME_MAX + 2)

static struct tally *tally_of(struct tally **t, size_t *n, size_t *cap, const char *queue)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*t)[i].queue, queue) == 0)
			return &(*t)[i];
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		struct tally *m = realloc(*t, c * sizeof(*m));
		if (!m)
			return NULL;
		*t = m;
		*cap = c;
	}
	struct tally *e = &(*t)[(*n)++];
	memset(e, 0, sizeof(*e));
	snprintf(e->queue, sizeof(e->queue), "%s", queue);
	return e;
}

static int tally_add(th_store *st, const th_job *job, int64_t d)
{
	struct tally *t = tally_of(&st->tally, &st->ntally, &st->tally_cap, job->queue);
	if (!t)
		return TH_ENOMEM;
	if (job->status >= 1 && job->status <= TH_JOB_STATUS_MAX)
		t->n[job->status] += d;
	return 0;
}

/* (queue, NUL, status): a queue's counts sit together, in status order */
static size_t count_key(uint8_t *k, const char *queue, int status)
{
	size_t n = queue_prefix(k, queue);
	k[n] = (uint8_t)status;
	return n + 1;
}

/* The queue and status of a counts key; false for one of another format. */
static bool count_key_parse(const MDB_val *key, char *queue, int *status)
{
	const uint8_t *p = key->mv_data;
	if (key->mv_size < 2 || key->mv_size > COUNT_KEY_MAX || p[key->mv_size - 2] != 0 ||
	    memchr(p, 0, key->mv_size - 2))
		return false;
	memcpy(queue, p, key->mv_size - 2);
	queue[key->mv_size - 2] = 0;
	*status = p[key->mv_size - 1];
	return *status >= 1 && *status <= TH_JOB_STATUS_MAX;
}

static uint64_t count_val(const MDB_val *val)
{
	return val->mv_size == 8 ? th_get_be64(val->mv_data) : 0;
}

/* A job new to the store (added), or one whose status was `was` (0: no record) before:
 * what the minutes table counts of the change. */
static int tally_event(th_store *st, const th_job *job, bool added, int was)
{
	int ev = added ? EV_ADDED
		 : job->status == TH_JOB_COMPLETED && was != TH_JOB_COMPLETED ? EV_COMPLETED
		 : job->status == TH_JOB_ERROR && was != TH_JOB_ERROR ? EV_FAILED : -1;
	if (ev < 0)
		return 0;
	struct tally *t = tally_of(&st->tally, &st->ntally, &st->tally_cap, job->queue);
	if (!t)
		return TH_ENOMEM;
	t->ev[ev]++;
	return 0;
}

/* (minute, queue, NUL): a minute's queues sit together, the minutes in time order */
#define MINUTE_KEY_MAX (8 + TH_QUEUE_NAME_MAX + 1)
#define MINUTE_VAL (8 * EV_MAX)

static size_t minute_key(uint8_t *k, int64_t minute, const char *queue)
{
	th_put_be64(k, (uint64_t)minute);
	return 8 + queue_prefix(k + 8, queue);
}

/* The minute and queue of a minutes key; false for one of another format. */
static bool minute_key_parse(const MDB_val *key, int64_t *minute, char *queue)
{
	const uint8_t *p = key->mv_data;
	if (key->mv_size < 9 || key->mv_size > MINUTE_KEY_MAX || p[key->mv_size - 1] != 0 ||
	    memchr(p + 8, 0, key->mv_size - 9))
		return false;
	*minute = (int64_t)th_get_be64(p);
	memcpy(queue, p + 8, key->mv_size - 8);
	return true;
}

/* Drops the minutes older than the last TH_MINUTES_MAX, once a minute per process: the
 * oldest sit first, so a write that finds none reads one key. */
static int prune_minutes(th_store *st, MDB_txn *txn, int64_t minute)
{
	if (st->pruned == minute)
		return 0;
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->minutes, &cur);
	if (rc)
		return rc;
	MDB_val key, val;
	while ((rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST)) == 0 && key.mv_size >= 8 &&
	       (int64_t)th_get_be64(key.mv_data) <= minute - TH_MINUTES_MAX)
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
	mdb_cursor_close(cur);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	st->pruned = minute;
	return 0;
}

/* Adds what the transaction's jobs did to its minute's entry of each queue. */
static int minutes_flush(th_store *st, MDB_txn *txn)
{
	int64_t minute = th_clock_now_us() / 60000000;
	bool pruned = false;
	for (size_t i = 0; i < st->ntally; i++) {
		const struct tally *t = &st->tally[i];
		if (!t->ev[EV_ADDED] && !t->ev[EV_COMPLETED] && !t->ev[EV_FAILED])
			continue;
		int rc;
		if (!pruned && (rc = prune_minutes(st, txn, minute)))
			return rc;
		pruned = true;
		uint8_t k[MINUTE_KEY_MAX], v[MINUTE_VAL];
		MDB_val key = {minute_key(k, minute, t->queue), k}, val;
		rc = mdb_get(txn, st->minutes, &key, &val);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
		for (int e = 0; e < EV_MAX; e++) {
			uint64_t have = rc == 0 && val.mv_size == MINUTE_VAL
					? th_get_be64((const uint8_t *)val.mv_data + 8 * e) : 0;
			th_put_be64(v + 8 * e, have + t->ev[e]);
		}
		val = (MDB_val){MINUTE_VAL, v};
		if ((rc = mdb_put(txn, st->minutes, &key, &val, 0)))
			return rc;
	}
	return 0;
}

/* Adds what the transaction changed to the counts and the minutes, before it commits. */
static int tally_flush(th_store *st, MDB_txn *txn)
{
	int frc = minutes_flush(st, txn);
	if (frc)
		return frc;
	for (size_t i = 0; i < st->ntally; i++) {
		const struct tally *t = &st->tally[i];
		for (int s = 1; s <= TH_JOB_STATUS_MAX; s++) {
			if (!t->n[s])
				continue;
			uint8_t k[COUNT_KEY_MAX], v[8];
			MDB_val key = {count_key(k, t->queue, s), k}, val;
			int rc = mdb_get(txn, st->counts, &key, &val);
			if (rc && rc != MDB_NOTFOUND)
				return rc;
			uint64_t have = rc ? 0 : count_val(&val);
			uint64_t now = t->n[s] < 0 && (uint64_t)-t->n[s] > have
				       ? 0 : have + (uint64_t)t->n[s];
			if (now == 0) {
				rc = mdb_del(txn, st->counts, &key, NULL);
				rc = rc == MDB_NOTFOUND ? 0 : rc;
			} else {
				th_put_be64(v, now);
				val = (MDB_val){8, v};
				rc = mdb_put(txn, st->counts, &key, &val, 0);
			}
			if (rc)
				return rc;
		}
	}
	st->ntally = 0;
	return 0;
}

static MDB_val status_key(uint8_t *k, int status, uint64_t id)
{
	k[0] = (uint8_t)status;
	th_put_be64(k + 1, id);
	return (MDB_val){9, k};
}

/* A job in the by-status index and the counts (d = 1), or out of them (d = -1). */
static int index_status(th_store *st, MDB_txn *txn, const th_job *job, int d)
{
	uint8_t sk[9];
	MDB_val key = status_key(sk, job->status, job->id), val = {0, ""};
	int rc = d > 0 ? mdb_put(txn, st->bystatus, &key, &val, 0)
		       : mdb_del(txn, st->bystatus, &key, NULL);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	return tally_add(st, job, d);
}

/* Writes a job's record and keeps the by-status index, the counts and the minutes:
 * MDB_APPEND for a new job, else the record it replaces is read first for its status
 * and queue. */
static int put_job(th_store *st, MDB_txn *txn, const th_job *job, unsigned flags)
{
	uint8_t buf[TH_RECORD_MAX];
	uint64_t k;
	MDB_val key = id_key(&k, job->id), val;
	th_job old;
	bool had = false, added = flags & MDB_APPEND;
	int rc;
	if (!added) {
		rc = mdb_get(txn, st->jobs, &key, &val);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
		added = rc == MDB_NOTFOUND;
		/* one that does not decode was never counted: the check says so */
		had = rc == 0 && th_record_decode(val.mv_data, val.mv_size, &old) == 0;
	}
	val = (MDB_val){th_record_encode(job, buf), buf};
	if ((rc = mdb_put(txn, st->jobs, &key, &val, flags)))
		return rc;
	if (had && old.status == job->status && strcmp(old.queue, job->queue) == 0)
		return 0;
	if ((had && (rc = index_status(st, txn, &old, -1))) ||
	    (rc = index_status(st, txn, job, 1)))
		return rc;
	return tally_event(st, job, added, had ? (int)old.status : 0);
}

/* Removes a job's record (not its blobs) from the jobs table, the index and counts. */
static int del_job(th_store *st, MDB_txn *txn, const th_job *job)
{
	uint64_t k;
	MDB_val key = id_key(&k, job->id);
	int rc = mdb_del(txn, st->jobs, &key, NULL);
	return rc ? rc : index_status(st, txn, job, -1);
}

static int put_blob(th_store *st, MDB_txn *txn, uint64_t id, enum th_blob kind,
		    const void *data, size_t len)
{
	uint8_t k[9];
	th_put_be64(k, id);
	k[8] = (uint8_t)kind;
	MDB_val key = {9, k}, val = {len, (void *)data};
	return mdb_put(txn, st->blobs, &key, &val, 0);
}

static int get_blob(th_store *st, MDB_txn *txn, uint64_t id, enum th_blob kind, MDB_val *val)
{
	uint8_t k[9];
	th_put_be64(k, id);
	k[8] = (uint8_t)kind;
	MDB_val key = {9, k};
	return mdb_get(txn, st->blobs, &key, val);
}

static int del_blob(th_store *st, MDB_txn *txn, uint64_t id, enum th_blob kind)
{
	uint8_t k[9];
	th_put_be64(k, id);
	k[8] = (uint8_t)kind;
	MDB_val key = {9, k};
	int rc = mdb_del(txn, st->blobs, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int del_blobs(th_store *st, MDB_txn *txn, uint64_t id)
{
	int rc = 0;
	for (int kind = TH_BLOB_INPUT; kind <= TH_BLOB_UNIQUE && rc == 0; kind++)
		rc = del_blob(st, txn, id, (enum th_blob)kind);
	return rc;
}

/* Adds the line of attempt number `attempt` to the job's error history. */
static int add_error_history(th_store *st, MDB_txn *txn, uint64_t id, uint32_t attempt,
			     int64_t began, int64_t ended, const char *msg)
{
	MDB_val old = {0, NULL};
	int rc = get_blob(st, txn, id, TH_BLOB_ERRORS, &old);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	size_t n;
	char *buf = th_lifecycle_history(old.mv_data, old.mv_size, attempt, began, ended, msg,
					 &n);
	if (!buf)
		return TH_ENOMEM;
	rc = put_blob(st, txn, id, TH_BLOB_ERRORS, buf, n);
	free(buf);
	return rc;
}

/* (time, id) keys of the schedule and finished indexes */
static int put_timed(MDB_txn *txn, MDB_dbi dbi, int64_t t, uint64_t id)
{
	uint8_t k[16];
	th_put_be64(k, (uint64_t)t);
	th_put_be64(k + 8, id);
	MDB_val key = {16, k}, val = {0, ""};
	return mdb_put(txn, dbi, &key, &val, 0);
}

static int del_timed(MDB_txn *txn, MDB_dbi dbi, int64_t t, uint64_t id)
{
	uint8_t k[16];
	th_put_be64(k, (uint64_t)t);
	th_put_be64(k + 8, id);
	MDB_val key = {16, k};
	int rc = mdb_del(txn, dbi, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Bytes of the map that hold data: the pages of every database and of the free list's
 * own tree, not the free pages LMDB reuses (a clean makes room without shrinking the
 * file). */
static uint64_t live_bytes(th_store *st, MDB_txn *txn)
{
	const MDB_dbi dbis[] = {0 /* the free list */, st->main, st->meta, st->jobs, st->blobs,
				st->ready, st->running, st->schedule, st->finished, st->unique,
				st->bystatus, st->counts, st->minutes};
	uint64_t pages = 2; /* the meta pages */
	MDB_stat s = {.ms_psize = 4096};
	for (size_t i = 0; i < sizeof(dbis) / sizeof(dbis[0]); i++)
		if (mdb_stat(txn, dbis[i], &s) == 0)
			pages += s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages;
	return pages * s.ms_psize;
}

static uint64_t reserve_bytes(const th_store *st)
{
	uint64_t r = st->max_map_size / RESERVE_SHARE;
	r = r < RESERVE_MIN ? RESERVE_MIN : r > RESERVE_MAX ? RESERVE_MAX : r;
	return r < st->max_map_size / 2 ? r : st->max_map_size / 2;
}

/* Whether `more` bytes fit in the map and still leave `keep` bytes of it free. While
 * the map can still grow that far, no need to count its pages. */
static bool room_for(th_store *st, MDB_txn *txn, uint64_t more, uint64_t keep)
{
	if (st->map_size + more + keep <= st->max_map_size)
		return true;
	return live_bytes(st, txn) + more + keep <= st->max_map_size;
}

static uint64_t next_random(th_store *st)
{
	uint64_t x = atomic_load(&st->rng), y;
	do { /* xorshift64 */
		y = x;
		y ^= y << 13;
		y ^= y >> 7;
		y ^= y << 17;
	} while (!atomic_compare_exchange_weak(&st->rng, &x, y));
	return y;
}

/* Removes the unique key entry of the job, if it still points to the job. */
static int drop_unique(th_store *st, MDB_txn *txn, const th_job *job)
{
	if (!(job->flags & TH_JOB_UNIQUE))
		return 0;
	MDB_val ukey;
	int rc = get_blob(st, txn, job->id, TH_BLOB_UNIQUE, &ukey);
	if (rc)
		return rc == MDB_NOTFOUND ? 0 : rc;
	MDB_val val;
	if (mdb_get(txn, st->unique, &ukey, &val) == 0 && val.mv_size == 8 &&
	    th_get_be64(val.mv_data) == job->id) {
		rc = mdb_del(txn, st->unique, &ukey, NULL);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
	}
	return 0;
}

/* Copies a bytes blob (or its absence) from one job to another. */
static int copy_blob(th_store *st, MDB_txn *txn, uint64_t from, uint64_t to, enum th_blob kind)
{
	MDB_val v;
	int rc = get_blob(st, txn, from, kind, &v);
	if (rc == MDB_NOTFOUND)
		return del_blob(st, txn, to, kind);
	if (rc)
		return rc;
	/* the value points into the map, which the put may move: copy it first */
	void *copy = malloc(v.mv_size ? v.mv_size : 1);
	if (!copy)
		return TH_ENOMEM;
	memcpy(copy, v.mv_data, v.mv_size);
	rc = put_blob(st, txn, to, kind, copy, v.mv_size);
	free(copy);
	return rc;
}

/* The job (th_lifecycle_finish'ed) is done for good: indexes it by finish time and
 * frees its unique key. The caller writes the job's own result or error and its
 * record, then reports to its cron job. */
static int index_finished(th_store *st, MDB_txn *txn, const th_job *job)
{
	int rc;
	if ((rc = put_timed(txn, st->finished, job->finished_us, job->id)) ||
	    (rc = drop_unique(st, txn, job)))
		return rc;
	return 0;
}

/* After index_finished and the job's blobs are written: a run of a cron job leaves its
 * result and error with the cron job, which shows its latest run. */
static int report_to_cron(th_store *st, MDB_txn *txn, const th_job *job)
{
	if (!job->parent)
		return 0;
	th_job cron;
	int rc = get_job(st, txn, job->parent, &cron);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (cron.last_run != job->id)
		return 0; /* a newer run has fired since */
	if ((rc = copy_blob(st, txn, job->id, cron.id, TH_BLOB_RESULT)) ||
	    (rc = copy_blob(st, txn, job->id, cron.id, TH_BLOB_ERROR)))
		return rc;
	cron.result_len = job->result_len;
	return put_job(st, txn, &cron, 0);
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

/* A running entry: who holds the job, under which claim, until when. Entries written
 * before owners carried a machine id are RUNNING_LEN_V1 long (machine id unknown). */
#define RUNNING_LEN_V1 (8 + 4 + 8 + 16 + 8 + 8 + 8)
#define RUNNING_LEN (RUNNING_LEN_V1 + 16)

struct running {
	th_owner owner;
	uint64_t gen;
	int64_t lease_until; /* th_clock_boot_us() */
};

static int put_running(th_store *st, MDB_txn *txn, uint64_t id, const struct running *r)
{
	uint8_t v[RUNNING_LEN];
	uint64_t k;
	th_put_be64(v, r->owner.instance);
	th_put_be32(v + 8, r->owner.pid);
	th_put_be64(v + 12, r->owner.start_ticks);
	memcpy(v + 20, r->owner.boot_id, 16);
	th_put_be64(v + 36, r->gen);
	th_put_be64(v + 44, (uint64_t)r->lease_until);
	th_put_be64(v + 52, r->owner.pidns);
	memcpy(v + 60, r->owner.machine_id, 16);
	MDB_val key = id_key(&k, id), val = {sizeof(v), v};
	return mdb_put(txn, st->running, &key, &val, 0);
}

static int get_running(const MDB_val *val, struct running *r)
{
	const uint8_t *v = val->mv_data;
	if (val->mv_size != RUNNING_LEN && val->mv_size != RUNNING_LEN_V1)
		return TH_EFORMAT;
	r->owner.instance = th_get_be64(v);
	r->owner.pid = th_get_be32(v + 8);
	r->owner.start_ticks = th_get_be64(v + 12);
	memcpy(r->owner.boot_id, v + 20, 16);
	r->gen = th_get_be64(v + 36);
	r->lease_until = (int64_t)th_get_be64(v + 44);
	r->owner.pidns = th_get_be64(v + 52);
	memset(r->owner.machine_id, 0, 16);
	if (val->mv_size == RUNNING_LEN)
		memcpy(r->owner.machine_id, v + 60, 16);
	return 0;
}

static int del_running(th_store *st, MDB_txn *txn, uint64_t id)
{
	uint64_t k;
	MDB_val key = id_key(&k, id);
	int rc = mdb_del(txn, st->running, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* ---- open and close ---- */

/* A store of the format before counts: every job into the by-status index and the
 * counts, once, in the transaction that opens it. */
static int recount(th_store *st, MDB_txn *txn)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->jobs, &cur);
	if (rc)
		return rc;
	MDB_val key, val;
	uint64_t n = 0;
	MDB_cursor_op op = MDB_FIRST;
	while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
		op = MDB_NEXT;
		th_job job;
		if (key.mv_size != 8 || th_record_decode(val.mv_data, val.mv_size, &job) ||
		    job.id != key_id(&key))
			continue; /* left for the check to report */
		if ((rc = index_status(st, txn, &job, 1)))
			break;
		n++;
	}
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND) {
		th_log_info("store", "%s: counted %llu jobs into the counts and the by-status "
			    "index (data format %u to %u)", st->dir, (unsigned long long)n,
			    FORMAT_UNCOUNTED, FORMAT_VERSION);
		rc = 0;
	}
	return rc;
}

/* Opens the tables: in a read transaction (ud NULL) those of a store of this format,
 * else MDB_NOTFOUND (a new store, or one of the format before); in a write transaction
 * (ud not NULL) it makes what is missing. A store of this format missing a table is
 * damaged: nothing is written to it. */
static int open_dbis(th_store *st, MDB_txn *txn, void *ud)
{
	unsigned c = ud ? MDB_CREATE : 0;
	MDB_stat ms;
	int rc = mdb_dbi_open(txn, NULL, 0, &st->main);
	if (rc || (rc = mdb_stat(txn, st->main, &ms)))
		return rc;
	bool fresh = ms.ms_entries == 0; /* no table yet: a new store */
	if ((rc = mdb_dbi_open(txn, "meta", fresh ? c : 0, &st->meta)) == MDB_NOTFOUND && !fresh) {
		th_log_error("store", "data dir damaged: %s/data.mdb: its meta table is missing",
			     st->dir);
		return TH_EDAMAGED;
	}
	if (rc)
		return rc;
	MDB_val key = {6, "format"}, val;
	uint8_t v[4];
	th_put_be32(v, FORMAT_VERSION);
	rc = mdb_get(txn, st->meta, &key, &val);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	uint32_t found = rc ? 0 : val.mv_size == 4 ? th_get_be32(val.mv_data) : 1;
	MDB_dbi jobs;
	if (!found && !fresh && mdb_dbi_open(txn, "jobs", MDB_INTEGERKEY, &jobs) == 0) {
		th_log_error("store", "data dir damaged: %s/data.mdb: it has jobs but no format "
			     "recorded",
			     st->dir);
		return TH_EDAMAGED;
	}
	if (found && found != FORMAT_VERSION && found != FORMAT_UNCOUNTED &&
	    found != FORMAT_UNRATED) {
		th_log_error("store", "data format version %u, this taskhost reads version %u",
			     found, FORMAT_VERSION);
		return TH_EFORMAT;
	}
	if (!ud && found != FORMAT_VERSION)
		return MDB_NOTFOUND;
	c = found == FORMAT_VERSION ? 0 : c;
	const char *name = NULL;
	if ((rc = mdb_dbi_open(txn, name = "jobs", c | MDB_INTEGERKEY, &st->jobs)) ||
	    (rc = mdb_dbi_open(txn, name = "blobs", c, &st->blobs)) ||
	    (rc = mdb_dbi_open(txn, name = "ready", c, &st->ready)) ||
	    (rc = mdb_dbi_open(txn, name = "running", c | MDB_INTEGERKEY, &st->running)) ||
	    (rc = mdb_dbi_open(txn, name = "schedule", c, &st->schedule)) ||
	    (rc = mdb_dbi_open(txn, name = "finished", c, &st->finished)) ||
	    (rc = mdb_dbi_open(txn, name = "unique", c, &st->unique)) ||
	    (rc = mdb_dbi_open(txn, name = "bystatus", c, &st->bystatus)) ||
	    (rc = mdb_dbi_open(txn, name = "counts", c, &st->counts)) ||
	    (rc = mdb_dbi_open(txn, name = "minutes", c, &st->minutes))) {
		if (rc != MDB_NOTFOUND && rc != MDB_INCOMPATIBLE)
			return rc;
		th_log_error("store", "data dir damaged: %s/data.mdb: its %s table is %s",
			     st->dir, name, rc == MDB_NOTFOUND ? "missing" : "of another kind");
		return TH_EDAMAGED;
	}
	if (found == FORMAT_UNCOUNTED && (rc = recount(st, txn)))
		return rc;
	if (found == FORMAT_VERSION)
		return 0;
	if (found)
		th_log_info("store", "%s: data format %u to %u (the minutes table, empty)", st->dir,
			    found, FORMAT_VERSION);
	val = (MDB_val){4, v};
	return mdb_put(txn, st->meta, &key, &val, 0);
}

/* An open that made data.mdb and failed before LMDB wrote its meta pages leaves no
 * empty file behind: the next open would take it for one cut short. */
static void drop_unmade(const char *path, bool found)
{
	struct stat sb;
	if (!found && lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0)
		unlink(path);
}

static void lmdb_close(th_store *st);

static int lmdb_open(th_store **out, const char *dir, const th_store_opts *opts)
{
	*out = NULL;
	th_store *st = calloc(1, sizeof(*st));
	if (!st || !(st->dir = strdup(dir))) {
		free(st);
		return TH_ENOMEM;
	}
	pthread_once(&guard_once, install_guard);
	st->ops = &th_store_lmdb;
	const th_lmdb_opts *lo = opts ? opts->lmdb : NULL;
	st->map_size = lo && lo->map_size ? lo->map_size : TH_LMDB_MAP_DEFAULT;
	st->max_map_size = lo && lo->max_map_size ? lo->max_map_size : TH_LMDB_MAX_MAP_DEFAULT;
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
	bool found = snprintf(path, sizeof(path), "%s/data.mdb", dir) < (int)sizeof(path) &&
		     stat(path, &fsb) == 0;
	bool exists = found && fsb.st_size > 0;
	/* an empty data.mdb beside no lock.mdb is another process's open making it, which
	 * this one may overtake to the lock: it is not a store that lost its bytes */
	char lpath[4096];
	struct stat lsb;
	bool used_before = exists || (found && snprintf(lpath, sizeof(lpath), "%s/lock.mdb", dir) <
						      (int)sizeof(lpath) && lstat(lpath, &lsb) == 0);
	unsigned flags = MDB_NOTLS;
	if (opts && opts->durability == TH_RELAXED)
		flags |= MDB_NOSYNC;
	int rc;
	st->rng = (uint64_t)th_clock_mono_us() * 0x9e3779b97f4a7c15ull | 1;
	if ((rc = th_envlock_open(&st->lock, dir, opts ? opts->data_dir_group : NULL,
				  MAX_READERS))) {
		lmdb_close(st);
		drop_unmade(path, found);
		return rc;
	}
	/* a data.mdb that was there before this open (not just made by it) must be whole */
	uint64_t short_at = 0, need_at = 0;
	if ((rc = check_data_file(dir, !used_before, &short_at, &need_at))) {
		lmdb_close(st);
		return rc;
	}
	/* th_envlock_open made both files (with the data dir's modes): LMDB creates none */
	if ((rc = mdb_env_create(&st->env)) || (rc = mdb_env_set_assert(st->env, on_assert)) ||
	    (rc = mdb_env_set_maxdbs(st->env, 12)) ||
	    (rc = mdb_env_set_maxreaders(st->env, MAX_READERS)) ||
	    (rc = mdb_env_set_mapsize(st->env, exists ? 0 : st->map_size)) ||
	    (rc = mdb_env_open(st->env, dir, flags, 0600))) {
		int err = rc == ENOENT || rc == EACCES || rc == ENOTDIR ? TH_ESYS
			  : rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ? TH_EFORMAT
			  : rc == ENOSPC ? TH_ENOSPC
			  : TH_EIO;
		if (rc == ENOSPC)
			th_log_error("store", "no space left on device: %s/data.mdb", dir);
		else
			th_log_error("store", "cannot open %s: %s", dir, mdb_strerror(rc));
		lmdb_close(st);
		drop_unmade(path, found);
		errno = rc > 0 ? rc : errno;
		return err;
	}
	int fd = -1;
	mdb_env_get_fd(st->env, &fd);
	if ((rc = th_envlock_opened(st->lock, fd))) {
		lmdb_close(st);
		return rc;
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
	note_map(st);
	if (need_at && !pages_past_end_free(st, short_at, need_at)) {
		short_file_damaged(dir, short_at, need_at);
		lmdb_close(st);
		return TH_EDAMAGED;
	}
	if (st->max_map_size < st->map_size)
		st->max_map_size = st->map_size;
	int dead = 0;
	mdb_reader_check(st->env, &dead);
	/* a store of this format opens without writing: a command that only reads never
	 * writes a page (LMDB's writes to a damaged page can do worse than fault) */
	MDB_txn *txn;
	if ((rc = txn_begin(st, MDB_RDONLY, &txn))) {
		lmdb_close(st);
		return map_err(rc, "opening the store");
	}
	GUARDED_READ(st, txn, rc, rc = open_dbis(st, txn, NULL));
	if (txn && rc == 0) {
		rc = mdb_txn_commit(txn); /* which keeps the tables' handles */
		pthread_rwlock_unlock(&st->resize);
	} else {
		txn_end(st, txn);
	}
	if (rc == MDB_NOTFOUND)
		rc = write_txn(st, "opening the store", open_dbis, st);
	if ((rc = map_err(rc, "opening the store"))) {
		lmdb_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

/* The single-machine coordination of the data dir (host/local/). */
static int lmdb_coord_open(th_store *st, th_coord **out)
{
	return th_coord_open_local(out, st->dir);
}

static void lmdb_close(th_store *st)
{
	if (!st)
		return;
	if (st->env)
		mdb_env_close(st->env);
	th_envlock_close(st->lock);
	pthread_rwlock_destroy(&st->resize);
	free(st->tally);
	free(st->dir);
	free(st);
}

/* ---- add ---- */

struct add_args {
	const th_store_new *jobs;
	size_t n;
	uint64_t *ids;
	bool *existed;
};

/* The job holding unique key k, if one is still waiting or running: its id, else 0. */
static uint64_t unique_holder(th_store *st, MDB_txn *txn, const char *k)
{
	MDB_val key = {strlen(k), (void *)k}, val;
	if (mdb_get(txn, st->unique, &key, &val) || val.mv_size != 8)
		return 0;
	th_job job;
	uint64_t id = th_get_be64(val.mv_data);
	if (get_job(st, txn, id, &job) || th_job_status_final(job.status))
		return 0;
	return id;
}

/* The id the next new job gets. It lives in the main database, whose page every commit
 * that touches a named database rewrites anyway, so keeping it costs no page; data
 * written before kept it in meta. */
static int get_next_id(th_store *st, MDB_txn *txn, uint64_t *next)
{
	MDB_val key = {7, "next_id"}, val;
	int rc = mdb_get(txn, st->main, &key, &val);
	if (rc == MDB_NOTFOUND)
		rc = mdb_get(txn, st->meta, &key, &val);
	*next = rc == 0 && val.mv_size == 8 ? th_get_be64(val.mv_data) : 1;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int put_next_id(th_store *st, MDB_txn *txn, uint64_t next)
{
	uint8_t v[8];
	th_put_be64(v, next);
	MDB_val key = {7, "next_id"}, val = {8, v};
	return mdb_put(txn, st->main, &key, &val, 0);
}

static int add_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct add_args *a = ud;
	uint64_t next, bytes = 0;
	for (size_t i = 0; i < a->n; i++)
		bytes += a->jobs[i].input_len + TH_RECORD_MAX;
	if (!room_for(st, txn, bytes, reserve_bytes(st)))
		return TH_EFULL; /* what is left is for the outcomes of the jobs there are */
	int rc = get_next_id(st, txn, &next);
	if (rc)
		return rc;
	int64_t now = th_clock_now_us();
	for (size_t i = 0; i < a->n; i++) {
		const th_store_new *n = &a->jobs[i];
		if (a->existed)
			a->existed[i] = false;
		uint64_t holder = n->unique ? unique_holder(st, txn, n->unique) : 0;
		if (holder) {
			a->ids[i] = holder;
			if (a->existed)
				a->existed[i] = true;
			continue;
		}
		th_job job;
		th_lifecycle_new_job(n, next++, now, &job);
		if (n->unique) {
			MDB_val uk = {strlen(n->unique), (void *)n->unique}, uv = {8, NULL};
			uint8_t idb[8];
			th_put_be64(idb, job.id);
			uv.mv_data = idb;
			if ((rc = mdb_put(txn, st->unique, &uk, &uv, 0)) ||
			    (rc = put_blob(st, txn, job.id, TH_BLOB_UNIQUE, n->unique,
					   strlen(n->unique))))
				return rc;
		}
		if ((rc = put_job(st, txn, &job, MDB_APPEND)) ||
		    (n->input_len && (rc = put_blob(st, txn, job.id, TH_BLOB_INPUT, n->input,
						    n->input_len))) ||
		    (n->cron && (rc = put_blob(st, txn, job.id, TH_BLOB_CRON, n->cron,
					       strlen(n->cron)))))
			return rc;
		if (job.status == TH_JOB_QUEUED)
			rc = put_ready(st, txn, &job);
		else if (job.due_us > 0)
			rc = put_timed(txn, st->schedule, job.due_us, job.id);
		if (rc)
			return rc;
		a->ids[i] = job.id;
	}
	return put_next_id(st, txn, next);
}

static int lmdb_add(th_store *st, const th_store_new *jobs, size_t n, uint64_t *ids,
			bool *existed)
{
	struct add_args a = {jobs, n, ids, existed};
	return write_txn(st, "adding jobs", add_fn, &a);
}

/* ---- reads ---- */

static int lmdb_get(th_store *st, uint64_t id, th_job *out)
{
	MDB_txn *txn;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading a job");
	GUARDED_READ(st, txn, rc, rc = get_job(st, txn, id, out));
	txn_end(st, txn);
	return map_err(rc, "reading a job");
}

static int lmdb_blob(th_store *st, uint64_t id, enum th_blob kind, void **data, size_t *len)
{
	*data = NULL;
	*len = 0;
	MDB_txn *txn;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading job data");
	th_job job;
	uint8_t k[9];
	th_put_be64(k, id);
	k[8] = (uint8_t)kind;
	MDB_val key = {9, k}, val = {0, NULL};
	GUARDED_READ(st, txn, rc, {
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
	});
	txn_end(st, txn);
	return map_err(rc, "reading job data");
}

#define LIST_CHUNK 256

/* Reads up to LIST_CHUNK matching jobs after (or before, reverse) *pos into out. */
static int list_chunk(th_store *st, unsigned mask, uint64_t *pos, bool reverse, bool *end,
		      th_job *out, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	*n = 0;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return rc;
	GUARDED_READ(st, txn, rc, {
		if ((rc = open_cursor(txn, st->jobs, &cur)) == 0) {
			uint64_t k;
			MDB_val key = id_key(&k, 0), val;
			MDB_cursor_op op;
			if (!*pos) {
				op = reverse ? MDB_LAST : MDB_FIRST;
			} else if (!reverse) {
				key = id_key(&k, *pos + 1);
				op = MDB_SET_RANGE;
			} else {
				/* position at the first id >= pos, then step back to the one before */
				key = id_key(&k, *pos);
				rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
				op = rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV;
			}
			while (*n < LIST_CHUNK && (rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
				op = reverse ? MDB_PREV : MDB_NEXT;
				uint64_t id = *pos;
				if ((rc = walk_step(st, "jobs", &key, reverse, &id)))
					break;
				th_job *job = &out[*n];
				if (th_record_decode(val.mv_data, val.mv_size, job) || job->id != id) {
					rc = damaged_record(st, id);
					break;
				}
				*pos = id;
				if (mask & (1u << job->status))
					(*n)++;
			}
			close_cursor(cur);
		}
	});
	*end = rc == MDB_NOTFOUND;
	txn_end(st, txn);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int id_asc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int id_desc(const void *a, const void *b)
{
	return id_asc(b, a);
}

/* The ids of up to `max` jobs of one status past pos (before it, reverse; pos 0: from
 * the end) from the by-status index into ids; *all when that is every one left. */
static int status_range(MDB_cursor *cur, int s, uint64_t pos, bool reverse, size_t max,
			uint64_t *ids, size_t *n, bool *all)
{
	uint8_t k[9];
	MDB_val key = status_key(k, s, reverse ? (pos ? pos : UINT64_MAX) : pos + 1), val;
	MDB_cursor_op op = MDB_SET_RANGE;
	int rc;
	if (reverse) {
		rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
		if (rc && rc != MDB_NOTFOUND)
			return rc;
		op = rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV;
	}
	size_t got = 0;
	while (got < max && (rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
		op = reverse ? MDB_PREV : MDB_NEXT;
		const uint8_t *p = key.mv_data;
		if (key.mv_size != 9 || p[0] != s)
			break;
		ids[(*n)++] = th_get_be64(p + 1);
		got++;
	}
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	*all = got < max;
	return 0;
}

/* list_chunk for some statuses: from the by-status index, each status's range read up
 * to a chunk and merged in id order, so no job of another status is read. */
static int list_chunk_indexed(th_store *st, unsigned mask, uint64_t *pos, bool reverse,
			      bool *end, th_job *out, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *cur = NULL;
	*n = 0;
	*end = false;
	uint64_t *ids = malloc(TH_JOB_STATUS_MAX * LIST_CHUNK * sizeof(*ids));
	if (!ids)
		return TH_ENOMEM;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc) {
		free(ids);
		return rc;
	}
	GUARDED_READ(st, txn, rc, {
		size_t nids = 0;
		bool all = true;
		if ((rc = open_cursor(txn, st->bystatus, &cur)) == 0) {
			for (int s = 1; s <= TH_JOB_STATUS_MAX && rc == 0; s++) {
				bool done = true;
				if (mask & (1u << s))
					rc = status_range(cur, s, *pos, reverse, LIST_CHUNK, ids,
							  &nids, &done);
				all = all && done;
			}
			close_cursor(cur);
		}
		qsort(ids, nids, sizeof(*ids), reverse ? id_desc : id_asc);
		for (size_t i = 0; rc == 0 && i < nids && *n < LIST_CHUNK; i++) {
			*pos = ids[i];
			th_job *job = &out[*n];
			rc = get_job(st, txn, ids[i], job);
			if (rc == MDB_NOTFOUND || (rc == 0 && !(mask & (1u << job->status)))) {
				rc = 0; /* an index entry of no such job: the check reports it */
				continue;
			}
			if (rc == 0)
				(*n)++;
		}
		*end = rc == 0 && all && nids <= LIST_CHUNK;
	});
	txn_end(st, txn);
	free(ids);
	return rc;
}

#define STATUS_MASK_ALL (((1u << (TH_JOB_STATUS_MAX + 1)) - 1) & ~1u)

static int lmdb_list(th_store *st, unsigned mask, uint64_t from, bool reverse,
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
		if ((mask & STATUS_MASK_ALL) == STATUS_MASK_ALL)
			rc = list_chunk(st, mask, &pos, reverse, &end, chunk, &n);
		else
			rc = list_chunk_indexed(st, mask, &pos, reverse, &end, chunk, &n);
		if (rc)
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

/* Every entry of the counts table, summed per status (counts) and, when fn is given,
 * per queue into *t (one tally per queue, in queue order). */
static int read_counts(th_store *st, uint64_t counts[TH_JOB_STATUS_MAX + 1],
		       struct tally **t, size_t *n, size_t *cap)
{
	memset(counts, 0, sizeof(uint64_t) * (TH_JOB_STATUS_MAX + 1));
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading the counts");
	GUARDED_READ(st, txn, rc, {
		if ((rc = open_cursor(txn, st->counts, &cur)) == 0) {
			MDB_val key, val;
			MDB_cursor_op op = MDB_FIRST;
			char queue[TH_QUEUE_NAME_MAX + 1];
			int s;
			while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
				op = MDB_NEXT;
				if (!count_key_parse(&key, queue, &s))
					continue; /* the check reports it */
				uint64_t c = count_val(&val);
				counts[s] += c;
				struct tally *e = t ? tally_of(t, n, cap, queue) : NULL;
				if (t && !e) {
					rc = TH_ENOMEM;
					break;
				}
				if (e)
					e->n[s] = (int64_t)c;
			}
			close_cursor(cur);
		}
	});
	txn_end(st, txn);
	return rc == MDB_NOTFOUND ? 0 : map_err(rc, "reading the counts");
}

static int lmdb_count(th_store *st, uint64_t counts[TH_JOB_STATUS_MAX + 1])
{
	return read_counts(st, counts, NULL, NULL, NULL);
}

static int lmdb_count_queues(th_store *st, th_store_queue_fn fn, void *ud)
{
	uint64_t total[TH_JOB_STATUS_MAX + 1], counts[TH_JOB_STATUS_MAX + 1];
	struct tally *t = NULL;
	size_t n = 0, cap = 0;
	int rc = read_counts(st, total, &t, &n, &cap);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		for (int s = 0; s <= TH_JOB_STATUS_MAX; s++)
			counts[s] = (uint64_t)t[i].n[s];
		if (fn(ud, t[i].queue, counts))
			break;
	}
	free(t);
	return rc;
}

static int lmdb_finished_since(th_store *st, int64_t since, uint64_t *n)
{
	*n = 0;
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading finished jobs");
	GUARDED_READ(st, txn, rc, {
		if ((rc = open_cursor(txn, st->finished, &cur)) == 0) {
			uint8_t k[16] = {0};
			th_put_be64(k, (uint64_t)(since > 0 ? since : 0));
			MDB_val key = {16, k}, val;
			MDB_cursor_op op = MDB_SET_RANGE;
			while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
				op = MDB_NEXT;
				(*n)++;
			}
			close_cursor(cur);
		}
	});
	txn_end(st, txn);
	return rc == MDB_NOTFOUND ? 0 : map_err(rc, "reading finished jobs");
}

static int lmdb_minutes(th_store *st, const char *queue, int64_t first, size_t n,
			th_minute *out)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading the minutes");
	GUARDED_READ(st, txn, rc, {
		if ((rc = open_cursor(txn, st->minutes, &cur)) == 0) {
			uint8_t k[MINUTE_KEY_MAX];
			MDB_val key = {minute_key(k, first, ""), k}, val;
			MDB_cursor_op op = MDB_SET_RANGE;
			char q[TH_QUEUE_NAME_MAX + 1];
			int64_t m;
			while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
				op = MDB_NEXT;
				if (!minute_key_parse(&key, &m, q) || val.mv_size != MINUTE_VAL)
					continue; /* the check reports it */
				if (m >= first + (int64_t)n)
					break;
				if (m < first || (queue && strcmp(q, queue) != 0))
					continue;
				const uint8_t *v = val.mv_data;
				th_minute *o = &out[m - first];
				o->added += th_get_be64(v);
				o->completed += th_get_be64(v + 8);
				o->failed += th_get_be64(v + 16);
			}
			close_cursor(cur);
		}
	});
	txn_end(st, txn);
	return rc == MDB_NOTFOUND ? 0 : map_err(rc, "reading the minutes");
}

static int lmdb_pending(th_store *st, uint64_t *queued, uint64_t *processing)
{
	*queued = *processing = 0;
	MDB_txn *txn;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading the queue");
	MDB_stat ready, running;
	GUARDED_READ(st, txn, rc, {
		if ((rc = mdb_stat(txn, st->ready, &ready)) == 0 &&
		    (rc = mdb_stat(txn, st->running, &running)) == 0) {
			*queued = ready.ms_entries;
			*processing = running.ms_entries;
		}
	});
	txn_end(st, txn);
	return map_err(rc, "reading the queue");
}

static size_t paused_key(char *k, const char *queue)
{
	return (size_t)snprintf(k, 8 + TH_QUEUE_NAME_MAX + 1, "paused:%s", queue ? queue : "");
}

static bool queue_paused(th_store *st, MDB_txn *txn, const char *queue)
{
	char k[8 + TH_QUEUE_NAME_MAX + 1];
	MDB_val key = {paused_key(k, queue), k}, val;
	return mdb_get(txn, st->meta, &key, &val) == 0;
}

static int lmdb_peek(th_store *st, const char *queue, bool *ready, int64_t *next_due)
{
	*ready = false;
	*next_due = 0;
	MDB_txn *txn;
	MDB_cursor *cur;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading the queue");
	GUARDED_READ(st, txn, rc, {
		if ((rc = open_cursor(txn, st->schedule, &cur)) == 0) {
			MDB_val key, val;
			if ((rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST)) == 0) {
				*next_due = (int64_t)th_get_be64(key.mv_data);
				*ready = *next_due <= th_clock_now_us(); /* a cycle would queue it */
			}
			close_cursor(cur);
		}
		if ((rc == 0 || rc == MDB_NOTFOUND) && !*ready && !queue_paused(st, txn, queue) &&
		    (rc = open_cursor(txn, st->ready, &cur)) == 0) {
			uint8_t k[READY_KEY_MAX];
			size_t plen = queue_prefix(k, queue);
			MDB_val key = {plen, k}, val;
			rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
			*ready = rc == 0 && key.mv_size == plen + 12 &&
				 memcmp(key.mv_data, k, plen) == 0;
			close_cursor(cur);
		}
	});
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

/* Takes a waiting job out of whichever index holds it. */
static int unindex_waiting(th_store *st, MDB_txn *txn, const th_job *job)
{
	int rc = 0;
	if (job->status == TH_JOB_QUEUED) {
		rc = del_ready(st, txn, job);
		rc = rc == MDB_NOTFOUND ? 0 : rc;
	} else if ((job->status == TH_JOB_DELAYED || job->status == TH_JOB_CRONJOB) &&
		   job->due_us > 0) {
		rc = del_timed(txn, st->schedule, job->due_us, job->id);
	}
	return rc;
}

struct cancel_args {
	uint64_t id;
	bool running;
};

static int cancel_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct cancel_args *a = ud;
	th_job job;
	a->running = false;
	int rc = get_job(st, txn, a->id, &job);
	if (rc)
		return rc;
	th_job was = job;
	rc = th_lifecycle_cancel(&job, th_clock_now_us());
	if (rc == TH_EBUSY) {
		a->running = true;
		return put_job(st, txn, &job, 0);
	}
	if (rc || (rc = unindex_waiting(st, txn, &was)) || (rc = index_finished(st, txn, &job)))
		return rc;
	return put_job(st, txn, &job, 0);
}

static int lmdb_cancel(th_store *st, uint64_t id)
{
	struct cancel_args a = {id, false};
	int rc = write_txn(st, "cancelling a job", cancel_fn, &a);
	return rc ? rc : a.running ? TH_EBUSY : 0;
}

static int start_fn(th_store *st, MDB_txn *txn, void *ud)
{
	th_job job;
	int rc = get_job(st, txn, *(uint64_t *)ud, &job);
	if (rc)
		return rc;
	th_job was = job;
	if ((rc = th_lifecycle_start(&job)) || (rc = unindex_waiting(st, txn, &was)))
		return rc;
	if ((rc = put_ready(st, txn, &job)))
		return rc;
	return put_job(st, txn, &job, 0);
}

static int lmdb_start(th_store *st, uint64_t id)
{
	return write_txn(st, "starting a job", start_fn, &id);
}

static int retry_fn(th_store *st, MDB_txn *txn, void *ud)
{
	th_job job;
	int rc = get_job(st, txn, *(uint64_t *)ud, &job);
	if (rc)
		return rc;
	int64_t finished = job.finished_us;
	if ((rc = th_lifecycle_retry(&job)) ||
	    (rc = del_timed(txn, st->finished, finished, job.id)))
		return rc;
	if ((rc = del_blob(st, txn, job.id, TH_BLOB_UNIQUE)) || (rc = put_ready(st, txn, &job)))
		return rc;
	return put_job(st, txn, &job, 0);
}

static int lmdb_retry(th_store *st, uint64_t id)
{
	return write_txn(st, "retrying a job", retry_fn, &id);
}

static int remove_fn(th_store *st, MDB_txn *txn, void *ud)
{
	th_job job;
	int rc = get_job(st, txn, *(uint64_t *)ud, &job);
	if (rc || (rc = th_lifecycle_remove(&job)))
		return rc;
	if ((rc = del_timed(txn, st->finished, job.finished_us, job.id)) ||
	    (rc = drop_unique(st, txn, &job)) || (rc = del_job(st, txn, &job)))
		return rc;
	return del_blobs(st, txn, job.id);
}

struct change_args {
	th_change what;
	const uint64_t *ids;
	size_t n;
	int *rcs;
};

/* Each job's change in turn; one its status refuses (found out before it writes
 * anything) is skipped, any other error ends the transaction. */
static int change_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct change_args *a = ud;
	for (size_t i = 0; i < a->n; i++) {
		uint64_t id = a->ids[i];
		struct cancel_args c = {id, false};
		int rc = a->what == TH_CHANGE_CANCEL ? cancel_fn(st, txn, &c)
			 : a->what == TH_CHANGE_RETRY ? retry_fn(st, txn, &id)
						      : remove_fn(st, txn, &id);
		if (rc == MDB_NOTFOUND)
			rc = TH_ENOTFOUND;
		if (rc && rc != TH_ESTATE && rc != TH_ENOTFOUND)
			return rc;
		a->rcs[i] = rc ? rc : c.running ? TH_EBUSY : 0;
	}
	return 0;
}

static int lmdb_change(th_store *st, th_change what, const uint64_t *ids, size_t n, int *rcs)
{
	struct change_args a = {what, ids, n, rcs};
	return write_txn(st, "changing jobs", change_fn, &a);
}

/* Reads a cron job's schedule. */
static int job_cron(th_store *st, MDB_txn *txn, const th_job *job, th_cron *cron)
{
	MDB_val v;
	int rc = get_blob(st, txn, job->id, TH_BLOB_CRON, &v);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	char spec[512], err[160];
	snprintf(spec, sizeof(spec), "%.*s", rc ? 0 : (int)v.mv_size, (const char *)v.mv_data);
	if (rc == 0 && th_cron_parse(spec, cron, err, sizeof(err)) == 0)
		return 0;
	th_log_error("store", "data dir damaged: %s/data.mdb: cron job %llu: its schedule is %s",
		     st->dir, (unsigned long long)job->id, rc ? "missing" : "damaged");
	return TH_EDAMAGED;
}

struct cron_args {
	uint64_t id;
	const char *spec;
	int catchup;  /* -1: keep */
	int paused;   /* -1: keep */
};

static int cron_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct cron_args *a = ud;
	th_job job;
	int rc = get_job(st, txn, a->id, &job);
	if (rc)
		return rc;
	if (job.status != TH_JOB_CRONJOB)
		return TH_ESTATE;
	if ((rc = unindex_waiting(st, txn, &job)))
		return rc;
	if (a->spec && (rc = put_blob(st, txn, job.id, TH_BLOB_CRON, a->spec, strlen(a->spec))))
		return rc;
	th_lifecycle_cron_flags(&job, a->catchup, a->paused);
	th_cron cron;
	if ((rc = job_cron(st, txn, &job, &cron)))
		return rc;
	/* the next fire time, from now: a paused cron job has none */
	job.due_us = th_lifecycle_cron_next(&job, &cron, th_clock_now_us());
	if (job.due_us && (rc = put_timed(txn, st->schedule, job.due_us, job.id)))
		return rc;
	return put_job(st, txn, &job, 0);
}

static int lmdb_cron_update(th_store *st, uint64_t id, const char *spec, int catchup)
{
	struct cron_args a = {id, spec, catchup, -1};
	return write_txn(st, "updating a cron job", cron_fn, &a);
}

static int lmdb_cron_pause(th_store *st, uint64_t id, bool paused)
{
	struct cron_args a = {id, NULL, -1, paused};
	return write_txn(st, paused ? "pausing a cron job" : "resuming a cron job", cron_fn, &a);
}

struct clean_args {
	int64_t before;
	uint64_t done;
	bool more;
	uint64_t chunk; /* jobs per transaction */
};

/* Removes up to a->chunk finished jobs, oldest first, so one clean of a long history
 * never needs one giant transaction. */
static int clean_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct clean_args *a = ud;
	MDB_cursor *cur;
	a->done = 0;
	a->more = false;
	int rc = mdb_cursor_open(txn, st->finished, &cur);
	if (rc)
		return rc;
	MDB_val key, val;
	while ((rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST)) == 0) {
		int64_t t = (int64_t)th_get_be64(key.mv_data);
		uint64_t id = th_get_be64((const uint8_t *)key.mv_data + 8);
		if (a->before && t >= a->before)
			break;
		if (a->done == a->chunk) {
			a->more = true;
			break;
		}
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
		th_job job;
		rc = get_job(st, txn, id, &job);
		if (rc == MDB_NOTFOUND || (rc == 0 && !th_job_status_final(job.status))) {
			rc = 0; /* an index entry left behind: the deletion is all it needed */
			continue;
		}
		if (rc || (rc = del_job(st, txn, &job)) ||
		    (rc = del_blobs(st, txn, id)) || (rc = drop_unique(st, txn, &job)))
			break;
		a->done++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int lmdb_clean(th_store *st, int64_t before, uint64_t *removed)
{
	struct clean_args a = {before, 0, false, CLEAN_CHUNK};
	*removed = 0;
	do {
		int rc = write_txn(st, "cleaning jobs", clean_fn, &a);
		if ((rc == TH_EFULL || rc == TH_ENOSPC || rc == TH_EIO) && a.chunk > 1) {
			/* a full map or disk: a smaller batch needs fewer new pages, and the
			 * pages it frees are reused by the next one */
			a.chunk /= 2;
			a.more = true;
			continue;
		}
		if (rc)
			return rc;
		*removed += a.done;
		a.chunk = a.chunk * 2 < CLEAN_CHUNK ? a.chunk * 2 : CLEAN_CHUNK;
	} while (a.more);
	return 0;
}

static int pause_fn(th_store *st, MDB_txn *txn, void *ud)
{
	const char **q = ud;
	char k[8 + TH_QUEUE_NAME_MAX + 1];
	MDB_val key = {paused_key(k, q[0]), k}, val = {1, "1"};
	int rc = q[1] ? mdb_put(txn, st->meta, &key, &val, 0) : mdb_del(txn, st->meta, &key, NULL);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int lmdb_pause_queue(th_store *st, const char *queue, bool paused)
{
	const char *q[2] = {queue, paused ? "" : NULL};
	return write_txn(st, paused ? "pausing a queue" : "resuming a queue", pause_fn, q);
}


struct writes_args {
	th_store_write *w;
	size_t n;
};

/* Each write in turn (th_store_writes): a refusal its status makes (found out before
 * it writes anything) is its own; any other error ends the transaction. */
static int writes_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct writes_args *a = ud;
	for (size_t i = 0; i < a->n; i++) {
		th_store_write *w = &a->w[i];
		struct add_args add = {w->jobs, w->n, w->ids, w->existed};
		struct cancel_args c = {w->id, false};
		struct cron_args cron = {w->id, w->spec, w->catchup, w->paused};
		const char *q[2] = {w->queue, w->paused ? "" : NULL};
		uint64_t id = w->id;
		int rc = w->kind == TH_WRITE_ADD      ? add_fn(st, txn, &add)
			 : w->kind == TH_WRITE_CANCEL ? cancel_fn(st, txn, &c)
			 : w->kind == TH_WRITE_START  ? start_fn(st, txn, &id)
			 : w->kind == TH_WRITE_RETRY  ? retry_fn(st, txn, &id)
			 : w->kind == TH_WRITE_CRON   ? cron_fn(st, txn, &cron)
						      : pause_fn(st, txn, q);
		if (rc == MDB_NOTFOUND)
			rc = TH_ENOTFOUND;
		if (rc && (w->kind == TH_WRITE_ADD || (rc != TH_ESTATE && rc != TH_ENOTFOUND)))
			return rc;
		w->rc = rc ? rc : c.running ? TH_EBUSY : 0;
	}
	return 0;
}

static int lmdb_writes(th_store *st, th_store_write *w, size_t n)
{
	struct writes_args a = {w, n};
	return write_txn(st, "writing jobs", writes_fn, &a);
}

static int lmdb_queue_paused(th_store *st, const char *queue, bool *paused)
{
	MDB_txn *txn;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading a queue");
	GUARDED_READ(st, txn, rc, *paused = queue_paused(st, txn, queue));
	txn_end(st, txn);
	return rc;
}

static int lmdb_cancel_requested(th_store *st, const uint64_t *ids, size_t n, bool *requested)
{
	MDB_txn *txn;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "reading jobs");
	GUARDED_READ(st, txn, rc, {
		for (size_t i = 0; i < n; i++) {
			th_job job;
			requested[i] = ids[i] && get_job(st, txn, ids[i], &job) == 0 &&
				       job.status == TH_JOB_PROCESSING &&
				       (job.flags & TH_JOB_CANCEL_REQUESTED);
		}
	});
	txn_end(st, txn);
	return rc;
}

/* The outcome as it is recorded: an error message cut to ERROR_MAX bytes and, when its
 * bytes (past BARE_KEEP) would eat into the last half of the reserve or `bare` asks,
 * without them (a completed job whose result is so dropped ends in error), saying so
 * in its error. *buf: what to free. */
static const th_outcome *fit_outcome(th_store *st, MDB_txn *txn, const th_outcome *o,
				     bool bare, th_outcome *copy, char **buf)
{
	*buf = NULL;
	size_t elen = o->error ? strlen(o->error) : 0;
	uint64_t keep = reserve_bytes(st) / 2;
	if ((!o->result_len && !elen) || (o->result_len <= BARE_KEEP && elen <= BARE_KEEP))
		return o; /* a few bytes: as little as the record itself */
	if (!bare && elen <= ERROR_MAX && room_for(st, txn, o->result_len + 2 * elen, keep))
		return o;
	const size_t note = 80;
	if (!(*buf = malloc((elen > ERROR_MAX ? ERROR_MAX : note) + note)))
		return o;
	*copy = *o;
	if (elen > ERROR_MAX) {
		memcpy(*buf, o->error, ERROR_MAX);
		snprintf(*buf + ERROR_MAX, note, "... (%zu bytes cut)", elen - ERROR_MAX);
		copy->error = *buf;
		if (!bare && room_for(st, txn, o->result_len + 2 * (uint64_t)ERROR_MAX + note, keep))
			return copy;
	}
	if (o->result_len) {
		snprintf(*buf, note, "result of %zu bytes did not fit in the database",
			 o->result_len);
		if (copy->status == TH_JOB_COMPLETED)
			copy->status = TH_JOB_ERROR;
	} else {
		snprintf(*buf, note, "error message of %zu bytes did not fit in the database", elen);
	}
	th_log_error("store", "job %llu: %s: recorded without it", (unsigned long long)o->id,
		     *buf);
	copy->result = NULL;
	copy->result_len = 0;
	copy->error = *buf;
	return copy;
}

static int record_outcome(th_store *st, MDB_txn *txn, const th_outcome *o,
			  const th_owner *owner, int64_t now, size_t *stale)
{
	th_job job;
	int rc = get_job(st, txn, o->id, &job);
	if (rc == MDB_NOTFOUND || (rc == 0 && !th_lifecycle_outcome_current(&job, o, owner))) {
		th_log_warn("store", "job %llu: outcome of a stale claim refused (the job was "
			    "taken back from this host)", (unsigned long long)o->id);
		(*stale)++;
		return 0;
	}
	if (rc)
		return rc;
	if ((rc = del_running(st, txn, job.id)))
		return rc;
	uint32_t attempt = job.attempts;
	int64_t began = job.started_us;
	bool history;
	th_job_status status = th_lifecycle_outcome(&job, o, now, next_random(st), &history);
	if (history && (rc = add_error_history(st, txn, job.id, attempt, began, now, o->error)))
		return rc;
	if (status == TH_JOB_QUEUED || status == TH_JOB_DELAYED) {
		if (status == TH_JOB_DELAYED) {
			rc = put_timed(txn, st->schedule, job.due_us, job.id);
		} else {
			rc = put_ready(st, txn, &job);
		}
		if (rc)
			return rc;
		/* to run again after a failure: keep why, for the user to see meanwhile */
		if (o->error && (rc = put_blob(st, txn, job.id, TH_BLOB_ERROR, o->error,
					       strlen(o->error))))
			return rc;
		return put_job(st, txn, &job, 0);
	}
	if ((rc = index_finished(st, txn, &job)))
		return rc;
	if (o->result_len &&
	    (rc = put_blob(st, txn, job.id, TH_BLOB_RESULT, o->result, o->result_len)))
		return rc;
	if (o->error && (rc = put_blob(st, txn, job.id, TH_BLOB_ERROR, o->error,
				       strlen(o->error))))
		return rc;
	if ((rc = put_job(st, txn, &job, 0)))
		return rc;
	return report_to_cron(st, txn, &job);
}

/* A job whose record or input is gone from the store cannot run: end it (or drop its
 * ready entry) so that it does not stop every claim behind it. */
static int bury_damaged(th_store *st, MDB_txn *txn, th_job *job, int64_t now)
{
	th_log_error("store", "job %llu: its input is missing from the store; ended in error",
		     (unsigned long long)job->id);
	static const char msg[] = "job input missing from the store (damaged data)";
	th_lifecycle_finish(job, TH_JOB_ERROR, now);
	int rc = index_finished(st, txn, job);
	if (rc || (rc = put_blob(st, txn, job->id, TH_BLOB_ERROR, msg, sizeof(msg) - 1)))
		return rc;
	return put_job(st, txn, job, 0);
}

/* The claim itself: the job (just read, out of the ready index) is owner's now. */
static int take(th_store *st, MDB_txn *txn, th_job *job, const th_owner *owner,
		int64_t lease_us, int64_t now)
{
	th_lifecycle_claim(job, owner, now);
	struct running r = {*owner, job->claim_gen, th_clock_boot_us() + lease_us};
	int rc = put_job(st, txn, job, 0);
	return rc ? rc : put_running(st, txn, job->id, &r);
}

/* Claims the first ready job of the queue into c->claims[c->nclaimed] (`first`: the
 * cursor is not placed yet). MDB_NOTFOUND when the queue is empty; EAGAIN when it took
 * a damaged job out of line instead. */
static int claim_one(th_store *st, MDB_txn *txn, MDB_cursor *cur, th_cycle *c, int64_t now,
		     bool first)
{
	uint8_t k[READY_KEY_MAX];
	size_t plen = queue_prefix(k, c->queue);
	MDB_val key = {plen, k}, val;
	/* one descent for the first claim; after a delete, MDB_NEXT stands on the entry
	 * that followed the deleted one: the next in line */
	int rc = mdb_cursor_get(cur, &key, &val, first ? MDB_SET_RANGE : MDB_NEXT);
	if (rc)
		return rc;
	if (key.mv_size != plen + 12 || memcmp(key.mv_data, k, plen) != 0)
		return MDB_NOTFOUND;
	uint64_t id = th_get_be64((const uint8_t *)key.mv_data + plen + 4);
	if ((rc = mdb_cursor_del(cur, 0)))
		return rc;
	th_claim *cl = &c->claims[c->nclaimed];
	th_job *job = &cl->job;
	rc = get_job(st, txn, id, job);
	if (rc == MDB_NOTFOUND || rc == TH_EDAMAGED) {
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
		th_put_be64(bk, id);
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
	if ((rc = take(st, txn, job, c->owner, c->lease_us, now))) {
		th_claim_clear(cl);
		return rc;
	}
	c->nclaimed++;
	return 0;
}

/* A claim (id, gen) that never committed leaves its job queued, one claim generation
 * behind gen. If job id is so (*behind), it is read into *job and taken out of the ready
 * index; a job that moved on, or whose record is missing or damaged, is not. */
static int unqueue_behind(th_store *st, MDB_txn *txn, uint64_t id, uint64_t gen, th_job *job,
			  bool *behind)
{
	int rc = get_job(st, txn, id, job);
	*behind = rc == 0 && job->status == TH_JOB_QUEUED && job->claim_gen + 1 == gen;
	if (*behind)
		rc = del_ready(st, txn, job);
	return rc == MDB_NOTFOUND || rc == TH_EDAMAGED ? 0 : rc;
}

/* Claims again, exactly, a job started under a claim (id, gen) whose commit failed: the
 * same generation, if the job is still queued one generation behind it; else *lost. */
static int retake(th_store *st, MDB_txn *txn, uint64_t id, uint64_t gen, const th_owner *owner,
		  int64_t lease_us, int64_t now, bool *lost)
{
	th_job job;
	bool behind;
	int rc = unqueue_behind(st, txn, id, gen, &job, &behind);
	*lost = rc == 0 && !behind;
	if (rc || !behind)
		return rc;
	return take(st, txn, &job, owner, lease_us, now);
}

static void clear_claims(th_cycle *c)
{
	for (size_t i = 0; i < c->nclaimed; i++)
		th_claim_clear(&c->claims[i]);
	c->nclaimed = 0;
}

static int take_next_id(th_store *st, MDB_txn *txn, uint64_t *id)
{
	int rc = get_next_id(st, txn, id);
	return rc ? rc : put_next_id(st, txn, *id + 1);
}

/* A cron job fires: a run of its task with its input, queued now. */
static int fire_cron(th_store *st, MDB_txn *txn, th_job *cron, int64_t now)
{
	uint64_t id;
	int rc = take_next_id(st, txn, &id);
	if (rc)
		return rc;
	th_job run;
	th_lifecycle_cron_run(cron, id, now, &run);
	if ((rc = put_job(st, txn, &run, MDB_APPEND)) ||
	    (rc = copy_blob(st, txn, cron->id, run.id, TH_BLOB_INPUT)) ||
	    (rc = put_ready(st, txn, &run)))
		return rc;
	return 0;
}

/* Queues the scheduled jobs that are due and fires the cron jobs whose time came. */
static int promote_due(th_store *st, MDB_txn *txn, int64_t now, th_cycle *c)
{
	MDB_cursor *cur;
	int rc = mdb_cursor_open(txn, st->schedule, &cur);
	if (rc)
		return rc;
	MDB_val key, val;
	c->next_due = 0;
	while ((rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST)) == 0) {
		int64_t due = (int64_t)th_get_be64(key.mv_data);
		uint64_t id = th_get_be64((const uint8_t *)key.mv_data + 8);
		if (due > now || c->promoted == PROMOTE_MAX) {
			c->next_due = due;
			break;
		}
		if ((rc = mdb_cursor_del(cur, 0)))
			break;
		th_job job;
		rc = get_job(st, txn, id, &job);
		if (rc == MDB_NOTFOUND || rc == TH_EDAMAGED || (rc == 0 && job.due_us != due)) {
			rc = 0; /* an entry left behind by a reschedule */
			continue;
		}
		if (rc)
			break;
		if (job.status == TH_JOB_DELAYED) {
			th_lifecycle_start(&job);
			if ((rc = put_ready(st, txn, &job)))
				break;
		} else if (job.status == TH_JOB_CRONJOB) {
			th_cron cron;
			if ((rc = job_cron(st, txn, &job, &cron)) == TH_EDAMAGED) {
				rc = 0; /* it fires no more: logged; the others do */
				continue;
			}
			if (rc)
				break;
			if (!room_for(st, txn, job.input_len + TH_RECORD_MAX, reserve_bytes(st))) {
				th_log_error("store", "cron job %llu: fire skipped: database full",
					     (unsigned long long)job.id);
			} else if (th_lifecycle_cron_step(&job, due, now) == TH_CRON_FIRE) {
				if ((rc = fire_cron(st, txn, &job, now)))
					break;
			} else {
				th_log_info("store", "cron job %llu: fire time missed while no host "
					    "ran; skipped", (unsigned long long)job.id);
			}
			job.due_us = th_lifecycle_cron_next(&job, &cron, now);
			if (job.due_us && (rc = put_timed(txn, st->schedule, job.due_us, job.id)))
				break;
		} else {
			continue;
		}
		if ((rc = put_job(st, txn, &job, 0)))
			break;
		c->promoted++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

struct cycle_args {
	th_cycle *c;
	bool bare; /* outcomes without their bytes */
};

static int cycle_fn(th_store *st, MDB_txn *txn, void *ud)
{
	th_cycle *c = ((struct cycle_args *)ud)->c;
	clear_claims(c); /* from a run before the map grew */
	c->stale = 0;
	c->promoted = 0;
	int64_t now = th_clock_now_us();
	int rc;
	for (size_t i = 0; i < c->nout; i++) {
		th_outcome copy;
		char *buf;
		const th_outcome *o = fit_outcome(st, txn, &c->outs[i],
						  ((struct cycle_args *)ud)->bare, &copy, &buf);
		rc = record_outcome(st, txn, o, c->owner, now, &c->stale);
		free(buf);
		if (rc)
			return rc;
	}
	if ((rc = promote_due(st, txn, now, c)))
		return rc;
	if (c->started) {
		/* a retry after the map grew: the jobs claimed the first time run already;
		 * the same claims again, not new ones */
		c->lost = 0;
		for (size_t i = 0; i < c->started; i++) {
			bool lost;
			if ((rc = retake(st, txn, c->claims[i].job.id, c->claims[i].job.claim_gen,
					 c->owner, c->lease_us, now, &lost)))
				return rc;
			c->lost += lost;
		}
		return 0;
	}
	if (c->max == 0 || queue_paused(st, txn, c->queue))
		return 0;
	MDB_cursor *cur;
	if ((rc = mdb_cursor_open(txn, st->ready, &cur)))
		return rc;
	bool first = true;
	while (c->nclaimed < c->max &&
	       ((rc = claim_one(st, txn, cur, c, now, first)) == 0 || rc == EAGAIN))
		first = false;
	mdb_cursor_close(cur);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return rc;
	if (c->start && c->nclaimed) {
		c->start(c->start_ud, c->claims, c->nclaimed);
		for (size_t i = 0; i < c->nclaimed; i++)
			c->claims[i].input = NULL; /* start's now */
		c->started = c->nclaimed;
		c->nclaimed = 0;
	}
	return 0;
}

static int lmdb_cycle(th_store *st, th_cycle *c)
{
	c->nclaimed = 0;
	c->started = 0;
	c->lost = 0;
	struct cycle_args a = {c, false};
	int rc = write_txn(st, "recording outcomes and claiming", cycle_fn, &a);
	if ((rc == TH_EFULL || rc == TH_ENOSPC) && c->nout && !c->started) {
		/* the last resort at a full map: the outcomes without their bytes, for which
		 * the reserve is kept */
		a.bare = true;
		rc = write_txn(st, "recording outcomes and claiming", cycle_fn, &a);
	}
	if (rc) /* claims filled before a failed commit are void */
		clear_claims(c);
	return rc;
}

struct confirm_args {
	const th_owner *owner;
	int64_t lease_us;
	const uint64_t *pairs;
	size_t n;
	bool *lost;
};

static int confirm_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct confirm_args *a = ud;
	int64_t now = th_clock_now_us();
	for (size_t i = 0; i < a->n; i++) {
		int rc = retake(st, txn, a->pairs[2 * i], a->pairs[2 * i + 1], a->owner,
				a->lease_us, now, &a->lost[i]);
		if (rc)
			return rc;
	}
	return 0;
}

static int lmdb_confirm(th_store *st, const th_owner *owner, int64_t lease_us,
			const uint64_t *pairs, size_t n, bool *lost)
{
	struct confirm_args a = {owner, lease_us, pairs, n, lost};
	return write_txn(st, "claiming started jobs again", confirm_fn, &a);
}

struct renew_args {
	const th_owner *owner;
	int64_t until;
	size_t n;
};

/* The next entry of the running index (*op: MDB_FIRST, then MDB_NEXT), in id order:
 * *id and its value (*ok false for one of another format). */
static int next_running(th_store *st, MDB_cursor *cur, MDB_cursor_op *op, uint64_t *id,
			struct running *r, bool *ok)
{
	MDB_val key, val;
	int rc = mdb_cursor_get(cur, &key, &val, *op);
	*op = MDB_NEXT;
	if (rc || (rc = walk_step(st, "running", &key, false, id)))
		return rc;
	*ok = get_running(&val, r) == 0;
	return 0;
}

static int renew_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct renew_args *a = ud;
	MDB_cursor *cur;
	a->n = 0;
	int rc = mdb_cursor_open(txn, st->running, &cur);
	if (rc)
		return rc;
	MDB_cursor_op op = MDB_FIRST;
	uint64_t id = 0;
	struct running r;
	bool ok;
	while ((rc = next_running(st, cur, &op, &id, &r, &ok)) == 0) {
		if (!ok || r.owner.instance != a->owner->instance)
			continue;
		r.lease_until = a->until;
		if ((rc = put_running(st, txn, id, &r)))
			break;
		a->n++;
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

static int lmdb_renew(th_store *st, const th_owner *owner, int64_t lease_us, size_t *n)
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
	enum th_gone why;
};

/* A job taken back from a host that is gone (th_lifecycle_give_back): cancelled when a
 * cancel was asked while it ran, queued again while it has attempts left, else ended in
 * error saying why. Not in the ready index when called. */
static int give_back(th_store *st, MDB_txn *txn, th_job *job, enum th_gone why, int64_t now)
{
	int rc;
	char msg[160];
	int64_t began = job->started_us;
	th_job_status to = th_lifecycle_give_back(job, why, now, msg, sizeof(msg));
	if (to == TH_JOB_QUEUED) {
		if ((rc = put_ready(st, txn, job)))
			return rc;
	} else {
		if ((rc = index_finished(st, txn, job)) ||
		    (to == TH_JOB_ERROR &&
		     (rc = add_error_history(st, txn, job->id, job->attempts, began, now,
					     msg))) ||
		    (rc = put_blob(st, txn, job->id, TH_BLOB_ERROR, msg, strlen(msg))))
			return rc;
	}
	th_log_warn("store", "job %llu: %s", (unsigned long long)job->id, msg);
	if ((rc = put_job(st, txn, job, 0)) == 0 && th_job_status_final(job->status))
		rc = report_to_cron(st, txn, job);
	return rc;
}

struct recover_args {
	const th_owner *self;
	struct orphan *orphans;
	size_t n, done;
	th_recovered *by;
};

static int recover_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct recover_args *a = ud;
	int64_t now = th_clock_now_us();
	a->done = 0;
	if (a->by)
		th_recovered_reset(a->by);
	for (size_t i = 0; i < a->n; i++) {
		const struct orphan *o = &a->orphans[i];
		th_job job;
		int rc = get_job(st, txn, o->id, &job);
		if (rc == MDB_NOTFOUND || rc == TH_EDAMAGED) {
			if (rc == TH_EDAMAGED) /* logged: the others are still taken back */
				th_log_warn("store", "job %llu: not recovered: its record is damaged",
					    (unsigned long long)o->id);
			continue;
		}
		if (rc)
			return rc;
		if (job.status != TH_JOB_PROCESSING || job.claim_gen != o->gen)
			continue; /* finished or re-claimed since the scan */
		if ((rc = del_running(st, txn, job.id)) ||
		    (rc = give_back(st, txn, &job, o->why, now)) ||
		    (rc = th_recovered_add(a->by, &job)))
			return rc;
		a->done++;
	}
	return 0;
}

struct started_args {
	const uint64_t *pairs;
	size_t n, done;
};

/* Jobs a dead host started while their claim was being committed, and that claim never
 * made it: the job is queued still, one claim generation behind. Its attempt counts. */
static int started_fn(th_store *st, MDB_txn *txn, void *ud)
{
	struct started_args *a = ud;
	int64_t now = th_clock_now_us();
	a->done = 0;
	for (size_t i = 0; i < a->n; i++) {
		th_job job;
		bool behind;
		int rc = unqueue_behind(st, txn, a->pairs[2 * i], a->pairs[2 * i + 1], &job,
					&behind);
		if (rc)
			return rc;
		if (!behind)
			continue; /* the claim committed, or the job moved on since */
		if ((rc = give_back(st, txn, &job, TH_GONE_STARTING, now)))
			return rc;
		a->done++;
	}
	return 0;
}

static int lmdb_recover_started(th_store *st, const uint64_t *pairs, size_t n, size_t *done)
{
	struct started_args a = {pairs, n, 0};
	int rc = write_txn(st, "counting attempts of a dead host", started_fn, &a);
	*done = rc ? 0 : a.done;
	return rc;
}

static int lmdb_recover(th_store *st, const th_owner *self, th_store_alive_fn alive,
			void *ud, size_t *n, th_recovered *by)
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
	struct orphan *volatile orphans = NULL;
	volatile size_t norphans = 0, cap = 0;
	int64_t now = th_clock_boot_us();
	GUARDED_READ(st, txn, rc, {
		if ((rc = open_cursor(txn, st->running, &cur)) == 0) {
			MDB_cursor_op op = MDB_FIRST;
			uint64_t id = 0;
			struct running r;
			bool ok;
			while ((rc = next_running(st, cur, &op, &id, &r, &ok)) == 0) {
				if (!ok || r.owner.instance == self->instance)
					continue;
				enum th_gone why;
				enum th_liveness live = alive ? alive(ud, &r.owner)
							      : TH_OWNER_UNKNOWN;
				if (!th_lifecycle_orphaned(live, r.lease_until, now, &why))
					continue;
				if (norphans == cap) {
					cap = cap ? cap * 2 : 16;
					struct orphan *o = realloc((struct orphan *)orphans,
								   cap * sizeof(*o));
					if (!o) {
						rc = ENOMEM;
						break;
					}
					orphans = o;
				}
				orphans[norphans++] = (struct orphan){id, r.gen, why};
			}
			close_cursor(cur);
		}
	});
	txn_end(st, txn);
	if (rc && rc != MDB_NOTFOUND) {
		free((struct orphan *)orphans);
		return map_err(rc, "scanning running jobs");
	}
	rc = 0;
	if (norphans) {
		struct recover_args a = {self, (struct orphan *)orphans, norphans, 0, by};
		rc = write_txn(st, "recovering jobs", recover_fn, &a);
		*n = rc ? 0 : a.done;
		if (rc && by)
			th_recovered_reset(by);
	}
	free((struct orphan *)orphans);
	return rc;
}

/* ---- check ---- */

struct check {
	th_store *st;
	MDB_txn *txn;
	th_store_problem_fn fn;
	void *ud;
	uint64_t problems, jobs, max_id;
	struct tally *tally; /* the records recounted, per queue */
	size_t ntally, tally_cap;
};

static void problem(struct check *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct check *c, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->problems++;
	c->fn(c->ud, line);
}

typedef void (*entry_fn)(struct check *c, const MDB_val *key, const MDB_val *val);

/* Every entry of a table, in order, bounded: a walk that goes back to an earlier key or
 * visits more entries than the table counts is a damaged tree, reported, and stops. */
static int check_table(struct check *c, MDB_dbi dbi, const char *name, bool intkey,
		       entry_fn fn)
{
	MDB_cursor *cur;
	MDB_stat ms;
	int rc = mdb_stat(c->txn, dbi, &ms);
	if (rc || (rc = open_cursor(c->txn, dbi, &cur)))
		return rc;
	MDB_val key, val;
	uint8_t prev[512];
	size_t plen = 0, seen = 0;
	uint64_t last = 0;
	MDB_cursor_op op = MDB_FIRST;
	while ((rc = mdb_cursor_get(cur, &key, &val, op)) == 0) {
		op = MDB_NEXT;
		int cmp = 1; /* of this key to the one before, in LMDB's order */
		if (!intkey && seen && key.mv_size <= sizeof(prev)) {
			cmp = memcmp(key.mv_data, prev, key.mv_size < plen ? key.mv_size : plen);
			cmp = cmp ? cmp : key.mv_size > plen ? 1 : -1;
		}
		bool back = intkey ? key.mv_size != 8 || (seen && key_id(&key) <= last)
				   : key.mv_size > sizeof(prev) || cmp <= 0;
		if (back || ++seen > ms.ms_entries) {
			problem(c, "the %s table: a damaged tree (%s after %zu entries); the walk "
				"stopped there", name, back ? "a key out of order" : "more entries "
				"than it counts", seen);
			break;
		}
		if (intkey) {
			last = key_id(&key);
		} else {
			memcpy(prev, key.mv_data, key.mv_size);
			plen = key.mv_size;
		}
		fn(c, &key, &val);
	}
	close_cursor(cur);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

/* The job of an index entry, in a status of mask: else reported (and false). */
static bool indexed_job(struct check *c, uint64_t id, const char *index, unsigned mask,
			th_job *job)
{
	int rc = get_job(c->st, c->txn, id, job);
	if (rc == MDB_NOTFOUND)
		problem(c, "job %llu: in the %s index but it has no record",
			(unsigned long long)id, index);
	else if (rc)
		problem(c, "job %llu: in the %s index but its record does not decode",
			(unsigned long long)id, index);
	else if (!(mask & (1u << job->status)))
		problem(c, "job %llu: in the %s index but its record says %s",
			(unsigned long long)id, index, th_job_status_name(job->status));
	else
		return true;
	return false;
}

static bool has_timed(struct check *c, MDB_dbi dbi, int64_t t, uint64_t id)
{
	uint8_t k[16];
	th_put_be64(k, (uint64_t)t);
	th_put_be64(k + 8, id);
	MDB_val key = {16, k}, val;
	return mdb_get(c->txn, dbi, &key, &val) == 0;
}

#define FINAL_MASK (1u << TH_JOB_COMPLETED | 1u << TH_JOB_ERROR | 1u << TH_JOB_CANCELLED)

static void check_job(struct check *c, const MDB_val *key, const MDB_val *val)
{
	th_store *st = c->st;
	uint64_t id = key_id(key);
	th_job job;
	c->jobs++;
	c->max_id = id > c->max_id ? id : c->max_id;
	if (th_record_decode(val->mv_data, val->mv_size, &job) || job.id != id) {
		problem(c, "job %llu: its record does not decode", (unsigned long long)id);
		return;
	}
	const char *status = th_job_status_name(job.status);
	struct tally *t = tally_of(&c->tally, &c->ntally, &c->tally_cap, job.queue);
	if (t)
		t->n[job.status]++;
	uint8_t k[READY_KEY_MAX], sk[9];
	MDB_val bk = status_key(sk, job.status, id), bv;
	if (mdb_get(c->txn, st->bystatus, &bk, &bv))
		problem(c, "job %llu: %s, but not in the by-status index", (unsigned long long)id,
			status);
	uint64_t ik;
	MDB_val rk = {ready_key(k, job.queue, job.priority, id), k}, v, jk = id_key(&ik, id);
	struct running r;
	if (job.status == TH_JOB_QUEUED && mdb_get(c->txn, st->ready, &rk, &v))
		problem(c, "job %llu: queued, but not in the ready index", (unsigned long long)id);
	if (job.status == TH_JOB_PROCESSING && mdb_get(c->txn, st->running, &jk, &v))
		problem(c, "job %llu: processing, but not in the running index",
			(unsigned long long)id);
	else if (job.status == TH_JOB_PROCESSING && (get_running(&v, &r) || r.gen != job.claim_gen))
		problem(c, "job %llu: its running entry is not of its claim", (unsigned long long)id);
	if ((job.status == TH_JOB_DELAYED || job.status == TH_JOB_CRONJOB) && job.due_us > 0 &&
	    !has_timed(c, st->schedule, job.due_us, id))
		problem(c, "job %llu: %s, but not in the schedule index", (unsigned long long)id,
			status);
	if (th_job_status_final(job.status) && !has_timed(c, st->finished, job.finished_us, id))
		problem(c, "job %llu: %s, but not in the finished index", (unsigned long long)id,
			status);
	if (job.input_len && (get_blob(st, c->txn, id, TH_BLOB_INPUT, &v) ||
			      v.mv_size != job.input_len))
		problem(c, "job %llu: its input of %llu bytes is missing or of another size",
			(unsigned long long)id, (unsigned long long)job.input_len);
	if (job.status == TH_JOB_CRONJOB && get_blob(st, c->txn, id, TH_BLOB_CRON, &v))
		problem(c, "cron job %llu: its schedule is missing", (unsigned long long)id);
	MDB_val uk;
	if ((job.flags & TH_JOB_UNIQUE) && !th_job_status_final(job.status) &&
	    (get_blob(st, c->txn, id, TH_BLOB_UNIQUE, &uk) ||
	     mdb_get(c->txn, st->unique, &uk, &v) || v.mv_size != 8 || th_get_be64(v.mv_data) != id))
		problem(c, "job %llu: its unique key is not in the unique index",
			(unsigned long long)id);
}

static void check_ready(struct check *c, const MDB_val *key, const MDB_val *val)
{
	(void)val;
	const uint8_t *p = key->mv_data;
	const uint8_t *nul = key->mv_size >= 13 ? memchr(p, 0, key->mv_size - 12) : NULL;
	if (!nul || (size_t)(nul - p) + 13 != key->mv_size) {
		problem(c, "the ready index: an entry of another format");
		return;
	}
	uint64_t id = th_get_be64(nul + 5);
	th_job job;
	uint8_t k[READY_KEY_MAX];
	if (indexed_job(c, id, "ready", 1u << TH_JOB_QUEUED, &job) &&
	    (ready_key(k, job.queue, job.priority, id) != key->mv_size ||
	     memcmp(k, p, key->mv_size) != 0))
		problem(c, "job %llu: in the ready index under another queue or priority than "
			"its record's", (unsigned long long)id);
}

static void check_running(struct check *c, const MDB_val *key, const MDB_val *val)
{
	struct running r;
	th_job job;
	uint64_t id = key_id(key);
	if (get_running(val, &r))
		problem(c, "job %llu: its running entry is of another format",
			(unsigned long long)id);
	else if (indexed_job(c, id, "running", 1u << TH_JOB_PROCESSING, &job) &&
		 job.claim_gen != r.gen)
		problem(c, "job %llu: in the running index under claim %llu, its record says %llu",
			(unsigned long long)id, (unsigned long long)r.gen,
			(unsigned long long)job.claim_gen);
}

static void check_timed(struct check *c, const MDB_val *key, bool finished)
{
	const char *name = finished ? "finished" : "schedule";
	if (key->mv_size != 16) {
		problem(c, "the %s index: an entry of another format", name);
		return;
	}
	int64_t t = (int64_t)th_get_be64(key->mv_data);
	uint64_t id = th_get_be64((const uint8_t *)key->mv_data + 8);
	th_job job;
	unsigned mask = finished ? FINAL_MASK : 1u << TH_JOB_DELAYED | 1u << TH_JOB_CRONJOB;
	if (indexed_job(c, id, name, mask, &job) && (finished ? job.finished_us : job.due_us) != t)
		problem(c, "job %llu: in the %s index at another time than its record's",
			(unsigned long long)id, name);
}

static void check_schedule(struct check *c, const MDB_val *key, const MDB_val *val)
{
	(void)val;
	check_timed(c, key, false);
}

static void check_finished(struct check *c, const MDB_val *key, const MDB_val *val)
{
	(void)val;
	check_timed(c, key, true);
}

static void check_unique(struct check *c, const MDB_val *key, const MDB_val *val)
{
	(void)key;
	th_job job;
	if (val->mv_size != 8)
		problem(c, "the unique index: an entry of another format");
	else
		indexed_job(c, th_get_be64(val->mv_data), "unique", ~FINAL_MASK, &job);
}

static void check_bystatus(struct check *c, const MDB_val *key, const MDB_val *val)
{
	(void)val;
	const uint8_t *p = key->mv_data;
	th_job job;
	if (key->mv_size != 9 || p[0] < 1 || p[0] > TH_JOB_STATUS_MAX)
		problem(c, "the by-status index: an entry of another format");
	else
		indexed_job(c, th_get_be64(p + 1), "by-status", 1u << p[0], &job);
}

/* The counts kept against the records recounted: each entry of the counts table is
 * compared, then taken out of the recount (set to -1); what is left was not kept. */
static void check_counts(struct check *c, const MDB_val *key, const MDB_val *val)
{
	char queue[TH_QUEUE_NAME_MAX + 1];
	int s;
	if (!count_key_parse(key, queue, &s) || val->mv_size != 8) {
		problem(c, "the counts table: an entry of another format");
		return;
	}
	struct tally *t = tally_of(&c->tally, &c->ntally, &c->tally_cap, queue);
	uint64_t kept = count_val(val), counted = t && t->n[s] > 0 ? (uint64_t)t->n[s] : 0;
	if (kept != counted)
		problem(c, "the counts: queue \"%s\", %s: %llu kept, %llu in the records",
			*queue ? queue : "default", th_job_status_name((th_job_status)s),
			(unsigned long long)kept, (unsigned long long)counted);
	if (t)
		t->n[s] = -1;
}

static void check_uncounted(struct check *c)
{
	for (size_t i = 0; i < c->ntally; i++)
		for (int s = 1; s <= TH_JOB_STATUS_MAX; s++)
			if (c->tally[i].n[s] > 0)
				problem(c, "the counts: queue \"%s\", %s: 0 kept, %llu in the "
					"records", *c->tally[i].queue ? c->tally[i].queue : "default",
					th_job_status_name((th_job_status)s),
					(unsigned long long)c->tally[i].n[s]);
}

static void check_blob(struct check *c, const MDB_val *key, const MDB_val *val)
{
	(void)val;
	static const char *const kinds[] = {"", "input", "result", "error", "errors", "cron",
					    "unique"};
	const uint8_t *k = key->mv_data;
	if (key->mv_size != 9 || k[8] < TH_BLOB_INPUT || k[8] > TH_BLOB_UNIQUE) {
		problem(c, "the blobs table: an entry of another format");
		return;
	}
	uint64_t id = th_get_be64(k), ik;
	MDB_val jk = id_key(&ik, id), v;
	if (mdb_get(c->txn, c->st->jobs, &jk, &v) == MDB_NOTFOUND)
		problem(c, "job %llu: its %s bytes are there but it has no record",
			(unsigned long long)id, kinds[k[8]]);
}

/* The minutes count what happened, which the records do not keep: only their form. */
static void check_minute(struct check *c, const MDB_val *key, const MDB_val *val)
{
	int64_t m;
	char q[TH_QUEUE_NAME_MAX + 1];
	if (!minute_key_parse(key, &m, q) || val->mv_size != MINUTE_VAL)
		problem(c, "the minutes table: an entry of another format");
}

static int lmdb_check(th_store *st, th_store_problem_fn fn, void *ud, uint64_t *jobs,
		      uint64_t *problems)
{
	*jobs = *problems = 0;
	MDB_txn *txn;
	int rc = txn_begin(st, MDB_RDONLY, &txn);
	if (rc)
		return map_err(rc, "checking the store");
	struct check c = {st, txn, fn, ud, 0, 0, 0, NULL, 0, 0};
	GUARDED_READ(st, txn, rc, {
		if ((rc = check_table(&c, st->jobs, "jobs", true, check_job)) == 0 &&
		    (rc = check_table(&c, st->ready, "ready", false, check_ready)) == 0 &&
		    (rc = check_table(&c, st->running, "running", true, check_running)) == 0 &&
		    (rc = check_table(&c, st->schedule, "schedule", false, check_schedule)) == 0 &&
		    (rc = check_table(&c, st->finished, "finished", false, check_finished)) == 0 &&
		    (rc = check_table(&c, st->unique, "unique", false, check_unique)) == 0 &&
		    (rc = check_table(&c, st->blobs, "blobs", false, check_blob)) == 0 &&
		    (rc = check_table(&c, st->bystatus, "by-status", false, check_bystatus)) == 0 &&
		    (rc = check_table(&c, st->counts, "counts", false, check_counts)) == 0 &&
		    (rc = check_table(&c, st->minutes, "minutes", false, check_minute)) == 0) {
			check_uncounted(&c);
			uint64_t next;
			if ((rc = get_next_id(st, txn, &next)) == 0 && c.max_id && next <= c.max_id)
				problem(&c, "the next id, %llu, is not past the last job's, %llu: "
					"ids would be given twice", (unsigned long long)next,
					(unsigned long long)c.max_id);
		}
	});
	txn_end(st, txn);
	free(c.tally);
	*jobs = c.jobs;
	*problems = c.problems;
	return map_err(rc, "checking the store");
}

void th_store_set_commit_hook(th_store *st, th_store_commit_hook fn, void *ud)
{
	atomic_store(&st->hook_ud, ud);
	atomic_store(&st->hook, fn);
}

const th_store_ops th_store_lmdb = {
	.name = "lmdb",
	.scheme = "lmdb",
	.open = lmdb_open,
	.close = lmdb_close,
	.coord_open = lmdb_coord_open,
	.add = lmdb_add,
	.cycle = lmdb_cycle,
	.confirm = lmdb_confirm,
	.renew = lmdb_renew,
	.recover = lmdb_recover,
	.recover_started = lmdb_recover_started,
	.cancel = lmdb_cancel,
	.start = lmdb_start,
	.retry = lmdb_retry,
	.change = lmdb_change,
	.cron_update = lmdb_cron_update,
	.cron_pause = lmdb_cron_pause,
	.pause_queue = lmdb_pause_queue,
	.clean = lmdb_clean,
	.writes = lmdb_writes,
	.get = lmdb_get,
	.blob = lmdb_blob,
	.list = lmdb_list,
	.count = lmdb_count,
	.count_queues = lmdb_count_queues,
	.finished_since = lmdb_finished_since,
	.minutes = lmdb_minutes,
	.pending = lmdb_pending,
	.peek = lmdb_peek,
	.queue_paused = lmdb_queue_paused,
	.cancel_requested = lmdb_cancel_requested,
	.check = lmdb_check,
};
