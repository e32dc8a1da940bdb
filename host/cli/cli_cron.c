/* The cron subcommands: add, update, pause, resume, remove, list and next, on the cron
 * jobs that add a job at each time of their schedule. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "clock.h"
#include "cron.h"
#include "jobjson.h"

static int cron_job(th_cli *cli, th_job *job)
{
	if (cli->argc < 2) {
		th_cli_error("cron %s: expected a cron job's ID", cli->argv[0]);
		return TH_EXIT_USAGE;
	}
	int rc = th_cli_get_job(cli, cli->argv[1], job);
	if (rc)
		return rc;
	if (job->status != TH_JOB_CRONJOB) {
		th_cli_error("job %llu is %s, not a cron job", (unsigned long long)job->id,
			     th_job_status_name(job->status));
		return TH_EXIT_FAIL;
	}
	return 0;
}

static void print_cron(th_cli *cli, const th_job *job, json_t *arr)
{
	char *spec = NULL;
	th_cli_cron_spec(cli, job->id, &spec);
	if (arr) {
		json_t *o = th_jobjson_job(job);
		json_object_set_new(o, "schedule", json_string(spec ? spec : ""));
		json_array_append_new(arr, o);
	} else {
		char next[32] = "-";
		if (job->due_us)
			th_clock_format(job->due_us, next, sizeof(next));
		printf("%-8llu %-20s %-24s %-8s %-8u %s\n", (unsigned long long)job->id, job->task,
		       job->flags & TH_JOB_CRON_PAUSED ? "paused" : next,
		       job->flags & TH_JOB_CRON_CATCHUP ? "catch-up" : "skip", job->fires,
		       spec ? spec : "");
	}
	free(spec);
}

static int cron_list_one(const th_job *job, void *ud)
{
	void **a = ud;
	print_cron(a[0], job, a[1]);
	return 0;
}

/* Parses the schedule of `cron SUB`: one that never fires after `from` is as bad as one
 * that does not parse, whichever subcommand is given it. Prints why and returns the
 * exit code when it is bad. */
static int check_schedule(const char *sub, const char *spec, int64_t from, th_cron *cron)
{
	char err[256];
	if (th_cron_parse(spec, cron, err, sizeof(err))) {
		th_cli_error("cron %s: bad schedule '%s': %s", sub, spec, err);
		return TH_EXIT_USAGE;
	}
	if (th_cron_next(cron, from) < 0) {
		th_cli_error("cron %s: schedule '%s' never fires", sub, spec);
		return TH_EXIT_USAGE;
	}
	return 0;
}

static int cron_next(th_cli *cli)
{
	if (cli->argc < 2) {
		th_cli_error("cron next: expected a schedule");
		return TH_EXIT_USAGE;
	}
	th_cron cron;
	int64_t t = cli->from_us != INT64_MIN ? cli->from_us : th_clock_now_us();
	int rc = check_schedule("next", cli->argv[1], t, &cron);
	if (rc)
		return rc;
	json_t *arr = cli->json ? json_array() : NULL;
	for (long i = 0; i < cli->count; i++) {
		if ((t = th_cron_next(&cron, t)) < 0)
			break;
		char buf[32];
		th_clock_format(t, buf, sizeof(buf));
		if (arr)
			json_array_append_new(arr, json_string(buf));
		else
			printf("%s\n", buf);
	}
	if (arr)
		th_cli_print_json(arr);
	return TH_EXIT_OK;
}

int th_cmd_cron(th_cli *cli)
{
	const char *sub = cli->argv[0];
	th_cron cron;
	if (strcmp(sub, "next") == 0)
		return cron_next(cli);
	int rc;
	if (cli->schedule && (rc = check_schedule(sub, cli->schedule, th_clock_now_us(), &cron)))
		return rc;
	th_job job;
	if (strcmp(sub, "add") == 0) {
		if (cli->argc < 2 || !cli->schedule) {
			th_cli_error("cron add: expected TASK [INPUT | -] --schedule S (try 'taskhost "
				     "cron --help')");
			return TH_EXIT_USAGE;
		}
		if ((rc = th_cli_open(cli, true)))
			return rc;
		char *input;
		size_t len;
		if ((rc = th_cli_read_input(cli, cli->argc > 2 ? cli->argv[2] : NULL, &input, &len)))
			return rc;
		cli->add.cron = cli->schedule;
		cli->add.catchup = cli->catchup == 1;
		uint64_t id = 0;
		bool existed = false;
		rc = th_cli_add(cli, cli->argv[1], input, len, &cli->add, &id, &existed);
		free(input);
		if ((rc = th_cli_add_failed(cli, cli->argv[1], rc)))
			return rc;
		return th_cli_print_added(cli, id, existed);
	}
	if (strcmp(sub, "list") == 0) {
		if ((rc = th_cli_open(cli, false)))
			return rc;
		json_t *arr = cli->json ? json_array() : NULL;
		if (!arr)
			printf("%-8s %-20s %-24s %-8s %-8s %s\n", "ID", "TASK", "NEXT", "MISSED",
			       "FIRES", "SCHEDULE");
		void *a[2] = {cli, arr};
		if ((rc = th_cli_list(cli, TH_MASK(TH_JOB_CRONJOB), false, cron_list_one, a)))
			return th_cli_fail(rc, 0, "cron list");
		if (arr)
			th_cli_print_json(arr);
		return TH_EXIT_OK;
	}
	bool update = strcmp(sub, "update") == 0, pause = strcmp(sub, "pause") == 0,
	     resume = strcmp(sub, "resume") == 0, remove = strcmp(sub, "remove") == 0;
	if (!update && !pause && !resume && !remove) {
		th_cli_error("cron: unknown '%s' (add, update, pause, resume, remove, list or next)",
			     sub);
		return TH_EXIT_USAGE;
	}
	if ((rc = cron_job(cli, &job)))
		return rc;
	if (update)
		rc = th_cli_cron_update(cli, job.id, cli->schedule, cli->catchup);
	else if (remove)
		rc = th_cli_cron_remove(cli, job.id);
	else
		rc = th_cli_cron_pause(cli, job.id, pause);
	if (rc)
		return th_cli_fail(rc, job.id, sub);
	th_cli_get(cli, job.id, &job);
	if (cli->json) {
		json_t *arr = json_array();
		print_cron(cli, &job, arr);
		th_cli_print_json(json_incref(json_array_get(arr, 0)));
		json_decref(arr);
	} else if (remove) {
		printf("cron job %llu removed\n", (unsigned long long)job.id);
	} else {
		print_cron(cli, &job, NULL);
	}
	return TH_EXIT_OK;
}
