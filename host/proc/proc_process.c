/* The process strategy: the pool of multi.c, where each worker thread hands its jobs to
 * a worker process (taskhost-runner, started with fork+exec and reused from job to job)
 * and speaks the worker protocol with it. A worker that crashes, exits, runs out of
 * memory or overruns its time takes only its job down; the next job gets a new worker. */
#include "proc/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "log.h"
#include "proc/proc_proto.h"

#define HELLO_TIMEOUT_US (30 * 1000000LL) /* plugin init may take a while */
#define QUIT_TIMEOUT_US (5 * 1000000LL)
#define QUIT_POLL_US 20000 /* how often a quitting worker is looked at */
#define FRAME_TIMEOUT_S 10 /* a frame, once begun, arrives within this */
#define MAX_STARTS 8       /* tries to start a worker before giving up on a job */

/* Shared by the workers of one processor. */
struct pool {
	th_processor *p;
	const th_proc_env *env;
	const th_processor_args *args;
	pthread_mutex_t mu;
	char **skip; /* plugins whose init crashed a worker: not loaded again */
	size_t nskip;
	unsigned gen; /* bumped by a reload: workers of older generations retire */
	void *pool;   /* the multi.c pool */
};

struct pworker {
	struct pool *s;
	unsigned index;
	pid_t pid;
	int fd;
	unsigned gen;
	unsigned jobs;
	uint8_t *buf;
};

/* "killed by SIGSEGV", "exited with status 3" */
static void describe_exit(int status, char *out, size_t len)
{
	if (WIFSIGNALED(status)) {
		const char *name = sigabbrev_np(WTERMSIG(status));
		snprintf(out, len, "worker killed by SIG%s", name ? name : "?");
	} else if (WIFEXITED(status)) {
		snprintf(out, len, "worker exited with status %d", WEXITSTATUS(status));
	} else {
		snprintf(out, len, "worker ended");
	}
}

/* Kills (if still running) and reaps the worker; describes how it ended. Whatever its
 * task started in the worker's process group is killed in any case, while the worker
 * is not reaped yet (so its pid, the group's id, cannot have been reused). */
static void reap(struct pworker *w, bool kill_it, char *why, size_t len)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	if (w->pid <= 0)
		return;
	if (kill_it)
		kill(w->pid, SIGKILL);
	kill(-w->pid, SIGKILL);
	int status = 0;
	while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (why)
		describe_exit(status, why, len);
	w->pid = 0;
}

/* Waits up to deadline (monotonic us; < 0: forever) for a frame. TH_ETIMEDOUT. */
static int recv_until(struct pworker *w, int64_t deadline, th_msg *m)
{
	for (;;) {
		int ms = -1;
		if (deadline >= 0) {
			int64_t left = deadline - th_clock_mono_us();
			if (left <= 0)
				return TH_ETIMEDOUT;
			ms = (int)((left + 999) / 1000);
		}
		struct pollfd pfd = {w->fd, POLLIN, 0};
		int n = poll(&pfd, 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			continue; /* recheck the deadline */
		if (n < 0)
			return TH_EIO;
		size_t max = w->s->env->max_result + (1u << 20);
		return th_proto_recv(w->fd, max, &w->buf, m);
	}
}

static void log_from_worker(const th_msg *m, const char *task)
{
	int level = m->level <= TH_LOG_DEBUG ? (int)m->level : TH_LOG_DEBUG;
	char source[64];
	snprintf(source, sizeof(source), "%.*s", (int)m->source_len, m->source);
	th_log_msg(level, source, m->id, m->id ? task : NULL, "%.*s", (int)m->text_len, m->text);
}

static bool skipped(struct pool *s, const char *path, size_t len)
{
	for (size_t i = 0; i < s->nskip; i++)
		if (strlen(s->skip[i]) == len && memcmp(s->skip[i], path, len) == 0)
			return true;
	return false;
}

/* Starts the worker process and waits until its plugins are loaded. */
static int start(struct pworker *w, char *why, size_t whylen)
{
	struct pool *s = w->s;
	const th_proc_env *env = s->env;
	char maxres[32];
	snprintf(maxres, sizeof(maxres), "%zu", env->max_result);
	pthread_mutex_lock(&s->mu);
	size_t nargs = 8 + 2 * s->nskip;
	char **argv = calloc(nargs, sizeof(char *));
	size_t a = 0;
	if (argv) {
		argv[a++] = (char *)env->runner;
		argv[a++] = "--plugin-dir";
		argv[a++] = (char *)env->plugin_dir;
		argv[a++] = "--max-result";
		argv[a++] = maxres;
		if (env->allow_insecure_plugins)
			argv[a++] = "--allow-insecure-plugins";
		for (size_t i = 0; i < s->nskip; i++) { /* entries are never freed early */
			argv[a++] = "--skip";
			argv[a++] = s->skip[i];
		}
	}
	w->gen = s->gen;
	pthread_mutex_unlock(&s->mu);
	if (!argv) {
		snprintf(why, whylen, "out of memory");
		return TH_ENOMEM;
	}
	int sv[2];
	int rc = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		snprintf(why, whylen, "socketpair: %s", strerror(errno));
		rc = TH_ESYS;
		goto out;
	}
	struct rlimit mem = {(rlim_t)s->args->worker_memory_limit,
			     (rlim_t)s->args->worker_memory_limit};
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		/* only async-signal-safe calls between fork and exec. Its own process group,
		 * so that the host can kill whatever its tasks start along with it (and a
		 * Ctrl-C meant for the host does not reach it); killed if the host thread
		 * dies before the runner takes over (runner.c: host_gone) */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		sigset_t none; /* not the host's: it blocks the signals its main thread takes */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (getppid() != parent)
			_exit(1);
		if (dup2(sv[1], 3) < 0)
			_exit(126);
		if (mem.rlim_cur)
			setrlimit(RLIMIT_AS, &mem);
		execv(argv[0], argv);
		_exit(127);
	}
	close(sv[1]);
	if (pid > 0)
		setpgid(pid, pid); /* the child does it too: whichever runs first */
	if (pid < 0) {
		close(sv[0]);
		snprintf(why, whylen, "fork: %s", strerror(errno));
		rc = TH_ESYS;
		goto out;
	}
	w->pid = pid;
	w->fd = sv[0];
	struct timeval tv = {FRAME_TIMEOUT_S, 0};
	setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));

	/* HELLO, then a LOADING per plugin file, then READY */
	int64_t deadline = th_clock_mono_us() + HELLO_TIMEOUT_US;
	char loading[4096] = "";
	bool hello = false;
	for (;;) {
		th_msg m;
		rc = recv_until(w, deadline, &m);
		if (rc) {
			char how[64];
			reap(w, true, how, sizeof(how));
			if (rc == TH_ETIMEDOUT)
				snprintf(how, sizeof(how), "no answer in %lld s",
					 HELLO_TIMEOUT_US / 1000000);
			if (*loading) {
				/* its init took the worker down: never load it again */
				th_log_error("plugins", "%s: refused: loading it took a worker process "
					     "down (%s)", loading, how);
				pthread_mutex_lock(&s->mu);
				if (!skipped(s, loading, strlen(loading))) {
					char **sk = realloc(s->skip, (s->nskip + 1) * sizeof(*sk));
					if (sk) {
						s->skip = sk;
						s->skip[s->nskip++] = strdup(loading);
					}
				}
				pthread_mutex_unlock(&s->mu);
				snprintf(why, whylen, "%s while loading %.300s", how, loading);
				rc = TH_EBUSY; /* try again: it will be skipped */
			} else {
				snprintf(why, whylen, "%s before it was ready%s", how,
					 hello ? "" : " (is taskhost-runner installed?)");
				rc = TH_ESYS;
			}
			goto out;
		}
		if (m.type == TH_MSG_HELLO) {
			if (m.version != TH_PROTO_VERSION) {
				reap(w, true, NULL, 0);
				snprintf(why, whylen, "worker speaks protocol %u, the host %u",
					 m.version, TH_PROTO_VERSION);
				rc = TH_EFORMAT;
				goto out;
			}
			hello = true;
		} else if (m.type == TH_MSG_LOADING) {
			snprintf(loading, sizeof(loading), "%.*s", (int)m.text_len, m.text);
		} else if (m.type == TH_MSG_LOG) {
			log_from_worker(&m, NULL);
		} else if (m.type == TH_MSG_READY) {
			th_log_debug("processor", "worker %u: process %d ready, %u task%s", w->index,
				     (int)pid, m.count, m.count == 1 ? "" : "s");
			th_metrics_worker(w->s->env->metrics, false);
			break;
		}
	}
	w->jobs = 0;
out:
	free(argv);
	return rc;
}

/* Whether the worker process has ended, leaving it to reap() to collect. Its socket
 * does not tell: a child its task left running may hold it open. */
static bool exited(const struct pworker *w)
{
	siginfo_t si = {0};
	return waitid(P_PID, (id_t)w->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	       si.si_pid == w->pid;
}

static void quit(struct pworker *w)
{
	if (w->pid <= 0)
		return;
	th_msg q = {.type = TH_MSG_QUIT};
	bool asked = th_proto_send(w->fd, &q) == 0;
	/* it answers by exiting: wait for end of file on its socket, or for its exit */
	int64_t deadline = th_clock_mono_us() + QUIT_TIMEOUT_US;
	th_msg m;
	int rc = 0;
	while (asked && (rc == 0 || rc == TH_ETIMEDOUT) && !exited(w)) {
		int64_t now = th_clock_mono_us();
		if (now >= deadline)
			break;
		rc = recv_until(w, now + QUIT_POLL_US < deadline ? now + QUIT_POLL_US : deadline, &m);
	}
	reap(w, true, NULL, 0);
}

static int process_open(th_processor *p, unsigned index, void **out)
{
	struct pool *s = th_processor_strategy_state(p);
	struct pworker *w = calloc(1, sizeof(*w));
	if (!w)
		return TH_ENOMEM;
	w->s = s;
	w->index = index;
	w->fd = -1;
	*out = w; /* the process starts with the first job */
	return 0;
}

/* A job that could not finish because of its worker: it runs again later while it has
 * attempts left (the store decides), and the error says what happened. */
static void failed(const th_claim *c, th_outcome *o, th_run_result *r, const char *msg)
{
	free(r->error);
	r->error = strdup(msg);
	r->ret = TH_FAIL;
	*o = (th_outcome){.id = c->job.id, .gen = c->job.claim_gen, .error = r->error,
			  .status = TH_JOB_ERROR, .retry = true};
	bool again = c->job.attempts < c->job.max_attempts;
	th_log_msg(TH_LOG_WARN, "processor", c->job.id, c->job.task, "%s%s", msg,
		   again ? "; it will run again" : "");
}

static void process_run(void *arg, const th_claim *c, th_outcome *o, th_run_result *r)
{
	struct pworker *w = arg;
	struct pool *s = w->s;
	memset(r, 0, sizeof(*r));
	char why[512];
	pthread_mutex_lock(&s->mu);
	bool stale = w->pid > 0 && w->gen != s->gen;
	pthread_mutex_unlock(&s->mu);
	if (stale) /* plugins were reloaded: a new process loads them */
		quit(w);
	int rc = 0;
	for (int i = 0; w->pid <= 0 && i < MAX_STARTS; i++)
		if ((rc = start(w, why, sizeof(why))) != TH_EBUSY && rc != 0)
			break;
	if (w->pid <= 0) {
		char msg[640];
		snprintf(msg, sizeof(msg), "cannot start a worker process: %s", why);
		failed(c, o, r, msg);
		return;
	}
	th_msg run = {.type = TH_MSG_RUN, .id = c->job.id, .count = c->job.attempts,
		      .text = c->job.task, .text_len = strlen(c->job.task), .data = c->input,
		      .data_len = c->input_len};
	th_log_msg(TH_LOG_DEBUG, "processor", c->job.id, c->job.task,
		   "started (attempt %u) in worker process %d", c->job.attempts, (int)w->pid);
	th_slot *slot = th_processor_slot(s->p, w->index);
	th_slot_begin(s->p, slot, &c->job);
	int64_t t0 = th_clock_mono_us(), hard = -1;
	bool asked = false, interrupted = false, progressed = false;
	const atomic_bool *stopping = th_processor_interrupted(s->p);
	if (th_proto_send(w->fd, &run))
		rc = TH_EIO;
	th_msg m;
	while (rc == 0) {
		/* look now and then for a cancel, a timeout (the keeper sets `cancel` at the
		 * deadline) or the host stopping; a worker that does not stop when asked is
		 * killed kill_grace later */
		int64_t look = th_clock_mono_us() + 200000;
		rc = recv_until(w, hard >= 0 && hard < look ? hard : look, &m);
		if (rc == TH_ETIMEDOUT) {
			int64_t now = th_clock_mono_us();
			if (hard >= 0 && now >= hard)
				break;
			if (exited(w)) { /* its socket kept open by a child of its task */
				rc = TH_EIO;
				break;
			}
			rc = 0;
			bool stop_now = atomic_load(stopping);
			if (!asked && (atomic_load(&slot->cancel) || stop_now)) {
				asked = true;
				interrupted = stop_now;
				th_msg cm = {.type = TH_MSG_CANCEL, .id = c->job.id};
				th_proto_send(w->fd, &cm);
				if (!stop_now) /* on shutdown the host decides how long to wait */
					hard = now + (int64_t)(s->args->kill_grace * 1e6);
			}
			continue;
		}
		if (rc)
			break;
		if (m.type == TH_MSG_LOG) {
			log_from_worker(&m, c->job.task);
		} else if (m.type == TH_MSG_PROGRESS && m.id == c->job.id) {
			th_coord_progress_set(s->env->coord, m.id, m.done);
			progressed = true;
		} else if (m.type == TH_MSG_DONE && m.id == c->job.id) {
			break;
		}
	}
	bool timed_out = atomic_load(&slot->timed_out);
	double timeout = slot->timeout;
	th_slot_end(slot);
	if (progressed) /* however the run ended: a worker that died clears nothing */
		th_coord_progress_clear(s->env->coord, c->job.id);
	if (rc) {
		char how[64], msg[256];
		reap(w, true, how, sizeof(how));
		if (rc != TH_ETIMEDOUT) /* not killed by the host for a timeout or cancel */
			th_metrics_worker(s->env->metrics, true);
		if (rc == TH_ETIMEDOUT)
			snprintf(msg, sizeof(msg), "%s; worker process killed",
				 timed_out ? "timed out" : "cancelled");
		else
			snprintf(msg, sizeof(msg), "%s", how);
		if (rc == TH_ETIMEDOUT && timed_out) {
			char t[256];
			snprintf(t, sizeof(t), "timed out after %g s; worker process killed", timeout);
			snprintf(msg, sizeof(msg), "%s", t);
		}
		failed(c, o, r, msg);
		r->took_us = th_clock_mono_us() - t0;
		return;
	}
	r->took_us = m.took_us;
	r->ret = m.ret <= TH_RETRY ? (th_ret)m.ret : TH_FAIL;
	if (m.data_len && (r->result = malloc(m.data_len)))
		memcpy(r->result, m.data, m.data_len);
	r->result_len = r->result ? m.data_len : 0;
	if (r->ret != TH_OK)
		r->error = strndup(m.text ? m.text : "", m.text_len);
	if (timed_out && r->ret != TH_OK) {
		free(r->error);
		if (asprintf(&r->error, "timed out after %g s", timeout) < 0)
			r->error = NULL;
	}
	*o = (th_outcome){.id = c->job.id, .gen = c->job.claim_gen, .result = r->result,
			  .result_len = r->result_len, .error = r->error,
			  .status = r->ret == TH_OK ? TH_JOB_COMPLETED : TH_JOB_ERROR,
			  .retry = r->ret != TH_OK};
	double ms = (double)r->took_us / 1000.0;
	if (r->ret != TH_OK && interrupted) {
		o->status = TH_JOB_QUEUED; /* not the job's failure: the host is going away */
		th_log_msg(TH_LOG_WARN, "processor", c->job.id, c->job.task,
			   "interrupted after %.3f ms by the host stopping: queued again", ms);
	} else if (r->ret == TH_OK) {
		th_log_msg(TH_LOG_DEBUG, "processor", c->job.id, c->job.task, "completed in %.3f ms",
			   ms);
	} else {
		th_log_msg(TH_LOG_WARN, "processor", c->job.id, c->job.task,
			   "failed after %.3f ms: %s", ms, r->error ? r->error : "");
	}
	th_processor_note_outcome(s->p, c, o, th_clock_mono_us() - t0);
	if (s->args->worker_max_jobs && ++w->jobs >= s->args->worker_max_jobs)
		quit(w); /* recycled: the next job gets a fresh process */
}

static void process_close(void *arg)
{
	struct pworker *w = arg;
	quit(w);
	free(w->buf);
	free(w);
}

static const th_executor process_executor = {process_open, process_run, process_close};

static void free_pool(struct pool *s)
{
	for (size_t i = 0; i < s->nskip; i++)
		free(s->skip[i]);
	free(s->skip);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static int process_start(th_processor *p, void **state)
{
	struct pool *s = calloc(1, sizeof(*s));
	if (!s)
		return TH_ENOMEM;
	s->p = p;
	s->env = th_processor_env(p);
	s->args = th_processor_args_of(p);
	pthread_mutex_init(&s->mu, NULL);
	if (!s->env->runner || !s->env->plugin_dir) {
		th_log_error("processor", "the process strategy needs the runner and the plugin "
			     "directory");
		free_pool(s);
		return TH_EINVAL;
	}
	*state = s; /* before the workers start: they look it up through the processor */
	int rc = th_pool_start(p, &process_executor, s->args->max_workers, &s->pool);
	if (rc) {
		free_pool(s);
		return rc;
	}
	return 0;
}

static void process_stop(void *state)
{
	struct pool *s = state;
	th_pool_stop(s->pool);
	free_pool(s);
}

static size_t process_threads(void *state, uint64_t *ids, size_t max)
{
	struct pool *s = state;
	return th_pool_threads(s->pool, ids, max);
}

static void process_reload(void *state)
{
	struct pool *s = state;
	pthread_mutex_lock(&s->mu);
	s->gen++;
	pthread_mutex_unlock(&s->mu);
	th_log_info("processor", "worker processes restart with the plugins as they are now");
}

const th_strategy th_strategy_process = {"process", process_start, process_stop,
					 process_threads, process_reload};
