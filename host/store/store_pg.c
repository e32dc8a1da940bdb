/* The PostgreSQL backend of the store (th_store_pg): jobs as rows of taskhost.jobs,
 * claims by FOR UPDATE SKIP LOCKED on the partial index of ready jobs, leases on the
 * database's clock. It persists what the rules of lifecycle.c decide. */
#include "store/store_pg.h"

#include <libpq-fe.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "clock.h"
#include "coord.h"
#include "cron.h"
#include "error.h"
#include "lifecycle.h"
#include "log.h"
#include "store/store_pg_schema.h"

#define PROMOTE_MAX 1000   /* scheduled jobs queued per cycle */
#define CLEAN_CHUNK 10000  /* finished jobs one clean transaction removes */
#define INSERT_ROWS 1000   /* jobs one INSERT adds */
#define BATCH_BYTES (8u << 20) /* inputs or results one many-row statement carries, about:
				  its arrays (hex for bytes) stay far below the server's 1 GB
				  for a parameter */
#define LIST_CHUNK 500     /* jobs a list reads per query */
#define COUNT_FOLD_ROWS 1000 /* deltas of taskhost.counts a read folds past */
#define TXN_TRIES 5        /* a transaction that deadlocked or lost its connection */
#define NCOLS 22           /* JOB_COLS */
#define MAXP 40            /* parameters of one statement but the multi-row INSERT */
#define CONNECT_TIMEOUT 10    /* seconds at most, unless the connection string says */
#define KEEPALIVE_IDLE 10     /* seconds of silence at most before TCP keepalives start */
#define KEEPALIVE_INTERVAL 5  /* seconds at most between them */
#define KEEPALIVE_COUNT "2"   /* unanswered keepalives before the connection is lost */
#define USER_TIMEOUT_MS 20000 /* at most, for data sent and not acknowledged */
#define DOUBT_WAIT_MS 60000 /* asking whether a COMMIT cut off committed */
#define ANSWER_WAIT_MS 10000 /* at most, for an answer before the server is pinged */
#define POOL 6             /* connections a store opens, as its threads need them */
#define RETRY 1            /* internal: a deadlock, a serialization failure, a lost
			      connection: the transaction is tried again */

/* A job's record, in th_job's order (see row_job). */
#define JOB_COLS "id, status, task, queue, priority, attempts, max_attempts, added_us, " \
	"started_us, finished_us, input_len, result_len, claim_gen, owner, owner_pid, flags, " \
	"due_us, timeout_ms, backoff_ms, parent, last_run, fires"
/* the record's columns that p_job gives, in its order */
#define JOB_VALUES "status, queue, priority, attempts, max_attempts, added_us, started_us, " \
	"finished_us, input_len, result_len, claim_gen, owner, owner_pid, flags, due_us, " \
	"timeout_ms, backoff_ms, parent, last_run, fires"
#define WAITING "(1, 2, 6, 7, 8)" /* the statuses that hold a unique key */

/* One connection of a store's pool: one statement or transaction at a time on it. */
struct pgc {
	PGconn *conn;       /* NULL until first needed (all but the first) */
	pthread_mutex_t mu;
	bool down;          /* lost: reconnect() tries again */
	int64_t retry_at;   /* down: no try to reconnect before this (monotonic us), so
			     * that callers meanwhile fail at once instead of each waiting
			     * out a try of its own */
	int64_t backoff_us; /* the pause after the last failed try: doubles to max_backoff */
	int64_t ok_us;      /* when it last connected (monotonic us) */
	unsigned prepared;  /* the statements of enum prep prepared in its session */
};

/* The statements of every cycle and add, prepared once on each connection (ask_prep): the
 * server keeps their plans instead of planning them at each call. */
enum prep { P_LOCK, P_OUTCOMES, P_DUE, P_READY, P_CLAIMS, P_ADD };

/* The connection the calling thread's txn() or query() holds. */
static _Thread_local struct pgc *cur;

struct th_store {
	const th_store_ops *ops; /* &th_store_pg: first, for the front (store.c) */
	struct pgc pool[POOL];
	_Atomic unsigned next; /* where a caller that finds no connection free waits */
	char *conninfo;
	char *shown;        /* the conninfo, its password as ***: for messages */
	int64_t lease_us;   /* th_store_opts.lease_us: how soon a dead connection is seen */
	int64_t answer_us;  /* an answer's wait before the server is pinged (answer()) */
	int found_version;  /* the schema's version at open */
	bool relaxed;       /* durability = relaxed */
	/* a connection was lost and none has connected again since: the outage is logged
	 * once, by the first connection to find it; one connected before the last
	 * reconnection that finds itself lost is of the same outage, and says nothing */
	pthread_mutex_t down_mu;
	bool down;
	int64_t back_us;    /* when a connection last connected again */
	atomic_bool up;     /* !down, for readers without a lock (th_store_pg_connection) */
	_Atomic uint64_t reconnects;
	_Atomic uint64_t rng;
};

/* ---- statements ---- */

struct params {
	const char *v[MAXP];
	int len[MAXP], fmt[MAXP];
	char num[MAXP][24];
	int n;
};

static void p_i64(struct params *p, int64_t x)
{
	snprintf(p->num[p->n], sizeof(p->num[0]), "%" PRId64, x);
	p->v[p->n] = p->num[p->n];
	p->len[p->n] = p->fmt[p->n] = 0;
	p->n++;
}

static void p_str(struct params *p, const char *s)
{
	p->v[p->n] = s;
	p->len[p->n] = p->fmt[p->n] = 0;
	p->n++;
}

/* bytes, in binary: NULL data is SQL NULL */
static void p_bin(struct params *p, const void *data, size_t len)
{
	p->v[p->n] = data ? (len ? data : "") : NULL;
	p->len[p->n] = (int)len;
	p->fmt[p->n] = 1;
	p->n++;
}

const char *th_store_pg_message(const PGconn *conn, const PGresult *r,
				char buf[TH_STORE_PG_MSG_MAX])
{
	const char *m = r ? PQresultErrorMessage(r) : "";
	if (!*m)
		m = conn ? PQerrorMessage(conn) : "";
	size_t n = 0;
	for (; *m && n + 1 < TH_STORE_PG_MSG_MAX; m++) {
		if (*m == '\n') {
			while (m[1] == '\t' || m[1] == ' ' || m[1] == '\n')
				m++;
			if (m[1] && n)
				buf[n++] = ' ';
			continue;
		}
		buf[n++] = *m;
	}
	buf[n] = 0;
	if (!n)
		snprintf(buf, TH_STORE_PG_MSG_MAX, "%s", "no message from libpq");
	return buf;
}

static bool retryable(const PGresult *r, PGconn *conn)
{
	const char *code = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	return PQstatus(conn) == CONNECTION_BAD ||
	       (code && (strcmp(code, "40P01") == 0 || strcmp(code, "40001") == 0));
}

static bool server_answers(const char *conninfo, int64_t lease_us);

/* The answer to what was just sent on conn, as PQexec gives it (the last result).
 * TCP notices a network that went away (keepalives, tcp_user_timeout) but not a server,
 * or a proxy in front of it, that holds the connection and says nothing: so an answer
 * that takes longer than answer_us has the server pinged on a new connection, and when
 * that gets no answer either the connection is cut here (*cut set), its statement
 * failing as with any lost connection. A slow statement on a server that answers a ping
 * is waited for. */
static PGresult *wait_answer(PGconn *conn, const char *conninfo, int64_t lease_us,
			     int64_t answer_us, bool *cut)
{
	PGresult *last = NULL, *r;
	int64_t until = th_clock_mono_us() + answer_us;
	*cut = false;
	for (;;) {
		while (PQisBusy(conn)) {
			int64_t left = until - th_clock_mono_us();
			struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
			int n = left > 0 ? poll(&pfd, 1, (int)((left + 999) / 1000)) : 0;
			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0) {
				if (server_answers(conninfo, lease_us)) {
					until = th_clock_mono_us() + answer_us;
					continue;
				}
				*cut = true;
				shutdown(PQsocket(conn), SHUT_RDWR);
			}
			if (!PQconsumeInput(conn))
				break;
		}
		if (!(r = PQgetResult(conn)))
			return last;
		PQclear(last);
		last = r;
	}
}

/* How long an answer is waited for before the server is pinged: a third of the lease,
 * within 1 s and ANSWER_WAIT_MS. */
static int64_t answer_wait(int64_t lease_us)
{
	int64_t most = (int64_t)ANSWER_WAIT_MS * 1000, w = lease_us > 0 ? lease_us / 3 : most;
	return w < 1000000 ? 1000000 : w > most ? most : w;
}

/* The connection this thread holds is lost (why: for the log): logged unless the outage
 * is known already, or the connection is from before the last reconnection. */
static void went_down(th_store *st, const char *why)
{
	if (cur->down)
		return;
	cur->down = true;
	pthread_mutex_lock(&st->down_mu);
	if (!st->down && cur->ok_us >= st->back_us) {
		th_log_error("store", "%s: connection lost: %s; reconnecting", st->shown, why);
		st->down = true;
		atomic_store(&st->up, false);
	}
	pthread_mutex_unlock(&st->down_mu);
}

/* The store's statements: a connection cut for silence is logged once for the outage. */
static PGresult *answer(th_store *st)
{
	bool cut;
	PGresult *r = wait_answer(cur->conn, st->conninfo, st->lease_us, st->answer_us, &cut);
	char m[64];
	snprintf(m, sizeof(m), "no answer from the server in %.0f s, nor to a new connection",
		 (double)st->answer_us / 1e6);
	if (cut)
		went_down(st, m);
	return r;
}

PGresult *th_store_pg_exec(PGconn *conn, const char *conninfo, int64_t lease_us,
			   const char *sql, int n, const char *const *vals, bool *cut)
{
	*cut = false;
	int sent = vals || n ? PQsendQueryParams(conn, sql, n, NULL, vals, NULL, NULL, 0)
			     : PQsendQuery(conn, sql);
	if (!sent)
		return PQmakeEmptyPGresult(conn, PGRES_FATAL_ERROR);
	return wait_answer(conn, conninfo, lease_us, answer_wait(lease_us), cut);
}

/* sql sent and its answer (answer()); NULL params: a simple query (may hold several
 * statements). NULL only when out of memory, as PQexec. */
static PGresult *ask(th_store *st, const char *sql, int n, const char *const *v,
		     const int *len, const int *fmt)
{
	int sent = v || n ? PQsendQueryParams(cur->conn, sql, n, NULL, v, len, fmt, 0)
			  : PQsendQuery(cur->conn, sql);
	if (!sent) /* the connection is gone: libpq's message on an error result */
		return PQmakeEmptyPGresult(cur->conn, PGRES_FATAL_ERROR);
	return answer(st);
}

/* As ask, sql being statement k of enum prep: prepared on this connection first if it
 * is not yet. */
static PGresult *ask_prep(th_store *st, enum prep k, const char *sql, const struct params *p)
{
	char name[16];
	snprintf(name, sizeof(name), "taskhost_%d", (int)k);
	if (!(cur->prepared & 1u << k)) {
		if (!PQsendPrepare(cur->conn, name, sql, 0, NULL))
			return PQmakeEmptyPGresult(cur->conn, PGRES_FATAL_ERROR);
		PGresult *r = answer(st);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			return r;
		PQclear(r);
		cur->prepared |= 1u << k;
	}
	if (!PQsendQueryPrepared(cur->conn, name, p ? p->n : 0, p ? p->v : NULL,
				 p ? p->len : NULL, p ? p->fmt : NULL, 0))
		return PQmakeEmptyPGresult(cur->conn, PGRES_FATAL_ERROR);
	return answer(st);
}

/* Runs sql; NULL (logged, *rc set) unless it succeeds. */
/* r if it is a success; else NULL, *rc RETRY or TH_EIO (logged) and r cleared. */
static PGresult *checked(th_store *st, PGresult *r, int *rc)
{
	ExecStatusType s = PQresultStatus(r);
	if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
		return r;
	char m[TH_STORE_PG_MSG_MAX];
	if (!retryable(r, cur->conn))
		th_log_error("store", "%s: %s", st->shown, th_store_pg_message(cur->conn, r, m));
	*rc = retryable(r, cur->conn) ? RETRY : TH_EIO;
	PQclear(r);
	return NULL;
}

static PGresult *run(th_store *st, const char *sql, const struct params *p, int *rc)
{
	return checked(st, ask(st, sql, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
			       p ? p->fmt : NULL), rc);
}

static int exec(th_store *st, const char *sql, const struct params *p)
{
	int rc = 0;
	PQclear(run(st, sql, p, &rc));
	return rc;
}

/* run and exec of statement k (ask_prep) */
static PGresult *run_prep(th_store *st, enum prep k, const char *sql, const struct params *p,
			  int *rc)
{
	return checked(st, ask_prep(st, k, sql, p), rc);
}

static int exec_prep(th_store *st, enum prep k, const char *sql, const struct params *p)
{
	int rc = 0;
	PQclear(run_prep(st, k, sql, p, &rc));
	return rc;
}

/* Many rows of parameters as one array literal per column, for a statement that reads
 * them with unnest($1::TYPE[], ...): its text is the same however many rows it writes,
 * so its parse and plan do not grow with the rows, as a multi-row VALUES list's do.
 * Each row's struct params gives one value per column: a number as it is, text quoted,
 * bytes (binary) as a quoted hex bytea, NULL as NULL. */
#define COLS_MAX 24

struct cols {
	int n;
	char *s[COLS_MAX];
	size_t len[COLS_MAX], cap[COLS_MAX];
	bool oom;
};

static void cols_open(struct cols *a, int n)
{
	*a = (struct cols){.n = n};
}

/* Room for more bytes in column k; false when out of memory (noted in a->oom). */
static bool cols_room(struct cols *a, int k, size_t more)
{
	if (a->oom)
		return false;
	if (a->len[k] + more + 2 <= a->cap[k]) /* the closing brace and NUL always fit */
		return true;
	size_t cap = a->cap[k] ? a->cap[k] : 256;
	while (cap < a->len[k] + more + 2)
		cap *= 2;
	char *s = realloc(a->s[k], cap);
	if (!s) {
		a->oom = true;
		return false;
	}
	a->s[k] = s;
	a->cap[k] = cap;
	return true;
}

static void cols_row(struct cols *a, const struct params *p)
{
	static const char hex[] = "0123456789abcdef";
	for (int k = 0; k < a->n && k < p->n; k++) {
		const char *v = p->v[k];
		size_t n = !v ? 5 : p->fmt[k] ? 6 + 2 * (size_t)p->len[k] : 3 + 2 * strlen(v);
		if (!cols_room(a, k, n))
			return;
		char *o = a->s[k] + a->len[k];
		*o++ = a->len[k] ? ',' : '{';
		if (!v) {
			memcpy(o, "NULL", 4);
			o += 4;
		} else if (p->fmt[k]) { /* bytes: "\\x..." */
			const unsigned char *b = (const unsigned char *)v;
			memcpy(o, "\"\\\\x", 4);
			o += 4;
			for (int i = 0; i < p->len[k]; i++) {
				*o++ = hex[b[i] >> 4];
				*o++ = hex[b[i] & 15];
			}
			*o++ = '"';
		} else if (v == p->num[k]) {
			size_t l = strlen(v);
			memcpy(o, v, l);
			o += l;
		} else {
			*o++ = '"';
			for (; *v; v++) {
				if (*v == '"' || *v == '\\')
					*o++ = '\\';
				*o++ = *v;
			}
			*o++ = '"';
		}
		a->len[k] = (size_t)(o - a->s[k]);
	}
}

/* The arrays closed and added to p, one parameter each; TH_ENOMEM if a row did not fit. */
static int cols_params(struct cols *a, struct params *p)
{
	for (int k = 0; k < a->n && !a->oom; k++) {
		if (!cols_room(a, k, 1))
			break;
		if (!a->len[k])
			a->s[k][a->len[k]++] = '{';
		a->s[k][a->len[k]++] = '}';
		a->s[k][a->len[k]] = '\0';
		p_str(p, a->s[k]);
	}
	return a->oom ? TH_ENOMEM : 0;
}

static void cols_close(struct cols *a)
{
	for (int k = 0; k < a->n; k++)
		free(a->s[k]);
}

static int64_t col_i64(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* A bytea column as a malloc'd, NUL-terminated copy; NULL and empty alike. */
static int col_bytes(const PGresult *r, int row, int col, void **data, size_t *len)
{
	size_t n = 0;
	unsigned char *raw = NULL;
	if (!PQgetisnull(r, row, col) &&
	    !(raw = PQunescapeBytea((const unsigned char *)PQgetvalue(r, row, col), &n)))
		return TH_ENOMEM;
	char *out = malloc(n + 1);
	if (!out) {
		PQfreemem(raw);
		return TH_ENOMEM;
	}
	if (n)
		memcpy(out, raw, n);
	out[n] = 0;
	PQfreemem(raw);
	*data = out;
	*len = n;
	return 0;
}

/* The record of row `row` (JOB_COLS from column 0). */
static void row_job(const PGresult *r, int row, th_job *j)
{
	memset(j, 0, sizeof(*j));
	j->id = (uint64_t)col_i64(r, row, 0);
	j->status = (th_job_status)col_i64(r, row, 1);
	snprintf(j->task, sizeof(j->task), "%s", PQgetvalue(r, row, 2));
	snprintf(j->queue, sizeof(j->queue), "%s", PQgetvalue(r, row, 3));
	j->priority = (int32_t)col_i64(r, row, 4);
	j->attempts = (uint32_t)col_i64(r, row, 5);
	j->max_attempts = (uint32_t)col_i64(r, row, 6);
	j->added_us = col_i64(r, row, 7);
	j->started_us = col_i64(r, row, 8);
	j->finished_us = col_i64(r, row, 9);
	j->input_len = (uint64_t)col_i64(r, row, 10);
	j->result_len = (uint64_t)col_i64(r, row, 11);
	j->claim_gen = (uint64_t)col_i64(r, row, 12);
	j->owner = (uint64_t)col_i64(r, row, 13);
	j->owner_pid = (uint32_t)col_i64(r, row, 14);
	j->flags = (uint32_t)col_i64(r, row, 15);
	j->due_us = col_i64(r, row, 16);
	j->timeout_ms = (uint32_t)col_i64(r, row, 17);
	j->backoff_ms = (uint32_t)col_i64(r, row, 18);
	j->parent = (uint64_t)col_i64(r, row, 19);
	j->last_run = (uint64_t)col_i64(r, row, 20);
	j->fires = (uint32_t)col_i64(r, row, 21);
}

/* The record's columns but id and task, in JOB_COLS order from status. */
static void p_job(struct params *p, const th_job *j)
{
	p_i64(p, j->status);
	p_str(p, j->queue);
	p_i64(p, j->priority);
	p_i64(p, j->attempts);
	p_i64(p, j->max_attempts);
	p_i64(p, j->added_us);
	p_i64(p, j->started_us);
	p_i64(p, j->finished_us);
	p_i64(p, (int64_t)j->input_len);
	p_i64(p, (int64_t)j->result_len);
	p_i64(p, (int64_t)j->claim_gen);
	p_i64(p, (int64_t)j->owner);
	p_i64(p, j->owner_pid);
	p_i64(p, j->flags);
	p_i64(p, j->due_us);
	p_i64(p, j->timeout_ms);
	p_i64(p, j->backoff_ms);
	p_i64(p, (int64_t)j->parent);
	p_i64(p, (int64_t)j->last_run);
	p_i64(p, j->fires);
}

/* What a write of a job's record may set besides, in the same statement. */
struct also {
	int64_t lease_us;   /* > 0: the claim's lease from now, on the database's clock */
	const char *error;  /* the job's latest error */
	const void *result; /* its result, when result_len */
	size_t result_len;
};

/* Writes a job's record (not its bytes, but those `also` gives). */
static int put_job_also(th_store *st, const th_job *j, const struct also *x)
{
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)j->id);
	p_job(&p, j);
	char sql[1024];
	size_t at = (size_t)snprintf(sql, sizeof(sql), "UPDATE taskhost.jobs SET (" JOB_VALUES
		") = ($2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
		"$19, $20, $21)");
	if (x && x->lease_us > 0) {
		p_i64(&p, x->lease_us);
		at += (size_t)snprintf(sql + at, sizeof(sql) - at, ", lease_until = now() + "
				       "$%d::float8 * interval '1 microsecond'", p.n);
	}
	if (x && x->error) {
		p_bin(&p, x->error, strlen(x->error));
		at += (size_t)snprintf(sql + at, sizeof(sql) - at, ", error = $%d", p.n);
	}
	if (x && x->result_len) {
		p_bin(&p, x->result, x->result_len);
		at += (size_t)snprintf(sql + at, sizeof(sql) - at, ", result = $%d", p.n);
	}
	snprintf(sql + at, sizeof(sql) - at, " WHERE id = $1");
	return exec(st, sql, &p);
}

static int put_job(th_store *st, const th_job *j)
{
	return put_job_also(st, j, NULL);
}

/* Reads job id, locked for this transaction when `lock`; TH_ENOTFOUND when gone. */
static int get_job(th_store *st, uint64_t id, bool lock, th_job *j)
{
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)id);
	int rc = 0;
	PGresult *r = run(st, lock ? "SELECT " JOB_COLS " FROM taskhost.jobs WHERE id = $1 "
				     "FOR UPDATE"
				   : "SELECT " JOB_COLS " FROM taskhost.jobs WHERE id = $1",
			  &p, &rc);
	if (!r)
		return rc;
	if (PQntuples(r) == 1)
		row_job(r, 0, j);
	else
		rc = TH_ENOTFOUND;
	PQclear(r);
	return rc;
}

static uint64_t next_random(th_store *st)
{
	uint64_t x = atomic_load(&st->rng), y;
	do {
		y = x ^ (x << 13);
		y ^= y >> 7;
		y ^= y << 17;
	} while (!atomic_compare_exchange_weak(&st->rng, &x, y));
	return y;
}

/* ids as an array literal ("{1,2,3}"), malloc'd; NULL when out of memory. */
static char *array_of(const uint64_t *ids, size_t n)
{
	size_t cap = 4 + n * 21, at = 1;
	char *set = malloc(cap);
	if (!set)
		return NULL;
	set[0] = '{';
	for (size_t i = 0; i < n; i++)
		at += (size_t)snprintf(set + at, cap - at, "%s%" PRId64, i ? "," : "", (int64_t)ids[i]);
	snprintf(set + at, cap - at, "}");
	return set;
}

/* ---- transactions ---- */

typedef int (*txn_fn)(th_store *st, void *ud);

/* Relaxed: a commit returns before the server flushed it (it survives a crash of this
 * process, not one of the server's machine). */
static int set_durability(th_store *st)
{
	return st->relaxed ? exec(st, "SET synchronous_commit = off", NULL) : 0;
}

/* The longest pause between tries to reconnect: a fifth of the lease (the keeper renews
 * every third of it), at most 1 s. */
static int64_t max_backoff(const th_store *st)
{
	int64_t b = st->lease_us > 0 ? st->lease_us / 5 : 1000000;
	return b < 50000 ? 50000 : b > 1000000 ? 1000000 : b;
}

static int pg_connect(const char *conninfo, const char *shown, int64_t lease_us, bool *down,
		      bool quiet, PGconn **out);

/* The connection again after it was lost: one log line per outage. One try at a time
 * on each connection (its caller holds it), and none within the pause after a failed
 * one. The first use of a pool's connection opens it. */
static bool reconnect(th_store *st)
{
	if (cur->conn && PQstatus(cur->conn) == CONNECTION_OK)
		return true;
	char m[TH_STORE_PG_MSG_MAX];
	if (cur->conn)
		went_down(st, th_store_pg_message(cur->conn, NULL, m));
	if (th_clock_mono_us() < cur->retry_at)
		return false;
	if (cur->conn) {
		PQreset(cur->conn);
	} else {
		/* quiet: the store's own state says whether it can connect */
		pg_connect(st->conninfo, st->shown, st->lease_us, NULL, true, &cur->conn);
	}
	cur->prepared = 0; /* a new session, whatever comes next */
	if (!cur->conn || PQstatus(cur->conn) != CONNECTION_OK || set_durability(st)) {
		int64_t b = cur->backoff_us ? 2 * cur->backoff_us : 50000;
		cur->backoff_us = b > max_backoff(st) ? max_backoff(st) : b;
		cur->retry_at = th_clock_mono_us() + cur->backoff_us;
		if (cur->conn)
			went_down(st, th_store_pg_message(cur->conn, NULL, m));
		return false;
	}
	bool was_down = cur->down;
	cur->backoff_us = 0;
	cur->retry_at = 0;
	cur->down = false;
	cur->ok_us = th_clock_mono_us();
	pthread_mutex_lock(&st->down_mu);
	if (was_down && st->down) {
		th_log_info("store", "%s: connected again", st->shown);
		st->down = false;
		st->back_us = cur->ok_us;
		atomic_store(&st->up, true);
		atomic_fetch_add(&st->reconnects, 1); /* once an outage, as it is logged */
	}
	pthread_mutex_unlock(&st->down_mu);
	return true;
}

/* BEGIN, and the transaction's id in xid: what is asked of the server when the answer to
 * its COMMIT is lost with the connection. */
static int begin(th_store *st, char *xid, size_t cap)
{
	PGresult *r = ask(st, "BEGIN; SELECT txid_current()", 0, NULL, NULL, NULL);
	int rc = 0;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		snprintf(xid, cap, "%s", PQgetvalue(r, 0, 0));
	else if (!(rc = retryable(r, cur->conn) ? RETRY : TH_EIO))
		rc = TH_EIO;
	char m[TH_STORE_PG_MSG_MAX];
	if (rc == TH_EIO)
		th_log_error("store", "%s: BEGIN: %s", st->shown, th_store_pg_message(cur->conn, r, m));
	PQclear(r);
	return rc;
}

/* A COMMIT whose answer was lost with the connection may have committed (the server had
 * it) or not: asked of the server once connected again. An old session still in the
 * transaction (its loss not yet seen by the server) is ended first, so that the answer
 * is final. The old session's pid is ended only while the transaction is in progress:
 * then the session that holds it is alive, so the pid is still its (after a restart of
 * the server the transaction is aborted, and no pid is ended). 0: it committed; RETRY:
 * it did not; TH_EIO: no answer within DOUBT_WAIT_MS, the transaction's fate unknown
 * (logged). */
static int commit_fate(th_store *st, const char *xid, int old_pid)
{
	char pid[16];
	snprintf(pid, sizeof(pid), "%d", old_pid);
	int64_t until = th_clock_mono_us() + (int64_t)DOUBT_WAIT_MS * 1000;
	int pause_ms = 50;
	for (;;) {
		if (reconnect(st)) {
			struct params p = {.n = 0};
			p_str(&p, xid);
			p_str(&p, pid);
			int rc = 0;
			PGresult *r = run(st, "SELECT txid_status($1::bigint), CASE WHEN "
					  "txid_status($1::bigint) = 'in progress' THEN "
					  "pg_terminate_backend($2::int) END", &p, &rc);
			if (r) {
				const char *s = PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0);
				bool committed = strcmp(s, "committed") == 0;
				bool aborted = strcmp(s, "aborted") == 0;
				PQclear(r);
				if (committed || aborted)
					return committed ? 0 : RETRY;
			}
		}
		if (th_clock_mono_us() >= until) {
			th_log_error("store", "%s: the answer to a COMMIT was lost with the connection "
				     "and the server could not be asked within %d s whether it "
				     "committed (transaction %s)", st->shown, DOUBT_WAIT_MS / 1000, xid);
			return TH_EIO;
		}
		struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		pause_ms = pause_ms * 2 > 1000 ? 1000 : pause_ms * 2;
	}
}

/* A connection of the pool for this thread (cur): a free one, else one waited for. */
static void acquire(th_store *st)
{
	for (int i = 0; i < POOL; i++)
		if (pthread_mutex_trylock(&st->pool[i].mu) == 0) {
			cur = &st->pool[i];
			return;
		}
	cur = &st->pool[atomic_fetch_add(&st->next, 1) % POOL];
	pthread_mutex_lock(&cur->mu);
}

static void release(void)
{
	pthread_mutex_unlock(&cur->mu);
	cur = NULL;
}

/* fn in one transaction (read committed, rows locked as fn reads them), tried again on
 * a deadlock, a serialization failure or a lost connection; a COMMIT whose answer was
 * lost is not tried again unless the server says it did not commit (commit_fate). */
static int txn(th_store *st, txn_fn fn, void *ud)
{
	acquire(st);
	int rc = TH_EIO;
	for (int i = 0; i < TXN_TRIES; i++) {
		if (!reconnect(st)) {
			rc = TH_EIO;
			break;
		}
		char xid[32];
		int pid = PQbackendPID(cur->conn);
		if ((rc = begin(st, xid, sizeof(xid))) == 0 && (rc = fn(st, ud)) == 0) {
			rc = exec(st, "COMMIT", NULL);
			if (rc == RETRY && PQstatus(cur->conn) == CONNECTION_BAD)
				rc = commit_fate(st, xid, pid);
			if (rc == 0)
				break;
		}
		if (PQstatus(cur->conn) == CONNECTION_OK)
			exec(st, "ROLLBACK", NULL);
		if (rc != RETRY)
			break;
		rc = TH_EIO; /* the last try's */
	}
	release();
	return rc;
}

/* A read of one statement: fn gets its result. */
typedef int (*read_fn)(th_store *st, PGresult *r, void *ud);

static int query(th_store *st, const char *sql, const struct params *p, read_fn fn, void *ud)
{
	acquire(st);
	int rc = TH_EIO;
	for (int i = 0; i < TXN_TRIES; i++) {
		if (!reconnect(st))
			break;
		rc = 0;
		PGresult *r = run(st, sql, p, &rc);
		if (r) {
			rc = fn(st, r, ud);
			PQclear(r);
			break;
		}
		if (rc != RETRY)
			break;
		rc = TH_EIO;
	}
	release();
	return rc;
}

/* ---- open and close ---- */

/* The conninfo with its password as ***: what messages show. */
static char *shown_conninfo(const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	if (!opts) {
		PQfreemem(err);
		return strdup("postgresql (a connection string that does not parse)");
	}
	size_t cap = 256, len = 0;
	char *out = malloc(cap);
	for (PQconninfoOption *o = opts; out && o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		const char *val = strcmp(o->keyword, "password") == 0 ? "***" : o->val;
		size_t need = strlen(o->keyword) + strlen(val) + 4;
		if (len + need >= cap) {
			char *bigger = realloc(out, cap = 2 * (len + need));
			if (!bigger) {
				free(out);
				out = NULL;
				break;
			}
			out = bigger;
		}
		len += (size_t)snprintf(out + len, cap - len, "%s%s=%s", len ? " " : "", o->keyword,
					val);
	}
	PQconninfoFree(opts);
	return out;
}

static void pg_close(th_store *st);

/* clamp(x, lo, hi) */
static int64_t within(int64_t x, int64_t lo, int64_t hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

/* The options of a connection: defaults that the connection string may override. A
 * server that does not answer or a connection gone silent is noticed within the lease
 * (keepalives_idle + keepalives_count * keepalives_interval is two thirds of it, for
 * leases down to 3 s, since libpq counts whole seconds), and that is before the other
 * hosts take back this host's jobs. */
struct conn_opts {
	char connect[24], idle[24], interval[24], user_timeout[24];
	const char *keys[8], *vals[8];
};

static void conn_opts(struct conn_opts *o, const char *conninfo, int64_t lease_us)
{
	int64_t lease_s = lease_us > 0 ? lease_us / 1000000 : INT32_MAX; /* 0: the maxima */
	snprintf(o->connect, sizeof(o->connect), "%" PRId64, within(lease_s / 2, 2, CONNECT_TIMEOUT));
	snprintf(o->idle, sizeof(o->idle), "%" PRId64, within(lease_s / 3, 1, KEEPALIVE_IDLE));
	snprintf(o->interval, sizeof(o->interval), "%" PRId64,
		 within(lease_s / 6, 1, KEEPALIVE_INTERVAL));
	snprintf(o->user_timeout, sizeof(o->user_timeout), "%" PRId64,
		 within(lease_s * 2000 / 3, 1000, USER_TIMEOUT_MS));
	static const char *const keys[] = {"connect_timeout", "keepalives_idle",
					   "keepalives_interval", "keepalives_count",
					   "tcp_user_timeout", "application_name", "dbname", NULL};
	const char *vals[] = {o->connect, o->idle, o->interval, KEEPALIVE_COUNT, o->user_timeout,
			      "taskhost", conninfo, NULL};
	memcpy(o->keys, keys, sizeof(keys));
	memcpy(o->vals, vals, sizeof(vals));
}

/* Whether the server answers a new connection within the connect timeout. */
static bool server_answers(const char *conninfo, int64_t lease_us)
{
	struct conn_opts o;
	conn_opts(&o, conninfo, lease_us);
	return PQpingParams(o.keys, o.vals, 1) == PQPING_OK;
}

static int pg_connect(const char *conninfo, const char *shown, int64_t lease_us, bool *down,
		      bool quiet, PGconn **out)
{
	*out = NULL;
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
	if (!opts) {
		th_log_error("store", "postgresql store '%s': bad connection string: %s", shown,
			     err ? err : "out of memory");
		PQfreemem(err);
		return TH_ECONFIG;
	}
	PQconninfoFree(opts);
	struct conn_opts o;
	conn_opts(&o, conninfo, lease_us);
	PGconn *conn = PQconnectdbParams(o.keys, o.vals, 1);
	if (!conn)
		return TH_ENOMEM;
	if (PQstatus(conn) != CONNECTION_OK) {
		char m[TH_STORE_PG_MSG_MAX];
		if (!quiet && (!down || !*down))
			th_log_error("store", "postgresql store %s: cannot connect: %s%s", shown,
				     th_store_pg_message(conn, NULL, m),
				     down ? " (trying again; said once until connected)" : "");
		if (down)
			*down = true;
		PQfinish(conn);
		return TH_EIO;
	}
	if (down && *down)
		th_log_info("store", "postgresql store %s: connected again", shown);
	if (down)
		*down = false;
	PGresult *r = PQexec(conn, "SET client_min_messages = warning");
	PQclear(r);
	*out = conn;
	return 0;
}

int th_store_pg_connect(const char *conninfo, const char *shown, int64_t lease_us,
			bool *down, PGconn **out)
{
	return pg_connect(conninfo, shown, lease_us, down, false, out);
}

/* `where` is a libpq connection string, or the rest of a postgresql:// URL. */
static char *conninfo_of(const char *where)
{
	char *s;
	if (strncmp(where, "//", 2) == 0)
		return asprintf(&s, "postgresql:%s", where) < 0 ? NULL : s;
	return strdup(where);
}

static int pg_open(th_store **out, const char *where, const th_store_opts *opts)
{
	*out = NULL;
	th_store *st = calloc(1, sizeof(*st));
	if (!st)
		return TH_ENOMEM;
	st->ops = &th_store_pg;
	for (int i = 0; i < POOL; i++)
		pthread_mutex_init(&st->pool[i].mu, NULL);
	pthread_mutex_init(&st->down_mu, NULL);
	atomic_init(&st->rng, (uint64_t)th_clock_now_us() | 1);
	int rc;
	if (!(st->conninfo = conninfo_of(where)) || !(st->shown = shown_conninfo(st->conninfo))) {
		rc = TH_ENOMEM;
		goto fail;
	}
	st->lease_us = opts ? opts->lease_us : 0;
	st->answer_us = answer_wait(st->lease_us);
	cur = &st->pool[0];
	if ((rc = th_store_pg_connect(st->conninfo, st->shown, st->lease_us, NULL, &cur->conn)) ||
	    (rc = th_store_pg_schema_migrate(cur->conn, opts && opts->migrate, st->shown,
					     &st->found_version)))
		goto fail;
	st->relaxed = opts && opts->durability == TH_RELAXED;
	if ((rc = set_durability(st)))
		goto fail;
	cur->ok_us = th_clock_mono_us();
	cur = NULL;
	atomic_store(&st->up, true);
	*out = st;
	return 0;
fail:
	pg_close(st);
	return rc;
}

static void pg_close(th_store *st)
{
	if (!st)
		return;
	cur = NULL;
	for (int i = 0; i < POOL; i++) {
		if (st->pool[i].conn)
			PQfinish(st->pool[i].conn);
		pthread_mutex_destroy(&st->pool[i].mu);
	}
	pthread_mutex_destroy(&st->down_mu);
	free(st->conninfo);
	free(st->shown);
	free(st);
}

const char *th_store_pg_shown(th_store *st)
{
	return st->shown;
}

void th_store_pg_connection(th_store *st, bool *connected, uint64_t *reconnects)
{
	*connected = atomic_load(&st->up);
	*reconnects = atomic_load(&st->reconnects);
}

int th_store_pg_version(th_store *st, int *found)
{
	*found = st->found_version;
	return th_store_pg_schema_version();
}

static int pg_coord_open(th_store *st, th_coord **out)
{
	return th_coord_open_pg(out, st->conninfo, st->shown, st->lease_us);
}

/* ---- adds ---- */

struct add_args {
	const th_store_new *jobs;
	size_t n;
	uint64_t *ids;
	bool *existed;
};

/* The columns an INSERT of a new job writes, and how many. */
#define INSERT_COLS "task, status, queue, priority, attempts, max_attempts, added_us, " \
	"started_us, finished_us, input_len, result_len, claim_gen, owner, owner_pid, flags, " \
	"due_us, timeout_ms, backoff_ms, parent, last_run, fires, input, cron, unique_key"
#define INSERT_NCOLS 24

static void p_new(struct params *p, const th_job *job, const th_store_new *n)
{
	p_str(p, job->task);
	p_job(p, job);
	p_bin(p, n->input_len ? n->input : NULL, n->input_len);
	p_str(p, n->cron);
	p_bin(p, n->unique, n->unique ? strlen(n->unique) : 0);
}

/* Jobs [from, to) without unique keys: one INSERT, their ids in order. */
static int add_rows(th_store *st, struct add_args *a, size_t from, size_t to, int64_t now)
{
	size_t n = to - from;
	struct cols c;
	struct params p = {.n = 0};
	th_job *jobs = calloc(n, sizeof(*jobs)); /* the rows' strings point into them */
	cols_open(&c, INSERT_NCOLS);
	for (size_t i = 0; jobs && i < n; i++) {
		struct params row = {.n = 0};
		th_lifecycle_new_job(&a->jobs[from + i], 0, now, &jobs[i]);
		p_new(&row, &jobs[i], &a->jobs[from + i]);
		cols_row(&c, &row);
	}
	int rc = jobs ? cols_params(&c, &p) : TH_ENOMEM;
	PGresult *r = NULL;
	if (rc == 0)
		r = ask_prep(st, P_ADD, "INSERT INTO taskhost.jobs (" INSERT_COLS ") SELECT * FROM unnest("
			"$1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[], "
			"$6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], "
			"$11::bigint[], $12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], "
			"$16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], "
			"$21::bigint[], $22::bytea[], $23::text[], $24::bytea[]) RETURNING id", &p);
	if (rc) {
	} else if (PQresultStatus(r) != PGRES_TUPLES_OK || (size_t)PQntuples(r) != n) {
		rc = retryable(r, cur->conn) ? RETRY : TH_EIO;
		char m[TH_STORE_PG_MSG_MAX];
		if (rc == TH_EIO)
			th_log_error("store", "%s: adding jobs: %s", st->shown,
				     th_store_pg_message(cur->conn, r, m));
	} else {
		/* the sequence numbers the rows in the order unnest gives them */
		for (size_t i = 0; i < n; i++)
			a->ids[from + i] = (uint64_t)col_i64(r, (int)i, 0);
		for (size_t i = 1; i < n; i++)
			for (size_t j = i; j > 0 && a->ids[from + j - 1] > a->ids[from + j]; j--) {
				uint64_t t = a->ids[from + j];
				a->ids[from + j] = a->ids[from + j - 1];
				a->ids[from + j - 1] = t;
			}
	}
	PQclear(r);
	cols_close(&c);
	free(jobs);
	return rc;
}

/* A job with a unique key: the id of the job that holds the key, or added. The holder
 * is looked up first: an INSERT that meets the key would use up a number of the id
 * sequence, and the next job added would show the gap. */
static int add_unique(th_store *st, struct add_args *a, size_t i, int64_t now)
{
	const th_store_new *n = &a->jobs[i];
	th_job job;
	th_lifecycle_new_job(n, 0, now, &job);
	for (;;) {
		struct params k = {.n = 0};
		p_bin(&k, n->unique, strlen(n->unique));
		int rc = 0;
		PGresult *r = run(st, "SELECT id FROM taskhost.jobs WHERE unique_key = $1 AND "
				  "status IN " WAITING, &k, &rc);
		if (!r)
			return rc;
		bool held = PQntuples(r) == 1;
		if (held)
			a->ids[i] = (uint64_t)col_i64(r, 0, 0);
		PQclear(r);
		if (held) {
			if (a->existed)
				a->existed[i] = true;
			return 0;
		}
		struct params p = {.n = 0};
		p_new(&p, &job, n);
		if (!(r = run(st, "INSERT INTO taskhost.jobs (" INSERT_COLS ") VALUES ($1, $2, "
			      "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, "
			      "$18, $19, $20, $21, $22, $23, $24) ON CONFLICT (unique_key) WHERE "
			      "unique_key IS NOT NULL AND status IN " WAITING " DO NOTHING "
			      "RETURNING id", &p, &rc)))
			return rc;
		bool added = PQntuples(r) == 1;
		if (added)
			a->ids[i] = (uint64_t)col_i64(r, 0, 0);
		PQclear(r);
		if (added)
			return 0;
		/* another host's transaction added it between the two: look again */
	}
}

static int add_fn(th_store *st, void *ud)
{
	struct add_args *a = ud;
	int64_t now = th_clock_now_us();
	for (size_t i = 0; i < a->n;) {
		if (a->existed)
			a->existed[i] = false;
		int rc;
		if (a->jobs[i].unique) {
			rc = add_unique(st, a, i, now);
			i++;
		} else {
			size_t j = i + 1, bytes = a->jobs[i].input_len;
			while (j < a->n && !a->jobs[j].unique && j - i < INSERT_ROWS &&
			       bytes + a->jobs[j].input_len <= BATCH_BYTES) {
				if (a->existed)
					a->existed[j] = false;
				bytes += a->jobs[j++].input_len;
			}
			rc = add_rows(st, a, i, j, now);
			i = j;
		}
		if (rc)
			return rc;
	}
	return 0;
}

static int pg_add(th_store *st, const th_store_new *jobs, size_t n, uint64_t *ids,
		  bool *existed)
{
	struct add_args a = {jobs, n, ids, existed};
	return n ? txn(st, add_fn, &a) : 0;
}

/* ---- reads ---- */

static int one_job(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	if (PQntuples(r) != 1)
		return TH_ENOTFOUND;
	row_job(r, 0, ud);
	return 0;
}

static int pg_get(th_store *st, uint64_t id, th_job *out)
{
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)id);
	return query(st, "SELECT " JOB_COLS " FROM taskhost.jobs WHERE id = $1", &p, one_job, out);
}

struct blob_args {
	void **data;
	size_t *len;
};

static int one_blob(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	struct blob_args *b = ud;
	if (PQntuples(r) != 1)
		return TH_ENOTFOUND;
	if (PQftype(r, 0) == 17 /* bytea */)
		return col_bytes(r, 0, 0, b->data, b->len);
	const char *s = PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0);
	*b->len = strlen(s);
	return (*b->data = strdup(s)) ? 0 : TH_ENOMEM;
}

static int pg_blob(th_store *st, uint64_t id, enum th_blob kind, void **data, size_t *len)
{
	static const char *const sql[] = {
		[TH_BLOB_INPUT] = "SELECT input FROM taskhost.jobs WHERE id = $1",
		[TH_BLOB_RESULT] = "SELECT result FROM taskhost.jobs WHERE id = $1",
		[TH_BLOB_ERROR] = "SELECT error FROM taskhost.jobs WHERE id = $1",
		[TH_BLOB_ERRORS] = "SELECT errors FROM taskhost.jobs WHERE id = $1",
		[TH_BLOB_CRON] = "SELECT cron FROM taskhost.jobs WHERE id = $1",
		[TH_BLOB_UNIQUE] = "SELECT unique_key FROM taskhost.jobs WHERE id = $1",
	};
	*data = NULL;
	*len = 0;
	if ((unsigned)kind >= sizeof(sql) / sizeof(sql[0]) || !sql[kind])
		return TH_EINVAL;
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)id);
	struct blob_args b = {data, len};
	return query(st, sql[kind], &p, one_blob, &b);
}

struct list_args {
	th_job jobs[LIST_CHUNK];
	size_t n;
};

static int list_rows(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	struct list_args *l = ud;
	l->n = (size_t)PQntuples(r);
	for (size_t i = 0; i < l->n; i++)
		row_job(r, (int)i, &l->jobs[i]);
	return 0;
}

static int pg_list(th_store *st, unsigned mask, uint64_t from, bool reverse,
		   th_store_list_fn fn, void *ud)
{
	struct list_args *l = malloc(sizeof(*l));
	if (!l)
		return TH_ENOMEM;
	/* each status its own ordered run of jobs_status (status, id), merged by id: one
	 * status's jobs among millions of others are read, not skipped past. The ids come
	 * first, alone (an index-only scan of jobs_status), then their rows: asked for the
	 * rows at once, the planner walks the primary key and filters by status when it
	 * guesses the status common (100,000 finished jobs before 100,000 queued: 8 ms
	 * skipping the finished to the first queued, against under 2 ms) */
	char sql[4096];
	size_t at = (size_t)snprintf(sql, sizeof(sql), "SELECT * FROM (");
	int statuses = 0;
	unsigned every = ((1u << (TH_JOB_STATUS_MAX + 1)) - 1) & ~1u;
	if ((mask & every) == every) { /* every job: the primary key alone */
		snprintf(sql + at, sizeof(sql) - at, "SELECT " JOB_COLS " FROM taskhost.jobs WHERE"
			 " id %s $1 ORDER BY id %s LIMIT $2", reverse ? "<" : ">",
			 reverse ? "DESC" : "");
	} else {
		for (int s = 1; s <= TH_JOB_STATUS_MAX; s++)
			if (mask & (1u << s))
				at += (size_t)snprintf(sql + at, sizeof(sql) - at, "%s(SELECT " JOB_COLS
						       " FROM taskhost.jobs WHERE id = ANY (ARRAY ("
						       "SELECT id FROM taskhost.jobs WHERE status = %d"
						       " AND id %s $1 ORDER BY id %s LIMIT $2)))",
						       statuses++ ? " UNION ALL " : "", s,
						       reverse ? "<" : ">", reverse ? "DESC" : "");
		if (!statuses)
			snprintf(sql + at, sizeof(sql) - at, "SELECT " JOB_COLS " FROM taskhost.jobs"
				 " WHERE false");
	}
	snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ") u ORDER BY id %s LIMIT $2",
		 reverse ? "DESC" : "");
	int rc = 0;
	uint64_t pos = from ? from : reverse ? (uint64_t)INT64_MAX : 0;
	bool stop = false;
	while (!stop && rc == 0) {
		struct params p = {.n = 0};
		p_i64(&p, (int64_t)pos);
		p_i64(&p, LIST_CHUNK);
		rc = query(st, sql, &p, list_rows, l);
		if (rc)
			break;
		for (size_t i = 0; i < l->n && !stop; i++)
			stop = fn(&l->jobs[i], ud) != 0;
		if (l->n < LIST_CHUNK)
			break;
		pos = l->jobs[l->n - 1].id;
	}
	free(l);
	return rc;
}

static int no_rows(th_store *st, PGresult *r, void *ud)
{
	(void)st, (void)r, (void)ud;
	return 0;
}

/* Folds the deltas of taskhost.counts into one row per queue and status, in a
 * transaction of its own: a fold running at the same time takes the rows this one does
 * not, and each leaves the sums whole. Reads sum the deltas (exact in their snapshot)
 * and fold once they find more than COUNT_FOLD_ROWS of them: what they read stays small
 * and a read does not write each time. */
static int fold_counts(th_store *st)
{
	return query(st, "WITH d AS (DELETE FROM taskhost.counts RETURNING queue, status, n),"
			 " s AS (SELECT queue, status, sum(n) AS n FROM d GROUP BY queue, status)"
			 " INSERT INTO taskhost.counts SELECT queue, status, n FROM s WHERE n <> 0",
		     NULL, no_rows, NULL);
}

struct count_read {
	uint64_t *counts;  /* count: [status] */
	th_store_queue_fn fn; /* count_queues: per queue */
	void *ud;
	int64_t rows;      /* deltas read */
};

/* rows of (queue, status, n, rows), ordered by queue */
static int count_read_rows(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	struct count_read *c = ud;
	uint64_t counts[TH_JOB_STATUS_MAX + 1];
	bool stop = false;
	for (int i = 0; i < PQntuples(r);) {
		const char *queue = PQgetvalue(r, i, 0);
		memset(counts, 0, sizeof(counts));
		bool any = false; /* a queue whose jobs are all gone: its deltas sum to 0 */
		for (; i < PQntuples(r) && strcmp(PQgetvalue(r, i, 0), queue) == 0; i++) {
			int64_t s = col_i64(r, i, 1), n = col_i64(r, i, 2);
			if (s >= 1 && s <= TH_JOB_STATUS_MAX && n > 0) {
				counts[s] = (uint64_t)n;
				any = true;
			}
			c->rows = col_i64(r, i, 3);
		}
		for (int s = 0; c->counts && s <= TH_JOB_STATUS_MAX; s++)
			c->counts[s] += counts[s];
		if (c->fn && any && !stop)
			stop = c->fn(c->ud, queue, counts) != 0;
	}
	return 0;
}

static int read_counts(th_store *st, struct count_read *c)
{
	int rc = query(st, "SELECT queue, status, sum(n), sum(count(*)) OVER ()"
			   " FROM taskhost.counts GROUP BY queue, status ORDER BY queue", NULL, count_read_rows, c);
	return rc == 0 && c->rows > COUNT_FOLD_ROWS ? fold_counts(st) : rc;
}

static int pg_count(th_store *st, uint64_t counts[TH_JOB_STATUS_MAX + 1])
{
	memset(counts, 0, (TH_JOB_STATUS_MAX + 1) * sizeof(counts[0]));
	struct count_read c = {.counts = counts};
	return read_counts(st, &c);
}

static int pg_count_queues(th_store *st, th_store_queue_fn fn, void *ud)
{
	struct count_read c = {.fn = fn, .ud = ud};
	return read_counts(st, &c);
}

static int one_count(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	*(uint64_t *)ud = PQntuples(r) ? (uint64_t)col_i64(r, 0, 0) : 0;
	return 0;
}

/* the finished jobs' partial index on finished_us: the recent ones only */
static int pg_finished_since(th_store *st, int64_t since, uint64_t *n)
{
	struct params p = {0};
	p_i64(&p, since);
	*n = 0;
	return query(st, "SELECT count(*) FROM taskhost.jobs WHERE status IN (3, 4, 5)"
			 " AND finished_us >= $1", &p, one_count, n);
}

struct minutes_read {
	int64_t first;
	size_t n;
	th_minute *out;
	int64_t rows; /* deltas read */
};

/* rows of (minute, added, completed, failed, rows) */
static int minute_rows(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	struct minutes_read *m = ud;
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t at = col_i64(r, i, 0) - m->first;
		if (at >= 0 && at < (int64_t)m->n) {
			m->out[at].added += (uint64_t)col_i64(r, i, 1);
			m->out[at].completed += (uint64_t)col_i64(r, i, 2);
			m->out[at].failed += (uint64_t)col_i64(r, i, 3);
		}
		m->rows = col_i64(r, i, 4);
	}
	return 0;
}

/* The minutes' deltas folded into one row per minute and queue, those past the hour
 * dropped, rows a writer holds left for the next fold. */
static int fold_minutes(th_store *st)
{
	return query(st, "WITH d AS (DELETE FROM taskhost.minutes WHERE ctid = ANY (ARRAY ("
			 "SELECT ctid FROM taskhost.minutes FOR UPDATE SKIP LOCKED)) RETURNING *)"
			 " INSERT INTO taskhost.minutes SELECT minute, queue, sum(added),"
			 " sum(completed), sum(failed) FROM d WHERE minute > floor(extract(epoch"
			 " FROM clock_timestamp()) / 60)::bigint - 60 GROUP BY minute, queue",
		     NULL, no_rows, NULL);
}

static int delta_rows(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	int64_t *n = ud;
	n[0] = col_i64(r, 0, 0);
	n[1] = col_i64(r, 0, 1);
	return 0;
}

/* Every write adds deltas to the counts and the minutes, and reads fold them: with no
 * reader for a while (no dashboard, no stats) the hosts fold them here instead. */
static int pg_tidy(th_store *st)
{
	int64_t n[2] = {0, 0};
	int rc = query(st, "SELECT (SELECT count(*) FROM taskhost.counts),"
			   " (SELECT count(*) FROM taskhost.minutes)", NULL, delta_rows, n);
	if (rc == 0 && n[0] > COUNT_FOLD_ROWS)
		rc = fold_counts(st);
	if (rc == 0 && n[1] > COUNT_FOLD_ROWS)
		rc = fold_minutes(st);
	return rc;
}

/* The minutes' deltas summed; folded (and those past the hour dropped) once a read
 * finds more than COUNT_FOLD_ROWS of them, rows a writer holds left for the next. */
static int pg_minutes(th_store *st, const char *queue, int64_t first, size_t n,
		      th_minute *out)
{
	struct params p = {.n = 0};
	p_i64(&p, first);
	p_i64(&p, first + (int64_t)n);
	if (queue)
		p_str(&p, queue);
	struct minutes_read m = {first, n, out, 0};
	int rc = query(st, queue ? "SELECT minute, sum(added), sum(completed), sum(failed),"
				   " sum(count(*)) OVER () FROM taskhost.minutes WHERE minute >= $1"
				   " AND minute < $2 AND queue = $3 GROUP BY minute"
				 : "SELECT minute, sum(added), sum(completed), sum(failed),"
				   " sum(count(*)) OVER () FROM taskhost.minutes WHERE minute >= $1"
				   " AND minute < $2 GROUP BY minute", &p, minute_rows, &m);
	return rc || m.rows <= COUNT_FOLD_ROWS ? rc : fold_minutes(st);
}

/* From the counts' deltas, as `stats`: counting the jobs themselves reads every queued
 * one, which a waiter polling a long queue would pay for at each wake-up. */
static int pg_pending(th_store *st, uint64_t *queued, uint64_t *processing)
{
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	int rc = pg_count(st, c);
	*queued = rc ? 0 : c[TH_JOB_QUEUED];
	*processing = rc ? 0 : c[TH_JOB_PROCESSING];
	return rc;
}

struct peek_args {
	bool *ready;
	int64_t *next_due;
};

static int peek_row(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	struct peek_args *a = ud;
	*a->ready = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	*a->next_due = col_i64(r, 0, 1);
	return 0;
}

static int pg_peek(th_store *st, const char *queue, bool *ready, int64_t *next_due)
{
	struct params p = {.n = 0};
	p_str(&p, queue ? queue : "");
	p_i64(&p, th_clock_now_us());
	struct peek_args a = {ready, next_due};
	return query(st, "SELECT (NOT EXISTS (SELECT 1 FROM taskhost.paused WHERE queue = $1) AND "
			 "EXISTS (SELECT 1 FROM taskhost.jobs WHERE status = 1 AND queue = $1)) OR "
			 "EXISTS (SELECT 1 FROM taskhost.jobs WHERE status IN (6, 8) AND due_us > 0 "
			 "AND due_us <= $2), (SELECT min(due_us) FROM taskhost.jobs WHERE status IN "
			 "(6, 8) AND due_us > 0)", &p, peek_row, &a);
}

static int paused_row(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	*(bool *)ud = PQntuples(r) > 0;
	return 0;
}

static int pg_queue_paused(th_store *st, const char *queue, bool *paused)
{
	struct params p = {.n = 0};
	p_str(&p, queue ? queue : "");
	return query(st, "SELECT 1 FROM taskhost.paused WHERE queue = $1", &p, paused_row, paused);
}

struct requested_args {
	const uint64_t *ids;
	size_t n;
	bool *requested;
};

static int requested_rows(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	struct requested_args *a = ud;
	for (int i = 0; i < PQntuples(r); i++) {
		uint64_t id = (uint64_t)col_i64(r, i, 0);
		for (size_t k = 0; k < a->n; k++)
			if (a->ids[k] == id)
				a->requested[k] = true;
	}
	return 0;
}

static int pg_cancel_requested(th_store *st, const uint64_t *ids, size_t n, bool *requested)
{
	memset(requested, 0, n * sizeof(*requested));
	if (!n)
		return 0;
	char *set = array_of(ids, n);
	if (!set)
		return TH_ENOMEM;
	struct params p = {.n = 0};
	p_str(&p, set);
	p_i64(&p, TH_JOB_CANCEL_REQUESTED);
	struct requested_args a = {ids, n, requested};
	int rc = query(st, "SELECT id FROM taskhost.jobs WHERE id = ANY($1::bigint[]) AND "
			   "status = 2 AND flags & $2 <> 0", &p, requested_rows, &a);
	free(set);
	return rc;
}

/* ---- state changes ---- */

/* A run of a cron job leaves its result and error with the cron job, which shows its
 * latest run. */
static int report_to_cron(th_store *st, const th_job *job)
{
	if (!job->parent)
		return 0;
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)job->id);
	return exec(st, "UPDATE taskhost.jobs c SET result = r.result, error = r.error, "
			"result_len = r.result_len FROM taskhost.jobs r WHERE r.id = $1 AND "
			"c.id = r.parent AND c.last_run = r.id", &p);
}

/* Sets a job's bytes of one kind (error, errors or result); NULL data clears them. */
static int put_bytes(th_store *st, uint64_t id, const char *col, const void *data, size_t len)
{
	char sql[96];
	snprintf(sql, sizeof(sql), "UPDATE taskhost.jobs SET %s = $2 WHERE id = $1", col);
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)id);
	p_bin(&p, data, len);
	return exec(st, sql, &p);
}

/* Appends the attempt's error to the job's history (th_lifecycle_history). */
static int add_history(th_store *st, uint64_t id, uint32_t attempt, int64_t began,
		       int64_t ended, const char *msg)
{
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)id);
	int rc = 0;
	PGresult *r = run(st, "SELECT errors FROM taskhost.jobs WHERE id = $1", &p, &rc);
	if (!r)
		return rc;
	void *old = NULL;
	size_t oldlen = 0;
	if (PQntuples(r) == 1)
		rc = col_bytes(r, 0, 0, &old, &oldlen);
	PQclear(r);
	if (rc)
		return rc;
	size_t len;
	char *h = th_lifecycle_history(old, oldlen, attempt, began, ended, msg ? msg : "",
					 &len);
	free(old);
	if (!h)
		return TH_ENOMEM;
	rc = put_bytes(st, id, "errors", h, len);
	free(h);
	return rc;
}

struct cancel_args {
	uint64_t id;
	bool running; /* out: asked to stop */
};

static int cancel_fn(th_store *st, void *ud)
{
	struct cancel_args *a = ud;
	th_job job;
	int rc = get_job(st, a->id, true, &job);
	if (rc)
		return rc;
	rc = th_lifecycle_cancel(&job, th_clock_now_us());
	a->running = rc == TH_EBUSY;
	if ((rc && !a->running) || (rc = put_job(st, &job)))
		return rc;
	return a->running ? 0 : report_to_cron(st, &job);
}

static int pg_cancel(th_store *st, uint64_t id)
{
	struct cancel_args a = {id, false};
	int rc = txn(st, cancel_fn, &a);
	return rc ? rc : a.running ? TH_EBUSY : 0;
}

struct change_args {
	uint64_t id;
	int (*rule)(th_job *job);
};

static int change_fn(th_store *st, void *ud)
{
	struct change_args *a = ud;
	th_job job;
	int rc = get_job(st, a->id, true, &job);
	if (rc || (rc = a->rule(&job)) || (rc = put_job(st, &job)))
		return rc;
	return 0;
}

static int pg_start(th_store *st, uint64_t id)
{
	struct change_args a = {id, th_lifecycle_start};
	return txn(st, change_fn, &a);
}

static int retry_fn(th_store *st, void *ud)
{
	int rc = change_fn(st, ud);
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)((struct change_args *)ud)->id);
	/* retried, the job holds its unique key no more */
	return rc ? rc : exec(st, "UPDATE taskhost.jobs SET unique_key = NULL WHERE id = $1", &p);
}

static int pg_retry(th_store *st, uint64_t id)
{
	struct change_args a = {id, th_lifecycle_retry};
	return txn(st, retry_fn, &a);
}

static int remove_fn(th_store *st, void *ud)
{
	uint64_t id = *(uint64_t *)ud;
	th_job job;
	int rc = get_job(st, id, true, &job);
	if (rc || (rc = th_lifecycle_remove(&job)))
		return rc;
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)id);
	return exec(st, "DELETE FROM taskhost.jobs WHERE id = $1", &p);
}

struct many_args {
	th_change what;
	const uint64_t *ids;
	size_t n;
	int *rcs;
};

/* Each job's change in turn; one its status refuses (found out before it writes) is
 * skipped, any other error ends the transaction. */
static int many_fn(th_store *st, void *ud)
{
	struct many_args *a = ud;
	for (size_t i = 0; i < a->n; i++) {
		uint64_t id = a->ids[i];
		struct cancel_args c = {id, false};
		struct change_args r = {id, th_lifecycle_retry};
		int rc = a->what == TH_CHANGE_CANCEL ? cancel_fn(st, &c)
			 : a->what == TH_CHANGE_RETRY ? retry_fn(st, &r) : remove_fn(st, &id);
		if (rc && rc != TH_ESTATE && rc != TH_ENOTFOUND)
			return rc;
		a->rcs[i] = rc ? rc : c.running ? TH_EBUSY : 0;
	}
	return 0;
}

static int pg_change(th_store *st, th_change what, const uint64_t *ids, size_t n, int *rcs)
{
	struct many_args a = {what, ids, n, rcs};
	return txn(st, many_fn, &a);
}

/* A cron job's schedule; TH_EDAMAGED (logged) when it does not parse. */
static int job_cron(th_store *st, uint64_t id, th_cron *cron)
{
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)id);
	int rc = 0;
	PGresult *r = run(st, "SELECT cron FROM taskhost.jobs WHERE id = $1", &p, &rc);
	if (!r)
		return rc;
	char err[160];
	rc = PQntuples(r) == 1 && th_cron_parse(PQgetvalue(r, 0, 0), cron, err, sizeof(err)) == 0
		     ? 0 : TH_EDAMAGED;
	PQclear(r);
	if (rc)
		th_log_error("store", "%s: cron job %llu: its schedule does not parse", st->shown,
			     (unsigned long long)id);
	return rc;
}

struct cron_args {
	uint64_t id;
	const char *spec;
	int catchup; /* -1: keep */
	int paused;  /* -1: keep */
};

static int cron_fn(th_store *st, void *ud)
{
	struct cron_args *a = ud;
	th_job job;
	int rc = get_job(st, a->id, true, &job);
	if (rc)
		return rc;
	if (job.status != TH_JOB_CRONJOB)
		return TH_ESTATE;
	if (a->spec) {
		struct params p = {.n = 0};
		p_i64(&p, (int64_t)job.id);
		p_str(&p, a->spec);
		if ((rc = exec(st, "UPDATE taskhost.jobs SET cron = $2 WHERE id = $1", &p)))
			return rc;
	}
	th_lifecycle_cron_flags(&job, a->catchup, a->paused);
	th_cron cron;
	if ((rc = job_cron(st, job.id, &cron)))
		return rc;
	job.due_us = th_lifecycle_cron_next(&job, &cron, th_clock_now_us());
	return put_job(st, &job);
}

static int pg_cron_update(th_store *st, uint64_t id, const char *spec, int catchup)
{
	struct cron_args a = {id, spec, catchup, -1};
	return txn(st, cron_fn, &a);
}

static int pg_cron_pause(th_store *st, uint64_t id, bool paused)
{
	struct cron_args a = {id, NULL, -1, paused};
	return txn(st, cron_fn, &a);
}

struct pause_args {
	const char *queue;
	bool paused;
};

static int pause_fn(th_store *st, void *ud)
{
	struct pause_args *a = ud;
	struct params p = {.n = 0};
	p_str(&p, a->queue ? a->queue : "");
	return exec(st, a->paused ? "INSERT INTO taskhost.paused VALUES ($1) ON CONFLICT DO NOTHING"
				  : "DELETE FROM taskhost.paused WHERE queue = $1", &p);
}

static int pg_pause_queue(th_store *st, const char *queue, bool paused)
{
	struct pause_args a = {queue, paused};
	return txn(st, pause_fn, &a);
}

struct writes_args {
	th_store_write *w;
	size_t n;
};

/* The adds a->w[from, to) as one: their jobs in one INSERT (but those with unique keys),
 * their ids and existed flags handed back to each. */
static int adds_fn(th_store *st, struct writes_args *a, size_t from, size_t to)
{
	if (to - from == 1) { /* one: nothing to gather */
		th_store_write *w = &a->w[from];
		struct add_args add = {w->jobs, w->n, w->ids, w->existed};
		int rc = w->n ? add_fn(st, &add) : 0;
		if (rc == 0)
			w->rc = 0;
		return rc;
	}
	size_t n = 0;
	for (size_t i = from; i < to; i++)
		n += a->w[i].n;
	th_store_new *jobs = malloc((n ? n : 1) * sizeof(*jobs));
	uint64_t *ids = malloc((n ? n : 1) * sizeof(*ids));
	bool *existed = malloc((n ? n : 1) * sizeof(*existed));
	int rc = jobs && ids && existed ? 0 : TH_ENOMEM;
	for (size_t i = from, k = 0; rc == 0 && i < to; k += a->w[i++].n)
		memcpy(jobs + k, a->w[i].jobs, a->w[i].n * sizeof(*jobs));
	struct add_args add = {jobs, n, ids, existed};
	if (rc == 0 && n)
		rc = add_fn(st, &add);
	for (size_t i = from, k = 0; rc == 0 && i < to; k += a->w[i++].n) {
		th_store_write *w = &a->w[i];
		memcpy(w->ids, ids + k, w->n * sizeof(*ids));
		if (w->existed)
			memcpy(w->existed, existed + k, w->n * sizeof(*existed));
		w->rc = 0;
	}
	free(jobs);
	free(ids);
	free(existed);
	return rc;
}

/* Each write in turn with the function its own call uses, but adds in a row, which
 * share one INSERT; a refusal (unknown id, a status that does not allow it: found by
 * the read before the write changes anything, so the transaction goes on) is that
 * write's rc, any other error ends them all. */
static int writes_fn(th_store *st, void *ud)
{
	struct writes_args *a = ud;
	for (size_t i = 0; i < a->n; i++) {
		th_store_write *w = &a->w[i];
		if (w->kind == TH_WRITE_ADD) { /* adds in a row go together */
			size_t j = i + 1;
			while (j < a->n && a->w[j].kind == TH_WRITE_ADD)
				j++;
			int rc = adds_fn(st, a, i, j);
			if (rc)
				return rc;
			i = j - 1;
			continue;
		}
		struct cancel_args c = {w->id, false};
		struct change_args ch = {w->id, w->kind == TH_WRITE_START ? th_lifecycle_start
									  : th_lifecycle_retry};
		struct cron_args cron = {w->id, w->spec, w->catchup, w->paused};
		struct pause_args q = {w->queue, w->paused != 0};
		int rc = w->kind == TH_WRITE_CANCEL   ? cancel_fn(st, &c)
			 : w->kind == TH_WRITE_START  ? change_fn(st, &ch)
			 : w->kind == TH_WRITE_RETRY  ? retry_fn(st, &ch)
			 : w->kind == TH_WRITE_CRON   ? cron_fn(st, &cron)
						      : pause_fn(st, &q);
		if (rc && rc != TH_ESTATE && rc != TH_ENOTFOUND)
			return rc;
		w->rc = rc ? rc : c.running ? TH_EBUSY : 0;
	}
	return 0;
}

/* The front door's writes that arrived together: one transaction, one commit. */
static int pg_writes(th_store *st, th_store_write *w, size_t n)
{
	struct writes_args a = {w, n};
	return txn(st, writes_fn, &a);
}

struct clean_args {
	int64_t before;
	uint64_t done;
};

/* Up to CLEAN_CHUNK finished jobs, oldest first: no transaction holds many locks. */
static int clean_fn(th_store *st, void *ud)
{
	struct clean_args *a = ud;
	struct params p = {.n = 0};
	p_i64(&p, a->before);
	p_i64(&p, CLEAN_CHUNK);
	int rc = 0;
	PGresult *r = run(st, "DELETE FROM taskhost.jobs WHERE id IN (SELECT id FROM "
			  "taskhost.jobs WHERE status IN (3, 4, 5) AND ($1::bigint = 0 OR finished_us < $1) "
			  "ORDER BY finished_us LIMIT $2 FOR UPDATE SKIP LOCKED)", &p, &rc);
	if (!r)
		return rc;
	a->done = strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

static int pg_clean(th_store *st, int64_t before, uint64_t *removed)
{
	struct clean_args a = {before, 0};
	*removed = 0;
	do {
		int rc = txn(st, clean_fn, &a);
		if (rc)
			return rc;
		*removed += a.done;
	} while (a.done == CLEAN_CHUNK);
	return 0;
}

/* ---- cycles ---- */

/* Locks and reads the jobs of the cycle's outcomes, in id order (every host locks in
 * that order); *r holds their rows. */
static int lock_outcomes(th_store *st, const th_cycle *c, PGresult **r)
{
	uint64_t *ids = malloc(c->nout * sizeof(*ids));
	char *set = NULL;
	if (ids) {
		for (size_t i = 0; i < c->nout; i++)
			ids[i] = c->outs[i].id;
		set = array_of(ids, c->nout);
	}
	free(ids);
	if (!set)
		return TH_ENOMEM;
	struct params p = {.n = 0};
	p_str(&p, set);
	int rc = 0;
	*r = run_prep(st, P_LOCK, "SELECT " JOB_COLS " FROM taskhost.jobs WHERE id = "
		      "ANY($1::bigint[]) ORDER BY id FOR UPDATE", &p, &rc);
	free(set);
	return rc;
}

/* Outcome o applied to its job: *job and *x what to write (write_outcomes), *write
 * false when its claim is stale. `rows` holds the jobs of the cycle's outcomes (lock_outcomes),
 * read before any was recorded: a cycle has one outcome per job, as processors make
 * them. The attempt's error goes to the job's history here. */
static int apply_outcome(th_store *st, const th_outcome *o, const th_owner *owner,
			 const PGresult *rows, int64_t now, th_job *job, struct also *x,
			 bool *write)
{
	*write = false;
	/* the rows are in id order: halved until o's is found */
	int lo = 0, hi = PQntuples(rows);
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if ((uint64_t)col_i64(rows, mid, 0) < o->id)
			lo = mid + 1;
		else
			hi = mid;
	}
	bool found = lo < PQntuples(rows) && (uint64_t)col_i64(rows, lo, 0) == o->id;
	if (found)
		row_job(rows, lo, job);
	if (!found || !th_lifecycle_outcome_current(job, o, owner)) {
		th_log_warn("store", "job %llu: outcome of a stale claim refused (the job was "
			    "taken back from this host)", (unsigned long long)o->id);
		return 0;
	}
	uint32_t attempt = job->attempts;
	int64_t began = job->started_us;
	bool history;
	th_job_status status = th_lifecycle_outcome(job, o, now, next_random(st), &history);
	int rc;
	if (history && (rc = add_history(st, job->id, attempt, began, now, o->error)))
		return rc;
	/* a job to run again keeps why, for the user to see meanwhile; a result is kept
	 * only by a finished job */
	*x = (struct also){.error = o->error};
	if (status != TH_JOB_QUEUED && status != TH_JOB_DELAYED) {
		x->result = o->result;
		x->result_len = o->result_len;
	}
	*write = true;
	return 0;
}

/* The records of jobs [0, n) with their errors and results (x), in one UPDATE. */
static int write_outcome_rows(th_store *st, const th_job *jobs, const struct also *x, size_t n)
{
	struct cols c;
	struct params p = {.n = 0};
	cols_open(&c, 23);
	for (size_t i = 0; i < n; i++) {
		struct params row = {.n = 0};
		p_i64(&row, (int64_t)jobs[i].id);
		p_job(&row, &jobs[i]);
		p_bin(&row, x[i].error, x[i].error ? strlen(x[i].error) : 0);
		p_bin(&row, x[i].result_len ? x[i].result : NULL, x[i].result_len);
		cols_row(&c, &row);
	}
	int rc = cols_params(&c, &p);
	if (rc == 0)
		rc = exec_prep(st, P_OUTCOMES, "UPDATE taskhost.jobs j SET (" JOB_VALUES
			      ", error, result) = "
			      "(v.status, v.queue, v.priority, v.attempts, v.max_attempts, "
			      "v.added_us, v.started_us, v.finished_us, v.input_len, v.result_len, "
			      "v.claim_gen, v.owner, v.owner_pid, v.flags, v.due_us, v.timeout_ms, "
			      "v.backoff_ms, v.parent, v.last_run, v.fires, coalesce(v.error, "
			      "j.error), coalesce(v.result, j.result)) FROM unnest($1::bigint[], "
			      "$2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], "
			      "$7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], "
			      "$12::bigint[], $13::bigint[], $14::bigint[], $15::bigint[], "
			      "$16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], "
			      "$20::bigint[], $21::bigint[], $22::bytea[], $23::bytea[]) AS v(id, "
			      JOB_VALUES ", error, result) WHERE j.id = v.id", &p);
	cols_close(&c);
	return rc;
}

/* The records of jobs [0, n) with their errors and results (x), in one UPDATE for up to
 * BATCH_BYTES of them. */
static int write_outcomes(th_store *st, const th_job *jobs, const struct also *x, size_t n)
{
	int rc = 0;
	for (size_t from = 0, to; rc == 0 && from < n; from = to) {
		size_t bytes = 0, b;
		for (to = from; to < n; to++, bytes += b) {
			b = x[to].result_len + (x[to].error ? strlen(x[to].error) : 0);
			if (to > from && bytes + b > BATCH_BYTES)
				break;
		}
		rc = write_outcome_rows(st, jobs + from, x + from, to - from);
	}
	return rc;
}

/* Records the cycle's outcomes: each job's history, then every record in one statement,
 * then what a finished cron run tells its cron job. */
static int record_outcomes(th_store *st, th_cycle *c, int64_t now)
{
	PGresult *rows;
	int rc = lock_outcomes(st, c, &rows);
	if (rc)
		return rc;
	th_job *jobs = calloc(c->nout, sizeof(*jobs));
	struct also *x = calloc(c->nout, sizeof(*x));
	size_t n = 0;
	if (!jobs || !x)
		rc = TH_ENOMEM;
	for (size_t i = 0; i < c->nout && rc == 0; i++) {
		bool write;
		rc = apply_outcome(st, &c->outs[i], c->owner, rows, now, &jobs[n], &x[n], &write);
		if (write)
			n++;
		else if (rc == 0)
			c->stale++;
	}
	PQclear(rows);
	if (rc == 0)
		rc = write_outcomes(st, jobs, x, n);
	for (size_t i = 0; i < n && rc == 0; i++)
		if (th_job_status_final(jobs[i].status))
			rc = report_to_cron(st, &jobs[i]);
	free(jobs);
	free(x);
	return rc;
}

/* A cron job fires: a run of its task with its input, queued now. */
static int fire_cron(th_store *st, th_job *cron, int64_t now)
{
	int rc = 0;
	PGresult *r = run(st, "SELECT nextval(pg_get_serial_sequence('taskhost.jobs', 'id'))",
			  NULL, &rc);
	if (!r)
		return rc;
	uint64_t id = (uint64_t)col_i64(r, 0, 0);
	PQclear(r);
	th_job run_job;
	th_lifecycle_cron_run(cron, id, now, &run_job);
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)id);
	p_str(&p, run_job.task);
	p_job(&p, &run_job);
	p_i64(&p, (int64_t)cron->id);
	return exec(st, "INSERT INTO taskhost.jobs (id, " INSERT_COLS ") VALUES ($1, $2, $3, $4, "
			"$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, "
			"$21, $22, (SELECT input FROM taskhost.jobs WHERE id = $23), NULL, NULL)", &p);
}

/* Queues the scheduled jobs that are due and fires the cron jobs whose time came; each
 * row locked, so that one host alone fires a cron job's fire time. One statement reads
 * them and when the next one not yet due is (a row of NULLs but that when none is due;
 * `due_us > 0` spelled out, or a prepared plan could not use the jobs_due index):
 * c->next_due is the sooner of that and the promoted cron jobs' next fire times, or now
 * when more were due than one cycle queues. Due jobs another host holds locked are its
 * to queue. */
static int promote_due(th_store *st, int64_t now, th_cycle *c)
{
	struct params p = {.n = 0};
	p_i64(&p, now);
	p_i64(&p, PROMOTE_MAX);
	int rc = 0;
	PGresult *r = run_prep(st, P_DUE, "WITH d AS (SELECT " JOB_COLS " FROM taskhost.jobs "
			       "WHERE status IN (6, 8) AND due_us > 0 AND due_us <= $1 ORDER BY "
			       "due_us LIMIT $2 FOR UPDATE SKIP LOCKED) SELECT d.*, (SELECT "
			       "min(due_us) FROM taskhost.jobs WHERE status IN (6, 8) AND due_us > 0 "
			       "AND due_us > $1) FROM (SELECT 1) o LEFT JOIN d ON true", &p, &rc);
	if (!r)
		return rc;
	int n = PQgetisnull(r, 0, 0) ? 0 : PQntuples(r);
	int64_t next = PQgetisnull(r, 0, NCOLS) ? 0 : col_i64(r, 0, NCOLS);
	for (int i = 0; i < n && rc == 0; i++) {
		th_job job;
		row_job(r, i, &job);
		if (job.status == TH_JOB_DELAYED) {
			th_lifecycle_start(&job);
		} else {
			th_cron cron;
			if (job_cron(st, job.id, &cron))
				continue; /* it fires no more: logged; the others do */
			if (th_lifecycle_cron_step(&job, job.due_us, now) == TH_CRON_FIRE)
				rc = fire_cron(st, &job, now);
			else
				th_log_info("store", "cron job %llu: fire time missed while no host "
					    "ran; skipped", (unsigned long long)job.id);
			job.due_us = th_lifecycle_cron_next(&job, &cron, now);
			if (job.due_us > 0 && (!next || job.due_us < next))
				next = job.due_us;
		}
		if (rc == 0 && (rc = put_job(st, &job)) == 0)
			c->promoted++;
	}
	PQclear(r);
	c->next_due = n == PROMOTE_MAX ? now : next;
	return rc;
}

/* The claim: the job (locked) is owner's now, its lease on the database's clock. */
static int take(th_store *st, th_job *job, const th_owner *owner, int64_t lease_us,
		int64_t now)
{
	th_lifecycle_claim(job, owner, now);
	struct also x = {.lease_us = lease_us > 0 ? lease_us : 1};
	return put_job_also(st, job, &x);
}

static void clear_claims(th_cycle *c)
{
	for (size_t i = 0; i < c->nclaimed; i++)
		th_claim_clear(&c->claims[i]);
	c->nclaimed = 0;
}

/* The claims c->claims[0..c->nclaimed), made by th_lifecycle_claim, in one statement:
 * what a claim changes. */
static int write_claims(th_store *st, th_cycle *c)
{
	struct cols a;
	struct params p = {.n = 0};
	cols_open(&a, 7);
	for (size_t i = 0; i < c->nclaimed; i++) {
		const th_job *j = &c->claims[i].job;
		struct params row = {.n = 0};
		p_i64(&row, (int64_t)j->id);
		p_i64(&row, j->status);
		p_i64(&row, j->attempts);
		p_i64(&row, (int64_t)j->claim_gen);
		p_i64(&row, j->started_us);
		p_i64(&row, (int64_t)j->owner);
		p_i64(&row, j->owner_pid);
		cols_row(&a, &row);
	}
	int rc = cols_params(&a, &p);
	p_i64(&p, c->lease_us > 0 ? c->lease_us : 1);
	if (rc == 0)
		rc = exec_prep(st, P_CLAIMS, "UPDATE taskhost.jobs j SET status = v.status, "
			      "attempts = v.attempts, claim_gen = v.gen, started_us = v.started, owner = v.owner, "
			      "owner_pid = v.pid, lease_until = now() + $8::float8 * interval "
			      "'1 microsecond' FROM unnest($1::bigint[], $2::smallint[], $3::int[], "
			      "$4::bigint[], $5::bigint[], $6::bigint[], $7::int[]) AS v(id, status, "
			      "attempts, gen, started, owner, pid) WHERE j.id = v.id", &p);
	cols_close(&a);
	return rc;
}

static int claim_ready(th_store *st, th_cycle *c, int64_t now)
{
	struct params p = {.n = 0};
	p_str(&p, c->queue ? c->queue : "");
	p_i64(&p, (int64_t)c->max);
	int rc = 0;
	PGresult *r = run_prep(st, P_READY, "SELECT " JOB_COLS ", input FROM taskhost.ready($1, "
			       "$2)", &p, &rc);
	if (!r)
		return rc;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		th_claim *cl = &c->claims[c->nclaimed];
		row_job(r, i, &cl->job);
		cl->input = NULL;
		cl->input_len = 0;
		if (cl->job.input_len) {
			void *in;
			if ((rc = col_bytes(r, i, NCOLS, &in, &cl->input_len)))
				break;
			cl->input = in;
		}
		th_lifecycle_claim(&cl->job, c->owner, now);
		c->nclaimed++;
	}
	PQclear(r);
	return rc == 0 && c->nclaimed ? write_claims(st, c) : rc;
}

static int cycle_fn(th_store *st, void *ud)
{
	th_cycle *c = ud;
	clear_claims(c); /* from a try that did not commit */
	c->stale = 0;
	c->promoted = 0;
	c->next_due = 0;
	int64_t now = th_clock_now_us();
	int rc;
	if (c->nout && (rc = record_outcomes(st, c, now)))
		return rc;
	if ((rc = promote_due(st, now, c)))
		return rc;
	/* claims commit before their jobs start: c->start is not called */
	return c->max ? claim_ready(st, c, now) : 0;
}

static int pg_cycle(th_store *st, th_cycle *c)
{
	c->nclaimed = 0;
	c->started = 0;
	c->lost = 0;
	int rc = txn(st, cycle_fn, c);
	if (rc)
		clear_claims(c);
	return rc;
}

/* A claim (id, gen) that never committed left its job queued one generation behind. */
static int behind(th_store *st, uint64_t id, uint64_t gen, th_job *job, bool *yes)
{
	int rc = get_job(st, id, true, job);
	*yes = rc == 0 && job->status == TH_JOB_QUEUED && job->claim_gen + 1 == gen;
	return rc == TH_ENOTFOUND ? 0 : rc;
}

struct confirm_args {
	const th_owner *owner;
	int64_t lease_us;
	const uint64_t *pairs;
	size_t n;
	bool *lost;
};

static int confirm_fn(th_store *st, void *ud)
{
	struct confirm_args *a = ud;
	int64_t now = th_clock_now_us();
	for (size_t i = 0; i < a->n; i++) {
		th_job job;
		bool yes;
		int rc = behind(st, a->pairs[2 * i], a->pairs[2 * i + 1], &job, &yes);
		a->lost[i] = !yes;
		if (rc || (yes && (rc = take(st, &job, a->owner, a->lease_us, now))))
			return rc;
	}
	return 0;
}

static int pg_confirm(th_store *st, const th_owner *owner, int64_t lease_us,
		      const uint64_t *pairs, size_t n, bool *lost)
{
	struct confirm_args a = {owner, lease_us, pairs, n, lost};
	return txn(st, confirm_fn, &a);
}

struct renew_args {
	const th_owner *owner;
	int64_t lease_us;
	size_t n;
};

static int renew_fn(th_store *st, void *ud)
{
	struct renew_args *a = ud;
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)a->owner->instance);
	p_i64(&p, a->lease_us);
	int rc = 0;
	PGresult *r = run(st, "UPDATE taskhost.jobs SET lease_until = now() + $2::float8 * "
			  "interval '1 microsecond' WHERE status = 2 AND owner = $1", &p, &rc);
	if (!r)
		return rc;
	a->n = strtoull(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return 0;
}

static int pg_renew(th_store *st, const th_owner *owner, int64_t lease_us, size_t *n)
{
	struct renew_args a = {owner, lease_us, 0};
	int rc = txn(st, renew_fn, &a);
	if (n)
		*n = rc ? 0 : a.n;
	return rc;
}

/* A job taken back from a host that is gone (th_lifecycle_give_back). */
static int give_back(th_store *st, th_job *job, enum th_gone why, int64_t now)
{
	char msg[160];
	int64_t began = job->started_us;
	th_job_status to = th_lifecycle_give_back(job, why, now, msg, sizeof(msg));
	int rc;
	if (to == TH_JOB_ERROR && (rc = add_history(st, job->id, job->attempts, began, now, msg)))
		return rc;
	th_log_warn("store", "job %llu: %s", (unsigned long long)job->id, msg);
	struct also x = {.error = to != TH_JOB_QUEUED ? msg : NULL};
	if ((rc = put_job_also(st, job, &x)) == 0 && th_job_status_final(job->status))
		rc = report_to_cron(st, job);
	return rc;
}

struct recover_args {
	const th_owner *self;
	th_store_alive_fn alive;
	void *ud;
	size_t done;
	th_recovered *by;
};

#define LEASE_COLS ", (extract(epoch FROM lease_until) * 1e6)::bigint, " \
	"(extract(epoch FROM now()) * 1e6)::bigint"

/* Whether the claim of row i (JOB_COLS, then LEASE_COLS) is to be taken back, its
 * owner's liveness asked through a->alive, its lease on the database's clock. */
static bool orphaned(struct recover_args *a, const PGresult *r, int i, th_job *job,
		     enum th_gone *why)
{
	row_job(r, i, job);
	/* the database knows an owner by its instance and pid alone */
	th_owner o = {.instance = job->owner, .pid = job->owner_pid};
	enum th_liveness live = a->alive ? a->alive(a->ud, &o) : TH_OWNER_UNKNOWN;
	return th_lifecycle_orphaned(live, col_i64(r, i, NCOLS), col_i64(r, i, NCOLS + 1), why);
}

/* The claims of other owners that are gone: found without locks, then each locked and
 * judged again (its lease may have been renewed since); of hosts recovering at once,
 * one takes each back. */
static int recover_fn(th_store *st, void *ud)
{
	struct recover_args *a = ud;
	a->done = 0;
	if (a->by)
		th_recovered_reset(a->by);
	struct params p = {.n = 0};
	p_i64(&p, (int64_t)a->self->instance);
	int rc = 0;
	PGresult *r = run(st, "SELECT " JOB_COLS LEASE_COLS " FROM taskhost.jobs WHERE status = 2 "
			  "AND owner <> $1", &p, &rc);
	if (!r)
		return rc;
	int64_t now = th_clock_now_us();
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		th_job job;
		enum th_gone why;
		if (!orphaned(a, r, i, &job, &why))
			continue;
		struct params k = {.n = 0};
		p_i64(&k, (int64_t)job.id);
		p_i64(&k, (int64_t)job.claim_gen);
		PGresult *l = run(st, "SELECT " JOB_COLS LEASE_COLS " FROM taskhost.jobs WHERE id = $1 "
				  "AND status = 2 AND claim_gen = $2 FOR UPDATE SKIP LOCKED", &k, &rc);
		if (!l)
			break;
		if (PQntuples(l) == 1 && orphaned(a, l, 0, &job, &why) &&
		    (rc = give_back(st, &job, why, now)) == 0 &&
		    (rc = th_recovered_add(a->by, &job)) == 0)
			a->done++;
		PQclear(l);
	}
	PQclear(r);
	return rc;
}

static int pg_recover(th_store *st, const th_owner *self, th_store_alive_fn alive, void *ud,
		      size_t *n, th_recovered *by)
{
	struct recover_args a = {self, alive, ud, 0, by};
	int rc = txn(st, recover_fn, &a);
	*n = rc ? 0 : a.done;
	if (rc && by)
		th_recovered_reset(by);
	return rc;
}

struct started_args {
	const uint64_t *pairs;
	size_t n, done;
};

static int started_fn(th_store *st, void *ud)
{
	struct started_args *a = ud;
	int64_t now = th_clock_now_us();
	a->done = 0;
	for (size_t i = 0; i < a->n; i++) {
		th_job job;
		bool yes;
		int rc = behind(st, a->pairs[2 * i], a->pairs[2 * i + 1], &job, &yes);
		if (rc || (yes && (rc = give_back(st, &job, TH_GONE_STARTING, now))))
			return rc;
		a->done += yes;
	}
	return 0;
}

static int pg_recover_started(th_store *st, const uint64_t *pairs, size_t n, size_t *done)
{
	struct started_args a = {pairs, n, 0};
	int rc = txn(st, started_fn, &a);
	*done = rc ? 0 : a.done;
	return rc;
}

/* ---- check ---- */

struct check_args {
	th_store_problem_fn fn;
	void *ud;
	uint64_t *jobs, *problems;
};

static int check_rows(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	struct check_args *a = ud;
	for (int i = 0; i < PQntuples(r); i++) {
		char line[256];
		snprintf(line, sizeof(line), "job %s: %s", PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
		a->fn(a->ud, line);
		(*a->problems)++;
	}
	return 0;
}

static int count_row(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	*(uint64_t *)ud = (uint64_t)col_i64(r, 0, 0);
	return 0;
}

/* Each queue and status whose kept count is not the recount of the rows. */
static int check_count_rows(th_store *st, PGresult *r, void *ud)
{
	(void)st;
	struct check_args *a = ud;
	for (int i = 0; i < PQntuples(r); i++) {
		char line[256];
		const char *q = PQgetvalue(r, i, 0);
		int s = (int)col_i64(r, i, 1);
		snprintf(line, sizeof(line), "the counts: queue \"%s\", %s: %lld kept, %lld in the records",
			 *q ? q : "default",
			 s >= 1 && s <= TH_JOB_STATUS_MAX ? th_job_status_name((th_job_status)s) : "?",
			 (long long)col_i64(r, i, 2), (long long)col_i64(r, i, 3));
		a->fn(a->ud, line);
		(*a->problems)++;
	}
	return 0;
}

/* What the database's constraints do not already keep: every record's fields against
 * its status, and the kept counts against a recount (one statement: one snapshot). */
static int pg_check(th_store *st, th_store_problem_fn fn, void *ud, uint64_t *jobs,
		    uint64_t *problems)
{
	*jobs = *problems = 0;
	struct check_args a = {fn, ud, jobs, problems};
	int rc = query(st, "SELECT count(*) FROM taskhost.jobs", NULL, count_row, jobs);
	if (rc == 0)
		rc = query(st, "WITH k AS (SELECT queue, status, sum(n) AS n FROM taskhost.counts"
			       "  GROUP BY queue, status),"
			       " r AS (SELECT queue, status, count(*) AS n FROM taskhost.jobs"
			       "  GROUP BY queue, status)"
			       " SELECT queue, status, coalesce(k.n, 0), coalesce(r.n, 0)"
			       " FROM k FULL JOIN r USING (queue, status)"
			       " WHERE coalesce(k.n, 0) <> coalesce(r.n, 0) ORDER BY queue, status",
			   NULL, check_count_rows, &a);
	if (rc)
		return rc;
	return query(st, "SELECT id, CASE"
			 " WHEN status NOT BETWEEN 1 AND 8 THEN 'its status is ' || status"
			 " WHEN status = 2 AND (owner = 0 OR lease_until IS NULL) THEN"
			 "  'processing without an owner or a lease'"
			 " WHEN status IN (3, 4, 5) AND finished_us = 0 THEN 'finished without a time'"
			 " WHEN status = 8 AND cron IS NULL THEN 'a cron job without a schedule'"
			 " WHEN input_len <> coalesce(octet_length(input), 0) THEN"
			 "  'its input is not as long as its record says' END"
			 " FROM taskhost.jobs WHERE status NOT BETWEEN 1 AND 8 OR"
			 " (status = 2 AND (owner = 0 OR lease_until IS NULL)) OR"
			 " (status IN (3, 4, 5) AND finished_us = 0) OR (status = 8 AND cron IS NULL)"
			 " OR input_len <> coalesce(octet_length(input), 0) ORDER BY id",
		     NULL, check_rows, &a);
}

const th_store_ops th_store_pg = {
	.name = "postgresql",
	.scheme = "postgresql",
	.open = pg_open,
	.close = pg_close,
	.coord_open = pg_coord_open,
	.add = pg_add,
	.cycle = pg_cycle,
	/* while one waits for its round trips or its commit, the server works on the
	 * other's: two processor cycles (more group commits at once make smaller groups,
	 * which was slower when measured) */
	.txns_at_once = 2,
	.confirm = pg_confirm,
	.renew = pg_renew,
	.recover = pg_recover,
	.recover_started = pg_recover_started,
	.cancel = pg_cancel,
	.start = pg_start,
	.retry = pg_retry,
	.change = pg_change,
	.cron_update = pg_cron_update,
	.cron_pause = pg_cron_pause,
	.pause_queue = pg_pause_queue,
	.clean = pg_clean,
	.tidy = pg_tidy,
	.writes = pg_writes,
	.get = pg_get,
	.blob = pg_blob,
	.list = pg_list,
	.count = pg_count,
	.count_queues = pg_count_queues,
	.finished_since = pg_finished_since,
	.minutes = pg_minutes,
	.pending = pg_pending,
	.peek = pg_peek,
	.queue_paused = pg_queue_paused,
	.cancel_requested = pg_cancel_requested,
	.check = pg_check,
};
