/* echo: the result is the input, byte for byte. noop: does nothing, for benchmarks.
 * Two tasks in one plugin. */
#include "taskhost.h"

static th_ret echo_run(th_ctx *ctx)
{
	size_t len;
	const void *in = th_input(ctx, &len);
	if (th_set_result(ctx, in, len) != 0) {
		th_set_error(ctx, "result of %zu bytes refused", len);
		return TH_FAIL;
	}
	return TH_OK;
}

static th_ret noop_run(th_ctx *ctx)
{
	(void)ctx;
	return TH_OK;
}

static const th_task tasks[] = {
	{.name = "echo", .description = "returns its input as the result", .run = echo_run},
	{.name = "noop", .description = "does nothing", .run = noop_run},
};

TH_PLUGIN(.name = "echo", .version = "1.0", .description = "echo and noop",
	  TH_TASKS(tasks))
