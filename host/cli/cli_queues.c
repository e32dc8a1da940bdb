/* The subcommands on queues: pause and resume, which stop and restart the start of the
 * jobs of one queue. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "cli/cli.h"

static int queue_op(th_cli *cli, bool paused)
{
	const char *q = cli->argv[0];
	if (!*q || !th_queue_name_valid(q)) {
		th_cli_error("bad queue name '%s' (1 to 64 letters, digits, '_', '.', '-'; the "
			     "default queue is 'default')", q);
		return TH_EXIT_USAGE;
	}
	int rc = th_cli_open(cli, false);
	if (rc)
		return rc;
	if ((rc = th_cli_pause_queue(cli, q, paused)))
		return th_cli_fail(rc, 0, paused ? "pause" : "resume");
	if (cli->json)
		th_cli_print_json(json_pack("{s:s, s:b}", "queue", q, "paused", paused));
	else
		printf("queue %s %s\n", q, paused ? "paused" : "resumed");
	return TH_EXIT_OK;
}

int th_cmd_pause(th_cli *cli)
{
	return queue_op(cli, true);
}

int th_cmd_resume(th_cli *cli)
{
	return queue_op(cli, false);
}
