/* `taskhost run`: the host in the foreground. Signals are taken by the main thread
 * with sigwaitinfo: SIGHUP reloads plugins, SIGINT/SIGTERM stop with a grace period. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string.h>
#include <time.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cli/cli.h"
#include "clock.h"
#include "log.h"
#include "server/server.h"
#include "store/store.h"

struct stopper {
	th_service *svc;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
};

static void *stop_processing(void *arg)
{
	struct stopper *s = arg;
	th_service_stop_processing(s->svc);
	pthread_mutex_lock(&s->mu);
	s->done = true;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

/* Waits until the stopper is done or the deadline (monotonic us) passes; a SIGINT or
 * SIGTERM ends the wait early. Returns whether it is done. */
static bool wait_stopped(struct stopper *s, int64_t end, const sigset_t *sigs, bool *signalled)
{
	for (;;) {
		pthread_mutex_lock(&s->mu);
		bool done = s->done;
		if (!done) {
			/* short slices, so a signal cuts the wait short */
			int64_t left = end - th_clock_mono_us();
			int64_t slice = left < 100000 ? left : 100000;
			if (slice > 0) {
				struct timespec abs;
				clock_gettime(CLOCK_REALTIME, &abs);
				long ns = abs.tv_nsec + (long)(slice % 1000000) * 1000;
				abs.tv_sec += (time_t)(slice / 1000000 + ns / 1000000000L);
				abs.tv_nsec = ns % 1000000000L;
				pthread_cond_timedwait(&s->cv, &s->mu, &abs);
			}
			done = s->done;
		}
		pthread_mutex_unlock(&s->mu);
		if (done)
			return true;
		if (th_clock_mono_us() >= end)
			return false;
		struct timespec zero = {0, 0};
		int sig = sigtimedwait(sigs, NULL, &zero);
		if (sig == SIGINT || sig == SIGTERM) {
			*signalled = true;
			return false;
		}
	}
}

/* Counts the jobs among ids that are still processing. */
static size_t still_running(th_service *svc, const uint64_t *ids, size_t n)
{
	size_t still = 0;
	for (size_t i = 0; i < n; i++) {
		th_job_status st;
		still += th_service_status(svc, ids[i], &st) == 0 && st == TH_JOB_PROCESSING;
	}
	return still;
}

/* Stops claiming and waits for running jobs, up to `grace` seconds or another signal;
 * then asks them to stop and waits up to `interrupt` seconds more. Returns true when
 * everything stopped cleanly. */
static bool shut_down(th_service *svc, double grace, double interrupt, const sigset_t *sigs)
{
	static uint64_t ids[1024];
	size_t n = 0;
	th_service_threads(svc, ids, 1024, &n);
	th_log_info("host", "stopping: no new jobs; waiting up to %g s for %zu running job%s",
		    grace, n, n == 1 ? "" : "s");
	/* on the heap, and never freed when the wait is given up: the stopper thread may
	 * still write to it while this process exits */
	struct stopper *s = calloc(1, sizeof(*s));
	pthread_t t;
	if (s) {
		s->svc = svc;
		pthread_mutex_init(&s->mu, NULL);
		pthread_cond_init(&s->cv, NULL);
	}
	if (!s || pthread_create(&t, NULL, stop_processing, s)) {
		th_service_stop_processing(svc);
		free(s);
		return true;
	}
	bool signalled = false;
	if (wait_stopped(s, th_clock_mono_us() + (int64_t)(grace * 1e6), sigs, &signalled))
		goto clean;
	if (signalled)
		th_log_warn("host", "second signal: not waiting any longer");
	else
		th_log_warn("host", "grace period over: asking %zu running job%s to stop",
			    still_running(svc, ids, n), still_running(svc, ids, n) == 1 ? "" : "s");
	th_service_interrupt(svc);
	signalled = false;
	if (wait_stopped(s, th_clock_mono_us() + (int64_t)(interrupt * 1e6), sigs, &signalled))
		goto clean;
	n = still_running(svc, ids, n);
	th_log_warn("host", "%zu job%s still running, left to recovery", n, n == 1 ? "" : "s");
	return false;
clean:
	pthread_join(t, NULL);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return true;
}

/* The store can no longer be used: the main thread, in sigwaitinfo, is told by signal. */
static void on_fatal(void *ud, int rc)
{
	(void)ud;
	(void)rc;
	kill(getpid(), SIGTERM);
}

int th_cmd_run(th_cli *cli)
{
	int rc = th_cli_load_config(cli);
	if (rc)
		return rc;
	const th_config *cfg = &cli->cfg;
	th_log_set_level(cfg->log_level);
	th_log_set_format((enum th_log_format)cfg->log_format);
	char err[1024];
	if (th_server_check(cfg, err, sizeof(err)) ||
	    th_config_make_data_dir(cfg, err, sizeof(err))) {
		th_cli_error("%s", err);
		return TH_EXIT_USAGE;
	}

	/* every thread started from here on inherits the blocked signals */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	th_lmdb_opts lmdb = {cfg->map_size, cfg->max_map_size};
	th_service_opts o = {.data_dir = cfg->data_dir,
			     .data_dir_group = cfg->data_dir_group,
			     .plugin_dir = cfg->plugin_dir,
			     .store = th_config_store(cfg),
			     .lmdb = &lmdb,
			     .migrate = cfg->migrate,
			     .durability = cfg->durability,
			     .max_input = cfg->max_input_size,
			     .max_result = cfg->max_result_size,
			     .lease_time = cfg->lease_time,
			     .max_attempts = cfg->max_attempts,
			     .allow_insecure_plugins = cfg->allow_insecure_plugins,
			     .keep_finished = cfg->keep_finished,
			     .isolate_plugins = strcmp(cfg->strategy, "process") == 0,
			     .on_fatal = on_fatal};
	for (unsigned i = 0; i < cfg->nqueues; i++) /* any process queue isolates them all */
		o.isolate_plugins |= strcmp(cfg->queues[i].strategy, "process") == 0;
	/* errors while opening become the one line that says why run failed */
	th_cli_hold_errors(true);
	rc = th_service_open(&cli->svc, &o);
	th_cli_hold_errors(false);
	if (rc)
		return th_cli_open_failed(cli, rc);
	th_service *svc = cli->svc;
	rc = th_service_set_processor(svc, cfg->strategy, &cfg->args);
	for (unsigned i = 0; i < cfg->nqueues && rc == 0; i++)
		rc = th_service_set_queue(svc, cfg->queues[i].name, cfg->queues[i].strategy,
					  &cfg->queues[i].args);
	if (rc == TH_EINVAL && o.isolate_plugins) {
		th_cli_error("%s: with the process strategy for one queue, every queue must use "
			     "it: plugins then run only in worker processes", cfg->path);
		return TH_EXIT_USAGE;
	}
	if (rc || (rc = th_service_start_processing(svc))) {
		th_cli_error("cannot start the processors: %s", th_strerror(rc));
		return TH_EXIT_FAIL;
	}
	th_server *srv = NULL;
	if ((rc = th_server_start(&srv, svc, cfg, err, sizeof(err)))) {
		th_cli_error("%s", err);
		th_service_stop_processing(svc);
		return rc == TH_ECONFIG || rc == TH_EINSECURE ? TH_EXIT_USAGE : TH_EXIT_FAIL;
	}
	if (o.isolate_plugins)
		th_log_info("host", "started: pid %d, data_dir %s, plugin_dir %s, plugins run in "
			    "worker processes", (int)getpid(), cfg->data_dir, cfg->plugin_dir);
	else
		th_log_info("host", "started: pid %d, data_dir %s, plugin_dir %s, %zu task%s",
			    (int)getpid(), cfg->data_dir, cfg->plugin_dir,
			    th_service_task_count(svc), th_service_task_count(svc) == 1 ? "" : "s");
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&sigs, &si);
		if (sig == SIGHUP) {
			unsigned loaded = 0, refused = 0;
			th_log_info("host", "SIGHUP: looking for new plugins in %s", cfg->plugin_dir);
			if (th_service_reload_plugins(svc, &loaded, &refused) == 0 &&
			    !o.isolate_plugins)
				th_log_info("host", "reload: %u plugin%s added, %u refused, %zu tasks",
					    loaded, loaded == 1 ? "" : "s", refused,
					    th_service_task_count(svc));
			if (th_server_reload(srv, err, sizeof(err)))
				th_log_error("host", "SIGHUP: tokens not reread, the ones read before "
					     "stay: %s", err);
			else if (cfg->token_file)
				th_log_info("host", "SIGHUP: tokens reread from %s", cfg->token_file);
		} else if (sig == SIGINT || sig == SIGTERM) {
			if (th_service_fatal(svc) && si.si_pid == getpid())
				break;
			th_log_info("host", "%s received", sig == SIGINT ? "SIGINT" : "SIGTERM");
			break;
		}
	}
	int fatal = th_service_fatal(svc);
	if (fatal)
		th_log_error("host", "stopping: the store in %s can no longer be used (%s); "
			     "running jobs are asked to stop now, as their outcomes cannot be "
			     "recorded", cfg->data_dir, th_strerror(fatal));
	th_server_stop(srv); /* what clients were told is done is committed by now */
	if (!shut_down(svc, fatal ? 0 : cfg->grace_period, cfg->args.kill_grace, &sigs)) {
		/* running jobs keep their claims; the store is consistent at every commit */
		th_log_info("host", "stopped");
		fflush(NULL);
		/* exit_group, not _exit: the same, but sanitizer runtimes cannot intercept it
		 * to report the threads this exit abandons on purpose */
		syscall(SYS_exit_group, fatal ? TH_EXIT_FAIL : TH_EXIT_OK);
	}
	th_log_info("host", "stopped");
	return fatal ? TH_EXIT_FAIL : TH_EXIT_OK;
}
