/* Redis in the peers benchmark, over its unix socket (BP_REDIS, the server's pid in
 * BP_REDIS_PID): LPUSH to add, BLMOVE to a processing list to claim, LREM to complete. */
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "benchutil.h"
#include "peers.h"

#define FILL_BATCH 1000 /* values per LPUSH */

/* The run's two lists. */
static void keys(const bp_run *r, char queue[32], char processing[32])
{
	snprintf(queue, 32, "peers:%u:queue", r->tag);
	snprintf(processing, 32, "peers:%u:processing", r->tag);
}

typedef struct rd_conn {
	redisContext *ctx;
	char queue[32], processing[32];
} rd_conn;

static void rd_close(void *conn)
{
	rd_conn *c = conn;
	if (c)
		redisFree(c->ctx);
	free(c);
}

static rd_conn *rd_open(const bp_run *r)
{
	rd_conn *c = calloc(1, sizeof(*c));
	const char *path = bu_env("BP_REDIS");
	if (!c)
		return NULL;
	keys(r, c->queue, c->processing);
	c->ctx = redisConnectUnix(path);
	if (!c->ctx || c->ctx->err) {
		fprintf(stderr, "bench: redis: connecting to %s: %s\n", path,
			c->ctx ? c->ctx->errstr : "out of memory");
		rd_close(c);
		return NULL;
	}
	return c;
}

/* Runs a command that answers an integer; -1 on an error or another answer. */
static long long rd_int(rd_conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *rep = redisvCommand(c->ctx, fmt, ap);
	va_end(ap);
	long long v = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -1;
	if (!rep || rep->type != REDIS_REPLY_INTEGER)
		fprintf(stderr, "bench: redis: %s\n",
			rep ? (rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply")
			    : c->ctx->errstr);
	freeReplyObject(rep);
	return v;
}

static int rd_setup(bp_run *r)
{
	rd_conn *c = rd_open(r);
	if (!c || rd_int(c, "DEL %s %s", c->queue, c->processing) < 0) {
		rd_close(c);
		return -1;
	}
	r->state = c;
	return 0;
}

static void rd_teardown(bp_run *r)
{
	rd_conn *c = r->state;
	if (c) /* the next run has lists of its own: leave nothing behind */
		freeReplyObject(redisCommand(c->ctx, "DEL %s %s", c->queue, c->processing));
	rd_close(c);
	r->state = NULL;
}

static int rd_fill(bp_run *r, size_t k)
{
	rd_conn *c = r->state;
	const char **argv = calloc(FILL_BATCH + 2, sizeof(*argv));
	size_t *argl = calloc(FILL_BATCH + 2, sizeof(*argl));
	char(*payload)[BP_PAYLOAD_MAX] = calloc(FILL_BATCH, BP_PAYLOAD_MAX);
	int rc = argv && argl && payload ? 0 : -1;
	for (size_t done = 0; rc == 0 && done < k;) {
		size_t b = k - done < FILL_BATCH ? k - done : FILL_BATCH;
		argv[0] = "LPUSH";
		argl[0] = 5;
		argv[1] = c->queue;
		argl[1] = strlen(c->queue);
		for (size_t i = 0; i < b; i++) {
			argl[i + 2] = bp_payload(payload[i], done + i, 0);
			argv[i + 2] = payload[i];
		}
		redisReply *rep = redisCommandArgv(c->ctx, (int)b + 2, argv, argl);
		if (!rep || rep->type != REDIS_REPLY_INTEGER)
			rc = -1;
		freeReplyObject(rep);
		done += b;
	}
	free(argv);
	free(argl);
	free(payload);
	return rc;
}

static int rd_check(bp_run *r, size_t n, char *why, size_t len)
{
	rd_conn *c = r->state;
	long long queued = rd_int(c, "LLEN %s", c->queue);
	long long processing = rd_int(c, "LLEN %s", c->processing);
	(void)n; /* that each of the n was seen once is checked by the harness */
	if (queued != 0 || processing != 0) {
		snprintf(why, len, "%lld jobs left queued, %lld processing", queued, processing);
		return -1;
	}
	return 0;
}

static void *rd_copen(bp_run *r)
{
	return rd_open(r);
}

static int rd_claim(void *conn, bp_job *jobs, size_t max, size_t *n)
{
	rd_conn *c = conn;
	(void)max;
	redisReply *rep = redisCommand(c->ctx, "BLMOVE %s %s RIGHT LEFT 0", c->queue, c->processing);
	int rc = rep && rep->type == REDIS_REPLY_STRING && rep->len < sizeof(jobs[0].payload) ? 0
													  : -1;
	if (rc == 0) {
		memcpy(jobs[0].payload, rep->str, rep->len);
		jobs[0].len = rep->len;
		*n = 1;
	}
	freeReplyObject(rep);
	return rc;
}

static int rd_complete(void *conn, const bp_job *jobs, size_t n)
{
	rd_conn *c = conn;
	for (size_t i = 0; i < n; i++)
		if (rd_int(c, "LREM %s 1 %b", c->processing, jobs[i].payload, jobs[i].len) != 1)
			return -1;
	return 0;
}

static void rd_interrupt(void *conn)
{
	shutdown(((rd_conn *)conn)->ctx->fd, SHUT_RDWR);
}

const bp_system bp_redis = {
	.name = "Redis",
	.pid_env = "BP_REDIS_PID",
	.wake = "in BLMOVE",
	.bytes_of = "the server process",
	.config = {"`appendonly yes`, `appendfsync always`", "`appendonly yes`, `appendfsync everysec`"},
	.setup = rd_setup,
	.teardown = rd_teardown,
	.fill = rd_fill,
	.check = rd_check,
	.copen = rd_copen,
	.claim = rd_claim,
	.complete = rd_complete,
	.cinterrupt = rd_interrupt,
	.cclose = rd_close,
};

static void *rd_popen(bp_run *r)
{
	return rd_open(r);
}

static int rd_lpush(void *conn, const char *payload, size_t len)
{
	rd_conn *c = conn;
	return rd_int(c, "LPUSH %s %b", c->queue, payload, len) > 0 ? 0 : -1;
}

const bp_adder bp_redis_lpush = {rd_popen, rd_lpush, rd_close};
