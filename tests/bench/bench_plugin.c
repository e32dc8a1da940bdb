/* Tasks for the benchmarks: "stamp" returns the monotonic time its run started (8 bytes,
 * nanoseconds), so the harness can measure how long a job waited to start. */
#include <stdint.h>
#include <time.h>

#include "taskhost.h"

static th_ret stamp(th_ctx *ctx)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
	th_set_result(ctx, &ns, sizeof(ns));
	return TH_OK;
}

static const th_task tasks[] = {
	{.name = "stamp", .description = "returns when its run started", .run = stamp},
};

TH_PLUGIN(.name = "bench", .version = "1", TH_TASKS(tasks))
