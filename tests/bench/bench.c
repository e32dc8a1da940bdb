/* The benchmark harness behind scripts/bench. Each mode measures one thing, repeats it,
 * and prints one markdown table row: what, configuration, median, min, max, unit.
 *   bench_taskhost [--runs R] MODE ARGS...
 * Environment: BENCH_DIR (scratch space, on the disk to measure), BENCH_PLUGINS (the
 * shipped plugins and the bench plugin), BENCH_RUNNER, BENCH_TASKHOST (the binaries). */
#include <arpa/inet.h>
#include <lmdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "client.h"
#include "clock.h"
#include "fds.h"
#include "log.h"
#include "service.h"
#include "store/store.h"

static int runs = 5;

static th_service *open_svc(const char *dir, int durability, bool isolate)
{
	th_lmdb_opts lmdb = {.map_size = 1ull << 30};
	th_service_opts o = {.data_dir = dir, .plugin_dir = bu_env("BENCH_PLUGINS"),
			     .durability = durability, .isolate_plugins = isolate,
			     .runner = isolate ? bu_env("BENCH_RUNNER") : NULL,
			     .lmdb = &lmdb, .max_attempts = 1};
	th_service *svc;
	int rc = th_service_open(&svc, &o);
	if (rc)
		bu_die("opening the service", rc);
	return svc;
}

/* Adds n jobs of task in batches of `batch`, optionally delayed; returns the last id. */
static uint64_t fill(th_service *svc, const char *task, size_t n, size_t batch,
		     const th_add_opts *opts)
{
	th_new_job *jobs = calloc(batch, sizeof(*jobs));
	uint64_t *ids = calloc(batch, sizeof(*ids)), last = 0;
	for (size_t i = 0; i < batch; i++)
		jobs[i] = (th_new_job){task, NULL, 0, opts};
	for (size_t done = 0; done < n;) {
		size_t k = n - done < batch ? n - done : batch;
		int rc = th_service_add_many(svc, jobs, k, ids);
		if (rc)
			bu_die("adding jobs", rc);
		done += k;
		last = ids[k - 1];
	}
	free(jobs);
	free(ids);
	return last;
}

static void row(const char *what, const char *config, double *v, int n, const char *unit)
{
	double median = bu_median(v, (size_t)n);
	printf("| %s | %s | %.0f | %.0f | %.0f | %s |\n", what, config, median, v[0], v[n - 1],
	       unit);
	fflush(stdout);
}

static int mode_of(const char *s)
{
	return strcmp(s, "relaxed") == 0 ? 1 : 0;
}

/* ---- add ---- */

static void bench_add_bulk(size_t n, size_t batch, const char *mode)
{
	double v[64];
	for (int r = 0; r < runs; r++) {
		char *d = bu_fresh_dir();
		th_service *svc = open_svc(d, mode_of(mode), false);
		double t0 = bu_now_s();
		fill(svc, "noop", n, batch, NULL);
		v[r] = (double)n / (bu_now_s() - t0);
		th_service_close(svc);
		bu_rm_dir(d);
		free(d);
	}
	char cfg[128];
	snprintf(cfg, sizeof(cfg), "%s, %zu jobs, batches of %zu", mode, n, batch);
	row("bulk add (C API)", cfg, v, runs, "jobs/s");
}

static void bench_add_single(size_t n, const char *mode)
{
	double v[64];
	for (int r = 0; r < runs; r++) {
		char *d = bu_fresh_dir();
		th_service *svc = open_svc(d, mode_of(mode), false);
		double t0 = bu_now_s();
		for (size_t i = 0; i < n; i++) {
			uint64_t id;
			int rc = th_service_add(svc, "noop", NULL, 0, &id);
			if (rc)
				bu_die("add", rc);
		}
		v[r] = (double)n / (bu_now_s() - t0);
		th_service_close(svc);
		bu_rm_dir(d);
		free(d);
	}
	char cfg[128];
	snprintf(cfg, sizeof(cfg), "%s, %zu jobs, one commit each", mode, n);
	row("single add (C API)", cfg, v, runs, "jobs/s");
}

/* The reference: a bare LMDB environment, one small put per commit. */
static void bench_lmdb_commit(size_t n, const char *mode)
{
	double v[64];
	for (int r = 0; r < runs; r++) {
		char *d = bu_fresh_dir();
		MDB_env *e;
		MDB_dbi dbi;
		MDB_txn *txn;
		mdb_env_create(&e);
		mdb_env_set_mapsize(e, 1ull << 30);
		if (mdb_env_open(e, d, mode_of(mode) ? MDB_NOSYNC : 0, 0644))
			bu_die("mdb_env_open", 0);
		double t0 = bu_now_s();
		for (size_t i = 0; i < n; i++) {
			uint64_t k = i;
			MDB_val key = {8, &k}, val = {16, "0123456789abcdef"};
			mdb_txn_begin(e, NULL, 0, &txn);
			mdb_dbi_open(txn, NULL, 0, &dbi);
			mdb_put(txn, dbi, &key, &val, 0);
			mdb_txn_commit(txn);
		}
		v[r] = (double)n / (bu_now_s() - t0);
		mdb_env_close(e);
		bu_rm_dir(d);
		free(d);
	}
	char cfg[128];
	snprintf(cfg, sizeof(cfg), "%s, bare LMDB, one small put per commit", mode);
	row("LMDB commit (reference)", cfg, v, runs, "commits/s");
}

/* ---- burn-down ---- */

/* Waits until job id completed, waking at each finish or every `wait_us`. */
static void wait_done(th_service *svc, uint64_t id, int64_t wait_us)
{
	for (;;) {
		uint32_t seq = th_service_finished_seq(svc);
		th_job_status s;
		if (th_service_status(svc, id, &s) == 0 && s == TH_JOB_COMPLETED)
			return;
		th_service_wait_finished(svc, seq, wait_us);
	}
}

/* Waits until job `last` and everything before it finished. */
static void wait_all(th_service *svc, uint64_t last)
{
	wait_done(svc, last, 10000);
	for (;;) { /* multi finishes a few jobs out of order: wait for the stragglers */
		uint64_t queued, processing;
		if (th_service_pending(svc, &queued, &processing) == 0 && !queued && !processing)
			break;
		uint32_t seq = th_service_finished_seq(svc);
		th_service_wait_finished(svc, seq, 10000);
	}
}

/* Adds n no-op jobs and runs them by the simple processor (in order: done when the last
 * is), so that n finished jobs are in the store. */
static void fill_finished(th_service *svc, size_t n)
{
	uint64_t last = fill(svc, "noop", n, 10000, NULL);
	th_service_set_processor(svc, "simple", NULL);
	th_service_start_processing(svc);
	wait_done(svc, last, 100000);
	th_service_stop_processing(svc);
}

struct burn {
	size_t n;              /* jobs to drain */
	const char *strategy;
	unsigned threads;
	const char *mode;
	size_t queued_extra;   /* jobs queued behind them (not drained) */
	size_t history;        /* finished jobs in the store */
	size_t delayed;        /* delayed jobs in the store */
};

static double burn_once(const struct burn *b)
{
	char *d = bu_fresh_dir();
	bool isolate = strcmp(b->strategy, "process") == 0;
	/* filling is not what is measured: relaxed, then reopened as measured */
	th_service *svc = open_svc(d, 1, false);
	if (b->history)
		fill_finished(svc, b->history);
	if (b->delayed) {
		th_add_opts later = {.delay = 86400};
		fill(svc, "noop", b->delayed, 10000, &later);
	}
	uint64_t last = fill(svc, "noop", b->n, 10000, NULL);
	if (b->queued_extra) {
		th_add_opts other = {.priority = -1}; /* behind the measured ones */
		fill(svc, "noop", b->queued_extra, 10000, &other);
	}
	th_service_close(svc);
	/* the fill was relaxed: flush it now, or the kernel's writeback of it competes
	 * with the measured commits' fsyncs */
	sync();

	svc = open_svc(d, mode_of(b->mode), isolate);
	th_processor_args a = TH_PROCESSOR_ARGS_DEFAULT;
	a.max_threads = b->threads;
	a.max_workers = b->threads;
	if (th_service_set_processor(svc, b->strategy, &a))
		bu_die("processor", TH_EINVAL);
	double t0 = bu_now_s();
	int rc = th_service_start_processing(svc);
	if (rc)
		bu_die("start", rc);
	if (b->queued_extra) { /* the measured jobs: wait for the last of them only */
		wait_done(svc, last, 10000);
	} else {
		wait_all(svc, last);
	}
	double rate = (double)b->n / (bu_now_s() - t0);
	th_service_close(svc);
	bu_rm_dir(d);
	free(d);
	return rate;
}

static void bench_burn(const struct burn *b, const char *what)
{
	double v[64];
	for (int r = 0; r < runs; r++)
		v[r] = burn_once(b);
	char cfg[256];
	int n = snprintf(cfg, sizeof(cfg), "%s, %s", b->mode, b->strategy);
	if (strcmp(b->strategy, "simple") != 0)
		n += snprintf(cfg + n, sizeof(cfg) - (size_t)n, " %u %s", b->threads,
			      strcmp(b->strategy, "process") == 0 ? "workers" : "threads");
	n += snprintf(cfg + n, sizeof(cfg) - (size_t)n, ", %zu no-op jobs", b->n);
	if (b->queued_extra)
		n += snprintf(cfg + n, sizeof(cfg) - (size_t)n, ", %zu more queued", b->queued_extra);
	if (b->history)
		n += snprintf(cfg + n, sizeof(cfg) - (size_t)n, ", %zu finished", b->history);
	if (b->delayed)
		snprintf(cfg + n, sizeof(cfg) - (size_t)n, ", %zu delayed", b->delayed);
	row(what, cfg, v, runs, "jobs/s");
}

/* ---- wake latency ---- */

static void bench_wake(size_t n, const char *mode)
{
	char *d = bu_fresh_dir();
	th_service *svc = open_svc(d, mode_of(mode), false);
	th_service_close(svc); /* created; the child opens it too */
	int go[2], back[2];
	if (pipe(go) || pipe(back))
		bu_die("pipe", 0);
	pid_t pid = fork();
	if (pid == 0) {
		/* another process adds the jobs, one at a time, each when the last is done */
		close(go[1]);
		close(back[0]);
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		th_service_opts o = {.data_dir = d, .plugin_dir = bu_env("BENCH_PLUGINS"),
				     .inspect_only = true, .durability = mode_of(mode)};
		th_service *mine;
		if (th_service_open(&mine, &o))
			_exit(1);
		for (size_t i = 0; i < n; i++) {
			uint64_t id;
			if (th_service_add(mine, "stamp", NULL, 0, &id))
				_exit(1);
			int64_t t = bu_now_ns();
			int64_t rec[2] = {(int64_t)id, t};
			if (write(back[1], rec, sizeof(rec)) != sizeof(rec))
				_exit(1);
			wait_done(mine, id, 100000);
		}
		th_service_close(mine);
		_exit(0);
	}
	close(go[0]);
	close(back[1]);
	svc = open_svc(d, mode_of(mode), false);
	th_processor_args a = TH_PROCESSOR_ARGS_DEFAULT;
	a.max_threads = 1;
	a.wait_time = 60; /* idle: only the wake-up can start a job in time */
	th_service_set_processor(svc, "multi", &a);
	th_service_start_processing(svc);
	if (write(go[1], "g", 1) != 1)
		bu_die("pipe", 0);
	double *lat = calloc(n, sizeof(*lat));
	size_t k = 0;
	int64_t rec[2];
	while (k < n && read(back[0], rec, sizeof(rec)) == sizeof(rec)) {
		wait_done(svc, (uint64_t)rec[0], 100000);
		void *res;
		size_t len;
		if (th_service_result(svc, (uint64_t)rec[0], &res, &len) == 0 && len == 8) {
			int64_t started;
			memcpy(&started, res, 8);
			lat[k++] = (double)(started - rec[1]) / 1000.0;
		}
	}
	int status;
	waitpid(pid, &status, 0);
	th_service_close(svc);
	bu_rm_dir(d);
	free(d);
	qsort(lat, k, sizeof(*lat), bu_cmp_double);
	char cfg[128];
	snprintf(cfg, sizeof(cfg), "%s, multi 1 thread, idle host, %zu jobs added one at a time "
		 "from another process", mode, k);
	printf("| wake latency p50 | %s | %.0f | %.0f | %.0f | us |\n", cfg, lat[k / 2], lat[0],
	       lat[k - 1]);
	printf("| wake latency p99 | %s | %.0f | %.0f | %.0f | us |\n", cfg,
	       lat[(size_t)((double)k * 0.99)], lat[0], lat[k - 1]);
	free(lat);
}

/* ---- memory of the real host ---- */

static long rss_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	size_t fl = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':')
			v = atol(line + fl + 1);
	if (f)
		fclose(f);
	return v;
}

/* Starts `taskhost run` on dir; waits until it logs that it started. */
static pid_t start_host(const char *dir, const char *cfg)
{
	pid_t pid = bu_start_host(dir, cfg);
	if (pid < 0)
		bu_die("the host did not start", 0);
	return pid;
}

/* d/taskhost.ini for a host on d/var (durable, unless `host` says otherwise: more lines
 * for [host]) with the bench plugins, multi 4 threads. */
static void host_config(const char *d, char cfg[4200], char data[4200], const char *host)
{
	snprintf(cfg, 4200, "%s/taskhost.ini", d);
	snprintf(data, 4200, "%s/var", d);
	mkdir(data, 0755);
	FILE *f = fopen(cfg, "w");
	if (!f)
		bu_die("writing the config", 0);
	fprintf(f, "[host]\ndata_dir = %s\nplugin_dir = %s\nlog_level = info\nmap_size = 1GiB\n"
		"%s[processor]\nstrategy = multi\nmax_threads = 4\n", data, bu_env("BENCH_PLUGINS"),
		host ? host : "");
	fclose(f);
}

static void bench_rss(size_t backlog)
{
	char *d = bu_fresh_dir(), cfg[4200], data[4200];
	host_config(d, cfg, data, NULL);
	pid_t pid = start_host(d, cfg);
	struct timespec settle = {0, 300000000};
	nanosleep(&settle, NULL);
	long idle = rss_kib(pid, "VmRSS"), idle_anon = rss_kib(pid, "RssAnon");
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);

	th_service *svc = open_svc(data, 1, false);
	uint64_t last = fill(svc, "noop", backlog, 10000, NULL);
	th_service_close(svc);
	pid = start_host(d, cfg);
	long peak = 0, peak_anon = 0;
	svc = open_svc(data, 0, false);
	for (;;) {
		long r = rss_kib(pid, "VmRSS"), a = rss_kib(pid, "RssAnon");
		peak = r > peak ? r : peak;
		peak_anon = a > peak_anon ? a : peak_anon;
		th_job_status s;
		if (th_service_status(svc, last, &s) == 0 && s == TH_JOB_COMPLETED)
			break;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	th_service_close(svc);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	bu_rm_dir(d);
	free(d);
	printf("| host RSS, idle | taskhost run, multi 4 threads, shipped plugins | %ld | %ld | %ld "
	       "| KiB (anonymous: %ld) |\n", idle, idle, idle, idle_anon);
	printf("| host RSS, draining a backlog | %zu no-op jobs queued at start | %ld | %ld | %ld "
	       "| KiB peak (anonymous: %ld; the rest is the data file's pages in the page "
	       "cache) |\n", backlog, peak, peak, peak, peak_anon);
}

/* ---- the command line ---- */

/* `taskhost add noop --lines` reading n lines from stdin: one process, n jobs. */
static void bench_cli_lines(size_t n)
{
	double v[64];
	for (int r = 0; r < runs; r++) {
		char *d = bu_fresh_dir(), cfg[4200], data[4200], lines[4200];
		host_config(d, cfg, data, NULL);
		snprintf(lines, sizeof(lines), "%s/lines", d);
		FILE *f = fopen(lines, "w");
		if (!f)
			bu_die("writing the lines", 0);
		for (size_t i = 1; i <= n; i++)
			fprintf(f, "%zu\n", i);
		fclose(f);
		double t0 = bu_now_s();
		pid_t pid = fork();
		if (pid == 0) {
			if (!freopen(lines, "r", stdin) || !freopen("/dev/null", "w", stdout))
				_exit(127);
			execl(bu_env("BENCH_TASKHOST"), "taskhost", "-c", cfg, "add", "noop", "--lines",
			      (char *)NULL);
			_exit(127);
		}
		int status;
		waitpid(pid, &status, 0);
		v[r] = (double)n / (bu_now_s() - t0);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bu_die("taskhost add --lines", 0);
		th_service *svc = open_svc(data, 0, false);
		th_job_status st;
		if (th_service_status(svc, n, &st) || st != TH_JOB_QUEUED)
			bu_die("taskhost add --lines: the last job is missing", 0);
		th_service_close(svc);
		bu_rm_dir(d);
		free(d);
	}
	char cfg[128];
	snprintf(cfg, sizeof(cfg), "durable, %zu lines from stdin, one process, 1000 per commit",
		 n);
	row("CLI add --lines", cfg, v, runs, "jobs/s");
}

/* ---- adds through the front door: the CLI on the socket, HTTP over TCP, the C API ---- */

#define FRONT_TOKEN "bench-token-0123456789abcdef"

/* dir/tokens, named in path: the bench's token with `scope`. */
static void write_tokens(char *path, size_t size, const char *dir, const char *scope)
{
	snprintf(path, size, "%s/tokens", dir);
	FILE *f = fopen(path, "w");
	if (!f || fprintf(f, "bench %s %s\n", scope, FRONT_TOKEN) < 0 || fclose(f) ||
	    chmod(path, 0600))
		bu_die("writing the token file", 0);
}

/* One producer's m single adds, each acknowledged before the next; 0 when all were. */
static int produce(const char *via, const char *cfg, const char *data, const char *url,
		   size_t m, int mode)
{
	if (strcmp(via, "cli") == 0) {
		for (size_t i = 0; i < m; i++) {
			pid_t pid = fork();
			if (pid == 0) {
				if (!freopen("/dev/null", "w", stdout))
					_exit(127);
				execl(bu_env("BENCH_TASKHOST"), "taskhost", "-c", cfg, "add", "noop",
				      (char *)NULL);
				_exit(127);
			}
			int status;
			if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
			    WEXITSTATUS(status))
				return -1;
		}
		return 0;
	}
	uint64_t id;
	int rc = 0;
	if (strcmp(via, "http") == 0) {
		th_client *c = NULL;
		if ((rc = th_client_open(&c, url, FRONT_TOKEN)) == 0)
			for (size_t i = 0; i < m && rc == 0; i++)
				rc = th_client_add(c, "noop", NULL, 0, NULL, &id, NULL);
		if (rc)
			fprintf(stderr, "bench: %s\n", c ? th_client_error(c) : th_strerror(rc));
		th_client_close(c);
		return rc;
	}
	th_service_opts o = {.data_dir = data, .plugin_dir = bu_env("BENCH_PLUGINS"),
			     .inspect_only = true, .durability = mode};
	th_service *svc;
	if ((rc = th_service_open(&svc, &o)) == 0)
		for (size_t i = 0; i < m && rc == 0; i++)
			rc = th_service_add(svc, "noop", NULL, 0, &id);
	th_service_close(svc);
	return rc;
}

/* n single adds by p producer processes (the CLI through the host's socket, HTTP over
 * TCP with a token, or the C API) while a host runs them; then every job must be there
 * once and have run once. */
static void bench_front(size_t n, unsigned p, const char *via, const char *mode)
{
	double v[64];
	bool cli = strcmp(via, "cli") == 0, http = strcmp(via, "http") == 0;
	if ((!cli && !http && strcmp(via, "capi")) || !p || n % p)
		bu_die("front: VIA is cli, http or capi, and N a multiple of PRODUCERS", 0);
	for (int r = 0; r < runs; r++) {
		char *d = bu_fresh_dir(), cfg[4200], data[4200], tokens[4300], url[64], lines[4500];
		write_tokens(tokens, sizeof(tokens), d, "write");
		unsigned port = bu_free_port();
		snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
		snprintf(lines, sizeof(lines), "durability = %s\nlisten = 127.0.0.1:%u\n"
			 "token_file = %s\n", mode, port, tokens);
		host_config(d, cfg, data, lines);
		pid_t host = start_host(d, cfg);
		double t0 = bu_now_s();
		pid_t *kids = calloc(p, sizeof(*kids));
		for (unsigned k = 0; k < p; k++) {
			if ((kids[k] = fork()) == 0)
				_exit(produce(via, cfg, data, url, n / p, mode_of(mode)) ? 1 : 0);
			if (kids[k] < 0)
				bu_die("fork", 0);
		}
		bool good = true;
		for (unsigned k = 0; k < p; k++) {
			int status;
			good &= waitpid(kids[k], &status, 0) == kids[k] && WIFEXITED(status) &&
				WEXITSTATUS(status) == 0;
		}
		v[r] = (double)n / (bu_now_s() - t0);
		free(kids);
		if (!good) { /* the producer logged why */
			fprintf(stderr, "bench: front: a producer's add failed (its error is above)\n");
			exit(1);
		}
		/* every job added once, and run once */
		th_service *svc = open_svc(data, 1, false);
		uint64_t counts[TH_JOB_STATUS_MAX + 1];
		for (double end = bu_now_s() + 120;;) {
			uint32_t seq = th_service_finished_seq(svc);
			if (th_service_count(svc, counts))
				bu_die("front: counting the jobs", 0);
			if (counts[TH_JOB_COMPLETED] >= n || bu_now_s() > end)
				break;
			th_service_wait_finished(svc, seq, 100000);
		}
		uint64_t all = 0;
		for (int st = 0; st <= TH_JOB_STATUS_MAX; st++)
			all += counts[st];
		for (uint64_t id = 1; id <= n && all == n; id++) {
			th_job job;
			if (th_service_get(svc, id, &job) || job.status != TH_JOB_COMPLETED ||
			    job.attempts != 1)
				all = 0;
		}
		if (all != n || counts[TH_JOB_COMPLETED] != n) {
			fprintf(stderr, "bench: front %s: %llu jobs, %llu completed, %zu added\n", via,
				(unsigned long long)all, (unsigned long long)counts[TH_JOB_COMPLETED], n);
			bu_die("front: not every job added and run exactly once", 0);
		}
		th_service_close(svc);
		kill(host, SIGTERM);
		waitpid(host, NULL, 0);
		bu_rm_dir(d);
		free(d);
	}
	static const char *const what[] = {"single adds, CLI (host's socket)",
					   "single adds, HTTP API (TCP, token)",
					   "single adds, C API (own commits)"};
	char cfg[160];
	snprintf(cfg, sizeof(cfg), "%s, %u producer%s, %zu jobs, host running them, each added "
		 "and run once", mode, p, p == 1 ? "" : " processes", n);
	row(what[cli ? 0 : http ? 1 : 2], cfg, v, runs, "jobs/s");
}

/* ---- reads at any size: counts, the overview, a filtered list's pages ---- */

#define STATS_REPEAT 20     /* timed reads per row */
#define STATS_TARGET_US 10000 /* what each should stay under */

/* One GET of path on 127.0.0.1:port with the bench token, on a new connection; dies
 * unless the answer is 200 and holds `want` (NULL: anything). */
static void http_get(unsigned port, const char *path, const char *want)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)))
		bu_die("connecting to the host", 0);
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
			 "Bearer " FRONT_TOKEN "\r\nConnection: close\r\n\r\n", path);
	if (write(s, req, (size_t)n) != n)
		bu_die("sending a request", 0);
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	for (ssize_t got; (got = read(s, buf + len, cap - len - 1)) > 0;) {
		len += (size_t)got;
		if (len + 1 == cap)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = 0;
	close(s);
	if (strncmp(buf, "HTTP/1.1 200", 12) || (want && !strstr(buf, want))) {
		fprintf(stderr, "bench: GET %s: %.300s\n", path, buf);
		bu_die("a read of the host answered wrong", 0);
	}
	free(buf);
}

static void stats_row(const char *what, const char *cfg, double *us)
{
	double median = bu_median(us, STATS_REPEAT);
	printf("| %s | %s | %.0f | %.0f | %.0f | us (target < %d: %s) |\n", what, cfg, median,
	       us[0], us[STATS_REPEAT - 1], STATS_TARGET_US,
	       median < STATS_TARGET_US ? "median met" : "MISSED");
	fflush(stdout);
}

/* With `finished` jobs finished and `queued` queued behind them, times th_service_count,
 * GET /v1/stats with the overview's list of failures, and the first and the 1,000th page
 * (100 a page) of GET /v1/jobs?status=queued, each STATS_REPEAT times. On LMDB the bench
 * fills the store (relaxed, through the C API and the simple processor); a `store` URL
 * (PostgreSQL) comes filled by the caller, in that order of ids. */
static void bench_stats(size_t finished, size_t queued, const char *store)
{
	char *d = bu_fresh_dir(), cfg[4200], data[4200], tokens[4300], lines[4800], path[128];
	write_tokens(tokens, sizeof(tokens), d, "read");
	unsigned port = bu_free_port();
	snprintf(lines, sizeof(lines), "listen = 127.0.0.1:%u\ntoken_file = %s\n%s%s%s", port,
		 tokens, store ? "store = " : "", store ? store : "", store ? "\n" : "");
	host_config(d, cfg, data, lines);
	th_lmdb_opts lmdb = {.map_size = 1ull << 30};
	th_service_opts o = {.data_dir = data, .store = store, .plugin_dir = bu_env("BENCH_PLUGINS"),
			     .durability = 1, .lmdb = &lmdb, .max_attempts = 1};
	th_service *svc;
	if (th_service_open(&svc, &o))
		bu_die("opening the service", 0);
	double t0 = bu_now_s();
	if (!store) {
		fill_finished(svc, finished);
		fill(svc, "noop", queued, 10000, NULL);
	}
	double filled = bu_now_s() - t0;
	uint64_t recent = 0; /* what the rate in the stats walked before the minutes */
	th_service_finished_since(svc, th_clock_now_us() - 60000000, &recent);
	/* the host must not run them while the reads are timed */
	if (th_service_pause_queue(svc, "", true))
		bu_die("pausing the default queue", 0);
	th_service_close(svc);
	sync();

	char what[200];
	if (store)
		snprintf(what, sizeof(what), "PostgreSQL, %zu finished (%llu in the last minute), "
			 "%zu queued, filled by SQL", finished, (unsigned long long)recent, queued);
	else
		snprintf(what, sizeof(what), "LMDB, %zu finished (%llu in the last minute), %zu "
			 "queued, filled relaxed in %.0f s", finished, (unsigned long long)recent,
			 queued, filled);
	o.durability = 0;
	if (th_service_open(&svc, &o))
		bu_die("opening the service", 0);
	double us[STATS_REPEAT];
	uint64_t counts[TH_JOB_STATUS_MAX + 1];
	for (int r = 0; r < STATS_REPEAT; r++) {
		double t = bu_now_s();
		if (th_service_count(svc, counts))
			bu_die("counting", 0);
		us[r] = (bu_now_s() - t) * 1e6;
	}
	if (counts[TH_JOB_COMPLETED] != finished || counts[TH_JOB_QUEUED] != queued)
		bu_die("stats: the counts are not what was filled", 0);
	th_service_close(svc);
	stats_row("stats (th_service_count)", what, us);

	pid_t host = start_host(d, cfg);
	char want[64];
	for (int r = 0; r < STATS_REPEAT; r++) {
		double t = bu_now_s();
		http_get(port, "/v1/stats", NULL);
		us[r] = (bu_now_s() - t) * 1e6;
	}
	stats_row("GET /v1/stats", what, us);
	for (int r = 0; r < STATS_REPEAT; r++) {
		double t = bu_now_s();
		http_get(port, "/v1/stats", NULL);
		http_get(port, "/v1/jobs?status=error&limit=5", "\"jobs\":[]");
		us[r] = (bu_now_s() - t) * 1e6;
	}
	stats_row("dashboard overview (stats + recent failures)", what, us);
	for (int r = 0; r < STATS_REPEAT; r++) {
		double t = bu_now_s();
		http_get(port, "/v1/stats/history", "{\"minutes\":[{\"start\":");
		us[r] = (bu_now_s() - t) * 1e6;
	}
	stats_row("GET /v1/stats/history (the hour's 60 minutes)", what, us);
	for (int page = 1; page <= 1000; page += 999) {
		/* ids run 1..finished for the finished jobs, then the queued ones in order */
		size_t before = finished + (size_t)(page - 1) * 100;
		snprintf(path, sizeof(path), "/v1/jobs?status=queued&cursor=%zu", before);
		snprintf(want, sizeof(want), "{\"id\":%zu,", before + 1);
		for (int r = 0; r < STATS_REPEAT; r++) {
			double t = bu_now_s();
			http_get(port, path, queued >= (size_t)page * 100 ? want : NULL);
			us[r] = (bu_now_s() - t) * 1e6;
		}
		stats_row(page == 1 ? "GET /v1/jobs?status=queued, first page (100)"
				    : "GET /v1/jobs?status=queued, 1,000th page (cursor)", what, us);
	}
	kill(host, SIGTERM);
	waitpid(host, NULL, 0);
	bu_rm_dir(d);
	free(d);
}

int main(int argc, char **argv)
{
	if (th_fds_guard(NULL)) /* its stores' files must not become fd 0-2 */
		return 2;
	int i = 1;
	if (argc > 2 && strcmp(argv[1], "--runs") == 0) {
		runs = atoi(argv[2]);
		if (runs < 1 || runs > 64)
			runs = 5;
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: bench_taskhost [--runs R] add-bulk N BATCH MODE | "
				"add-single N MODE | lmdb N MODE | burn N STRATEGY THREADS MODE "
				"[QUEUED HISTORY DELAYED] | wake N MODE | rss BACKLOG | cli-lines N | "
				"front N PRODUCERS cli|http|capi MODE | stats FINISHED QUEUED [STORE]\n");
		return 2;
	}
	th_log_set_level(TH_LOG_ERROR);
	signal(SIGPIPE, SIG_IGN);
	const char *m = argv[i];
	char **a = argv + i + 1;
	int na = argc - i - 1;
	if (strcmp(m, "add-bulk") == 0 && na == 3) {
		bench_add_bulk(strtoull(a[0], NULL, 10), strtoull(a[1], NULL, 10), a[2]);
	} else if (strcmp(m, "add-single") == 0 && na == 2) {
		bench_add_single(strtoull(a[0], NULL, 10), a[1]);
	} else if (strcmp(m, "lmdb") == 0 && na == 2) {
		bench_lmdb_commit(strtoull(a[0], NULL, 10), a[1]);
	} else if (strcmp(m, "burn") == 0 && (na == 4 || na == 7)) {
		struct burn b = {strtoull(a[0], NULL, 10), a[1], (unsigned)atoi(a[2]), a[3], 0, 0, 0};
		if (na == 7) {
			b.queued_extra = strtoull(a[4], NULL, 10);
			b.history = strtoull(a[5], NULL, 10);
			b.delayed = strtoull(a[6], NULL, 10);
		}
		bench_burn(&b, na == 7 ? "burn-down with a backlog" : "burn-down");
	} else if (strcmp(m, "wake") == 0 && na == 2) {
		bench_wake(strtoull(a[0], NULL, 10), a[1]);
	} else if (strcmp(m, "cli-lines") == 0 && na == 1) {
		bench_cli_lines(strtoull(a[0], NULL, 10));
	} else if (strcmp(m, "front") == 0 && na == 4) {
		bench_front(strtoull(a[0], NULL, 10), (unsigned)atoi(a[1]), a[2], a[3]);
	} else if (strcmp(m, "stats") == 0 && (na == 2 || na == 3)) {
		bench_stats(strtoull(a[0], NULL, 10), strtoull(a[1], NULL, 10), na == 3 ? a[2] : NULL);
	} else if (strcmp(m, "rss") == 0 && na == 1) {
		bench_rss(strtoull(a[0], NULL, 10));
	} else {
		fprintf(stderr, "bench_taskhost: bad mode or arguments (run it without any)\n");
		return 2;
	}
	return 0;
}
