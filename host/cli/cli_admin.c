/* The subcommands that look after the host as a whole: clean, tasks, check and stats
 * (finished jobs, the plugins' tasks, the store's consistency, the counts). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "clock.h"
#include "jobjson.h"
#include "store/store_lmdb.h"
#include "store/store_pg.h"

int th_cmd_clean(th_cli *cli)
{
	int rc = th_cli_open(cli, false);
	if (rc)
		return rc;
	uint64_t removed = 0;
	if ((rc = th_cli_clean(cli, cli->older_than, &removed)))
		return th_cli_fail(rc, 0, "clean");
	if (cli->json)
		th_cli_print_json(json_pack("{s:I}", "removed", (json_int_t)removed));
	else
		printf("removed %llu finished job%s\n", (unsigned long long)removed,
		       removed == 1 ? "" : "s");
	return TH_EXIT_OK;
}

int th_cmd_tasks(th_cli *cli)
{
	int rc = th_cli_open(cli, true);
	if (rc)
		return rc;
	json_t *doc = th_cli_tasks(cli, &rc);
	if (!doc)
		return th_cli_fail(rc, 0, "tasks");
	if (cli->json) {
		th_cli_print_json(doc);
		return TH_EXIT_OK;
	}
	printf("%-20s %-20s %-8s %s\n", "TASK", "PLUGIN", "VERSION", "DESCRIPTION");
	size_t i;
	json_t *t;
	json_array_foreach(json_object_get(doc, "tasks"), i, t) {
		const char *file = json_string_value(json_object_get(t, "file"));
		const char *base = strrchr(file, '/');
		printf("%-20s %-20s %-8s %s\n", json_string_value(json_object_get(t, "name")),
		       base ? base + 1 : file, json_string_value(json_object_get(t, "version")),
		       json_string_value(json_object_get(t, "description")));
	}
	json_array_foreach(json_object_get(doc, "refused"), i, t)
		printf("%srefused: %s: %s\n", i ? "" : "\n",
		       json_string_value(json_object_get(t, "file")),
		       json_string_value(json_object_get(t, "reason")));
	json_decref(doc);
	return TH_EXIT_OK;
}

/* Creates or upgrades the schema of a store that has one (PostgreSQL). */
int th_cmd_migrate(th_cli *cli)
{
	int rc = th_cli_load_config(cli);
	if (rc)
		return rc;
	const char *url = th_config_store(&cli->cfg), *where;
	if (!url || th_store_backend(url, &where) == &th_store_lmdb) {
		printf("%s: an LMDB store keeps its own format: nothing to migrate\n",
		       url ? url : cli->cfg.data_dir);
		return TH_EXIT_OK;
	}
	th_store *st;
	th_store_opts o = {.migrate = true};
	if ((rc = th_store_open(&st, url, &o)))
		return th_cli_open_failed(cli, rc);
	int found, now = th_store_pg_version(st, &found);
	if (found == now)
		printf("%s: schema taskhost at version %d: up to date\n", th_store_pg_shown(st), now);
	else if (found == 0)
		printf("%s: schema taskhost created at version %d\n", th_store_pg_shown(st), now);
	else
		printf("%s: schema taskhost migrated from version %d to %d\n",
		       th_store_pg_shown(st), found, now);
	th_store_close(st);
	return TH_EXIT_OK;
}

/* ---- stats ---- */

static void print_problem(void *ud, const char *line)
{
	(void)ud;
	printf("%s\n", line);
}

int th_cmd_check(th_cli *cli)
{
	int rc = th_cli_open_local(cli, false); /* it reads the store's files */
	if (rc)
		return TH_EXIT_USAGE; /* said why */
	uint64_t jobs, problems;
	if ((rc = th_service_check(cli->svc, print_problem, NULL, &jobs, &problems))) {
		th_cli_fail(rc, 0, "check");
		return TH_EXIT_USAGE;
	}
	if (problems)
		printf("%s: %llu job%s, %llu problem%s found\n", th_service_store_shown(cli->svc),
		       (unsigned long long)jobs, jobs == 1 ? "" : "s",
		       (unsigned long long)problems, problems == 1 ? "" : "s");
	else
		printf("%s: %llu job%s, every index consistent: clean\n",
		       th_service_store_shown(cli->svc),
		       (unsigned long long)jobs, jobs == 1 ? "" : "s");
	return problems ? TH_EXIT_FAIL : TH_EXIT_OK;
}

/* stats --history: a line per minute */
static int print_history(th_cli *cli)
{
	int rc;
	json_t *doc = th_cli_stats_history(cli, cli->minutes, &rc);
	if (!doc)
		return th_cli_fail(rc, 0, "stats --history");
	if (cli->json) {
		th_cli_print_json(doc);
		return TH_EXIT_OK;
	}
	printf("%-20s %10s %10s %10s\n", "minute (UTC)", "added", "completed", "failed");
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(doc, "minutes"), i, m) {
		char when[40];
		th_clock_format(json_integer_value(json_object_get(m, "start")) * 1000000, when,
				sizeof(when));
		printf("%.16sZ%3s %10lld %10lld %10lld\n", when, "",
		       (long long)json_integer_value(json_object_get(m, "added")),
		       (long long)json_integer_value(json_object_get(m, "completed")),
		       (long long)json_integer_value(json_object_get(m, "failed")));
	}
	json_decref(doc);
	return TH_EXIT_OK;
}

int th_cmd_stats(th_cli *cli)
{
	int rc = th_cli_open(cli, false);
	if (rc)
		return rc;
	if (cli->minutes)
		return print_history(cli);
	json_t *doc = th_cli_stats(cli, &rc);
	if (!doc)
		return th_cli_fail(rc, 0, "stats");
	if (cli->json) {
		th_cli_print_json(doc);
		return TH_EXIT_OK;
	}
	json_t *counts = json_object_get(doc, "counts"), *old = json_object_get(doc, "oldest_queued");
	for (int st = 1; st <= TH_JOB_STATUS_MAX; st++) {
		const char *name = th_job_status_name((th_job_status)st);
		printf("%-12s %llu\n", name,
		       (unsigned long long)json_integer_value(json_object_get(counts, name)));
	}
	printf("%-12s %.2f jobs/s completed or failed over the last minute\n", "rate",
	       json_real_value(json_object_get(doc, "jobs_per_second")));
	if (json_is_object(old))
		printf("%-12s job %llu (%s), added %s, waiting %.1f s\n", "oldest",
		       (unsigned long long)json_integer_value(json_object_get(old, "id")),
		       json_string_value(json_object_get(old, "task")),
		       json_string_value(json_object_get(old, "added")),
		       json_real_value(json_object_get(old, "waiting")));
	else
		printf("%-12s none queued\n", "oldest");
	json_decref(doc);
	return TH_EXIT_OK;
}
