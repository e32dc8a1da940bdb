/* The per-run context and the functions plugins reach through th_host.
 * The host owns every byte: results and messages are copied out of the plugin. */
#include "run.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "error.h"
#include "log.h"

struct th_ctx {
	const th_job *job;
	const char *plugin;
	const void *input;
	size_t input_len;
	const th_run_opts *opts;
	void *result;
	size_t result_len;
	char *error;
	int result_refused;
};

static void api_log(th_ctx *ctx, int level, const char *fmt, ...)
{
	if (level < TH_LOG_ERROR)
		level = TH_LOG_ERROR;
	if (level > TH_LOG_DEBUG)
		level = TH_LOG_DEBUG;
	if (!th_log_enabled(level))
		return;
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (ctx) {
		th_log_msg(level, ctx->plugin, ctx->job->id, ctx->job->task, "%s", msg);
	} else {
		const char *p = th_plugins_current();
		th_log_msg(level, p ? p : "plugin", 0, NULL, "%s", msg);
	}
	free(msg);
}

static const void *api_input(th_ctx *ctx, size_t *len)
{
	if (len)
		*len = ctx->input_len;
	return ctx->input ? ctx->input : "";
}

static int api_set_result(th_ctx *ctx, const void *data, size_t len)
{
	if (ctx->opts->max_result && len > ctx->opts->max_result) {
		ctx->result_refused = 1;
		return -1;
	}
	void *copy = NULL;
	if (len) {
		if (!(copy = malloc(len)))
			return -1;
		memcpy(copy, data, len);
	}
	free(ctx->result);
	ctx->result = copy;
	ctx->result_len = len;
	ctx->result_refused = 0;
	return 0;
}

static void api_set_error(th_ctx *ctx, const char *fmt, ...)
{
	char *msg;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	free(ctx->error);
	ctx->error = msg;
}

static int api_cancelled(th_ctx *ctx)
{
	return (ctx->opts->cancel && atomic_load(ctx->opts->cancel)) ||
	       (ctx->opts->stopping && atomic_load(ctx->opts->stopping));
}

static void api_progress(th_ctx *ctx, double done)
{
	if (ctx->opts->progress && done == done) /* not NaN */
		th_progress_set(ctx->opts->progress, ctx->job->id,
				done < 0 ? 0 : done > 1 ? 1 : done);
}

static void api_heartbeat(th_ctx *ctx)
{
	if (ctx->opts->heartbeat)
		ctx->opts->heartbeat(ctx->opts->ud, ctx->job->id);
}

static uint64_t api_job_id(th_ctx *ctx)
{
	return ctx->job->id;
}

static unsigned api_attempt(th_ctx *ctx)
{
	return ctx->job->attempts;
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

void th_run_job(th_plugin_thread *t, const th_task_entry *e, const th_job *job,
		const void *input, size_t len, const th_run_opts *opts, th_run_result *out)
{
	static const th_run_opts none;
	th_ctx ctx = {job, th_task_entry_plugin(e), input, len, opts ? opts : &none,
		      NULL, 0, NULL, 0};
	memset(out, 0, sizeof(*out));
	int64_t t0 = th_clock_mono_us();
	th_ret ret = TH_FAIL;
	if (th_plugins_run(t, e, &ctx, &ret)) {
		free(ctx.error);
		ctx.error = strdup("the plugin's thread_init failed on this thread");
		ret = TH_FAIL;
	}
	out->took_us = th_clock_mono_us() - t0;
	th_progress_clear(ctx.opts->progress, job->id);
	if (ret != TH_OK && ret != TH_FAIL && ret != TH_RETRY) {
		free(ctx.error);
		if (asprintf(&ctx.error, "task returned %d, not TH_OK, TH_FAIL or TH_RETRY",
			     (int)ret) < 0)
			ctx.error = NULL;
		ret = TH_FAIL;
	}
	out->final = ctx.result_refused;
	if (ctx.result_refused && (ret == TH_OK || !ctx.error)) {
		free(ctx.error);
		if (asprintf(&ctx.error, "result larger than max_result_size (%zu bytes)",
			     ctx.opts->max_result) < 0)
			ctx.error = NULL;
		ret = TH_FAIL;
	}
	if (ret != TH_OK && !ctx.error)
		ctx.error = strdup(ret == TH_RETRY ? "task asked to be retried"
						   : "task failed without a message");
	if (ret == TH_OK) {
		free(ctx.error);
		ctx.error = NULL;
	}
	out->ret = ret;
	out->result = ctx.result;
	out->result_len = ctx.result_len;
	out->error = ctx.error;
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
