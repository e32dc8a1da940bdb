/* The peers benchmark behind scripts/bench --peers: the same workloads, checked job by job,
 * for taskhost and for beanstalkd, Redis and PostgreSQL, and one table of the results.
 *   bench_peers run CLASS RUNS N P M K E W COLUMN...  runs, prints raw results
 *   bench_peers claim FINISHED STORE...               a claim's time on taskhost's
 *                                                     PostgreSQL stores holding FINISHED
 *                                                     finished jobs, raw results
 *   bench_peers table FILE                            the markdown table of raw results
 * CLASS is durable or relaxed; the counts are N single adds by 1 producer, P producers of
 * M adds each, K jobs drained, E jobs end to end, W wake-ups. Environment: BENCH_DIR
 * (scratch space, on the disk measured) and what the columns' systems read (peer_*.c). */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "log.h"
#include "peers.h"

#define MAX_PRODUCERS 64
#define MAX_RUNS 64
#define CONSUMERS 4        /* consumers of the drain and end-to-end workloads */
#define WAKE_GAP_US 3000   /* idle time before each wake-up's add: pollers at their slowest */
#define WAIT_TIMEOUT 900.0 /* seconds a workload may take before it counts as failed */
#define CONNECT_TIMEOUT 10.0 /* seconds a server may take to listen */
#define CLAIM_REPEAT 200   /* claims timed at each number of finished jobs */
#define CLAIM_FLAT 1.10    /* the target: the largest's median within 10% of the smallest's */

static const bp_column columns[] = {
	{"taskhost (C API)", "taskhost", true, &bp_taskhost, &bp_taskhost_capi, BP_VIA_CAPI},
	{"taskhost (HTTP)", "taskhost-http", true, &bp_taskhost, &bp_taskhost_http, BP_VIA_HTTP},
	{"taskhost (CLI)", "taskhost-cli", true, &bp_taskhost, &bp_taskhost_cli, BP_VIA_CLI},
	{"beanstalkd", "beanstalkd", false, &bp_beanstalkd, &bp_beanstalkd_put, 0},
	{"Redis", "redis", false, &bp_redis, &bp_redis_lpush, 0},
	{"taskhost on PostgreSQL, 1 host (HTTP)", "taskhost-pg1", true, &bp_taskhost_pg,
	 &bp_taskhost_http, 1},
	{"taskhost on PostgreSQL, 2 hosts (HTTP)", "taskhost-pg2", true, &bp_taskhost_pg,
	 &bp_taskhost_http, 2},
	{"taskhost on PostgreSQL, 3 hosts (HTTP)", "taskhost-pg3", true, &bp_taskhost_pg,
	 &bp_taskhost_http, 3},
	{"PostgreSQL", "postgresql", false, &bp_postgres, &bp_postgres_insert, 0},
};
#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))

/* The rows: each workload's results, and whether less is better. */
enum { R_ADD1, R_ADD16, R_DRAIN, R_E2E, R_WAKE50, R_WAKE99, R_BYTES, R_DISK, NROWS };
static const struct {
	const char *key;
	bool less_better;
} rows[NROWS] = {{"add1", false},  {"add16", false}, {"drain", false}, {"e2e", false},
		 {"wake50", true}, {"wake99", true}, {"bytes", true},  {"disk", true}};

/* ---- what the consumers saw ---- */

static struct {
	size_t n;                /* jobs in this workload: sequence numbers 0..n-1 */
	_Atomic uint32_t *seen;  /* starts of each */
	double *lat_us;          /* wake latency of each, from its payload's time */
	atomic_size_t started, bad;
	/* the harness's consumer threads */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	size_t completed;
	bool go, stop, failed;
} ws = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

size_t bp_payload(char buf[BP_PAYLOAD_MAX], size_t seq, int64_t ns)
{
	return (size_t)snprintf(buf, BP_PAYLOAD_MAX, "%zu %lld", seq, (long long)ns);
}

void bp_started(const char *payload, size_t len)
{
	bp_started_at(payload, len, bu_now_ns());
}

void bp_started_at(const char *payload, size_t len, int64_t now)
{
	char buf[BP_PAYLOAD_MAX];
	unsigned long long seq;
	long long ns;
	if (len >= sizeof(buf)) {
		atomic_fetch_add(&ws.bad, 1);
		return;
	}
	memcpy(buf, payload, len);
	buf[len] = 0;
	if (sscanf(buf, "%llu %lld", &seq, &ns) != 2 || seq >= ws.n) {
		atomic_fetch_add(&ws.bad, 1);
		return;
	}
	if (atomic_fetch_add(&ws.seen[seq], 1) == 0 && ns > 0)
		ws.lat_us[seq] = (double)(now - ns) / 1000.0;
	atomic_fetch_add(&ws.started, 1);
}

size_t bp_started_count(void)
{
	return atomic_load(&ws.started);
}

static void seen_reset(size_t n)
{
	free((void *)ws.seen);
	free(ws.lat_us);
	ws.n = n;
	ws.seen = calloc(n ? n : 1, sizeof(*ws.seen));
	ws.lat_us = calloc(n ? n : 1, sizeof(*ws.lat_us));
	if (!ws.seen || !ws.lat_us)
		bu_die("calloc", 0);
	atomic_store(&ws.started, 0);
	atomic_store(&ws.bad, 0);
}

/* Every job 0..n-1 started exactly once, and the system holds them completed, no more. */
static int verify(bp_run *r, char *why, size_t len)
{
	if (atomic_load(&ws.bad)) {
		snprintf(why, len, "%zu payloads that no producer added", atomic_load(&ws.bad));
		return -1;
	}
	for (size_t i = 0; i < ws.n; i++) {
		uint32_t k = atomic_load(&ws.seen[i]);
		if (k != 1) {
			snprintf(why, len, "job %zu started %u times", i, k);
			return -1;
		}
	}
	return r->col->sys->check(r, ws.n, why, len);
}

/* ---- consumers: the system's own host, or threads of the harness ---- */

struct puller {
	pthread_t thread;
	bp_run *r;
	void *conn;
};
static struct puller pullers[CONSUMERS];
static unsigned npullers;

static void *pull_main(void *arg)
{
	struct puller *p = arg;
	const bp_system *sys = p->r->col->sys;
	bp_job *jobs = calloc(BP_CLAIM_MAX, sizeof(*jobs));
	pthread_mutex_lock(&ws.mu);
	while (!ws.go && !ws.stop)
		pthread_cond_wait(&ws.cv, &ws.mu);
	pthread_mutex_unlock(&ws.mu);
	for (;;) {
		size_t n = 0;
		int rc = sys->claim(p->conn, jobs, BP_CLAIM_MAX, &n);
		for (size_t i = 0; rc == 0 && i < n; i++)
			bp_started(jobs[i].payload, jobs[i].len);
		if (rc == 0 && n)
			rc = sys->complete(p->conn, jobs, n);
		pthread_mutex_lock(&ws.mu);
		if (rc == 0)
			ws.completed += n;
		else if (!ws.stop)
			ws.failed = true;
		bool done = rc != 0 || ws.stop;
		pthread_cond_broadcast(&ws.cv);
		pthread_mutex_unlock(&ws.mu);
		if (done)
			break;
	}
	free(jobs);
	return NULL;
}

static int consumers_start(bp_run *r, unsigned n)
{
	const bp_system *sys = r->col->sys;
	if (sys->host)
		return sys->host->start(r, n);
	ws.completed = 0;
	ws.go = ws.stop = ws.failed = false;
	for (npullers = 0; npullers < n; npullers++) {
		struct puller *p = &pullers[npullers];
		p->r = r;
		if (!(p->conn = sys->copen(r)) ||
		    pthread_create(&p->thread, NULL, pull_main, p) != 0) {
			if (p->conn)
				sys->cclose(p->conn);
			return -1;
		}
	}
	return 0;
}

static int consumers_go(bp_run *r)
{
	if (r->col->sys->host)
		return r->col->sys->host->go(r);
	pthread_mutex_lock(&ws.mu);
	ws.go = true;
	pthread_cond_broadcast(&ws.cv);
	pthread_mutex_unlock(&ws.mu);
	return 0;
}

/* Until n jobs are completed; -1 when a consumer failed or after the deadline. */
static int consumers_wait(bp_run *r, size_t n)
{
	if (r->col->sys->host)
		return r->col->sys->host->wait(r, n, WAIT_TIMEOUT);
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)WAIT_TIMEOUT;
	int rc = 0;
	pthread_mutex_lock(&ws.mu);
	while (ws.completed < n && !ws.failed && rc == 0)
		rc = pthread_cond_timedwait(&ws.cv, &ws.mu, &deadline);
	bool ok = ws.completed >= n && !ws.failed;
	pthread_mutex_unlock(&ws.mu);
	return ok ? 0 : -1;
}

static void consumers_stop(bp_run *r)
{
	const bp_system *sys = r->col->sys;
	if (sys->host) {
		sys->host->stop(r);
		return;
	}
	pthread_mutex_lock(&ws.mu);
	ws.stop = true;
	pthread_cond_broadcast(&ws.cv);
	pthread_mutex_unlock(&ws.mu);
	for (unsigned i = 0; i < npullers; i++)
		sys->cinterrupt(pullers[i].conn);
	for (unsigned i = 0; i < npullers; i++) {
		pthread_join(pullers[i].thread, NULL);
		sys->cclose(pullers[i].conn);
	}
	npullers = 0;
}

/* Drains n jobs with the usual consumers, to check what adds alone left behind. */
static int drain_check(bp_run *r, size_t n, char *why, size_t len)
{
	if (consumers_start(r, CONSUMERS) || consumers_go(r)) {
		consumers_stop(r);
		snprintf(why, len, "the consumers did not start");
		return -1;
	}
	int rc = consumers_wait(r, n);
	consumers_stop(r);
	if (rc) {
		snprintf(why, len, "%zu of %zu jobs were there to drain", bp_started_count(), n);
		return -1;
	}
	return verify(r, why, len);
}

/* ---- producers: processes of their own, started before any thread ---- */

struct shared {
	int64_t end_ns[MAX_PRODUCERS];   /* when each received its last acknowledgement */
	uint64_t wbytes[MAX_PRODUCERS];  /* what each wrote to storage meanwhile */
};

struct producers {
	int n;
	pid_t pid[MAX_PRODUCERS];
	int ready, go, done, bye; /* the harness's ends of four pipes */
	struct shared *sh;
};

/* write_bytes of /proc/PID/io (pid 0: this process) and, with children, of its children. */
static uint64_t write_bytes(pid_t pid, bool children)
{
	char path[300], line[256];
	uint64_t sum = 0;
	snprintf(path, sizeof(path), pid ? "/proc/%d/io" : "/proc/self/io", (int)pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "write_bytes:", 12) == 0)
			sum += strtoull(line + 12, NULL, 10);
	if (f)
		fclose(f);
	if (!children)
		return sum;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		char stat[512];
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "r");
		size_t got = f ? fread(stat, 1, sizeof(stat) - 1, f) : 0;
		if (f)
			fclose(f);
		stat[got] = 0;
		char *paren = strrchr(stat, ')'); /* the command name may hold anything */
		int ppid;
		if (paren && sscanf(paren + 1, " %*c %d", &ppid) == 1 && ppid == pid)
			sum += write_bytes((pid_t)atoi(e->d_name), false);
	}
	if (d)
		closedir(d);
	return sum;
}

/* Bytes written to the device that holds BENCH_DIR, by anyone: /sys/dev/block/M:m/stat. */
static uint64_t device_bytes(void)
{
	struct stat st;
	char path[96];
	unsigned long long f[7] = {0};
	if (stat(bu_env("BENCH_DIR"), &st))
		bu_die("stat BENCH_DIR", 0);
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/stat", major(st.st_dev),
		 minor(st.st_dev));
	FILE *fp = fopen(path, "r");
	if (!fp || fscanf(fp, "%llu %llu %llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3],
			  &f[4], &f[5], &f[6]) != 7)
		bu_die(path, 0);
	fclose(fp);
	return f[6] * 512; /* sectors written */
}

static void producer_main(bp_run *r, struct producers *p, int i, size_t per, bool paced,
			  int fds[4][2])
{
	for (int k = 0; k < 4; k++)
		close(fds[k][k == 0 || k == 2 ? 0 : 1]); /* keep: ready/done write, go/bye read */
	void *conn = r->col->adder->open(r);
	if (!conn)
		_exit(3);
	uint64_t w0 = write_bytes(0, false);
	char c = 'r', payload[BP_PAYLOAD_MAX];
	if (write(fds[0][1], &c, 1) != 1)
		_exit(4);
	close(fds[0][1]);
	if (!paced && read(fds[1][0], &c, 1) != 0) /* the harness closes it: go */
		_exit(4);
	for (size_t j = 0; j < per; j++) {
		if (paced && read(fds[1][0], &c, 1) != 1)
			_exit(4);
		size_t len = bp_payload(payload, (size_t)i * per + j, bu_now_ns());
		if (r->col->adder->add(conn, payload, len))
			_exit(5);
	}
	p->sh->end_ns[i] = bu_now_ns();
	p->sh->wbytes[i] = write_bytes(0, false) - w0;
	if (write(fds[2][1], &c, 1) != 1)
		_exit(4);
	close(fds[2][1]);
	while (read(fds[3][0], &c, 1) > 0) /* the server's counters are read meanwhile */
		;
	r->col->adder->close(conn);
	_exit(0);
}

/* Forks n producers of `per` jobs each; they connect and wait for producers_go (paced: for
 * one byte per job). 0 once all are connected. */
static int producers_fork(bp_run *r, struct producers *p, int n, size_t per, bool paced)
{
	int fds[4][2]; /* ready, go, done, bye */
	p->n = 0;
	p->sh = mmap(NULL, sizeof(*p->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
		     -1, 0);
	if (p->sh == MAP_FAILED)
		bu_die("mmap", 0);
	for (int k = 0; k < 4; k++)
		if (pipe(fds[k]))
			bu_die("pipe", 0);
	fflush(stdout);
	for (; p->n < n; p->n++) {
		pid_t pid = fork();
		if (pid < 0)
			bu_die("fork", 0);
		if (pid == 0)
			producer_main(r, p, p->n, per, paced, fds);
		p->pid[p->n] = pid;
	}
	close(fds[0][1]);
	close(fds[1][0]);
	close(fds[2][1]);
	close(fds[3][0]);
	p->ready = fds[0][0];
	p->go = fds[1][1];
	p->done = fds[2][0];
	p->bye = fds[3][1];
	char c;
	for (int i = 0; i < n; i++)
		if (read(p->ready, &c, 1) != 1)
			return -1; /* one could not connect; the others see EOF on go */
	return 0;
}

static void producers_go(struct producers *p)
{
	close(p->go);
	p->go = -1;
}

/* Until every producer had its last add acknowledged; the latest time of it, 0 if one
 * failed. *written (may be NULL): what they wrote to storage meanwhile. */
static int64_t producers_done(struct producers *p, uint64_t *written)
{
	char c;
	int64_t last = 0;
	for (int i = 0; i < p->n; i++)
		if (read(p->done, &c, 1) != 1)
			return 0;
	if (written)
		*written = 0;
	for (int i = 0; i < p->n; i++) {
		last = p->sh->end_ns[i] > last ? p->sh->end_ns[i] : last;
		if (written)
			*written += p->sh->wbytes[i];
	}
	return last;
}

/* After a failure: no producer goes on adding. */
static void producers_kill(struct producers *p)
{
	for (int i = 0; i < p->n; i++)
		kill(p->pid[i], SIGKILL);
}

/* Lets them go and reaps them: 0 when every one exited with 0. */
static int producers_reap(struct producers *p)
{
	int bad = 0;
	if (p->go >= 0)
		close(p->go);
	close(p->bye);
	close(p->ready);
	close(p->done);
	for (int i = 0; i < p->n; i++) {
		int status;
		if (waitpid(p->pid[i], &status, 0) < 0 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			bad++;
	}
	munmap(p->sh, sizeof(*p->sh));
	return bad ? -1 : 0;
}

/* ---- the workloads ---- */

struct result {
	bool ok;
	double v[3];
	char why[256];
};

static void settle(bp_run *r)
{
	sync(); /* what the setup or the fill left dirty is not the measured work's to flush */
	if (r->col->sys->settle)
		r->col->sys->settle(r);
}

/* Workloads 1, 2 and 6: np producers adding `per` acknowledged jobs each. */
static struct result w_adds(bp_run *r, int np, size_t per)
{
	struct result out = {0};
	struct producers p;
	size_t n = (size_t)np * per;
	seen_reset(n);
	settle(r);
	if (producers_fork(r, &p, np, per, false)) {
		producers_kill(&p);
		producers_reap(&p);
		snprintf(out.why, sizeof(out.why), "a producer could not connect");
		return out;
	}
	uint64_t w0 = r->server ? write_bytes(r->server, true) : 0, d0 = device_bytes();
	int64_t t0 = bu_now_ns();
	producers_go(&p);
	uint64_t own = 0;
	int64_t t1 = producers_done(&p, &own);
	if (np == 1)
		settle(r); /* what the adds left to write later (relaxed, a checkpoint), written */
	uint64_t w1 = r->server ? write_bytes(r->server, true) : 0, d1 = device_bytes();
	if (producers_reap(&p) || !t1) {
		snprintf(out.why, sizeof(out.why), "a producer failed");
		return out;
	}
	out.v[0] = (double)n / ((double)(t1 - t0) / 1e9);
	out.v[1] = (double)(r->server ? w1 - w0 : own) / (double)n;
	out.v[2] = (double)(d1 - d0) / (double)n;
	out.ok = drain_check(r, n, out.why, sizeof(out.why)) == 0;
	return out;
}

/* Workload 3: k jobs queued first, then drained by 4 consumers. */
static struct result w_drain(bp_run *r, size_t k)
{
	struct result out = {0};
	seen_reset(k);
	if (r->col->sys->fill(r, k)) {
		snprintf(out.why, sizeof(out.why), "filling the queue failed");
		return out;
	}
	settle(r);
	if (consumers_start(r, CONSUMERS)) {
		consumers_stop(r);
		snprintf(out.why, sizeof(out.why), "the consumers did not start");
		return out;
	}
	double t0 = bu_now_s();
	int rc = consumers_go(r) || consumers_wait(r, k);
	double t1 = bu_now_s();
	consumers_stop(r);
	if (rc) {
		snprintf(out.why, sizeof(out.why), "%zu of %zu jobs drained", bp_started_count(), k);
		return out;
	}
	out.v[0] = (double)k / (t1 - t0);
	out.ok = verify(r, out.why, sizeof(out.why)) == 0;
	return out;
}

/* Workload 4 (paced: workload 5): one producer while consumers run. */
static struct result w_flow(bp_run *r, size_t n, unsigned consumers, bool paced)
{
	struct result out = {0};
	struct producers p;
	seen_reset(n);
	settle(r);
	bool ok = producers_fork(r, &p, 1, n, paced) == 0;
	ok = ok && consumers_start(r, consumers) == 0 && consumers_go(r) == 0;
	double t0 = bu_now_s();
	if (ok && !paced) {
		producers_go(&p);
		ok = consumers_wait(r, n) == 0;
	}
	for (size_t i = 0; ok && paced && i < n; i++) {
		struct timespec gap = {0, WAKE_GAP_US * 1000};
		nanosleep(&gap, NULL);
		ok = write(p.go, "j", 1) == 1 && consumers_wait(r, i + 1) == 0;
	}
	double t1 = bu_now_s();
	ok = ok && producers_done(&p, NULL) != 0;
	consumers_stop(r);
	if (!ok)
		producers_kill(&p);
	if (producers_reap(&p) || !ok) {
		snprintf(out.why, sizeof(out.why), "%zu of %zu jobs completed", bp_started_count(), n);
		return out;
	}
	if (paced) { /* verify reads the counts, not the latencies */
		qsort(ws.lat_us, n, sizeof(double), bu_cmp_double);
		out.v[0] = ws.lat_us[n / 2];
		out.v[1] = ws.lat_us[(size_t)((double)n * 0.99)];
	} else {
		out.v[0] = (double)n / (t1 - t0);
	}
	out.ok = verify(r, out.why, sizeof(out.why)) == 0;
	return out;
}

/* ---- helpers for the clients ---- */

int bp_unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "bench: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	double deadline = bu_now_s() + CONNECT_TIMEOUT;
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		int err = errno;
		if (fd >= 0)
			close(fd);
		/* a server just started may not listen yet */
		if ((err != ECONNREFUSED && err != ENOENT) || bu_now_s() > deadline) {
			fprintf(stderr, "bench: connecting to %s: %s\n", path, strerror(err));
			return -1;
		}
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
}

/* ---- run: every workload, every run, every column; raw results on stdout ---- */

struct counts {
	size_t n1, np, per, k, e, w;
};

struct cell {
	double v[MAX_RUNS];
	int nv;
	bool invalid;
};

static void record(struct cell *c, const bp_column *col, bool relaxed, int row,
		   const struct result *res, int which)
{
	if (!res->ok) {
		if (!c->invalid)
			fprintf(stderr, "bench_peers: %s, %s, %s: invalid: %s\n", col->key,
				relaxed ? "relaxed" : "durable", rows[row].key, res->why);
		c->invalid = true;
		return;
	}
	c->v[c->nv++] = res->v[which];
}

/* The workloads in the order they run, and the rows their two values go to (-1: none). */
enum { W_ADD1, W_ADD16, W_DRAIN, W_E2E, W_WAKE, NWORKLOADS };
static const int fills[NWORKLOADS][3] = {{R_ADD1, R_BYTES, R_DISK},
					      {R_ADD16, -1, -1},
					      {R_DRAIN, -1, -1},
					      {R_E2E, -1, -1},
					      {R_WAKE50, R_WAKE99, -1}};

static struct result run_workload(bp_run *r, int w, const struct counts *n)
{
	struct result res = {0};
	r->consumers = w == W_WAKE ? 1 : CONSUMERS;
	if (r->col->sys->setup(r)) {
		snprintf(res.why, sizeof(res.why), "setting up failed");
		return res;
	}
	switch (w) {
	case W_ADD1: res = w_adds(r, 1, n->n1); break;
	case W_ADD16: res = w_adds(r, (int)n->np, n->per); break;
	case W_DRAIN: res = w_drain(r, n->k); break;
	case W_E2E: res = w_flow(r, n->e, CONSUMERS, false); break;
	default: res = w_flow(r, n->w, 1, true); break;
	}
	r->col->sys->teardown(r);
	return res;
}

static int run_mode(bool relaxed, int runs, const struct counts *n, const bp_column **cols,
		    size_t ncols)
{
	static struct cell cells[NROWS][NCOLUMNS];
	unsigned tag = (unsigned)getpid() << 8;
	for (size_t c = 0; c < ncols; c++) {
		bp_run r = {.col = cols[c], .relaxed = relaxed};
		if (cols[c]->sys->prepare && cols[c]->sys->prepare(&r)) {
			fprintf(stderr, "bench_peers: %s: preparing the server failed\n", cols[c]->key);
			return 1;
		}
	}
	for (int run = 0; run < runs; run++) {
		fprintf(stderr, "bench_peers: %s, run %d of %d\n", relaxed ? "relaxed" : "durable",
			run + 1, runs);
		/* columns side by side in each workload, so that the disk's moods hit them alike */
		for (int w = 0; w < NWORKLOADS; w++) {
			for (size_t c = 0; c < ncols; c++) {
				const char *pid = cols[c]->sys->pid_env ? getenv(cols[c]->sys->pid_env)
								       : NULL;
				bp_run r = {.col = cols[c], .relaxed = relaxed, .tag = ++tag,
					    .server = pid ? (pid_t)atoi(pid) : 0};
				struct result res = run_workload(&r, w, n);
				for (int k = 0; k < 3; k++)
					if (fills[w][k] >= 0)
						record(&cells[fills[w][k]][c], cols[c], relaxed,
						       fills[w][k], &res, k);
			}
		}
	}
	printf("counts\t%zu\t%zu\t%zu\t%zu\t%zu\t%zu\t%d\n", n->n1, n->np, n->per, n->k, n->e,
	       n->w, runs);
	for (int row = 0; row < NROWS; row++) {
		for (size_t c = 0; c < ncols; c++) {
			struct cell *x = &cells[row][c];
			printf("result\t%s\t%s\t%s\t", rows[row].key, relaxed ? "relaxed" : "durable",
			       cols[c]->key);
			if (x->invalid) {
				printf("invalid\n");
				continue;
			}
			for (int i = 0; i < x->nv; i++)
				printf("%s%.1f", i ? " " : "", x->v[i]);
			printf("\n");
		}
	}
	return 0;
}

/* ---- table: the raw results of both classes as one markdown table ---- */

static const char *const classes[2] = {"durable", "relaxed"};

static struct cell table[NROWS][2][NCOLUMNS];
static bool present[NCOLUMNS];
/* a claim's time with `finished` finished jobs in the table: median, min, max (us) */
static struct {
	size_t finished;
	double us[3];
} claims[BP_CLAIM_STORES];
static int nclaims;

/* Whether column c is the first present one of its system (the notes name each once). */
static bool first_of_system(size_t c)
{
	if (!present[c])
		return false;
	for (size_t i = 0; i < c; i++)
		if (present[i] && columns[i].sys == columns[c].sys)
			return false;
	return true;
}

static int index_of(const char *key, bool row)
{
	for (int i = 0; i < (row ? NROWS : (int)NCOLUMNS); i++)
		if (strcmp(key, row ? rows[i].key : columns[i].key) == 0)
			return i;
	return -1;
}

/* 12345.6 -> "12,346"; small values keep a decimal. */
static const char *num(char *buf, size_t cap, double v)
{
	if (v < 10) {
		snprintf(buf, cap, "%.1f", v);
		return buf;
	}
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%.0f", v), o = 0;
	for (int i = 0; i < n && (size_t)o + 2 < cap; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = 0;
	return buf;
}

static bool median_of(struct cell *c, double *m)
{
	if (c->invalid || c->nv == 0)
		return false;
	double v[MAX_RUNS];
	memcpy(v, c->v, sizeof(double) * (size_t)c->nv);
	*m = bu_median(v, (size_t)c->nv);
	return true;
}

/* The best median among ours (or among the others); false when one of them is invalid. */
static bool best_of(int row, int cls, bool ours, double *best)
{
	bool any = false;
	for (size_t c = 0; c < NCOLUMNS; c++) {
		double m;
		if (!present[c] || columns[c].ours != ours)
			continue;
		if (!median_of(&table[row][cls][c], &m))
			return false;
		if (!any || (rows[row].less_better ? m < *best : m > *best))
			*best = m;
		any = true;
	}
	return any;
}

static bool ratio_of(int row, int cls, double *ratio)
{
	double ours, theirs;
	if (!best_of(row, cls, true, &ours) || !best_of(row, cls, false, &theirs) || theirs <= 0)
		return false;
	*ratio = ours / theirs;
	return true;
}

/* Whether taskhost is at least as good as the best peer in this row. */
static bool ahead(int row, double ratio)
{
	return rows[row].less_better ? ratio <= 1.0 : ratio >= 1.0;
}

static void label(int row, const struct counts *n, char *buf, size_t cap)
{
	char a[32];
	switch (row) {
	case R_ADD1:
		snprintf(buf, cap, "1 producer, %s acknowledged single adds (jobs/s)",
			 num(a, sizeof(a), (double)n->n1));
		break;
	case R_ADD16:
		snprintf(buf, cap, "%zu producer processes x %s acknowledged single adds (jobs/s)",
			 n->np, num(a, sizeof(a), (double)n->per));
		break;
	case R_DRAIN:
		snprintf(buf, cap, "drain %s queued jobs, %d consumers (jobs/s)",
			 num(a, sizeof(a), (double)n->k), CONSUMERS);
		break;
	case R_E2E:
		snprintf(buf, cap, "end to end: 1 producer, %d consumers, %s jobs (jobs/s)", CONSUMERS,
			 num(a, sizeof(a), (double)n->e));
		break;
	case R_WAKE50:
		snprintf(buf, cap, "wake latency p50, add call to job start, 1 idle consumer "
			 "(PostgreSQL's polls), %s jobs (us)", num(a, sizeof(a), (double)n->w));
		break;
	case R_WAKE99:
		snprintf(buf, cap, "wake latency p99 (us)");
		break;
	case R_BYTES:
		snprintf(buf, cap, "bytes written per job, 1 producer: write_bytes of the taskhost "
			 "process adding, of each peer's server processes");
		break;
	default:
		snprintf(buf, cap, "bytes written per job, 1 producer: the data disk's written "
			 "sectors, whole machine");
	}
}

/* The median of column a's row over column b's; false when either is missing or invalid. */
static bool col_ratio(int row, int cls, const char *a, const char *b, double *ratio)
{
	int x = index_of(a, false), y = index_of(b, false);
	double ma, mb;
	if (x < 0 || y < 0 || !present[x] || !present[y] || !median_of(&table[row][cls][x], &ma) ||
	    !median_of(&table[row][cls][y], &mb) || mb <= 0)
		return false;
	*ratio = ma / mb;
	return true;
}

/* "- what: durable met (1.20x), relaxed not met (0.90x)": whether a/b is at least `least`. */
static void target_line(const char *what, int row, const char *a, const char *b, double least)
{
	printf("- %s:", what);
	for (int cls = 0; cls < 2; cls++) {
		double ratio;
		if (col_ratio(row, cls, a, b, &ratio))
			printf(" %s %s (%.2fx)%s", classes[cls], ratio >= least ? "met" : "not met",
			       ratio, cls ? "" : ",");
		else
			printf(" %s not measured%s", classes[cls], cls ? "" : ",");
	}
	printf("\n");
}

/* The PostgreSQL store's targets (issue 14). */
static void pg_targets(size_t np)
{
	char what[160];
	target_line("taskhost on PostgreSQL, 1 host, drains at least PostgreSQL's SKIP LOCKED "
		    "pattern", R_DRAIN, "taskhost-pg1", "postgresql", 1.0);
	/* "more": any gain, however small; the ratio says how much */
	target_line("2 hosts on PostgreSQL drain more than 1", R_DRAIN, "taskhost-pg2",
		    "taskhost-pg1", 1.0 + 1e-9);
	snprintf(what, sizeof(what), "%zu producers over HTTP to 1 host on PostgreSQL, at least 2x "
		 "PostgreSQL's plain INSERT", np);
	target_line(what, R_ADD16, "taskhost-pg1", "postgresql", 2.0);
	if (nclaims < 2) {
		printf("- a claim's time flat (within 10%%) from few to many finished jobs: not "
		       "measured\n");
		return;
	}
	double ratio = claims[nclaims - 1].us[0] / claims[0].us[0];
	char a[32], b[32];
	printf("- a claim's time flat (within 10%%) from %s to %s finished jobs: %s (%.2fx)\n",
	       num(a, sizeof(a), (double)claims[0].finished),
	       num(b, sizeof(b), (double)claims[nclaims - 1].finished),
	       ratio <= CLAIM_FLAT ? "met" : "not met", ratio);
}

/* The claims' rows, when measured: one per number of finished jobs. */
static void claims_table(void)
{
	if (!nclaims)
		return;
	printf("\nA claim on taskhost's PostgreSQL store with many finished jobs in its table "
	       "(th_service_claim_next of one job, relaxed, %d times after %d untimed, the "
	       "stores taking turns; the table filled by SQL, tests/bench/stats_fill.sql, "
	       "1,000 jobs queued):\n\n"
	       "| finished jobs | median | min | max | unit |\n|---|---|---|---|---|\n",
	       CLAIM_REPEAT, BP_CLAIM_WARMUP);
	for (int i = 0; i < nclaims; i++) {
		char f[32], m[32], lo[32], hi[32];
		printf("| %s | %s | %s | %s | us |\n", num(f, sizeof(f), (double)claims[i].finished),
		       num(m, sizeof(m), claims[i].us[0]), num(lo, sizeof(lo), claims[i].us[1]),
		       num(hi, sizeof(hi), claims[i].us[2]));
	}
}

/* `claim FINISHED STORE...`: "claim FINISHED median min max" of CLAIM_REPEAT claims on each
 * store, the claims taking turns. */
static int claim_mode(int n, char **args)
{
	static double us[BP_CLAIM_STORES * CLAIM_REPEAT];
	const char *stores[BP_CLAIM_STORES];
	if (n < 1 || n > BP_CLAIM_STORES) {
		fprintf(stderr, "bench_peers: claim takes 1 to %d stores\n", BP_CLAIM_STORES);
		return 2;
	}
	for (int k = 0; k < n; k++)
		stores[k] = args[2 * k + 1];
	if (bp_taskhost_pg_claims(stores, n, CLAIM_REPEAT, us))
		return 1;
	for (int k = 0; k < n; k++) {
		double *v = us + k * CLAIM_REPEAT, median = bu_median(v, CLAIM_REPEAT); /* sorts */
		printf("claim\t%s\t%.1f\t%.1f\t%.1f\n", args[2 * k], median, v[0],
		       v[CLAIM_REPEAT - 1]);
	}
	return 0;
}

static int table_mode(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		bu_die(path, 0);
	char line[8192];
	struct counts n = {0};
	int runs = 0;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		char *save, *kind = strtok_r(line, "\t", &save);
		if (kind && strcmp(kind, "counts") == 0) {
			sscanf(save, "%zu %zu %zu %zu %zu %zu %d", &n.n1, &n.np, &n.per, &n.k, &n.e,
			       &n.w, &runs);
			continue;
		}
		if (kind && strcmp(kind, "claim") == 0) {
			if (nclaims < BP_CLAIM_STORES &&
			    sscanf(save, "%zu %lf %lf %lf", &claims[nclaims].finished,
				   &claims[nclaims].us[0], &claims[nclaims].us[1],
				   &claims[nclaims].us[2]) == 4)
				nclaims++;
			continue;
		}
		char *rk = strtok_r(NULL, "\t", &save), *ck = strtok_r(NULL, "\t", &save);
		char *col = strtok_r(NULL, "\t", &save), *vals = strtok_r(NULL, "\t", &save);
		int row = rk ? index_of(rk, true) : -1, c = col ? index_of(col, false) : -1;
		int cls = ck && strcmp(ck, "relaxed") == 0;
		if (!kind || strcmp(kind, "result") || row < 0 || c < 0)
			continue;
		struct cell *x = &table[row][cls][c];
		present[c] = true;
		if (!vals || strcmp(vals, "invalid") == 0) {
			x->invalid = true;
			continue;
		}
		for (char *v = strtok_r(vals, " ", &save); v && x->nv < MAX_RUNS;
		     v = strtok_r(NULL, " ", &save))
			x->v[x->nv++] = strtod(v, NULL);
	}
	fclose(f);

	printf("| workload | class |");
	for (size_t c = 0; c < NCOLUMNS; c++)
		if (present[c])
			printf(" %s |", columns[c].title);
	printf(" taskhost / best peer |\n|---|---|");
	for (size_t c = 0; c < NCOLUMNS; c++)
		if (present[c])
			printf("---|");
	printf("---|\n");
	for (int row = 0; row < NROWS; row++) {
		for (int cls = 0; cls < 2; cls++) {
			char lab[256], a[32], b[32], d[32];
			label(row, &n, lab, sizeof(lab));
			printf("| %s | %s |", lab, classes[cls]);
			for (size_t c = 0; c < NCOLUMNS; c++) {
				struct cell *x = &table[row][cls][c];
				double m;
				if (!present[c])
					continue;
				if (!median_of(x, &m)) {
					printf(" %s |", x->invalid ? "invalid" : "-");
					continue;
				}
				double lo = x->v[0], hi = x->v[0];
				for (int i = 1; i < x->nv; i++) {
					lo = x->v[i] < lo ? x->v[i] : lo;
					hi = x->v[i] > hi ? x->v[i] : hi;
				}
				if (x->nv > 1)
					printf(" %s (%s-%s) |", num(a, sizeof(a), m), num(b, sizeof(b), lo),
					       num(d, sizeof(d), hi));
				else
					printf(" %s |", num(a, sizeof(a), m));
			}
			double ratio;
			if (ratio_of(row, cls, &ratio))
				printf(" %.2f (%s) |\n", ratio, ahead(row, ratio) ? "ahead" : "behind");
			else
				printf(" - |\n");
		}
	}

	printf("\nMedians of %d run(s), (min-max) when more. taskhost / best peer: jobs/s divided "
	       "by the best peer's (more is better), us and bytes likewise (less is better).\n",
	       runs);
	for (int cls = 0; cls < 2; cls++) {
		printf("- %s:", classes[cls]);
		for (size_t c = 0, k = 0; c < NCOLUMNS; c++)
			if (first_of_system(c))
				printf("%s %s %s", k++ ? ";" : "", columns[c].sys->name,
				       columns[c].sys->config[cls]);
		printf(".\n");
	}
	printf("- an idle consumer waits:");
	for (size_t c = 0, k = 0; c < NCOLUMNS; c++)
		if (first_of_system(c))
			printf("%s %s %s", k++ ? ";" : "", columns[c].sys->name, columns[c].sys->wake);
	printf(".\n- bytes written:");
	for (size_t c = 0, k = 0; c < NCOLUMNS; c++)
		if (first_of_system(c))
			printf("%s %s: %s", k++ ? ";" : "", columns[c].sys->name,
			       columns[c].sys->bytes_of);
	printf(" (write_bytes counts the page cache a process dirties: a few bytes written into a "
	       "large folio, which ext4 uses since Linux 6.16, count as the whole folio; the disk's "
	       "sectors count what reached it, file system journal included, and everybody's)");
	printf(".\n- every run checks that each job was added and started exactly once and "
	       "that the system holds it completed; a row with a failed check says invalid.\n");
	claims_table();

	/* the targets, from the front door's issue, in this run */
	printf("\nTargets:\n");
	int behind = 0, known = 0;
	char list[2048] = "";
	for (int row = 0; row < NROWS; row++)
		for (int cls = 0; cls < 2; cls++) {
			double ratio;
			if (!ratio_of(row, cls, &ratio))
				continue;
			known++;
			if (!ahead(row, ratio)) {
				size_t l = strlen(list);
				snprintf(list + l, sizeof(list) - l, "%s%s %s", behind++ ? ", " : "",
					 rows[row].key, classes[cls]);
			}
		}
	printf("- taskhost at least the best peer in every row, both classes: %s (%d of %d "
	       "rows%s%s)\n", known && !behind ? "met" : "not met", known - behind, known,
	       behind ? "; behind in: " : "", list);
	double ratio;
	if (ratio_of(R_ADD16, 0, &ratio))
		printf("- %zu producers, durable, at least 2x the best peer: %s (%.2fx)\n", n.np,
		       ratio >= 2.0 ? "met" : "not met", ratio);
	else
		printf("- %zu producers, durable, at least 2x the best peer: not measured\n", n.np);
	pg_targets(n.np);
	printf("- wake p50 below the best peer:");
	for (int cls = 0; cls < 2; cls++) {
		if (ratio_of(R_WAKE50, cls, &ratio))
			printf(" %s %s (%.2fx)%s", classes[cls], ratio < 1.0 ? "met" : "not met",
			       ratio, cls ? "" : ",");
		else
			printf(" %s not measured%s", classes[cls], cls ? "" : ",");
	}
	printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	th_log_set_level(TH_LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && strcmp(argv[1], "table") == 0)
		return table_mode(argv[2]);
	if (argc >= 4 && argc % 2 == 0 && strcmp(argv[1], "claim") == 0)
		return claim_mode((argc - 2) / 2, argv + 2);
	if (argc < 11 || strcmp(argv[1], "run") != 0 ||
	    (strcmp(argv[2], "durable") && strcmp(argv[2], "relaxed"))) {
		fprintf(stderr, "usage: bench_peers run durable|relaxed RUNS N P M K E W COLUMN... | "
				"bench_peers claim FINISHED STORE... | bench_peers table FILE\n");
		return 2;
	}
	int runs = atoi(argv[3]);
	struct counts n = {strtoull(argv[4], NULL, 10), strtoull(argv[5], NULL, 10),
			   strtoull(argv[6], NULL, 10), strtoull(argv[7], NULL, 10),
			   strtoull(argv[8], NULL, 10), strtoull(argv[9], NULL, 10)};
	if (runs < 1 || runs > MAX_RUNS || !n.n1 || !n.np || n.np > MAX_PRODUCERS || !n.per ||
	    !n.k || !n.e || !n.w) {
		fprintf(stderr, "bench_peers: RUNS 1..%d, counts above 0, at most %d producers\n",
			MAX_RUNS, MAX_PRODUCERS);
		return 2;
	}
	const bp_column *cols[NCOLUMNS];
	size_t ncols = 0;
	for (int i = 10; i < argc; i++) {
		int c = index_of(argv[i], false);
		if (c < 0 || ncols == NCOLUMNS) {
			fprintf(stderr, "bench_peers: unknown column '%s'\n", argv[i]);
			return 2;
		}
		cols[ncols++] = &columns[c];
	}
	return run_mode(strcmp(argv[2], "relaxed") == 0, runs, &n, cols, ncols);
}
