/* fail: always ends in error, with the input as the message. For trying error paths. */
#include <stdio.h>

#include "taskhost.h"

static th_ret fail_run(th_ctx *ctx)
{
	size_t len;
	const char *in = th_input(ctx, &len);
	if (len == 0)
		th_set_error(ctx, "failed as asked");
	else
		th_set_error(ctx, "%.*s", (int)(len > 4096 ? 4096 : len), in);
	return TH_FAIL;
}

static const th_task tasks[] = {
	{.name = "fail", .description = "fails with its input as the error message",
	 .run = fail_run, .max_attempts = 1 /* failing is what it is for: no retries */},
};

TH_PLUGIN(.name = "fail", .version = "1.0", .description = "always fails", TH_TASKS(tasks))
