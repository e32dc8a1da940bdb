/* beanstalkd in the peers benchmark, over its unix socket (BP_BEANSTALKD, the server's pid in
 * BP_BEANSTALKD_PID): put to add, reserve to claim, delete to complete, a fresh tube per run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchutil.h"
#include "peers.h"

#define FILL_BATCH 1000 /* puts sent before their replies are read */

typedef struct bs_conn {
	int fd;
	size_t len; /* bytes in buf */
	char buf[8192];
} bs_conn;

/* The tube of this run. */
static void tube(const bp_run *r, char out[32])
{
	snprintf(out, 32, "peers-%u", r->tag);
}

/* Reads one reply line into line (without "\r\n"); 0, or -1 when the connection ended. */
static int bs_line(bs_conn *c, char *line, size_t cap)
{
	for (;;) {
		char *eol = memmem(c->buf, c->len, "\r\n", 2);
		if (eol) {
			size_t n = (size_t)(eol - c->buf);
			if (n >= cap)
				return -1;
			memcpy(line, c->buf, n);
			line[n] = 0;
			c->len -= n + 2;
			memmove(c->buf, eol + 2, c->len);
			return 0;
		}
		if (c->len == sizeof(c->buf))
			return -1;
		ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (got <= 0)
			return -1;
		c->len += (size_t)got;
	}
}

/* Reads a body of n bytes and its "\r\n" into out (NUL-terminated; cap > n). */
static int bs_body(bs_conn *c, char *out, size_t n, size_t cap)
{
	if (n + 1 > cap || n + 2 > sizeof(c->buf))
		return -1;
	while (c->len < n + 2) {
		ssize_t got = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
		if (got <= 0)
			return -1;
		c->len += (size_t)got;
	}
	memcpy(out, c->buf, n);
	out[n] = 0;
	c->len -= n + 2;
	memmove(c->buf, c->buf + n + 2, c->len);
	return 0;
}

static int bs_send(bs_conn *c, const char *data, size_t len)
{
	while (len) {
		ssize_t w = write(c->fd, data, len);
		if (w <= 0)
			return -1;
		data += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Sends cmd and expects a reply line starting with want. */
static int bs_expect(bs_conn *c, const char *cmd, const char *want)
{
	char line[256];
	if (bs_send(c, cmd, strlen(cmd)) || bs_line(c, line, sizeof(line)))
		return -1;
	if (strncmp(line, want, strlen(want)) != 0) {
		fprintf(stderr, "bench: beanstalkd: %.*s answered %s\n", (int)strcspn(cmd, "\r"),
			cmd, line);
		return -1;
	}
	return 0;
}

static void bs_close(void *conn)
{
	bs_conn *c = conn;
	if (c)
		close(c->fd);
	free(c);
}

/* A connection that uses (producer) or watches (consumer) the run's tube. */
static bs_conn *bs_open(const bp_run *r, bool watch)
{
	bs_conn *c = calloc(1, sizeof(*c));
	char t[32], cmd[64];
	tube(r, t);
	if (!c || (c->fd = bp_unix_connect(bu_env("BP_BEANSTALKD"))) < 0) {
		free(c);
		return NULL;
	}
	snprintf(cmd, sizeof(cmd), watch ? "watch %s\r\n" : "use %s\r\n", t);
	if (bs_expect(c, cmd, watch ? "WATCHING" : "USING") ||
	    (watch && bs_expect(c, "ignore default\r\n", "WATCHING"))) {
		bs_close(c);
		return NULL;
	}
	return c;
}

/* The run's state: a connection that watches the tube from setup to check, since
 * beanstalkd forgets an empty tube nobody watches, and its counters with it. */
static int bs_setup(bp_run *r)
{
	r->state = bs_open(r, true);
	return r->state ? 0 : -1;
}

static void bs_teardown(bp_run *r)
{
	bs_close(r->state);
	r->state = NULL;
}

static int bs_fill(bp_run *r, size_t k)
{
	bs_conn *c = bs_open(r, false);
	char cmd[FILL_BATCH * (BP_PAYLOAD_MAX + 32)], payload[BP_PAYLOAD_MAX], line[256];
	int rc = c ? 0 : -1;
	for (size_t done = 0; rc == 0 && done < k;) {
		size_t b = k - done < FILL_BATCH ? k - done : FILL_BATCH, len = 0;
		for (size_t i = 0; i < b; i++) {
			size_t pl = bp_payload(payload, done + i, 0);
			len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "put 0 0 60 %zu\r\n%s\r\n",
						pl, payload);
		}
		rc = bs_send(c, cmd, len);
		for (size_t i = 0; rc == 0 && i < b; i++)
			if (bs_line(c, line, sizeof(line)) || strncmp(line, "INSERTED", 8) != 0)
				rc = -1;
		done += b;
	}
	bs_close(c);
	return rc;
}

/* A counter of stats-tube's YAML answer. */
static long long stat_of(const char *yaml, const char *key)
{
	char k[64];
	snprintf(k, sizeof(k), "\n%s: ", key);
	const char *p = strstr(yaml, k);
	return p ? atoll(p + strlen(k)) : -1;
}

static int bs_check(bp_run *r, size_t n, char *why, size_t len)
{
	bs_conn *c = r->state;
	char t[32], cmd[64], line[256], yaml[4096];
	size_t bytes;
	tube(r, t);
	snprintf(cmd, sizeof(cmd), "stats-tube %s\r\n", t);
	if (bs_send(c, cmd, strlen(cmd)) || bs_line(c, line, sizeof(line)) ||
	    sscanf(line, "OK %zu", &bytes) != 1 || bs_body(c, yaml, bytes, sizeof(yaml))) {
		snprintf(why, len, "stats-tube %s failed", t);
		return -1;
	}
	long long total = stat_of(yaml, "total-jobs"), deleted = stat_of(yaml, "cmd-delete");
	long long left = stat_of(yaml, "current-jobs-ready") + stat_of(yaml, "current-jobs-reserved") +
			 stat_of(yaml, "current-jobs-delayed") + stat_of(yaml, "current-jobs-buried");
	if (total != (long long)n || deleted != (long long)n || left != 0) {
		snprintf(why, len, "tube %s: %lld jobs put, %lld deleted, %lld left; %zu expected", t,
			 total, deleted, left, n);
		return -1;
	}
	return 0;
}

static void *bs_copen(bp_run *r)
{
	return bs_open(r, true);
}

static int bs_claim(void *conn, bp_job *jobs, size_t max, size_t *n)
{
	bs_conn *c = conn;
	char line[256];
	unsigned long long id;
	size_t bytes;
	(void)max;
	if (bs_send(c, "reserve\r\n", 9) || bs_line(c, line, sizeof(line)) ||
	    sscanf(line, "RESERVED %llu %zu", &id, &bytes) != 2 ||
	    bs_body(c, jobs[0].payload, bytes, sizeof(jobs[0].payload)))
		return -1;
	jobs[0].id = id;
	jobs[0].len = bytes;
	*n = 1;
	return 0;
}

static int bs_complete(void *conn, const bp_job *jobs, size_t n)
{
	char cmd[64];
	for (size_t i = 0; i < n; i++) {
		snprintf(cmd, sizeof(cmd), "delete %llu\r\n", (unsigned long long)jobs[i].id);
		if (bs_expect(conn, cmd, "DELETED"))
			return -1;
	}
	return 0;
}

static void bs_interrupt(void *conn)
{
	shutdown(((bs_conn *)conn)->fd, SHUT_RDWR);
}

const bp_system bp_beanstalkd = {
	.name = "beanstalkd",
	.pid_env = "BP_BEANSTALKD_PID",
	.wake = "in reserve",
	.bytes_of = "the server process",
	.config = {"`-b DIR -f 0` (fsync at every binlog write)",
		   "`-b DIR` (fsync at most every 50 ms)"},
	.setup = bs_setup,
	.teardown = bs_teardown,
	.fill = bs_fill,
	.check = bs_check,
	.copen = bs_copen,
	.claim = bs_claim,
	.complete = bs_complete,
	.cinterrupt = bs_interrupt,
	.cclose = bs_close,
};

static void *bs_popen(bp_run *r)
{
	return bs_open(r, false);
}

static int bs_put(void *conn, const char *payload, size_t len)
{
	char cmd[BP_PAYLOAD_MAX + 32];
	int n = snprintf(cmd, sizeof(cmd), "put 0 0 60 %zu\r\n%.*s\r\n", len, (int)len, payload);
	bs_conn *c = conn;
	char line[256];
	if (bs_send(c, cmd, (size_t)n) || bs_line(c, line, sizeof(line)) ||
	    strncmp(line, "INSERTED", 8) != 0) {
		fprintf(stderr, "bench: beanstalkd: put failed\n");
		return -1;
	}
	return 0;
}

const bp_adder bp_beanstalkd_put = {bs_popen, bs_put, bs_close};
