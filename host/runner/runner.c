/* taskhost-runner: a worker process of the process strategy. It loads the plugins
 * itself, runs the jobs the host sends over fd 3 one at a time, and sends back what they
 * logged, reported and returned; it never touches the job store or the data dir. A
 * plugin that crashes takes only this process down, and the host starts another. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "error.h"
#include "fds.h"
#include "log.h"
#include "plugin/plugin.h"
#include "coord.h"
#include "proc/proc_proto.h"
#include "proc/proc_run.h"

#define HOST_FD 3

static pthread_mutex_t send_mu = PTHREAD_MUTEX_INITIALIZER;

static void send_msg(const th_msg *m)
{
	pthread_mutex_lock(&send_mu);
	int rc = th_proto_send(HOST_FD, m);
	pthread_mutex_unlock(&send_mu);
	if (rc) /* the host is gone: nobody wants our results */
		_exit(0);
}

/* Every log line, the plugins' included, goes to the host, which logs it. */
static void log_to_host(const th_log_event *ev, void *ud)
{
	(void)ud;
	/* every worker loads every plugin: that is news once, not per worker */
	int level = ev->level == TH_LOG_INFO && strcmp(ev->source, "plugins") == 0
		    ? TH_LOG_DEBUG : ev->level;
	th_msg m = {.type = TH_MSG_LOG, .level = (uint32_t)level, .id = ev->job_id,
		    .source = ev->source, .source_len = strlen(ev->source), .text = ev->msg,
		    .text_len = strlen(ev->msg)};
	send_msg(&m);
}

/* The coordination th_run_job reports a job's progress to: the host's, through the
 * socket. The host clears the progress when the run ends, so the clear asks nothing;
 * th_run_job calls nothing else. */
struct th_coord {
	const th_coord_ops *ops;
};

static void progress_to_host(th_coord *c, uint64_t id, double done)
{
	(void)c;
	th_msg m = {.type = TH_MSG_PROGRESS, .id = id, .done = done};
	send_msg(&m);
}

static void progress_cleared(th_coord *c, uint64_t id)
{
	(void)c;
	(void)id;
}

static const th_coord_ops host_coord_ops = {.name = "host", .progress_set = progress_to_host,
					    .progress_clear = progress_cleared};
static th_coord host_coord = {&host_coord_ops};

struct skip {
	char **files;
	int n;
};

static int before_load(void *ud, const char *path)
{
	struct skip *s = ud;
	for (int i = 0; i < s->n; i++)
		if (strcmp(s->files[i], path) == 0)
			return 1;
	th_msg m = {.type = TH_MSG_LOADING, .text = path, .text_len = strlen(path)};
	send_msg(&m);
	return 0;
}

/* The job the host sent, handed from the reader thread to the main thread. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint8_t *job_frame; /* owned by whoever took it */
static th_msg job_msg;
static bool quit;
static _Atomic uint64_t running;
static atomic_bool cancel;
static size_t max_frame;

static pid_t self;      /* this worker: a child its task forked inherits host_gone */
static bool own_group; /* the host made this process the leader of its own group */

/* Ends this worker and whatever its tasks started in its process group. */
static void leave(int code)
{
	if (own_group)
		kill(0, SIGKILL); /* this process too */
	_exit(code);
}

static void *read_host(void *arg)
{
	(void)arg;
	uint8_t *buf = NULL;
	for (;;) {
		th_msg m;
		int rc = th_proto_recv(HOST_FD, max_frame, &buf, &m);
		if (rc == TH_EIO) /* the host closed our socket, or died: its PDEATHSIG may
				    * come after this EOF, so the tasks' children go here too */
			leave(0);
		if (rc)
			continue; /* a frame we do not understand: not ours to act on */
		pthread_mutex_lock(&mu);
		if (m.type == TH_MSG_RUN && !job_frame) {
			job_frame = buf; /* m points into it */
			job_msg = m;
			buf = NULL;
			atomic_store(&cancel, false);
			atomic_store(&running, m.id); /* a CANCEL may follow right away */
		} else if (m.type == TH_MSG_CANCEL && m.id && m.id == atomic_load(&running)) {
			atomic_store(&cancel, true);
		} else if (m.type == TH_MSG_QUIT) {
			quit = true;
		}
		pthread_cond_signal(&cv);
		bool done = quit;
		pthread_mutex_unlock(&mu);
		if (done)
			break;
	}
	free(buf);
	return NULL;
}

/* The host died (PR_SET_PDEATHSIG) or someone asks this worker to end: it takes what its
 * tasks started in its process group along, so that nothing outlives the host. */
static void host_gone(int sig)
{
	if (getpid() != self) { /* a task's child: SIGTERM does to it what it always does */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	leave(1);
}

/* From a SIGKILLed host's death to this worker's: the host's fork set PDEATHSIG to
 * SIGKILL, which would leave the tasks' children behind, so it becomes SIGTERM, caught.
 * One of the two is set at every moment. */
static void follow_host(void)
{
	self = getpid();
	own_group = getpgrp() == self;
	struct sigaction sa = {.sa_handler = host_gone};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_UNBLOCK, &term, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
}

static void usage(void)
{
	fprintf(stderr, "usage: taskhost-runner --plugin-dir DIR --max-result N "
			"[--allow-insecure-plugins] [--skip FILE]...\n"
			"A worker process of taskhost's process strategy: started by the host with "
			"its socket on fd 3, not by hand.\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (th_fds_guard(NULL)) /* before the plugins are opened */
		return 1;
	const char *plugin_dir = NULL;
	size_t max_result = 0;
	bool allow_insecure_plugins = false;
	struct skip skip = {calloc((size_t)argc, sizeof(char *)), 0};
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--plugin-dir") == 0 && i + 1 < argc)
			plugin_dir = argv[++i];
		else if (strcmp(argv[i], "--max-result") == 0 && i + 1 < argc)
			max_result = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--skip") == 0 && i + 1 < argc)
			skip.files[skip.n++] = argv[++i];
		else if (strcmp(argv[i], "--allow-insecure-plugins") == 0)
			allow_insecure_plugins = true;
		else
			usage();
	}
	if (!plugin_dir || fcntl(HOST_FD, F_GETFD) == -1)
		usage();
	follow_host();
	max_frame = (size_t)1 << 31;

	th_log_set_level(TH_LOG_DEBUG); /* the host filters */
	th_log_set_sink(log_to_host, NULL);
	th_msg hello = {.type = TH_MSG_HELLO, .version = TH_PROTO_VERSION, .pid = (uint32_t)getpid()};
	send_msg(&hello);

	th_plugins *reg;
	if (th_plugins_new(&reg, TH_PLUGINS_RUN, th_run_api()))
		return 1;
	th_plugins_allow_insecure_plugins(reg, allow_insecure_plugins);
	th_plugins_set_load_hook(reg, before_load, &skip);
	th_plugins_load_dir(reg, plugin_dir, NULL, NULL);
	th_msg ready = {.type = TH_MSG_READY, .count = (uint32_t)th_plugins_task_count(reg)};
	send_msg(&ready);

	pthread_t reader;
	if (pthread_create(&reader, NULL, read_host, NULL))
		return 1;
	th_plugin_thread *t;
	if (th_plugin_thread_new(reg, &t))
		return 1;
	th_run_opts opts = {.cancel = &cancel, .max_result = max_result, .coord = &host_coord};
	for (;;) {
		pthread_mutex_lock(&mu);
		while (!job_frame && !quit)
			pthread_cond_wait(&cv, &mu);
		uint8_t *frame = job_frame;
		th_msg m = job_msg;
		job_frame = NULL;
		bool stop = quit && !frame;
		pthread_mutex_unlock(&mu);
		if (stop)
			break;
		th_job job = {.id = m.id, .status = TH_JOB_PROCESSING, .attempts = m.count};
		snprintf(job.task, sizeof(job.task), "%.*s", (int)m.text_len, m.text);
		th_run_result r;
		const th_task_entry *e = th_plugins_find_or_rescan(reg, job.task);
		if (e) {
			th_run_job(t, e, &job, m.data, m.data_len, &opts, &r);
		} else {
			memset(&r, 0, sizeof(r));
			r.ret = TH_FAIL;
			if (asprintf(&r.error, "no loaded plugin provides task '%s'", job.task) < 0)
				r.error = NULL;
		}
		atomic_store(&running, 0);
		free(frame);
		th_msg done = {.type = TH_MSG_DONE, .id = job.id, .ret = (uint32_t)r.ret,
			       .took_us = r.took_us, .data = r.result, .data_len = r.result_len,
			       .text = r.error ? r.error : "", .text_len = r.error ? strlen(r.error) : 0};
		send_msg(&done);
		th_run_result_clear(&r);
	}
	pthread_join(reader, NULL);
	th_plugin_thread_free(t);
	th_plugins_free(reg);
	free(skip.files);
	return 0;
}
