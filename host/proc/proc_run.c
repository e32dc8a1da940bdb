/* The per-run contexts (host memory that is never freed, so a late use is refused) and
 * the functions plugins reach through th_host; results and messages are copied. */
#include "proc/proc_run.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "log.h"

/* A context is host memory that is never freed: a task that keeps its ctx and uses it
 * after run returned (from a thread it left running, or in a later run) reaches a
 * context whose run has ended, and is refused, instead of freed memory or a stack. */
#define CTX_MAGIC 0x58544354u /* "TCTX" */
/* Contexts each slot goes through before it hands one out again: a context used after
 * its run returned is told apart from a later run's until then. */
#define CTX_RING 16

struct ctx_slot;

struct th_ctx {
	uint32_t magic;
	bool warned;             /* its use after return was logged */
	struct ctx_slot *slot;
	uint64_t gen;            /* the slot's run it was handed to */
	uint64_t job_id;         /* for the message about a use after return */
	char task[TH_TASK_NAME_MAX + 1];
	/* valid while its run is going on */
	const th_job *job;
	const char *plugin;
	const void *input;
	size_t input_len;
	const th_run_opts *opts;
	void *result;
	size_t result_len;
	char *error;
	int result_refused;
	bool progressed; /* the run reported progress: cleared when it ends */
};

/* The contexts of one thread's runs, one run at a time. */
struct ctx_slot {
	pthread_mutex_t mu; /* the run's thread and any thread its task started */
	uint64_t gen;       /* runs started on this slot */
	bool live;          /* the run gen is going on */
	bool borrowed;      /* not a thread's own: given back after the run */
	struct ctx_slot *next_free, *next_all;
	struct th_ctx ring[CTX_RING];
};

static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ctx_slot *free_slots, *all_slots;
static pthread_once_t slots_once = PTHREAD_ONCE_INIT;
static pthread_key_t slot_key;
static _Thread_local struct ctx_slot *mine;
static pid_t host_pid; /* the process whose runs these are */
static bool forked;    /* this is a child forked since (getpid() costs a system call) */

static void on_fork_child(void)
{
	forked = true;
}

static void slot_give(struct ctx_slot *s)
{
	pthread_mutex_lock(&slots_mu);
	s->next_free = free_slots;
	free_slots = s;
	pthread_mutex_unlock(&slots_mu);
}

static void thread_gone(void *slot)
{
	slot_give(slot); /* another thread takes it over: a slot is never freed */
}

/* A task that calls exit() takes its whole process down with it (the host, with the
 * simple and multi strategies); that cannot be stopped, but the log says which job did
 * it and which others were running. */
static void note_exit(void)
{
	if (getpid() != host_pid)
		return; /* a child a task forked */
	pthread_mutex_lock(&slots_mu);
	for (struct ctx_slot *s = all_slots; s; s = s->next_all) {
		pthread_mutex_lock(&s->mu);
		const struct th_ctx *c = &s->ring[s->gen % CTX_RING];
		if (s->live && s == mine)
			th_log_msg(TH_LOG_ERROR, "processor", c->job_id, c->task,
				   "the task called exit(): process %d exits with it, and with "
				   "every job it runs", (int)host_pid);
		else if (s->live)
			th_log_msg(TH_LOG_WARN, "processor", c->job_id, c->task,
				   "was running when process %d exited", (int)host_pid);
		pthread_mutex_unlock(&s->mu);
	}
	pthread_mutex_unlock(&slots_mu);
}

static void slots_init(void)
{
	pthread_key_create(&slot_key, thread_gone);
	host_pid = getpid();
	pthread_atfork(NULL, NULL, on_fork_child);
	atexit(note_exit);
	at_quick_exit(note_exit);
}

/* A slot for a run on this thread: its own, or one borrowed when its own is busy (a
 * run inside a run). NULL when out of memory. */
static struct ctx_slot *slot_take(void)
{
	pthread_once(&slots_once, slots_init);
	if (mine && !mine->live)
		return mine;
	pthread_mutex_lock(&slots_mu);
	struct ctx_slot *s = free_slots;
	if (s)
		free_slots = s->next_free;
	pthread_mutex_unlock(&slots_mu);
	if (!s) {
		if (!(s = calloc(1, sizeof(*s))))
			return NULL;
		pthread_mutex_init(&s->mu, NULL);
		for (size_t i = 0; i < CTX_RING; i++) { /* never written again */
			s->ring[i].magic = CTX_MAGIC;
			s->ring[i].slot = s;
		}
		pthread_mutex_lock(&slots_mu);
		s->next_all = all_slots;
		all_slots = s;
		pthread_mutex_unlock(&slots_mu);
	}
	s->borrowed = mine != NULL;
	if (!mine) {
		mine = s;
		pthread_setspecific(slot_key, s);
	}
	return s;
}

/* Locks the slot of ctx when ctx's run is going on and returns true; otherwise logs the
 * misuse (once per context) and returns false. `what` names the host function. */
static bool ctx_enter(th_ctx *ctx, const char *what)
{
	if (!ctx || ctx->magic != CTX_MAGIC) {
		const char *p = th_plugins_current();
		th_log_msg(TH_LOG_ERROR, p ? p : "plugin", 0, NULL,
			   "th_%s called with %s: ignored", what,
			   ctx ? "something that is not a context" : "a NULL context");
		return false;
	}
	pthread_mutex_lock(&ctx->slot->mu);
	if (ctx->slot->live && ctx->slot->gen == ctx->gen)
		return true;
	bool first = !ctx->warned;
	ctx->warned = true;
	pthread_mutex_unlock(&ctx->slot->mu);
	if (first)
		th_log_msg(TH_LOG_ERROR, "processor", ctx->job_id, ctx->task,
			   "task %s used its context after returning (th_%s): ignored, as is "
			   "every further use", ctx->task, what);
	return false;
}

static void ctx_leave(th_ctx *ctx)
{
	pthread_mutex_unlock(&ctx->slot->mu);
}

TH_PRINTF(3, 4) static void api_log(th_ctx *ctx, int level, const char *fmt, ...)
{
	if (level < TH_LOG_ERROR)
		level = TH_LOG_ERROR;
	if (level > TH_LOG_DEBUG)
		level = TH_LOG_DEBUG;
	if (!th_log_enabled(level))
		return;
	if (ctx && !ctx_enter(ctx, "log"))
		return;
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n >= 0 && ctx) {
		th_log_msg(level, ctx->plugin, ctx->job_id, ctx->task, "%s", msg);
	} else if (n >= 0) {
		const char *p = th_plugins_current();
		th_log_msg(level, p ? p : "plugin", 0, NULL, "%s", msg);
	}
	if (ctx)
		ctx_leave(ctx);
	if (n >= 0)
		free(msg);
}

static const void *api_input(th_ctx *ctx, size_t *len)
{
	if (len)
		*len = 0;
	if (!ctx_enter(ctx, "input"))
		return "";
	if (len)
		*len = ctx->input_len;
	const void *in = ctx->input ? ctx->input : "";
	ctx_leave(ctx);
	return in;
}

static int api_set_result(th_ctx *ctx, const void *data, size_t len)
{
	if (!ctx_enter(ctx, "set_result"))
		return -1;
	int rc = -1;
	void *copy = NULL;
	if (ctx->opts->max_result && len > ctx->opts->max_result) {
		ctx->result_refused = 1;
	} else if (!len || (copy = malloc(len))) {
		if (len)
			memcpy(copy, data, len);
		free(ctx->result);
		ctx->result = copy;
		ctx->result_len = len;
		ctx->result_refused = 0;
		rc = 0;
	}
	ctx_leave(ctx);
	return rc;
}

TH_PRINTF(2, 3) static void api_set_error(th_ctx *ctx, const char *fmt, ...)
{
	if (!ctx_enter(ctx, "set_error"))
		return;
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n >= 0) {
		free(ctx->error);
		ctx->error = msg;
	}
	ctx_leave(ctx);
}

static int api_cancelled(th_ctx *ctx)
{
	if (!ctx_enter(ctx, "cancelled"))
		return 1; /* whatever asks has nothing to go on for */
	int yes = (ctx->opts->cancel && atomic_load(ctx->opts->cancel)) ||
		  (ctx->opts->stopping && atomic_load(ctx->opts->stopping));
	ctx_leave(ctx);
	return yes;
}

static void api_progress(th_ctx *ctx, double done)
{
	if (!ctx_enter(ctx, "progress"))
		return;
	if (ctx->opts->coord && done == done) /* not NaN */
	{
		th_coord_progress_set(ctx->opts->coord, ctx->job_id,
				done < 0 ? 0 : done > 1 ? 1 : done);
		ctx->progressed = true;
	}
	ctx_leave(ctx);
}

static void api_heartbeat(th_ctx *ctx)
{
	if (!ctx_enter(ctx, "heartbeat"))
		return;
	void (*beat)(void *, uint64_t) = ctx->opts->heartbeat;
	void *ud = ctx->opts->ud;
	uint64_t id = ctx->job_id;
	ctx_leave(ctx);
	if (beat) /* outside the lock: it reaches into the processor */
		beat(ud, id);
}

static uint64_t api_job_id(th_ctx *ctx)
{
	if (!ctx_enter(ctx, "job_id"))
		return 0;
	uint64_t id = ctx->job_id;
	ctx_leave(ctx);
	return id;
}

static unsigned api_attempt(th_ctx *ctx)
{
	if (!ctx_enter(ctx, "attempt"))
		return 0;
	unsigned n = ctx->job->attempts;
	ctx_leave(ctx);
	return n;
}

static const th_host_api host_api = {
	.size = sizeof(th_host_api),
	.abi_minor = TH_ABI_MINOR,
	.log = api_log,
	.input = api_input,
	.set_result = api_set_result,
	.set_error = api_set_error,
	.cancelled = api_cancelled,
	.progress = api_progress,
	.heartbeat = api_heartbeat,
	.job_id = api_job_id,
	.attempt = api_attempt,
};

const th_host_api *th_run_api(void)
{
	return &host_api;
}

/* Writes "taskhost: <parts...>\n" to stderr with write(2) alone: in a child forked from
 * a threaded host, stdio and the log may hold locks of threads that are not there. */
static void say_raw(const char *const *parts, size_t n)
{
	char line[512];
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		for (const char *p = parts[i]; *p && len < sizeof(line) - 1; p++)
			line[len++] = *p;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}

/* Where a child a task forked comes back to when it returns from run instead of
 * exiting: it must not go on as a second copy of the host (taking jobs, committing). */
static void forked_child_returned(const struct th_ctx *c, th_ret ret)
{
	char id[24], *p = id + sizeof(id);
	uint64_t v = c->job_id;
	*--p = 0;
	do
		*--p = (char)('0' + v % 10);
	while (v /= 10);
	const char *parts[] = {"taskhost: a process forked by job ", p, " (task ", c->task,
			       ") returned from the task into the host: it exits"};
	say_raw(parts, sizeof(parts) / sizeof(parts[0]));
	_exit(ret == TH_OK ? 0 : 1);
}

void th_run_job(th_plugin_thread *t, const th_task_entry *e, const th_job *job,
		const void *input, size_t len, const th_run_opts *opts, th_run_result *out)
{
	static const th_run_opts none;
	memset(out, 0, sizeof(*out));
	struct ctx_slot *slot = slot_take();
	if (!slot) {
		out->ret = TH_FAIL;
		out->error = strdup("out of memory for the run's context");
		return;
	}
	pthread_mutex_lock(&slot->mu);
	uint64_t gen = ++slot->gen;
	th_ctx *ctx = &slot->ring[gen % CTX_RING];
	ctx->gen = gen;
	ctx->warned = false;
	ctx->job_id = job->id;
	snprintf(ctx->task, sizeof(ctx->task), "%s", job->task);
	ctx->job = job;
	ctx->plugin = th_task_entry_plugin(e);
	ctx->input = input;
	ctx->input_len = len;
	ctx->opts = opts ? opts : &none;
	ctx->result = NULL;
	ctx->result_len = 0;
	ctx->error = NULL;
	ctx->result_refused = 0;
	ctx->progressed = false;
	slot->live = true;
	pthread_mutex_unlock(&slot->mu);

	int64_t t0 = th_clock_mono_us();
	th_ret ret = TH_FAIL;
	int rc = th_plugins_run(t, e, ctx, &ret);
	if (forked)
		forked_child_returned(ctx, ret);
	out->took_us = th_clock_mono_us() - t0;

	/* the run is over: from here on its context refuses every call */
	pthread_mutex_lock(&slot->mu);
	slot->live = false;
	char *error = ctx->error;
	void *result = ctx->result;
	size_t result_len = ctx->result_len;
	int refused = ctx->result_refused;
	bool progressed = ctx->progressed;
	ctx->error = NULL;
	ctx->result = NULL;
	pthread_mutex_unlock(&slot->mu);
	if (slot->borrowed)
		slot_give(slot);

	if (rc) {
		free(error);
		error = strdup("the plugin's thread_init failed on this thread");
		ret = TH_FAIL;
	}
	const th_run_opts *o = opts ? opts : &none;
	if (progressed) /* a statement on a shared database connection: not for every job */
		th_coord_progress_clear(o->coord, job->id);
	if (ret != TH_OK && ret != TH_FAIL && ret != TH_RETRY) {
		free(error);
		if (asprintf(&error, "task returned %d, not TH_OK, TH_FAIL or TH_RETRY",
			     (int)ret) < 0)
			error = NULL;
		ret = TH_FAIL;
	}
	out->final = refused;
	if (refused && (ret == TH_OK || !error)) {
		free(error);
		if (asprintf(&error, "result larger than max_result_size (%zu bytes)",
			     o->max_result) < 0)
			error = NULL;
		ret = TH_FAIL;
	}
	if (ret != TH_OK && !error)
		error = strdup(ret == TH_RETRY ? "task asked to be retried"
					       : "task failed without a message");
	if (ret == TH_OK) {
		free(error);
		error = NULL;
	}
	out->ret = ret;
	out->result = result;
	out->result_len = result_len;
	out->error = error;
}

void th_run_result_clear(th_run_result *r)
{
	free(r->result);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

void th_run_claim(th_plugin_thread *t, th_plugins *reg, const th_claim *c,
		  const th_run_opts *opts, th_outcome *o, th_run_result *r)
{
	const th_job *job = &c->job;
	const th_task_entry *e = th_plugins_find_or_rescan(reg, job->task);
	if (e) {
		th_log_msg(TH_LOG_DEBUG, "processor", job->id, job->task, "started (attempt %u)",
			   job->attempts);
		th_run_job(t, e, job, c->input, c->input_len, opts, r);
	} else {
		memset(r, 0, sizeof(*r));
		r->ret = TH_FAIL;
		if (asprintf(&r->error, "no loaded plugin provides task '%s'", job->task) < 0)
			r->error = NULL;
	}
	/* a task that failed runs again while it has attempts left; a task no plugin
	 * provides would only fail again */
	*o = (th_outcome){.id = job->id, .gen = job->claim_gen, .result = r->result,
			  .result_len = r->result_len, .error = r->error,
			  .retry = e != NULL && !r->final};
	if (r->ret != TH_OK && opts && opts->timed_out && atomic_load(opts->timed_out)) {
		free(r->error);
		if (asprintf(&r->error, "timed out after %g s", opts->timeout) < 0)
			r->error = NULL;
		o->error = r->error;
		o->retry = true;
	}
	double ms = (double)r->took_us / 1000.0;
	if (r->ret == TH_OK) {
		/* one line per job at debug: at info it would cost more than a short job */
		o->status = TH_JOB_COMPLETED;
		th_log_msg(TH_LOG_DEBUG, "processor", job->id, job->task, "completed in %.3f ms", ms);
	} else if (opts && opts->stopping && atomic_load(opts->stopping)) {
		/* it stopped because the host is going away: not the job's failure */
		o->status = TH_JOB_QUEUED;
		th_log_msg(TH_LOG_WARN, "processor", job->id, job->task,
			   "interrupted after %.3f ms by the host stopping: queued again", ms);
	} else {
		o->status = TH_JOB_ERROR;
		th_log_msg(TH_LOG_WARN, "processor", job->id, job->task, "failed after %.3f ms: %s",
			   ms, r->error ? r->error : "");
	}
}
