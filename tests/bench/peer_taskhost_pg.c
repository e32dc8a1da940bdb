/* taskhost on its PostgreSQL store in the peers benchmark: 1, 2 or 3 hosts (the column's
 * variant) on one fresh database of the cluster BP_PG per run, each a `taskhost run`
 * process (BENCH_TASKHOST) with its own data dir, the bench plugin (BENCH_PLUGINS), the
 * multi strategy and its HTTP API on loopback, which the producers add through
 * (bp_taskhost_http). The bench plugin's "peer" task sends each start to this process on
 * a unix datagram socket. The hosts run from setup to teardown, their default queue
 * paused but between the harness's go and stop; a service of the harness on the same store
 * fills, pauses, waits and counts. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"
#include "peers.h"
#include "service.h"

#define START_MSG_MAX (8 + BP_PAYLOAD_MAX) /* a start: its time, then the job's input */
#define RCVBUF (4 << 20)                   /* bytes of starts the socket holds unread */

struct pgh {
	th_service *svc; /* the harness's */
	pid_t pid[BP_HOSTS_MAX];
	unsigned nhosts;
	int sock; /* where the starts come */
	pthread_t rx;
	bool rx_on;
	char db[64];
	char store[4200];
	char sock_path[4200];
};

/* Hands each start to the harness until an empty datagram (teardown's) comes. */
static void *rx_main(void *arg)
{
	struct pgh *h = arg;
	char msg[START_MSG_MAX];
	for (;;) {
		ssize_t got = recv(h->sock, msg, sizeof(msg), 0);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return NULL;
		int64_t ns = 0;
		if ((size_t)got >= sizeof(ns))
			memcpy(&ns, msg, sizeof(ns));
		/* a short one counts as a payload no producer added */
		bp_started_at(msg + sizeof(ns), (size_t)got >= sizeof(ns) ? (size_t)got - 8 : 0, ns);
	}
}

static int rx_start(bp_run *r, struct pgh *h)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int size = RCVBUF;
	snprintf(h->sock_path, sizeof(h->sock_path), "%s/starts.sock", r->dir);
	if (strlen(h->sock_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "bench: socket path too long: %s\n", h->sock_path);
		return -1;
	}
	strcpy(sa.sun_path, h->sock_path);
	h->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (h->sock < 0 || bind(h->sock, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(h->sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size))) {
		fprintf(stderr, "bench: %s: %s\n", h->sock_path, strerror(errno));
		return -1;
	}
	/* the hosts this process starts pass it to the task */
	if (setenv("BENCH_STARTS", h->sock_path, 1) ||
	    pthread_create(&h->rx, NULL, rx_main, h) != 0)
		return -1;
	h->rx_on = true;
	return 0;
}

static void rx_stop(struct pgh *h)
{
	if (h->rx_on) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		strcpy(sa.sun_path, h->sock_path);
		int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || sendto(fd, "", 0, 0, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			bu_die("stopping the starts' reader", 0);
		close(fd);
		pthread_join(h->rx, NULL);
	}
	if (h->sock >= 0)
		close(h->sock);
}

/* Host i: dir/hI with its config, log and data dir var, serving HTTP on a free port. */
static int host_spawn(bp_run *r, struct pgh *h, unsigned i)
{
	char dir[4200], var[4300], ini[4300];
	unsigned port = bu_free_port();
	snprintf(dir, sizeof(dir), "%s/h%u", r->dir, i);
	snprintf(var, sizeof(var), "%s/var", dir);
	snprintf(ini, sizeof(ini), "%s/taskhost.ini", dir);
	FILE *f = mkdir(dir, 0700) || mkdir(var, 0700) ? NULL : fopen(ini, "w");
	bool ok = f && fprintf(f, "[host]\ndata_dir = %s\nplugin_dir = %s\nstore = %s\n"
			       "log_level = info\ndurability = %s\nmax_attempts = 1\n"
			       "listen = 127.0.0.1:%u\ntoken_file = %s/tokens\n"
			       "[processor]\nstrategy = multi\nmax_threads = %u\n",
			       var, bu_env("BENCH_PLUGINS"), h->store,
			       r->relaxed ? "relaxed" : "durable", port, r->dir, r->consumers) > 0;
	if (!(f ? fclose(f) == 0 : false) || !ok) {
		fprintf(stderr, "bench: taskhost: writing %s failed\n", ini);
		return -1;
	}
	snprintf(r->url[i], sizeof(r->url[i]), "http://127.0.0.1:%u", port);
	if ((h->pid[i] = bu_start_host(dir, ini)) < 0) {
		fprintf(stderr, "bench: taskhost: host %u on %s did not start\n", i, h->db);
		return -1;
	}
	h->nhosts = i + 1;
	return 0;
}

static void tpg_teardown(bp_run *r)
{
	struct pgh *h = r->state;
	if (h) {
		for (unsigned i = 0; i < h->nhosts; i++)
			kill(h->pid[i], SIGTERM);
		for (unsigned i = 0; i < h->nhosts; i++)
			waitpid(h->pid[i], NULL, 0);
		rx_stop(h);
		th_service_close(h->svc);
		char sql[128];
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", h->db);
		if (h->db[0])
			bp_pg_exec(NULL, sql);
		free(h);
	}
	r->state = NULL;
	if (r->dir)
		bu_rm_dir(r->dir);
	free(r->dir);
	r->dir = NULL;
}

/* A database of its own, its schema made by the harness's service, which pauses the default
 * queue before the hosts start. */
static int tpg_setup(bp_run *r)
{
	struct pgh *h = calloc(1, sizeof(*h));
	char sql[128], svcdir[4200], tokens[4200];
	if (!h)
		return -1;
	h->sock = -1;
	r->state = h;
	r->dir = bu_fresh_dir();
	snprintf(sql, sizeof(sql), "CREATE DATABASE th_peers_%u", r->tag);
	if (bp_pg_exec(NULL, sql)) {
		tpg_teardown(r);
		return -1;
	}
	snprintf(h->db, sizeof(h->db), "th_peers_%u", r->tag);
	snprintf(h->store, sizeof(h->store), "postgresql:%s dbname=%s", bu_env("BP_PG"), h->db);
	snprintf(svcdir, sizeof(svcdir), "%s/harness", r->dir);
	snprintf(tokens, sizeof(tokens), "%s/tokens", r->dir);
	th_service_opts o = {.data_dir = svcdir, .store = h->store, .migrate = true,
			     .plugin_dir = bu_env("BENCH_PLUGINS"), .inspect_only = true,
			     .durability = 1, .max_attempts = 1};
	int rc = mkdir(svcdir, 0700) ? TH_EIO : th_service_open(&h->svc, &o);
	if (rc == 0)
		rc = th_service_pause_queue(h->svc, "", true);
	if (rc)
		fprintf(stderr, "bench: taskhost: opening %s: %s\n", h->store, th_strerror(rc));
	bool ok = rc == 0 && bp_taskhost_tokens(tokens) == 0 && rx_start(r, h) == 0;
	for (unsigned i = 0; ok && i < (unsigned)r->col->variant; i++)
		ok = host_spawn(r, h, i) == 0;
	r->nurls = h->nhosts;
	if (!ok)
		tpg_teardown(r);
	return ok ? 0 : -1;
}

static int tpg_prepare(bp_run *r)
{
	return bp_postgres.prepare(r); /* the same cluster as the PostgreSQL column's */
}

static int tpg_fill(bp_run *r, size_t k)
{
	return bp_taskhost_fill(((struct pgh *)r->state)->svc, k);
}

static void tpg_settle(bp_run *r)
{
	bp_pg_exec(((struct pgh *)r->state)->db, "CHECKPOINT");
}

static int tpg_check(bp_run *r, size_t n, char *why, size_t len)
{
	return bp_taskhost_check(((struct pgh *)r->state)->svc, n, why, len);
}

/* ---- the hosts: running since setup, each with the workload's consumers as threads ---- */

static int tpg_start(bp_run *r, unsigned consumers)
{
	return consumers == r->consumers ? 0 : -1;
}

static int tpg_go(bp_run *r)
{
	return th_service_pause_queue(((struct pgh *)r->state)->svc, "", false) ? -1 : 0;
}

static int tpg_wait(bp_run *r, size_t n, double timeout)
{
	return bp_taskhost_wait(((struct pgh *)r->state)->svc, n, timeout);
}

static void tpg_stop(bp_run *r)
{
	th_service_pause_queue(((struct pgh *)r->state)->svc, "", true);
}

static const bp_host hosts = {tpg_start, tpg_go, tpg_wait, tpg_stop};

const bp_system bp_taskhost_pg = {
	.name = "taskhost on PostgreSQL",
	.pid_env = "BP_PG_PID",
	.wake = "by LISTEN/NOTIFY, with `wait_time` (1 s) as the fallback (multi, 4 threads a "
		"host, 1 for the wake rows)",
	.bytes_of = "the postmaster and its children, as for PostgreSQL (the hosts write only "
		    "their logs)",
	.config = {"`durability = durable` (synchronous_commit on)",
		   "`durability = relaxed` (synchronous_commit off)"},
	.prepare = tpg_prepare,
	.setup = tpg_setup,
	.teardown = tpg_teardown,
	.fill = tpg_fill,
	.settle = tpg_settle,
	.check = tpg_check,
	.host = &hosts,
};

/* ---- a claim's time with many finished jobs in the table ---- */

/* Claims on each store in turn, so that the machine's moods hit them alike. */
int bp_taskhost_pg_claims(const char *const *stores, int n, int repeat, double *us)
{
	char *d[BP_CLAIM_STORES] = {0};
	th_service *svc[BP_CLAIM_STORES] = {0};
	int rc = n <= BP_CLAIM_STORES ? 0 : TH_EINVAL, k = 0;
	for (; rc == 0 && k < n; k++) {
		d[k] = bu_fresh_dir();
		th_service_opts o = {.data_dir = d[k], .store = stores[k], .durability = 1};
		if ((rc = th_service_open(&svc[k], &o)))
			break;
	}
	for (int i = -BP_CLAIM_WARMUP; rc == 0 && i < repeat; i++)
		for (k = 0; rc == 0 && k < n; k++) {
			uint64_t id;
			double t = bu_now_s();
			rc = th_service_claim_next(svc[k], &id);
			if (i >= 0)
				us[k * repeat + i] = (bu_now_s() - t) * 1e6;
		}
	if (rc)
		fprintf(stderr, "bench: taskhost: claiming on %s: %s\n",
			k < n ? stores[k] : "the stores", th_strerror(rc));
	for (k = 0; k < n; k++) {
		th_service_close(svc[k]); /* puts the claimed jobs back */
		if (d[k])
			bu_rm_dir(d[k]);
		free(d[k]);
	}
	return rc ? -1 : 0;
}
