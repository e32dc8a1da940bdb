/* The subcommands that add and inspect jobs: add, status, result, error, cancel, clean,
 * list, tasks, wait, stats. Each prints text for people or, with --json, one document. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "clock.h"
#include "cron.h"
#include "fds.h"
#include "jobjson.h"

/* ---- output helpers ---- */

static void print_json(json_t *doc)
{
	char *s = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_INDENT(2) | JSON_REAL_PRECISION(9));
	if (s) {
		puts(s);
		free(s);
	}
	json_decref(doc);
}

static int get_job(th_cli *cli, const char *arg, th_job *job)
{
	uint64_t id;
	if (!th_cli_job_id(arg, &id))
		return TH_EXIT_USAGE;
	int rc = th_cli_open(cli, false);
	if (rc)
		return rc;
	if ((rc = th_service_get(cli->svc, id, job)))
		return th_cli_fail(rc, id, "reading the job");
	return 0;
}

/* ---- add ---- */

/* Reads stdin up to max bytes; *len = max + 1 tells there was more. */
static int read_stdin(size_t max, char **out, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return -1;
	for (;;) {
		if (n == cap) {
			if (n > max)
				break;
			cap *= 2;
			char *b = realloc(buf, cap);
			if (!b) {
				free(buf);
				return -1;
			}
			buf = b;
		}
		ssize_t r = read(STDIN_FILENO, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Prints why an add failed and returns the exit code; 0 when it did not. */
static int add_failed(th_cli *cli, const char *task, int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case TH_EUNKNOWNTASK:
		th_cli_error("add: unknown task '%s': no plugin in %s provides it (see 'taskhost "
			     "tasks')", task, cli->cfg.plugin_dir);
		return TH_EXIT_FAIL;
	case TH_EINVAL:
		if (!th_task_name_valid(task))
			th_cli_error("add: bad task name '%s': task names are 1 to 255 printable "
				     "ASCII characters, no spaces", task);
		else
			th_cli_error("add: bad options (--hold with a schedule?)");
		return TH_EXIT_USAGE;
	case TH_ETOOBIG:
		th_cli_error("add: input larger than max_input_size (%llu bytes)",
			     (unsigned long long)cli->cfg.max_input_size);
		return TH_EXIT_FAIL;
	case TH_EFULL:
		th_cli_error("add: database full (%s reached max_map_size); job not added",
			     cli->cfg.data_dir);
		return TH_EXIT_FAIL;
	}
	return th_cli_fail(rc, 0, "add");
}

/* The input of add and cron add: the argument, stdin with '-', or nothing. */
static int read_input(th_cli *cli, const char *arg, char **input, size_t *len)
{
	*input = NULL;
	*len = 0;
	if (arg && strcmp(arg, "-") == 0) {
		if (cli->stdin_closed) {
			th_cli_error("cannot read the input from stdin: stdin is closed");
			return TH_EXIT_FAIL;
		}
		if (read_stdin(cli->cfg.max_input_size, input, len)) {
			th_cli_error("cannot read the input from stdin: %s", strerror(errno));
			return TH_EXIT_FAIL;
		}
	} else if (arg) {
		*input = strdup(arg);
		*len = strlen(arg);
	}
	return 0;
}

#define LINES_PER_COMMIT 1000
#define LINE_BYTES_PER_COMMIT (1 << 20) /* or fewer lines, when they are long */

/* One line of f without its newline into *line (malloc'd): 1, or 0 at the end of f, -1 on
 * a read error, -2 when the line is longer than max (the rest of it is left unread). */
static int read_line(FILE *f, size_t max, char **line, size_t *len)
{
	size_t cap = 64, n = 0;
	char *buf = malloc(cap);
	int c;
	if (!buf)
		return -1;
	while ((c = getc(f)) != EOF && c != '\n') {
		if (n == max) {
			free(buf);
			return -2;
		}
		if (n + 1 == cap) {
			char *b = realloc(buf, cap *= 2);
			if (!b) {
				free(buf);
				return -1;
			}
			buf = b;
		}
		buf[n++] = (char)c;
	}
	if (ferror(f) || (c == EOF && n == 0)) {
		free(buf);
		return ferror(f) ? -1 : 0;
	}
	*line = buf;
	*len = n;
	return 1;
}

static bool task_provided(th_cli *cli, const char *task)
{
	th_task_info ti;
	for (size_t i = 0; th_service_task_info(cli->svc, i, &ti) == 0; i++)
		if (strcmp(ti.name, task) == 0)
			return true;
	return false;
}

/* add --lines: a job per line of stdin, LINES_PER_COMMIT (or LINE_BYTES_PER_COMMIT) to
 * a commit, each batch's ids printed once it committed. Stops at the first line that
 * cannot be added. */
static int add_lines(th_cli *cli, const char *task)
{
	th_new_job jobs[LINES_PER_COMMIT];
	uint64_t ids[LINES_PER_COMMIT];
	json_t *all = cli->json ? json_array() : NULL;
	size_t n = 0, added = 0, bytes = 0;
	int rc = 0, got, err = 0;
	if (!task_provided(cli, task)) /* said even when stdin has no line */
		return add_failed(cli, task, th_task_name_valid(task) ? TH_EUNKNOWNTASK : TH_EINVAL);
	if (cli->stdin_closed) {
		th_cli_error("add: --lines reads stdin, and stdin is closed: no job added");
		return TH_EXIT_FAIL;
	}
	do {
		char *line = NULL;
		size_t len = 0;
		got = read_line(stdin, cli->cfg.max_input_size, &line, &len);
		err = errno;
		if (got == 1) {
			jobs[n++] = (th_new_job){task, line, len, &cli->add};
			bytes += len;
		}
		if (n && (n == LINES_PER_COMMIT || bytes >= LINE_BYTES_PER_COMMIT || got != 1)) {
			rc = th_service_add_many(cli->svc, jobs, n, ids);
			for (size_t i = 0; i < n; i++) {
				free((void *)jobs[i].input);
				if (rc == 0 && all)
					json_array_append_new(all, json_integer((json_int_t)ids[i]));
				else if (rc == 0)
					printf("%llu\n", (unsigned long long)ids[i]);
			}
			if (rc)
				break;
			added += n;
			n = bytes = 0;
			fflush(stdout);
		}
	} while (got == 1);
	int ret = 0;
	if (rc)
		ret = add_failed(cli, task, rc);
	else if (got == -2)
		ret = add_failed(cli, task, TH_ETOOBIG);
	else if (got == -1) {
		th_cli_error("add: cannot read stdin: %s", strerror(err));
		ret = TH_EXIT_FAIL;
	}
	if (ret)
		th_cli_error("add: stopped at line %zu: %zu job%s added from the lines before it, "
			     "none from it on", added + 1, added, added == 1 ? "" : "s");
	if (all)
		print_json(json_pack("{s:o}", "ids", all));
	return ret;
}

int th_cmd_add(th_cli *cli)
{
	const char *task = cli->argv[0];
	if (cli->lines && (cli->argc > 1 || cli->add.unique)) {
		th_cli_error("add: --lines reads every input from stdin%s",
			     cli->argc > 1 ? "; give no INPUT with it"
					   : ": --unique would give all its jobs one key");
		return TH_EXIT_USAGE;
	}
	int rc = th_cli_open(cli, true);
	if (rc)
		return rc;
	if (cli->lines)
		return add_lines(cli, task);
	char *input;
	size_t len;
	if ((rc = read_input(cli, cli->argc > 1 ? cli->argv[1] : NULL, &input, &len)))
		return rc;
	uint64_t id = 0;
	bool existed = false;
	rc = th_service_add_ex(cli->svc, task, input, len, &cli->add, &id, &existed);
	free(input);
	if ((rc = add_failed(cli, task, rc)))
		return rc;
	if (cli->json)
		print_json(json_pack("{s:I, s:b}", "id", (json_int_t)id, "existed", existed));
	else
		printf("%llu\n", (unsigned long long)id);
	return TH_EXIT_OK;
}

/* ---- one job ---- */

int th_cmd_status(th_cli *cli)
{
	th_job job;
	int rc = get_job(cli, cli->argv[0], &job);
	if (rc)
		return rc;
	if (cli->json)
		print_json(th_jobjson_job(&job));
	else
		printf("%s\n", th_job_status_name(job.status));
	return TH_EXIT_OK;
}

int th_cmd_result(th_cli *cli)
{
	th_job job;
	int rc = get_job(cli, cli->argv[0], &job);
	if (rc)
		return rc;
	if (job.status != TH_JOB_COMPLETED &&
	    !(job.status == TH_JOB_CRONJOB && job.result_len)) { /* its latest run's */
		th_cli_error("job %llu has no result: it is %s", (unsigned long long)job.id,
			     th_job_status_name(job.status));
		return TH_EXIT_FAIL;
	}
	void *data;
	size_t len;
	if ((rc = th_service_result(cli->svc, job.id, &data, &len)))
		return th_cli_fail(rc, job.id, "reading the result");
	if (cli->json) {
		json_t *o = json_pack("{s:I}", "id", (json_int_t)job.id);
		th_jobjson_set_bytes(o, "result", data, len);
		print_json(o);
	} else if (th_write_all(STDOUT_FILENO, data, len)) {
		th_cli_error("result: cannot write to stdout: %s", strerror(errno));
		rc = TH_EXIT_FAIL;
	}
	free(data);
	return rc;
}

int th_cmd_error(th_cli *cli)
{
	th_job job;
	int rc = get_job(cli, cli->argv[0], &job);
	if (rc)
		return rc;
	char *msg;
	if (cli->all) { /* the history: every failed attempt, whatever the status now */
		if ((rc = th_service_errors(cli->svc, job.id, &msg)))
			return th_cli_fail(rc, job.id, "reading the errors");
		if (cli->json) {
			print_json(json_pack("{s:I, s:o}", "id", (json_int_t)job.id, "errors",
					     th_jobjson_lines(msg)));
		} else {
			fputs(msg, stdout);
		}
		free(msg);
		return TH_EXIT_OK;
	}
	if ((rc = th_service_error(cli->svc, job.id, &msg)))
		return th_cli_fail(rc, job.id, "reading the error");
	if (!*msg || (job.status != TH_JOB_ERROR && job.status != TH_JOB_CRONJOB &&
		      job.status != TH_JOB_DELAYED)) {
		/* a delayed job may be waiting to run again after an error; a cron job shows
		 * its latest run's */
		th_cli_error("job %llu has no error: it is %s", (unsigned long long)job.id,
			     th_job_status_name(job.status));
		free(msg);
		return TH_EXIT_FAIL;
	}
	if (cli->json) {
		json_t *o = json_pack("{s:I}", "id", (json_int_t)job.id);
		th_jobjson_set_bytes(o, "error", msg, strlen(msg));
		print_json(o);
	} else {
		printf("%s\n", msg);
	}
	free(msg);
	return TH_EXIT_OK;
}

int th_cmd_cancel(th_cli *cli)
{
	th_job job;
	int rc = get_job(cli, cli->argv[0], &job);
	if (rc)
		return rc;
	rc = th_service_cancel(cli->svc, job.id);
	if (rc == TH_ESTATE) {
		th_service_get(cli->svc, job.id, &job);
		th_cli_error("cannot cancel job %llu: it is %s, and a finished job cannot be "
			     "cancelled", (unsigned long long)job.id, th_job_status_name(job.status));
		return TH_EXIT_FAIL;
	}
	if (rc && rc != TH_EBUSY)
		return th_cli_fail(rc, job.id, "cancel");
	if (cli->json)
		print_json(json_pack("{s:I, s:s}", "id", (json_int_t)job.id, "status",
				     rc == TH_EBUSY ? "cancel requested" : "cancelled"));
	else if (rc == TH_EBUSY)
		printf("cancel requested: job %llu ends cancelled when its task returns\n",
		       (unsigned long long)job.id);
	else
		printf("job %llu cancelled\n", (unsigned long long)job.id);
	return TH_EXIT_OK;
}

/* ---- many jobs ---- */

int th_cmd_clean(th_cli *cli)
{
	int rc = th_cli_open(cli, false);
	if (rc)
		return rc;
	uint64_t removed = 0;
	rc = cli->older_than > 0
		     ? th_service_clean_before(cli->svc,
					       th_clock_now_us() - (int64_t)(cli->older_than * 1e6),
					       &removed)
		     : th_service_clean(cli->svc, &removed);
	if (rc)
		return th_cli_fail(rc, 0, "clean");
	if (cli->json)
		print_json(json_pack("{s:I}", "removed", (json_int_t)removed));
	else
		printf("removed %llu finished job%s\n", (unsigned long long)removed,
		       removed == 1 ? "" : "s");
	return TH_EXIT_OK;
}

struct collect {
	th_job *jobs;
	size_t n, cap;
	long limit;
};

static int collect_job(const th_job *job, void *ud)
{
	struct collect *c = ud;
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		th_job *j = realloc(c->jobs, cap * sizeof(*j));
		if (!j)
			return 1;
		c->jobs = j;
		c->cap = cap;
	}
	c->jobs[c->n++] = *job;
	return c->limit && (long)c->n >= c->limit;
}

int th_cmd_list(th_cli *cli)
{
	int rc = th_cli_open(cli, false);
	if (rc)
		return rc;
	struct collect c = {.limit = cli->limit};
	unsigned mask = cli->status_mask ? cli->status_mask : TH_MASK_ALL;
	/* the newest `limit` ones, shown oldest first */
	if ((rc = th_service_list(cli->svc, mask, 0, true, collect_job, &c))) {
		free(c.jobs);
		return th_cli_fail(rc, 0, "list");
	}
	if (cli->json) {
		json_t *arr = json_array();
		for (size_t i = c.n; i-- > 0;)
			json_array_append_new(arr, th_jobjson_job(&c.jobs[i]));
		print_json(arr);
	} else {
		printf("%-8s %-20s %-10s %-12s %-24s %s\n", "ID", "TASK", "STATUS", "QUEUE", "ADDED",
		       "TOOK");
		for (size_t i = c.n; i-- > 0;) {
			const th_job *j = &c.jobs[i];
			char added[32], took[32] = "-";
			th_clock_format(j->added_us, added, sizeof(added));
			if (th_job_took(j) >= 0)
				snprintf(took, sizeof(took), "%.3fs", th_job_took(j));
			printf("%-8llu %-20s %-10s %-12s %-24s %s\n", (unsigned long long)j->id,
			       j->task, th_job_status_name(j->status), *j->queue ? j->queue : "default",
			       added, took);
		}
	}
	free(c.jobs);
	return TH_EXIT_OK;
}

int th_cmd_tasks(th_cli *cli)
{
	int rc = th_cli_open(cli, true);
	if (rc)
		return rc;
	json_t *doc = th_jobjson_tasks(cli->svc);
	if (cli->json) {
		print_json(doc);
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

/* ---- wait ---- */

static void draw_bar(uint64_t id, double done)
{
	char bar[31];
	int full = (int)(done * 30 + 0.5);
	for (int i = 0; i < 30; i++)
		bar[i] = i < full ? '#' : '-';
	bar[30] = 0;
	fprintf(stderr, "\rjob %llu [%s] %3d%%", (unsigned long long)id, bar,
		(int)(done * 100 + 0.5));
	fflush(stderr);
}

int th_cmd_wait(th_cli *cli)
{
	uint64_t *ids = calloc((size_t)cli->argc, sizeof(*ids));
	if (!ids)
		return TH_EXIT_FAIL;
	for (int i = 0; i < cli->argc; i++) {
		if (!th_cli_job_id(cli->argv[i], &ids[i])) {
			free(ids);
			return TH_EXIT_USAGE;
		}
	}
	int rc = th_cli_open(cli, false);
	if (rc) {
		free(ids);
		return rc;
	}
	bool tty = !cli->json && isatty(STDERR_FILENO), bar = false;
	int64_t end = cli->timeout >= 0 ? th_clock_mono_us() + (int64_t)(cli->timeout * 1e6) : -1;
	th_job *jobs = calloc((size_t)cli->argc, sizeof(*jobs));
	if (!jobs) {
		free(ids);
		th_cli_error("wait: out of memory");
		return TH_EXIT_FAIL;
	}
	for (;;) {
		uint32_t seq = th_service_finished_seq(cli->svc);
		int pending = 0;
		uint64_t shown = 0;
		double done = 0;
		for (int i = 0; i < cli->argc && rc == 0; i++) {
			if ((rc = th_service_get(cli->svc, ids[i], &jobs[i]))) {
				if (bar)
					fputc('\n', stderr);
				rc = th_cli_fail(rc, ids[i], "wait");
				break;
			}
			if (!th_job_status_final(jobs[i].status)) {
				pending++;
				if (!shown && th_service_progress(cli->svc, ids[i], &done))
					shown = ids[i];
			}
		}
		if (rc || !pending)
			break;
		if (tty && shown) {
			draw_bar(shown, done);
			bar = true;
		}
		int64_t now = th_clock_mono_us();
		if (end >= 0 && now >= end) {
			if (bar)
				fputc('\n', stderr);
			if (cli->json) {
				json_t *arr = json_array();
				for (int i = 0; i < cli->argc; i++)
					json_array_append_new(arr, th_jobjson_job(&jobs[i]));
				print_json(arr);
			}
			for (int i = 0; i < cli->argc; i++)
				if (!th_job_status_final(jobs[i].status)) {
					th_cli_error("wait: timed out after %g s: job %llu is %s",
						     cli->timeout, (unsigned long long)ids[i],
						     th_job_status_name(jobs[i].status));
					break;
				}
			rc = TH_EXIT_FAIL;
			goto out;
		}
		/* a bar needs redrawing now and then; otherwise sleep until a job finishes */
		int64_t nap = tty ? 100000 : 5000000;
		if (end >= 0 && end - now < nap)
			nap = end - now;
		th_service_wait_finished(cli->svc, seq, nap);
	}
	if (rc)
		goto out;
	if (bar) {
		bool all_done = true;
		for (int i = 0; i < cli->argc; i++)
			all_done &= jobs[i].status == TH_JOB_COMPLETED;
		if (all_done)
			draw_bar(ids[0], 1.0);
		fputc('\n', stderr);
	}
	json_t *arr = cli->json ? json_array() : NULL;
	char line[2048] = "";
	size_t bad = 0;
	for (int i = 0; i < cli->argc; i++) {
		const th_job *j = &jobs[i];
		if (arr)
			json_array_append_new(arr, th_jobjson_job(j));
		if (j->status == TH_JOB_COMPLETED)
			continue;
		rc = TH_EXIT_FAIL;
		char *msg = NULL;
		if (j->status == TH_JOB_ERROR)
			th_service_error(cli->svc, j->id, &msg);
		size_t used = strlen(line);
		if (used < sizeof(line))
			snprintf(line + used, sizeof(line) - used, "%sjob %llu %s%s%.200s",
				 bad++ ? "; " : "", (unsigned long long)j->id,
				 j->status == TH_JOB_ERROR ? "failed" : "was cancelled",
				 msg ? ": " : "", msg ? msg : "");
		free(msg);
	}
	if (arr)
		print_json(arr);
	else if (bad) /* one line, however many failed */
		th_cli_error("%s", line);
out:
	free(jobs);
	free(ids);
	return rc;
}

/* ---- stats ---- */

static void print_problem(void *ud, const char *line)
{
	(void)ud;
	printf("%s\n", line);
}

int th_cmd_check(th_cli *cli)
{
	int rc = th_cli_open(cli, false);
	if (rc)
		return TH_EXIT_USAGE; /* said why */
	uint64_t jobs, problems;
	if ((rc = th_service_check(cli->svc, print_problem, NULL, &jobs, &problems))) {
		th_cli_fail(rc, 0, "check");
		return TH_EXIT_USAGE;
	}
	if (problems)
		printf("%s: %llu job%s, %llu problem%s found\n", cli->cfg.data_dir,
		       (unsigned long long)jobs, jobs == 1 ? "" : "s",
		       (unsigned long long)problems, problems == 1 ? "" : "s");
	else
		printf("%s: %llu job%s, every index consistent: clean\n", cli->cfg.data_dir,
		       (unsigned long long)jobs, jobs == 1 ? "" : "s");
	return problems ? TH_EXIT_FAIL : TH_EXIT_OK;
}

int th_cmd_stats(th_cli *cli)
{
	int rc = th_cli_open(cli, false);
	if (rc)
		return rc;
	json_t *doc = th_jobjson_stats(cli->svc, &rc);
	if (!doc)
		return th_cli_fail(rc, 0, "stats");
	if (cli->json) {
		print_json(doc);
		return TH_EXIT_OK;
	}
	json_t *counts = json_object_get(doc, "counts"), *old = json_object_get(doc, "oldest_queued");
	for (int st = 1; st <= TH_JOB_STATUS_MAX; st++) {
		const char *name = th_job_status_name((th_job_status)st);
		printf("%-12s %llu\n", name,
		       (unsigned long long)json_integer_value(json_object_get(counts, name)));
	}
	printf("%-12s %.2f jobs/s over the last minute\n", "rate",
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

/* ---- start, retry, pause, resume ---- */

/* Runs op on the job of argv[0], reporting as "job N <done>"; what_not names the
 * statuses the op is for, for the message when the job is in another. */
static int job_op(th_cli *cli, int (*op)(th_service *, uint64_t), const char *done,
		  const char *what_not)
{
	th_job job;
	int rc = get_job(cli, cli->argv[0], &job);
	if (rc)
		return rc;
	rc = op(cli->svc, job.id);
	if (rc == TH_ESTATE) {
		th_cli_error("job %llu is %s: %s", (unsigned long long)job.id,
			     th_job_status_name(job.status), what_not);
		return TH_EXIT_FAIL;
	}
	if (rc)
		return th_cli_fail(rc, job.id, done);
	th_service_get(cli->svc, job.id, &job);
	if (cli->json)
		print_json(th_jobjson_job(&job));
	else
		printf("job %llu %s\n", (unsigned long long)job.id, done);
	return TH_EXIT_OK;
}

int th_cmd_start(th_cli *cli)
{
	return job_op(cli, th_service_start, "queued", "only a held or delayed job can be started");
}

int th_cmd_retry(th_cli *cli)
{
	return job_op(cli, th_service_retry, "queued again",
		      "only a job that ended in error or was cancelled can be retried");
}

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
	if ((rc = th_service_pause_queue(cli->svc, q, paused)))
		return th_cli_fail(rc, 0, paused ? "pause" : "resume");
	if (cli->json)
		print_json(json_pack("{s:s, s:b}", "queue", q, "paused", paused));
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

/* ---- cron ---- */

static int cron_job(th_cli *cli, th_job *job)
{
	if (cli->argc < 2) {
		th_cli_error("cron %s: expected a cron job's ID", cli->argv[0]);
		return TH_EXIT_USAGE;
	}
	int rc = get_job(cli, cli->argv[1], job);
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
	th_service_cron_spec(cli->svc, job->id, &spec);
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
		print_json(arr);
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
		if ((rc = read_input(cli, cli->argc > 2 ? cli->argv[2] : NULL, &input, &len)))
			return rc;
		cli->add.cron = cli->schedule;
		cli->add.catchup = cli->catchup == 1;
		uint64_t id = 0;
		bool existed = false;
		rc = th_service_add_ex(cli->svc, cli->argv[1], input, len, &cli->add, &id, &existed);
		free(input);
		if ((rc = add_failed(cli, cli->argv[1], rc)))
			return rc;
		if (cli->json)
			print_json(json_pack("{s:I, s:b}", "id", (json_int_t)id, "existed", existed));
		else
			printf("%llu\n", (unsigned long long)id);
		return TH_EXIT_OK;
	}
	if (strcmp(sub, "list") == 0) {
		if ((rc = th_cli_open(cli, false)))
			return rc;
		json_t *arr = cli->json ? json_array() : NULL;
		if (!arr)
			printf("%-8s %-20s %-24s %-8s %-8s %s\n", "ID", "TASK", "NEXT", "MISSED",
			       "FIRES", "SCHEDULE");
		void *a[2] = {cli, arr};
		if ((rc = th_service_list(cli->svc, TH_MASK(TH_JOB_CRONJOB), 0, false,
					  cron_list_one, a)))
			return th_cli_fail(rc, 0, "cron list");
		if (arr)
			print_json(arr);
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
		rc = th_service_cron_update(cli->svc, job.id, cli->schedule, cli->catchup);
	else if (remove)
		rc = th_service_cancel(cli->svc, job.id);
	else
		rc = th_service_cron_pause(cli->svc, job.id, pause);
	if (rc)
		return th_cli_fail(rc, job.id, sub);
	th_service_get(cli->svc, job.id, &job);
	if (cli->json) {
		json_t *arr = json_array();
		print_cron(cli, &job, arr);
		print_json(json_incref(json_array_get(arr, 0)));
		json_decref(arr);
	} else if (remove) {
		printf("cron job %llu removed\n", (unsigned long long)job.id);
	} else {
		print_cron(cli, &job, NULL);
	}
	return TH_EXIT_OK;
}
