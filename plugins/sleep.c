/* The seed's sleep task: input {"seconds": S, "id": N}; sleeps S seconds, logs "Job: N".
 * Sleeps in short slices so a cancel or a stop is noticed, and reports progress. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "taskhost.h"

#define SLICE_S 0.05

static void nap(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static th_ret sleep_run(th_ctx *ctx)
{
	size_t len;
	const char *in = th_input(ctx, &len);
	json_error_t jerr;
	json_t *doc = json_loadb(in, len, 0, &jerr);
	json_t *secs = doc ? json_object_get(doc, "seconds") : NULL;
	json_t *id = doc ? json_object_get(doc, "id") : NULL;
	if (!doc || !json_is_object(doc) || !json_is_number(secs) ||
	    (id && !json_is_integer(id))) {
		th_set_error(ctx, "input must be {\"seconds\": S, \"id\": N}%s%s",
			     doc ? "" : ": ", doc ? "" : jerr.text);
		json_decref(doc);
		return TH_FAIL;
	}
	double total = json_number_value(secs);
	long long n = id ? json_integer_value(id) : 0;
	json_decref(doc);
	if (!isfinite(total) || total < 0 || total > 86400) {
		th_set_error(ctx, "seconds must be between 0 and 86400");
		return TH_FAIL;
	}
	for (double done = 0; done < total;) {
		if (th_cancelled(ctx)) {
			th_set_error(ctx, "cancelled after %.3f s", done);
			return TH_FAIL;
		}
		double step = total - done < SLICE_S ? total - done : SLICE_S;
		nap(step);
		done += step;
		th_progress(ctx, done / total);
	}
	th_log(ctx, TH_LOG_INFO, "Job: %lld", n);
	char out[64];
	int olen = snprintf(out, sizeof(out), "Job: %lld", n);
	th_set_result(ctx, out, (size_t)olen);
	return TH_OK;
}

static const th_task tasks[] = {
	{.name = "sleep",
	 .description = "sleeps {\"seconds\": S}, then logs \"Job: N\" for {\"id\": N}",
	 .run = sleep_run},
};

TH_PLUGIN(.name = "sleep", .version = "1.0", .description = "the seed's sleep task",
	  TH_TASKS(tasks))
