/* The coordination of hosts on one PostgreSQL database (th_coord_open_pg): wake-ups by
 * LISTEN/NOTIFY on channel taskhost_wake, progress in taskhost.progress, the hosts'
 * records in taskhost.hosts, liveness by lease alone, no notes (claims commit before
 * their jobs start). */
#include "store/store_pg.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "log.h"

#define CHANNEL "taskhost_wake"
#define NEVENTS 3               /* enum th_wake_event */
#define LISTEN_POLL_MS 1000     /* the listener looks at `stop` this often */
#define RECONNECT_MAX_MS 10000  /* the longest pause between tries to reconnect */

struct th_coord {
	const th_coord_ops *ops; /* &pg_ops */
	char *conninfo, *shown;
	int64_t lease_us; /* for th_store_pg_connect */
	pthread_mutex_t mu; /* guards seq and the listener's start */
	pthread_cond_t cv;
	uint32_t seq[NEVENTS];
	pthread_mutex_t send_mu; /* guards `send` */
	/* wake-ups to send, a bit per event, by the notifier thread (started at the first):
	 * those asked for while it sends go out after, once for all the commits before them */
	pthread_mutex_t notify_mu; /* guards the four below */
	pthread_cond_t notify_cv;
	unsigned notify_want;
	bool notifying, notify_stop;
	pthread_t notifier;
	PGconn *send;       /* NOTIFY and progress; opened when first needed */
	bool send_down, listen_down; /* a try to connect failed: said once until one works */
	bool send_silent;            /* send was cut for silence: said once until answered */
	bool listening;     /* the listener thread runs */
	pthread_t listener;
	atomic_bool stop;
	int stop_pipe[2];
};

static void bump(th_coord *c, int ev)
{
	pthread_mutex_lock(&c->mu);
	if (ev < 0) {
		for (int i = 0; i < NEVENTS; i++)
			c->seq[i]++;
	} else {
		c->seq[ev]++;
	}
	pthread_cond_broadcast(&c->cv);
	pthread_mutex_unlock(&c->mu);
}

/* A connection that LISTENs; NULL when the server cannot be reached. */
static PGconn *listen_conn(th_coord *c)
{
	PGconn *conn;
	if (th_store_pg_connect(c->conninfo, c->shown, c->lease_us, &c->listen_down, &conn))
		return NULL;
	PGresult *r = PQexec(conn, "LISTEN " CHANNEL);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

/* The listener: every notification bumps its event's sequence; after an outage every
 * sequence is bumped, since notifications sent meanwhile were missed. */
static void *listen_main(void *arg)
{
	th_coord *c = arg;
	PGconn *conn = NULL;
	int pause_ms = 100;
	while (!atomic_load(&c->stop)) {
		if (!conn) {
			if (!(conn = listen_conn(c))) {
				struct pollfd p = {.fd = c->stop_pipe[0], .events = POLLIN};
				poll(&p, 1, pause_ms);
				pause_ms = pause_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : pause_ms * 2;
				continue;
			}
			pause_ms = 100;
			bump(c, -1);
		}
		struct pollfd p[2] = {{.fd = PQsocket(conn), .events = POLLIN},
				      {.fd = c->stop_pipe[0], .events = POLLIN}};
		if (poll(p, 2, LISTEN_POLL_MS) < 0 && errno != EINTR)
			break;
		if (p[0].revents && !PQconsumeInput(conn)) {
			PQfinish(conn);
			conn = NULL;
			continue;
		}
		PGnotify *n;
		while ((n = PQnotifies(conn))) {
			int ev = atoi(n->extra);
			bump(c, ev >= 0 && ev < NEVENTS ? ev : -1);
			PQfreemem(n);
		}
	}
	if (conn)
		PQfinish(conn);
	return NULL;
}

/* Starts the listener the first time someone waits or reads a sequence. */
static void ensure_listener(th_coord *c)
{
	pthread_mutex_lock(&c->mu);
	if (!c->listening && pthread_create(&c->listener, NULL, listen_main, c) == 0)
		c->listening = true;
	pthread_mutex_unlock(&c->mu);
}

static void pg_coord_close(th_coord *c)
{
	pthread_mutex_lock(&c->notify_mu);
	c->notify_stop = true; /* the notifier sends what is asked for, then ends */
	pthread_cond_signal(&c->notify_cv);
	bool notifying = c->notifying;
	pthread_mutex_unlock(&c->notify_mu);
	if (notifying)
		pthread_join(c->notifier, NULL);
	if (c->listening) {
		atomic_store(&c->stop, true);
		ssize_t w = write(c->stop_pipe[1], "x", 1);
		(void)w;
		pthread_join(c->listener, NULL);
	}
	if (c->send)
		PQfinish(c->send);
	close(c->stop_pipe[0]);
	close(c->stop_pipe[1]);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	pthread_mutex_destroy(&c->send_mu);
	pthread_mutex_destroy(&c->notify_mu);
	pthread_cond_destroy(&c->notify_cv);
	free(c->conninfo);
	free(c->shown);
	free(c);
}

static uint32_t pg_seq(th_coord *c, enum th_wake_event ev)
{
	ensure_listener(c);
	pthread_mutex_lock(&c->mu);
	uint32_t s = c->seq[ev];
	pthread_mutex_unlock(&c->mu);
	return s;
}

/* The sending connection (c->send_mu held), opened if it is not yet; false when the
 * server cannot be reached (said once until it can). */
static bool send_conn(th_coord *c)
{
	return c->send || th_store_pg_connect(c->conninfo, c->shown, c->lease_us, &c->send_down,
					      &c->send) == 0;
}

/* A statement on the sending connection (c->send_mu held), with the store's answer
 * deadline: a server that holds the connection and says nothing costs the connection
 * (logged once until a statement is answered again), not a thread that waits forever. */
static PGresult *coord_exec(th_coord *c, const char *sql, int n, const char *const *vals)
{
	bool cut;
	PGresult *r = th_store_pg_exec(c->send, c->conninfo, c->lease_us, sql, n, vals, &cut);
	if (cut && !c->send_silent)
		th_log_error("store", "%s: wake-up and heartbeat connection lost: no answer from "
			     "the server, nor to a new connection; reconnecting", c->shown);
	c->send_silent = cut || (c->send_silent && PQresultStatus(r) != PGRES_COMMAND_OK &&
				 PQresultStatus(r) != PGRES_TUPLES_OK);
	return r;
}

/* One statement on the sending connection (c->send_mu held), reconnecting once if it was
 * lost: its answer on a connection that still works (a success or the server's error),
 * NULL when there is none. */
static PGresult *send_query(th_coord *c, const char *sql, int n, const char *const *vals)
{
	for (int tries = 0; tries < 2; tries++) {
		if (!send_conn(c))
			return NULL;
		PGresult *r = coord_exec(c, sql, n, vals);
		if (PQstatus(c->send) == CONNECTION_OK)
			return r;
		PQclear(r);
		PQfinish(c->send);
		c->send = NULL;
	}
	return NULL;
}

static bool answered(const PGresult *r)
{
	ExecStatusType s = PQresultStatus(r);
	return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
}

static bool send_sql(th_coord *c, const char *sql, int n, const char *const *vals)
{
	PGresult *r = send_query(c, sql, n, vals);
	bool ok = answered(r);
	PQclear(r);
	return ok;
}

/* A notification for each event in want, on the sending connection. */
static void send_wakeups(th_coord *c, unsigned want)
{
	pthread_mutex_lock(&c->send_mu);
	for (int i = 0; i < NEVENTS; i++) {
		char e[4];
		snprintf(e, sizeof(e), "%d", i);
		const char *v[] = {e};
		if ((want & 1u << i) && !send_sql(c, "SELECT pg_notify('" CHANNEL "', $1)", 1, v))
			th_log_warn("store", "%s: a wake-up was not sent; hosts find the work "
				    "within their wait_time", c->shown);
	}
	pthread_mutex_unlock(&c->send_mu);
}

/* The notifier: sends the wake-ups asked for, each event once for all the calls since
 * it last sent; at close, what is still asked for before it ends. */
static void *notify_main(void *arg)
{
	th_coord *c = arg;
	pthread_setname_np(pthread_self(), "th-notify");
	pthread_mutex_lock(&c->notify_mu);
	for (;;) {
		while (!c->notify_want && !c->notify_stop)
			pthread_cond_wait(&c->notify_cv, &c->notify_mu);
		unsigned want = c->notify_want;
		c->notify_want = 0;
		if (!want)
			break; /* stopping, nothing left */
		pthread_mutex_unlock(&c->notify_mu);
		send_wakeups(c, want);
		pthread_mutex_lock(&c->notify_mu);
	}
	pthread_mutex_unlock(&c->notify_mu);
	return NULL;
}

/* Each call follows a commit. The notification is the notifier's to send: the caller (a
 * group commit, a processor's cycle) goes on at once, and calls that come while one is
 * being sent cost one more, not one each in a row on the one sending connection. */
static void pg_notify(th_coord *c, enum th_wake_event ev)
{
	bump(c, (int)ev); /* this process's sleepers at once */
	pthread_mutex_lock(&c->notify_mu);
	c->notify_want |= 1u << ev;
	if (!c->notifying && !c->notify_stop &&
	    pthread_create(&c->notifier, NULL, notify_main, c) == 0)
		c->notifying = true;
	pthread_cond_signal(&c->notify_cv);
	bool sent_here = !c->notifying; /* no thread: sent by the caller */
	unsigned want = sent_here ? c->notify_want : 0;
	if (sent_here)
		c->notify_want = 0;
	pthread_mutex_unlock(&c->notify_mu);
	if (want)
		send_wakeups(c, want);
}

static void pg_wait(th_coord *c, enum th_wake_event ev, uint32_t seq, int64_t timeout_us)
{
	ensure_listener(c);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	if (timeout_us >= 0) {
		int64_t ns = until.tv_nsec + (timeout_us % 1000000) * 1000;
		until.tv_sec += (time_t)(timeout_us / 1000000 + ns / 1000000000);
		until.tv_nsec = (long)(ns % 1000000000);
	}
	pthread_mutex_lock(&c->mu);
	while (c->seq[ev] == seq) {
		if (timeout_us < 0)
			pthread_cond_wait(&c->cv, &c->mu);
		else if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&c->mu);
}

static void pg_progress_set(th_coord *c, uint64_t id, double done)
{
	char i[24], d[32];
	snprintf(i, sizeof(i), "%llu", (unsigned long long)id);
	snprintf(d, sizeof(d), "%.17g", done);
	const char *v[] = {i, d};
	pthread_mutex_lock(&c->send_mu);
	send_sql(c, "INSERT INTO taskhost.progress VALUES ($1, $2) ON CONFLICT (id) DO UPDATE "
		    "SET done = excluded.done", 2, v);
	pthread_mutex_unlock(&c->send_mu);
}

static void pg_progress_clear(th_coord *c, uint64_t id)
{
	char i[24];
	snprintf(i, sizeof(i), "%llu", (unsigned long long)id);
	const char *v[] = {i};
	pthread_mutex_lock(&c->send_mu);
	send_sql(c, "DELETE FROM taskhost.progress WHERE id = $1", 1, v);
	pthread_mutex_unlock(&c->send_mu);
}

static bool pg_progress_get(th_coord *c, uint64_t id, double *done)
{
	char i[24];
	snprintf(i, sizeof(i), "%llu", (unsigned long long)id);
	const char *v[] = {i};
	bool found = false;
	pthread_mutex_lock(&c->send_mu);
	PGresult *r = send_query(c, "SELECT done FROM taskhost.progress WHERE id = $1", 1, v);
	if (answered(r) && PQntuples(r) == 1) {
		*done = strtod(PQgetvalue(r, 0, 0), NULL);
		found = true;
	}
	PQclear(r);
	pthread_mutex_unlock(&c->send_mu);
	return found;
}

/* Hosts on other machines cannot be seen from here: their leases speak. */
static enum th_liveness pg_alive(th_coord *c, const th_owner *o)
{
	(void)c;
	(void)o;
	return TH_OWNER_UNKNOWN;
}

/* No notes (none needed: the backend commits claims before their jobs start). */
static int pg_notes_open(th_coord *c, const th_owner *self, size_t cap, th_notes **out)
{
	(void)c;
	(void)self;
	(void)cap;
	*out = NULL;
	return 0;
}

static void pg_notes_close(th_coord *c, th_notes *n, bool keep)
{
	(void)c;
	(void)n;
	(void)keep;
}

static void pg_notes_add(th_coord *c, th_notes *n, uint64_t id, uint64_t gen)
{
	(void)c;
	(void)n;
	(void)id;
	(void)gen;
}

static size_t pg_notes_pairs(th_coord *c, const th_notes *n, const uint64_t **pairs)
{
	(void)c;
	(void)n;
	*pairs = NULL;
	return 0;
}

static void pg_notes_clear(th_coord *c, th_notes *n)
{
	(void)c;
	(void)n;
}

static int pg_notes_collect(th_coord *c, const th_owner *self, th_notes_fn fn, void *ud)
{
	(void)c;
	(void)self;
	(void)fn;
	(void)ud;
	return 0;
}

static int pg_host_put(th_coord *c, const th_host_rec *h)
{
	const th_host_info *i = &h->info;
	char inst[24], pid[16], workers[16], running[16], started[24], beat[24], lease[24];
	snprintf(inst, sizeof(inst), "%lld", (long long)h->owner.instance);
	snprintf(pid, sizeof(pid), "%u", h->owner.pid);
	snprintf(workers, sizeof(workers), "%u", i->workers);
	snprintf(running, sizeof(running), "%u", i->running);
	snprintf(started, sizeof(started), "%lld", (long long)i->started_us);
	snprintf(beat, sizeof(beat), "%lld", (long long)i->heartbeat_us);
	snprintf(lease, sizeof(lease), "%lld", (long long)i->lease_us);
	const char *v[] = {inst, pid, i->name, i->strategy, workers, running, started, beat, lease};
	pthread_mutex_lock(&c->send_mu);
	bool ok = send_sql(c, "INSERT INTO taskhost.hosts VALUES ($1, $2, $3, $4, $5, $6, $7, $8,"
			   " $9) ON CONFLICT (instance) DO UPDATE SET pid = excluded.pid,"
			   " name = excluded.name, strategy = excluded.strategy,"
			   " workers = excluded.workers, running = excluded.running,"
			   " started_us = excluded.started_us, heartbeat_us = excluded.heartbeat_us,"
			   " lease_us = excluded.lease_us", 9, v);
	pthread_mutex_unlock(&c->send_mu);
	if (!ok)
		th_log_warn("store", "%s: this host's row in taskhost.hosts was not written",
			    c->shown);
	return ok ? 0 : TH_EIO;
}

static int pg_host_remove(th_coord *c, const th_owner *o)
{
	char inst[24];
	snprintf(inst, sizeof(inst), "%lld", (long long)o->instance);
	const char *v[] = {inst};
	pthread_mutex_lock(&c->send_mu);
	bool ok = send_sql(c, "DELETE FROM taskhost.hosts WHERE instance = $1", 1, v);
	pthread_mutex_unlock(&c->send_mu);
	return ok ? 0 : TH_EIO;
}

static int pg_host_list(th_coord *c, th_host_rec **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	int rc = TH_EIO;
	pthread_mutex_lock(&c->send_mu);
	PGresult *r = send_query(c, "SELECT instance, pid, name, strategy, workers, running,"
				 " started_us, heartbeat_us, lease_us FROM taskhost.hosts", 0, NULL);
	if (r) {
		int rows = answered(r) ? PQntuples(r) : -1;
		char m[TH_STORE_PG_MSG_MAX];
		if (rows < 0) {
			th_log_error("store", "%s: reading taskhost.hosts: %s", c->shown,
				     th_store_pg_message(c->send, r, m));
		} else if (rows > 0 && !(*out = calloc((size_t)rows, sizeof(**out)))) {
			rc = TH_ENOMEM;
		} else {
			rc = 0;
			for (int k = 0; k < rows; k++) {
				th_host_rec *h = &(*out)[k];
				h->owner.instance = (uint64_t)strtoll(PQgetvalue(r, k, 0), NULL, 10);
				h->owner.pid = (uint32_t)strtoul(PQgetvalue(r, k, 1), NULL, 10);
				h->info.instance = h->owner.instance;
				h->info.pid = h->owner.pid;
				snprintf(h->info.name, sizeof(h->info.name), "%s", PQgetvalue(r, k, 2));
				snprintf(h->info.strategy, sizeof(h->info.strategy), "%s",
					 PQgetvalue(r, k, 3));
				h->info.workers = (uint32_t)strtoul(PQgetvalue(r, k, 4), NULL, 10);
				h->info.running = (uint32_t)strtoul(PQgetvalue(r, k, 5), NULL, 10);
				h->info.started_us = strtoll(PQgetvalue(r, k, 6), NULL, 10);
				h->info.heartbeat_us = strtoll(PQgetvalue(r, k, 7), NULL, 10);
				h->info.lease_us = strtoll(PQgetvalue(r, k, 8), NULL, 10);
			}
			*n = (size_t)rows;
		}
		PQclear(r);
	}
	pthread_mutex_unlock(&c->send_mu);
	return rc;
}

static const th_coord_ops pg_ops = {
	.name = "postgresql",
	.close = pg_coord_close,
	.seq = pg_seq,
	.notify = pg_notify,
	.wait = pg_wait,
	.progress_set = pg_progress_set,
	.progress_clear = pg_progress_clear,
	.progress_get = pg_progress_get,
	.alive = pg_alive,
	.notes_open = pg_notes_open,
	.notes_close = pg_notes_close,
	.notes_add = pg_notes_add,
	.notes_pairs = pg_notes_pairs,
	.notes_clear = pg_notes_clear,
	.notes_collect = pg_notes_collect,
	.host_put = pg_host_put,
	.host_remove = pg_host_remove,
	.host_list = pg_host_list,
};

int th_coord_open_pg(th_coord **out, const char *conninfo, const char *shown,
		     int64_t lease_us)
{
	*out = NULL;
	th_coord *c = calloc(1, sizeof(*c));
	if (!c)
		return TH_ENOMEM;
	if (pipe(c->stop_pipe)) {
		free(c);
		return TH_ESYS;
	}
	c->ops = &pg_ops;
	c->lease_us = lease_us;
	pthread_mutex_init(&c->mu, NULL);
	pthread_mutex_init(&c->send_mu, NULL);
	pthread_mutex_init(&c->notify_mu, NULL);
	pthread_cond_init(&c->notify_cv, NULL);
	pthread_cond_init(&c->cv, NULL);
	if (!(c->conninfo = strdup(conninfo)) || !(c->shown = strdup(shown))) {
		pg_coord_close(c);
		return TH_ENOMEM;
	}
	*out = c;
	return 0;
}
