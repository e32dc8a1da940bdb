/* The subcommands about jobs: add, status, result, error, cancel, list, wait, start and
 * retry. Each prints text for people or, with --json, one document. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "clock.h"
#include "fds.h"
#include "jobjson.h"
#include "server/server.h"

/* ---- add ---- */

#define LINES_PER_COMMIT 1000
#define LINE_BYTES_PER_COMMIT (1 << 20) /* or fewer lines, when they are long */
/* The most a line of len bytes takes in a request: each byte escaped as \u00XX, and
 * the job's other fields. */
#define REQUEST_BYTES(len) ((len) * 6 + 512)

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
	/* a request to a host must stay within the body it takes */
	size_t max_bytes = LINE_BYTES_PER_COMMIT;
	if (cli->client && TH_SERVER_MAX_BODY(th_cli_max_input(cli)) < max_bytes)
		max_bytes = TH_SERVER_MAX_BODY(th_cli_max_input(cli));
	if (!th_cli_task_provided(cli, task)) /* said even when stdin has no line */
		return th_cli_add_failed(cli, task, th_task_name_valid(task) ? TH_EUNKNOWNTASK : TH_EINVAL);
	if (cli->stdin_closed) {
		th_cli_error("add: --lines reads stdin, and stdin is closed: no job added");
		return TH_EXIT_FAIL;
	}
	do {
		char *line = NULL;
		size_t len = 0;
		got = read_line(stdin, th_cli_max_input(cli), &line, &len);
		err = errno;
		if (got == 1) {
			jobs[n++] = (th_new_job){task, line, len, &cli->add};
			bytes += cli->client ? REQUEST_BYTES(len) : len;
		}
		if (n && (n == LINES_PER_COMMIT || bytes >= max_bytes || got != 1)) {
			rc = th_cli_add_many(cli, jobs, n, ids);
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
		ret = th_cli_add_failed(cli, task, rc);
	else if (got == -2)
		ret = th_cli_add_failed(cli, task, TH_ETOOBIG);
	else if (got == -1) {
		th_cli_error("add: cannot read stdin: %s", strerror(err));
		ret = TH_EXIT_FAIL;
	}
	if (ret)
		th_cli_error("add: stopped at line %zu: %zu job%s added from the lines before it, "
			     "none from it on", added + 1, added, added == 1 ? "" : "s");
	if (all)
		th_cli_print_json(json_pack("{s:o}", "ids", all));
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
	if ((rc = th_cli_read_input(cli, cli->argc > 1 ? cli->argv[1] : NULL, &input, &len)))
		return rc;
	uint64_t id = 0;
	bool existed = false;
	rc = th_cli_add(cli, task, input, len, &cli->add, &id, &existed);
	free(input);
	if ((rc = th_cli_add_failed(cli, task, rc)))
		return rc;
	return th_cli_print_added(cli, id, existed);
}

/* ---- one job ---- */

int th_cmd_status(th_cli *cli)
{
	th_job job;
	int rc = th_cli_get_job(cli, cli->argv[0], &job);
	if (rc)
		return rc;
	if (cli->json)
		th_cli_print_json(th_jobjson_job(&job));
	else
		printf("%s\n", th_job_status_name(job.status));
	return TH_EXIT_OK;
}

int th_cmd_result(th_cli *cli)
{
	th_job job;
	int rc = th_cli_get_job(cli, cli->argv[0], &job);
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
	if ((rc = th_cli_result(cli, job.id, &data, &len)))
		return th_cli_fail(rc, job.id, "reading the result");
	if (cli->json) {
		json_t *o = json_pack("{s:I}", "id", (json_int_t)job.id);
		th_jobjson_set_bytes(o, "result", data, len);
		th_cli_print_json(o);
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
	int rc = th_cli_get_job(cli, cli->argv[0], &job);
	if (rc)
		return rc;
	char *msg;
	if (cli->all) { /* the history: every failed attempt, whatever the status now */
		if ((rc = th_cli_errors(cli, job.id, &msg)))
			return th_cli_fail(rc, job.id, "reading the errors");
		if (cli->json) {
			th_cli_print_json(json_pack("{s:I, s:o}", "id", (json_int_t)job.id, "errors",
					     th_jobjson_lines(msg)));
		} else {
			fputs(msg, stdout);
		}
		free(msg);
		return TH_EXIT_OK;
	}
	if ((rc = th_cli_job_error(cli, job.id, &msg)))
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
		th_cli_print_json(o);
	} else {
		printf("%s\n", msg);
	}
	free(msg);
	return TH_EXIT_OK;
}

int th_cmd_cancel(th_cli *cli)
{
	th_job job;
	int rc = th_cli_get_job(cli, cli->argv[0], &job);
	if (rc)
		return rc;
	rc = th_cli_cancel(cli, job.id);
	if (rc == TH_ESTATE) {
		th_cli_get(cli, job.id, &job);
		th_cli_error("cannot cancel job %llu: it is %s, and a finished job cannot be "
			     "cancelled", (unsigned long long)job.id, th_job_status_name(job.status));
		return TH_EXIT_FAIL;
	}
	if (rc && rc != TH_EBUSY)
		return th_cli_fail(rc, job.id, "cancel");
	if (cli->json)
		th_cli_print_json(json_pack("{s:I, s:s}", "id", (json_int_t)job.id, "status",
				     rc == TH_EBUSY ? "cancel requested" : "cancelled"));
	else if (rc == TH_EBUSY)
		printf("cancel requested: job %llu ends cancelled when its task returns\n",
		       (unsigned long long)job.id);
	else
		printf("job %llu cancelled\n", (unsigned long long)job.id);
	return TH_EXIT_OK;
}

/* ---- many jobs ---- */

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
	if ((rc = th_cli_list(cli, mask, true, collect_job, &c))) {
		free(c.jobs);
		return th_cli_fail(rc, 0, "list");
	}
	if (cli->json) {
		json_t *arr = json_array();
		for (size_t i = c.n; i-- > 0;)
			json_array_append_new(arr, th_jobjson_job(&c.jobs[i]));
		th_cli_print_json(arr);
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
		uint32_t seq = th_cli_finished_mark(cli);
		int pending = 0;
		uint64_t shown = 0;
		double done = 0;
		for (int i = 0; i < cli->argc && rc == 0; i++) {
			if ((rc = th_cli_get(cli, ids[i], &jobs[i]))) {
				if (bar)
					fputc('\n', stderr);
				rc = th_cli_fail(rc, ids[i], "wait");
				break;
			}
			if (!th_job_status_final(jobs[i].status)) {
				pending++;
				if (!shown && th_cli_progress(cli, ids[i], &done))
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
				th_cli_print_json(arr);
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
		if ((rc = th_cli_wait_some(cli, seq, ids, (size_t)cli->argc, nap))) {
			if (bar)
				fputc('\n', stderr);
			rc = th_cli_fail(rc, 0, "wait");
			goto out;
		}
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
			th_cli_job_error(cli, j->id, &msg);
		size_t used = strlen(line);
		if (used < sizeof(line))
			snprintf(line + used, sizeof(line) - used, "%sjob %llu %s%s%.200s",
				 bad++ ? "; " : "", (unsigned long long)j->id,
				 j->status == TH_JOB_ERROR ? "failed" : "was cancelled",
				 msg ? ": " : "", msg ? msg : "");
		free(msg);
	}
	if (arr)
		th_cli_print_json(arr);
	else if (bad) /* one line, however many failed */
		th_cli_error("%s", line);
out:
	free(jobs);
	free(ids);
	return rc;
}

/* ---- start, retry, pause, resume ---- */

/* Runs op on the job of argv[0], reporting as "job N <done>"; what_not names the
 * statuses the op is for, for the message when the job is in another. */
static int job_op(th_cli *cli, int (*op)(th_cli *, uint64_t), const char *done,
		  const char *what_not)
{
	th_job job;
	int rc = th_cli_get_job(cli, cli->argv[0], &job);
	if (rc)
		return rc;
	rc = op(cli, job.id);
	if (rc == TH_ESTATE) {
		th_cli_error("job %llu is %s: %s", (unsigned long long)job.id,
			     th_job_status_name(job.status), what_not);
		return TH_EXIT_FAIL;
	}
	if (rc)
		return th_cli_fail(rc, job.id, done);
	th_cli_get(cli, job.id, &job);
	if (cli->json)
		th_cli_print_json(th_jobjson_job(&job));
	else
		printf("job %llu %s\n", (unsigned long long)job.id, done);
	return TH_EXIT_OK;
}

int th_cmd_start(th_cli *cli)
{
	return job_op(cli, th_cli_start, "queued", "only a held or delayed job can be started");
}

int th_cmd_retry(th_cli *cli)
{
	return job_op(cli, th_cli_retry, "queued again",
		      "only a job that ended in error or was cancelled can be retried");
}
