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
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "log.h"

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

/* Stops claiming and waits for running jobs, up to `grace` seconds or another signal.
 * Returns true when everything stopped cleanly. */
static bool shut_down(th_service *svc, double grace, const sigset_t *sigs)
{
	uint64_t ids[1024];
	size_t n = 0;
	th_service_threads(svc, ids, 1024, &n);
	th_log_info("host", "stopping: no new jobs; waiting up to %g s for %zu running job%s",
		    grace, n, n == 1 ? "" : "s");
	struct stopper s = {.svc = svc, .mu = PTHREAD_MUTEX_INITIALIZER,
			    .cv = PTHREAD_COND_INITIALIZER};
	pthread_t t;
	if (pthread_create(&t, NULL, stop_processing, &s)) {
		th_service_stop_processing(svc);
		return true;
	}
	int64_t end = th_clock_mono_us() + (int64_t)(grace * 1e6);
	bool done = false;
	for (;;) {
		pthread_mutex_lock(&s.mu);
		done = s.done;
		pthread_mutex_unlock(&s.mu);
		int64_t left = end - th_clock_mono_us();
		if (done || left <= 0)
			break;
		/* short slices, so a second signal cuts the grace period short */
		int64_t slice = left < 100000 ? left : 100000;
		struct timespec ts = {(time_t)(slice / 1000000), (long)(slice % 1000000) * 1000};
		pthread_mutex_lock(&s.mu);
		struct timespec abs;
		clock_gettime(CLOCK_REALTIME, &abs);
		abs.tv_sec += ts.tv_sec;
		abs.tv_nsec += ts.tv_nsec;
		if (abs.tv_nsec >= 1000000000L) {
			abs.tv_sec++;
			abs.tv_nsec -= 1000000000L;
		}
		if (!s.done)
			pthread_cond_timedwait(&s.cv, &s.mu, &abs);
		pthread_mutex_unlock(&s.mu);
		struct timespec zero = {0, 0};
		int sig = sigtimedwait(sigs, NULL, &zero);
		if (sig == SIGINT || sig == SIGTERM) {
			th_log_warn("host", "second %s: not waiting any longer",
				    sig == SIGINT ? "SIGINT" : "SIGTERM");
			break;
		}
	}
	if (!done) {
		size_t still = 0;
		for (size_t i = 0; i < n; i++) {
			th_job_status st;
			still += th_service_status(svc, ids[i], &st) == 0 && st == TH_JOB_PROCESSING;
		}
		n = still;
		th_log_warn("host", "grace period over: %zu job%s still running, left to "
			    "recovery", n, n == 1 ? "" : "s");
		return false;
	}
	pthread_join(t, NULL);
	return true;
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
	if (th_config_make_data_dir(cfg, err, sizeof(err))) {
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

	th_service_opts o = {.data_dir = cfg->data_dir,
			     .plugin_dir = cfg->plugin_dir,
			     .map_size = cfg->map_size,
			     .max_map_size = cfg->max_map_size,
			     .durability = cfg->durability,
			     .max_input = cfg->max_input_size,
			     .max_result = cfg->max_result_size,
			     .lease_time = cfg->lease_time,
			     .max_attempts = cfg->max_attempts,
			     .allow_insecure_plugins = cfg->allow_insecure_plugins,
			     .isolate_plugins = strcmp(cfg->strategy, "process") == 0};
	if ((rc = th_service_open(&cli->svc, &o))) {
		th_cli_error("cannot start: %s", th_strerror(rc));
		return rc == TH_ESYS || rc == TH_EFORMAT ? TH_EXIT_USAGE : TH_EXIT_FAIL;
	}
	th_service *svc = cli->svc;
	if ((rc = th_service_set_processor(svc, cfg->strategy, &cfg->args)) ||
	    (rc = th_service_start_processing(svc))) {
		th_cli_error("cannot start the processor: %s", th_strerror(rc));
		return TH_EXIT_FAIL;
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
		} else if (sig == SIGINT || sig == SIGTERM) {
			th_log_info("host", "%s received", sig == SIGINT ? "SIGINT" : "SIGTERM");
			break;
		}
	}
	if (!shut_down(svc, cfg->grace_period, &sigs)) {
		/* running jobs keep their claims; the store is consistent at every commit */
		th_log_info("host", "stopped");
		fflush(NULL);
		_exit(TH_EXIT_OK);
	}
	th_log_info("host", "stopped");
	return TH_EXIT_OK;
}
