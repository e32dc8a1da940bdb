/* The taskhost binary: global options, the subcommand table, per-command options and
 * help, and the helpers every subcommand uses to reach the config and the service. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cli/cli.h"
#include "clock.h"
#include "fds.h"
#include "log.h"
#include "store/store_lmdb.h"

/* long options without a short form */
enum {
	OPT_JSON = 0x100, OPT_STATUS, OPT_LIMIT, OPT_TIMEOUT, OPT_DELAY, OPT_AT, OPT_HOLD,
	OPT_PRIORITY, OPT_QUEUE, OPT_UNIQUE, OPT_ATTEMPTS, OPT_BACKOFF, OPT_OLDER, OPT_ALL,
	OPT_SCHEDULE, OPT_CATCHUP, OPT_SKIP, OPT_COUNT, OPT_FROM, OPT_VERSION, OPT_LINES,
	OPT_URL, OPT_TOKEN_FILE, OPT_LOCAL, OPT_CA_FILE, OPT_HISTORY, OPT_MINUTES
};

/* An error line echoes at most this many characters of what it was given. */
#define CLI_ERROR_MAX 2000
/* The longest duration an option takes (--delay, --older-than, wait --timeout): 100
 * years, far from where a time in microseconds would overflow. */
#define CLI_DURATION_MAX (36500 * 86400.0)
/* --backoff: a retry waits at most this long before its first try. */
#define CLI_BACKOFF_MAX 86400.0

/* which commands take which options */
enum {
	A_JSON = 1 << 0, A_STATUS = 1 << 1, A_LIMIT = 1 << 2, A_WAIT = 1 << 3,
	A_JOB = 1 << 4,  /* --queue --priority --max-attempts --timeout --backoff --unique */
	A_WHEN = 1 << 5, /* --delay --at --hold */
	A_OLDER = 1 << 6, A_ALL = 1 << 7, A_CRON = 1 << 8, /* --schedule --catch-up --skip-missed */
	A_NEXT = 1 << 9,  /* --count --from */
	A_LINES = 1 << 10,
	A_HISTORY = 1 << 11 /* --history --minutes */
};

struct command {
	const char *name;
	int (*fn)(th_cli *cli);
	const char *args;
	const char *summary;
	const char *help;
	int min_args, max_args; /* max -1: any number */
	unsigned allowed;       /* A_* options besides -c and --help */
};

#define JOB_OPTIONS_HELP                                                                 \
	"  --queue Q          the queue (default: the task's, else the default queue)\n"    \
	"  --priority N       higher runs first; FIFO within a priority (default 0)\n"      \
	"  --max-attempts N   runs it gets; failures run again with backoff (default:\n"   \
	"                     the task's, else max_attempts of the config)\n"              \
	"  --timeout D        a run is asked to stop after D (30s, 5m, ...)\n"             \
	"  --backoff D        delay before the first retry, doubled for each further one\n" \
	"  --unique KEY       while a job with KEY is delayed, held, queued or running,\n"  \
	"                     adding another prints that job's id instead\n"

static const struct command commands[] = {
	{"run", th_cmd_run, "", "start the host in the foreground",
	 "Opens the data dir, loads every plugin in plugin_dir and runs jobs with the\n"
	 "configured processors, logging to stderr. SIGINT or SIGTERM stops claiming jobs\n"
	 "and waits up to grace_period for running ones; SIGHUP loads plugins added since\n"
	 "start.\n",
	 0, 0, 0},
	{"add", th_cmd_add, "TASK [INPUT | - | --lines]", "add a job; prints its id",
	 "INPUT is the job's input bytes; '-' reads them from stdin (binary-safe); without it\n"
	 "the input is empty; put -- before an input that starts with '-'. The task must be\n"
	 "provided by a plugin in plugin_dir. Works whether or not a host is running; a\n"
	 "running host starts the job at once.\n"
	 "  --lines            add one job per line of stdin, the line without its newline\n"
	 "                     as its input (an empty line: an empty input), 1000 jobs to a\n"
	 "                     commit; prints one id per line. Stops at the first line it\n"
	 "                     cannot add: the jobs of the lines before it stay added\n"
	 "  --delay D          queue it D from now (10s, 5m, 2h, ...): delayed until then\n"
	 "  --at TIME          queue it at TIME (2026-12-01T08:00:00Z, UTC)\n"
	 "  --hold             hold it until 'taskhost start ID'\n" JOB_OPTIONS_HELP,
	 1, 2, A_JSON | A_JOB | A_WHEN | A_LINES},
	{"status", th_cmd_status, "ID", "print a job's status",
	 "Prints queued, processing, completed, error, cancelled, delayed, held or cronjob;\n"
	 "with --json the whole job record.\n",
	 1, 1, A_JSON},
	{"result", th_cmd_result, "ID", "print a completed job's result bytes",
	 "Writes the result bytes as they are to stdout. A job that is not completed has no\n"
	 "result: that is an error (exit 1). For a cron job: the result of its latest run.\n",
	 1, 1, A_JSON},
	{"error", th_cmd_error, "ID", "print a failed job's error message",
	 "  --all   every attempt's error, one line each\n", 1, 1, A_JSON | A_ALL},
	{"cancel", th_cmd_cancel, "ID", "cancel a job",
	 "A queued, delayed, held or cron job is cancelled at once (a cron job fires no\n"
	 "more). A running job is asked to stop (its task sees th_cancelled) and ends\n"
	 "cancelled when the task returns. A finished job cannot be cancelled.\n",
	 1, 1, A_JSON},
	{"start", th_cmd_start, "ID", "queue a held (or delayed) job now", "", 1, 1, A_JSON},
	{"retry", th_cmd_retry, "ID", "queue a failed or cancelled job again",
	 "The job runs again with its attempts counted from zero; its errors so far are\n"
	 "kept ('taskhost error ID --all').\n",
	 1, 1, A_JSON},
	{"cron", th_cmd_cron, "SUBCOMMAND ...", "cron jobs: add, update, pause, resume, remove, list, next",
	 "  cron add TASK [INPUT | -] --schedule S [--catch-up] [job options]\n"
	 "  cron update ID [--schedule S] [--catch-up | --skip-missed]\n"
	 "  cron pause ID | cron resume ID | cron remove ID\n"
	 "  cron list                     the cron jobs, their schedules and next fire times\n"
	 "  cron next S [--count N] [--from TIME]   when schedule S fires\n"
	 "A schedule S is a standard cron expression (\"*/15 9-17 * * mon-fri\": minute,\n"
	 "hour, day of month, month, day of week; lists, ranges, steps, names),\n"
	 "lovely.remotetask's fields (\"minute=0,10 hour=2 weekday=0,4\", weekday 0 =\n"
	 "Monday), or \"every 90s\". Times are UTC. A cron job runs its task at each fire\n"
	 "time, once, whatever the number of hosts. Fire times missed while no host ran are\n"
	 "skipped, or run once with --catch-up.\n" JOB_OPTIONS_HELP,
	 1, 3, A_JSON | A_JOB | A_CRON | A_NEXT},
	{"pause", th_cmd_pause, "QUEUE", "stop claiming jobs of a queue (all hosts)",
	 "The queue's jobs stay queued until 'taskhost resume QUEUE'. The default queue is\n"
	 "'default'.\n",
	 1, 1, A_JSON},
	{"resume", th_cmd_resume, "QUEUE", "claim jobs of a paused queue again", "", 1, 1, A_JSON},
	{"clean", th_cmd_clean, "[--older-than D]", "remove finished jobs",
	 "Removes completed, error and cancelled jobs; the others stay.\n"
	 "  --older-than D   only those that finished more than D ago (1h, 7d, ...)\n",
	 0, 0, A_JSON | A_OLDER},
	{"list", th_cmd_list, "[--status S] [--limit N]", "list jobs",
	 "Shows id, task, status, queue, when added, and how long the run took, oldest\n"
	 "first.\n"
	 "  --status S   only jobs with status S (queued, processing, completed, error,\n"
	 "               cancelled, delayed, held, cronjob); several as S1,S2\n"
	 "  --limit N    only the N newest matching jobs (default 50; 0: all)\n",
	 0, 0, A_JSON | A_STATUS | A_LIMIT},
	{"tasks", th_cmd_tasks, "", "list the tasks the plugins provide",
	 "Shows each task's name, plugin file, plugin version and description, read from the\n"
	 "plugins in plugin_dir without running their init.\n",
	 0, 0, A_JSON},
	{"wait", th_cmd_wait, "ID... [--timeout S]", "wait until jobs finish",
	 "Exits 0 when every job completed, 1 when one ended in error or was cancelled (or\n"
	 "on timeout). On a terminal, shows a progress bar for tasks that report progress.\n"
	 "  --timeout S  give up after S (seconds, or 30s, 2m, ...)\n",
	 1, -1, A_JSON | A_WAIT},
	{"stats", th_cmd_stats, "[--history [--minutes N]]",
	 "job counts, recent rate, oldest queued job",
	 "The rate is of jobs completed or failed per second over the last whole minute\n"
	 "and the one under way, from the counts every write keeps per minute.\n"
	 "  --history     jobs added, completed and failed in each minute of the last\n"
	 "                hour, oldest first, the current minute last\n"
	 "  --minutes N   only the last N minutes (1 to 60; implies --history)\n",
	 0, 0, A_JSON | A_HISTORY},
	{"check", th_cmd_check, "", "check every job record and index of the data dir",
	 "Walks every job record and every index (ready queue, running claims, schedule,\n"
	 "finished jobs, unique keys, job bytes) and prints one line per problem, then a\n"
	 "summary. Read-only: hosts may run meanwhile. LMDB keeps no checksums: damaged\n"
	 "bytes that still decode are not seen. Exit 0 clean, 1 problems found, 2 the data\n"
	 "dir could not be read.\n",
	 0, 0, 0},
	{"migrate", th_cmd_migrate, "", "create or upgrade the store's schema (PostgreSQL)",
	 "Brings schema taskhost of the store (store in [host], or $TASKHOST_STORE) to this\n"
	 "taskhost's version, in one transaction; hosts may run meanwhile. A schema newer\n"
	 "than this taskhost is refused. An LMDB store has nothing to migrate.\n",
	 0, 0, 0},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: taskhost [-c FILE] COMMAND [ARGS]\n\n"
		   "A worker host: tasks come from .so plugins, jobs live in LMDB.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-7s %-27s %s\n", commands[i].name,
			strlen(commands[i].args) > 27 ? "..." : commands[i].args, commands[i].summary);
	fprintf(f, "\nOptions for every command:\n"
		   "  -c, --config FILE  the config (default $TASKHOST_CONFIG, else ./taskhost.ini)\n"
		   "      --url URL      drive the host at URL (http://HOST:PORT, https://..., or\n"
		   "                     its unix socket's path; default $TASKHOST_URL); without\n"
		   "                     it, through the socket of a host running on the config's\n"
		   "                     data dir, else on the data dir itself\n"
		   "      --token-file F the bearer token for --url, on the first line of F\n"
		   "                     (default $TASKHOST_TOKEN_FILE, else $TASKHOST_TOKEN)\n"
		   "      --ca-file F    the certificates (PEM) an https host's must be among\n"
		   "                     (default $TASKHOST_CA_FILE, else the system's)\n"
		   "      --local        on the data dir itself even when a host runs on it\n"
		   "  -h, --help         help for the command\n"
		   "      --json         machine-readable output (read commands)\n"
		   "      --version      print the version\n\n"
		   "Exit status: 0 ok, 1 the job failed or was not found, 2 usage or config error.\n"
		   "'taskhost help COMMAND' or 'taskhost COMMAND --help' says more.\n");
}

static void command_help(const struct command *c)
{
	printf("usage: taskhost [-c FILE] %s%s%s%s\n\n%c%s.\n\n%s", c->name,
	       *c->args ? " " : "", c->args, c->allowed & A_JSON ? " [--json]" : "",
	       c->summary[0] - 'a' + 'A', c->summary + 1, c->help);
	printf("%s  -c, --config FILE  the config (default $TASKHOST_CONFIG, else "
	       "./taskhost.ini)\n",
	       *c->help ? "\n" : "");
	if (c->allowed & A_JSON)
		printf("      --json         print one JSON document\n");
}

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

void th_cli_error(const char *fmt, ...)
{
	va_list ap;
	char *msg;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	fputs("taskhost: ", stderr);
	if (n >= 0) {
		char *shown = th_log_escape(msg, CLI_ERROR_MAX);
		fputs(shown ? shown : msg, stderr);
		free(shown);
		free(msg);
	}
	fputc('\n', stderr);
}

/* ---- the log of a command that is not `run`: keep errors for the message ---- */

static char last_error[512];
static const char *data_dir; /* of the loaded config, for messages about the store */

static void quiet_sink(const th_log_event *ev, void *ud)
{
	(void)ud;
	if (ev->level == TH_LOG_ERROR)
		snprintf(last_error, sizeof(last_error), "%s", ev->msg);
}

const char *th_cli_last_log_error(void)
{
	return last_error;
}

static void holding_sink(const th_log_event *ev, void *ud)
{
	(void)ud;
	if (ev->level == TH_LOG_ERROR) {
		snprintf(last_error, sizeof(last_error), "%s", ev->msg);
		return;
	}
	char *line = th_log_format_line(ev, th_log_get_format());
	if (line) {
		fputs(line, stderr);
		free(line);
	}
}

void th_cli_hold_errors(bool on)
{
	if (on) {
		last_error[0] = 0;
		th_log_set_sink(holding_sink, NULL);
		return;
	}
	th_log_set_sink(NULL, NULL);
}

int th_cli_load_config(th_cli *cli)
{
	char err[1024];
	if (cli->cfg_loaded)
		return 0;
	if (!*cli->config_path) {
		th_cli_error("-c: the config path is empty");
		return TH_EXIT_USAGE;
	}
	if (th_config_load(&cli->cfg, cli->config_path, err, sizeof(err))) {
		if (strstr(err, ": cannot open: ") && !strchr(cli->config_path, '/') &&
		    strcmp(cli->config_path, "taskhost.ini") == 0)
			th_cli_error("%s (use -c FILE or set TASKHOST_CONFIG)", err);
		else
			th_cli_error("%s", err);
		return TH_EXIT_USAGE;
	}
	cli->cfg_loaded = true;
	data_dir = cli->cfg.data_dir;
	return 0;
}

int th_cli_open_local(th_cli *cli, bool with_plugins)
{
	if (cli->svc)
		return 0;
	if (cli->url) {
		th_cli_error("this command works on the data dir itself, not through a host: run it "
			     "on the host's machine, without --url or TASKHOST_URL (%s)", cli->url);
		return TH_EXIT_USAGE;
	}
	int rc = th_cli_load_config(cli);
	if (rc)
		return rc;
	char err[1024];
	if (th_config_make_data_dir(&cli->cfg, err, sizeof(err))) {
		th_cli_error("%s", err);
		return TH_EXIT_USAGE;
	}
	th_lmdb_opts lmdb = {cli->cfg.map_size, cli->cfg.max_map_size};
	th_service_opts o = {.data_dir = cli->cfg.data_dir,
			     .data_dir_group = cli->cfg.data_dir_group,
			     .plugin_dir = with_plugins ? cli->cfg.plugin_dir : NULL,
			     .inspect_only = true,
			     .store = th_config_store(&cli->cfg),
			     .lmdb = &lmdb,
			     .durability = cli->cfg.durability,
			     .max_input = cli->cfg.max_input_size,
			     .max_result = cli->cfg.max_result_size,
			     .lease_time = cli->cfg.lease_time,
			     .max_attempts = cli->cfg.max_attempts,
			     .allow_insecure_plugins = cli->cfg.allow_insecure_plugins,
			     .keep_finished = cli->cfg.keep_finished};
	if ((rc = th_service_open(&cli->svc, &o)))
		return th_cli_open_failed(cli, rc);
	return 0;
}

/* The file of the data dir the store cannot use as it must (the directory itself to
 * create files in, LMDB's two files to read and write), with errno saying why: LMDB
 * reports only the directory. NULL when all of them are usable. */
static const char *unusable_file(const char *dir, char *path, size_t len)
{
	static const char *const names[] = {"", "/lock.mdb", "/data.mdb"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, len, "%s%s", dir, names[i]);
		if (access(path, i ? R_OK | W_OK : W_OK | X_OK) == 0 || (i && errno == ENOENT))
			continue;
		return path;
	}
	return NULL;
}

/* Whether the file system of dir has no space (or no inode) left for the store. */
static bool no_space(const char *dir)
{
	struct statvfs sv;
	return statvfs(dir, &sv) == 0 && (sv.f_bavail == 0 || (sv.f_files && sv.f_favail == 0));
}

int th_cli_open_failed(th_cli *cli, int rc)
{
	const char *dir = cli->cfg.data_dir, *why = *last_error ? last_error : th_strerror(rc);
	char path[4200];
	const char *url = th_config_store(&cli->cfg), *where;
	if (rc != TH_EPLUGIN && url && th_store_backend(url, &where) != &th_store_lmdb) {
		th_cli_error("cannot open the store: %s", why); /* the message names it */
		return rc == TH_EFORMAT || rc == TH_ECONFIG || rc == TH_EINVAL ? TH_EXIT_USAGE
									  : TH_EXIT_FAIL;
	}
	if (rc == TH_EPLUGIN) {
		th_cli_error("plugin_dir %s: %s", cli->cfg.plugin_dir, why);
		return TH_EXIT_USAGE;
	}
	const char *bad = rc == TH_ESYS || rc == TH_EIO ? unusable_file(dir, path, sizeof(path))
							 : NULL;
	if (bad && strcmp(bad, dir) == 0)
		th_cli_error("cannot open the data dir %s: %s", dir, strerror(errno));
	else if (bad)
		th_cli_error("cannot open the data dir %s: %s: %s", dir, bad, strerror(errno));
	else if (rc == TH_EIO && no_space(dir))
		th_cli_error("cannot open the data dir %s: no space left on its device (%s)", dir,
			     why);
	else
		th_cli_error("cannot open the data dir %s: %s", dir, why);
	return rc == TH_EFORMAT || rc == TH_ESYS ? TH_EXIT_USAGE : TH_EXIT_FAIL;
}

void th_cli_close(th_cli *cli)
{
	th_service_close(cli->svc);
	cli->svc = NULL;
	th_client_close(cli->client);
	cli->client = NULL;
	free(cli->where);
	cli->where = NULL;
	data_dir = NULL;
	if (cli->cfg_loaded)
		th_config_free(&cli->cfg);
	cli->cfg_loaded = false;
}

int th_cli_fail(int rc, uint64_t id, const char *doing)
{
	const char *dir = data_dir, *remote = th_cli_remote_why();
	long st = th_cli_remote_status();
	if (rc == TH_ENOTFOUND && id) {
		th_cli_error("unknown job id %llu", (unsigned long long)id);
	} else if (remote && rc == TH_EINSECURE) {
		th_cli_error("%s: the host at %s refused the request (%ld %s): %s", doing,
			     th_cli_remote_where(), st, st == 401 ? "unauthorized" : "forbidden",
			     remote);
	} else if (remote && rc == TH_EIO && st == 0) {
		th_cli_error("%s: %s", doing, remote); /* it names the host and why */
	} else if (remote) {
		th_cli_error("%s: %s (the host at %s: %s)", doing, th_strerror(rc),
			     th_cli_remote_where(), remote);
	} else if ((rc == TH_EIO || rc == TH_ENOSPC) && dir && no_space(dir)) {
		/* LMDB says EIO for a write the full device cut short */
		th_cli_error("%s: no space left on the device of the data dir %s%s%s%s", doing, dir,
			     *last_error ? " (" : "", last_error, *last_error ? ")" : "");
	} else if ((rc == TH_EIO || rc == TH_ENOSPC) && dir) {
		th_cli_error("%s: %s in the data dir %s%s%s%s", doing, th_strerror(rc), dir,
			     *last_error ? " (" : "", last_error, *last_error ? ")" : "");
	} else if (rc == TH_EDAMAGED && *last_error) {
		th_cli_error("%s: %s", doing, last_error); /* "data dir damaged: PATH: ..." */
	} else if (*last_error) {
		th_cli_error("%s: %s (%s)", doing, th_strerror(rc), last_error);
	} else {
		th_cli_error("%s: %s", doing, th_strerror(rc));
	}
	return TH_EXIT_FAIL;
}

bool th_cli_job_id(const char *s, uint64_t *id)
{
	char *end;
	errno = 0;
	unsigned long long v = s[0] >= '0' && s[0] <= '9' ? strtoull(s, &end, 10) : 0;
	if (errno || v == 0 || *end) {
		th_cli_error("'%s' is not a job id (a whole number from 1)", s);
		return false;
	}
	*id = v;
	return true;
}

/* ---- what the subcommands share: output, a job, the input of add ---- */

void th_cli_print_json(json_t *doc)
{
	char *s = json_dumps(doc, JSON_PRESERVE_ORDER | JSON_INDENT(2) | JSON_REAL_PRECISION(9));
	if (s) {
		puts(s);
		free(s);
	}
	json_decref(doc);
}

int th_cli_get_job(th_cli *cli, const char *arg, th_job *job)
{
	uint64_t id;
	if (!th_cli_job_id(arg, &id))
		return TH_EXIT_USAGE;
	int rc = th_cli_open(cli, false);
	if (rc)
		return rc;
	if ((rc = th_cli_get(cli, id, job)))
		return th_cli_fail(rc, id, "reading the job");
	return 0;
}

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

size_t th_cli_max_input(const th_cli *cli)
{
	return cli->cfg_loaded ? cli->cfg.max_input_size : TH_DEFAULT_MAX_INPUT;
}

int th_cli_print_added(th_cli *cli, uint64_t id, bool existed)
{
	if (cli->json)
		th_cli_print_json(json_pack("{s:I, s:b}", "id", (json_int_t)id, "existed", existed));
	else
		printf("%llu\n", (unsigned long long)id);
	return TH_EXIT_OK;
}

/* Prints why an add failed and returns the exit code; 0 when it did not. */
int th_cli_add_failed(th_cli *cli, const char *task, int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case TH_EUNKNOWNTASK:
		if (cli->cfg_loaded)
			th_cli_error("add: unknown task '%s': no plugin in %s provides it (see "
				     "'taskhost tasks')", task, cli->cfg.plugin_dir);
		else
			th_cli_error("add: unknown task '%s': no plugin of the host at %s provides "
				     "it (see 'taskhost tasks')", task, cli->where);
		return TH_EXIT_FAIL;
	case TH_EINVAL:
		if (!th_task_name_valid(task))
			th_cli_error("add: bad task name '%s': task names are 1 to 255 printable "
				     "ASCII characters, no spaces", task);
		else
			th_cli_error("add: bad options (--hold with a schedule?)");
		return TH_EXIT_USAGE;
	case TH_ETOOBIG:
		if (cli->cfg_loaded)
			th_cli_error("add: input larger than max_input_size (%llu bytes)",
				     (unsigned long long)cli->cfg.max_input_size);
		else
			th_cli_error("add: input larger than max_input_size (of the host at %s)",
				     cli->where);
		return TH_EXIT_FAIL;
	case TH_EFULL:
		th_cli_error("add: database full (%s reached max_map_size); job not added",
			     cli->cfg_loaded ? cli->cfg.data_dir : "the host's data dir");
		return TH_EXIT_FAIL;
	}
	return th_cli_fail(rc, 0, "add");
}

/* The input of add and cron add: the argument, stdin with '-', or nothing. */
int th_cli_read_input(th_cli *cli, const char *arg, char **input, size_t *len)
{
	*input = NULL;
	*len = 0;
	if (arg && strcmp(arg, "-") == 0) {
		if (cli->stdin_closed) {
			th_cli_error("cannot read the input from stdin: stdin is closed");
			return TH_EXIT_FAIL;
		}
		if (read_stdin(th_cli_max_input(cli), input, len)) {
			th_cli_error("cannot read the input from stdin: %s", strerror(errno));
			return TH_EXIT_FAIL;
		}
	} else if (arg) {
		*input = strdup(arg);
		*len = strlen(arg);
	}
	return 0;
}

static int parse_status_list(const char *s, unsigned *mask)
{
	char *copy = strdup(s), *save = NULL;
	int rc = 0;
	*mask = 0;
	size_t len = strlen(s);
	if (len == 0 || s[0] == ',' || s[len - 1] == ',' || strstr(s, ",,")) {
		th_cli_error("bad status list '%s' (statuses separated by commas)", s);
		free(copy);
		return -1;
	}
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		th_job_status st;
		if (th_job_status_parse(t, &st)) {
			th_cli_error("unknown status '%s' (expected queued, processing, completed, "
				     "error, cancelled, delayed, held or cronjob)", t);
			rc = -1;
			break;
		}
		*mask |= TH_MASK(st);
	}
	free(copy);
	return rc;
}

static unsigned option_needs(int c)
{
	switch (c) {
	case OPT_JSON: return A_JSON;
	case OPT_STATUS: return A_STATUS;
	case OPT_LIMIT: return A_LIMIT;
	case OPT_TIMEOUT: return A_WAIT | A_JOB;
	case OPT_DELAY: case OPT_AT: case OPT_HOLD: return A_WHEN;
	case OPT_PRIORITY: case OPT_QUEUE: case OPT_UNIQUE: case OPT_ATTEMPTS:
	case OPT_BACKOFF: return A_JOB;
	case OPT_OLDER: return A_OLDER;
	case OPT_ALL: return A_ALL;
	case OPT_SCHEDULE: case OPT_CATCHUP: case OPT_SKIP: return A_CRON;
	case OPT_COUNT: case OPT_FROM: return A_NEXT;
	case OPT_LINES: return A_LINES;
	case OPT_HISTORY: case OPT_MINUTES: return A_HISTORY;
	}
	return 0;
}

int th_cli_parse_time(const char *s, int64_t *us)
{
	return th_clock_parse(s, us) ? -1 : 0;
}

/* Parses a duration option from lo to hi seconds into *out (lo > 0: 0 is refused, as it
 * would stand for the default); prints the problem and returns -1 when bad. */
static int duration_opt(const struct command *cmd, const char *opt, const char *arg,
			double lo, double hi, double *out)
{
	double v;
	if (th_parse_duration(arg, &v)) {
		th_cli_error("%s: bad %s '%s' (a duration: seconds, or 500ms, 30s, 2m, 1h, 7d)",
			     cmd->name, opt, arg);
		return -1;
	}
	if (v < lo || v > hi) {
		char from[32];
		snprintf(from, sizeof(from), lo > 0 ? "%gms" : "0", lo * 1000);
		th_cli_error("%s: %s '%s' is out of range (from %s to %gd%s)", cmd->name, opt, arg,
			     from, hi / 86400, lo > 0 ? "; leave it out for the default" : "");
		return -1;
	}
	*out = v;
	return 0;
}

static int number_opt(const struct command *cmd, const char *opt, const char *arg, long lo,
		      long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(arg, &end, 10);
	if (errno || end == arg || *end || v < lo || v > hi) {
		th_cli_error("%s: bad %s '%s' (a whole number from %ld to %ld)", cmd->name, opt, arg,
			     lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int set_option(th_cli *cli, const struct command *cmd, int c, const char *arg)
{
	long v;
	switch (c) {
	case OPT_JSON:
		cli->json = true;
		return 0;
	case OPT_STATUS:
		return parse_status_list(arg, &cli->status_mask);
	case OPT_LIMIT: {
		char *end;
		errno = 0;
		cli->limit = strtol(arg, &end, 10);
		if (errno || end == arg || *end || cli->limit < 0) {
			th_cli_error("list: bad --limit '%s' (a whole number, 0 for all)", arg);
			return -1;
		}
		return 0;
	}
	case OPT_TIMEOUT:
		if (cmd->fn == th_cmd_wait)
			return duration_opt(cmd, "--timeout", arg, 0, CLI_DURATION_MAX, &cli->timeout);
		return duration_opt(cmd, "--timeout", arg, 1e-3, TH_JOB_TIMEOUT_MAX, &cli->add.timeout);
	case OPT_DELAY:
		if (cli->add.at_us) {
			th_cli_error("%s: --at and --delay both say when: give one", cmd->name);
			return -1;
		}
		return duration_opt(cmd, "--delay", arg, 0, CLI_DURATION_MAX, &cli->add.delay);
	case OPT_BACKOFF:
		return duration_opt(cmd, "--backoff", arg, 1e-3, CLI_BACKOFF_MAX, &cli->add.backoff);
	case OPT_OLDER:
		return duration_opt(cmd, "--older-than", arg, 0, CLI_DURATION_MAX, &cli->older_than);
	case OPT_AT:
	case OPT_FROM:
		if (c == OPT_AT && cli->add.delay > 0) {
			th_cli_error("%s: --at and --delay both say when: give one", cmd->name);
			return -1;
		}
		if (th_cli_parse_time(arg, c == OPT_AT ? &cli->add.at_us : &cli->from_us)) {
			th_cli_error("%s: bad %s '%s' (a UTC time from 1970 to 9999: "
				     "2026-12-01T08:00:00Z, or seconds since 1970)", cmd->name,
				     c == OPT_AT ? "--at" : "--from", arg);
			return -1;
		}
		return 0;
	case OPT_HOLD:
		cli->add.hold = true;
		return 0;
	case OPT_PRIORITY:
		if (number_opt(cmd, "--priority", arg, -1000000, 1000000, &v))
			return -1;
		cli->add.priority = (int32_t)v;
		return 0;
	case OPT_ATTEMPTS:
		if (number_opt(cmd, "--max-attempts", arg, 1, TH_MAX_ATTEMPTS_LIMIT, &v))
			return -1;
		cli->add.max_attempts = (uint32_t)v;
		return 0;
	case OPT_COUNT:
		return number_opt(cmd, "--count", arg, 1, 1000, &cli->count);
	case OPT_HISTORY:
		cli->minutes = cli->minutes ? cli->minutes : TH_MINUTES_MAX;
		return 0;
	case OPT_MINUTES:
		return number_opt(cmd, "--minutes", arg, 1, TH_MINUTES_MAX, &cli->minutes);
	case OPT_QUEUE:
		if (!th_queue_name_valid(arg) || !*arg) {
			th_cli_error("%s: bad --queue '%s' (1 to 64 letters, digits, '_', '.', '-')",
				     cmd->name, arg);
			return -1;
		}
		cli->add.queue = arg;
		return 0;
	case OPT_UNIQUE:
		if (!*arg || strlen(arg) > 255) {
			th_cli_error("%s: bad --unique: a key of 1 to 255 bytes", cmd->name);
			return -1;
		}
		cli->add.unique = arg;
		return 0;
	case OPT_ALL:
		cli->all = true;
		return 0;
	case OPT_LINES:
		cli->lines = true;
		return 0;
	case OPT_SCHEDULE:
		cli->schedule = arg;
		return 0;
	case OPT_CATCHUP:
	case OPT_SKIP:
		cli->catchup = c == OPT_CATCHUP;
		return 0;
	}
	return 0;
}

/* -c, --url, --token-file, --ca-file and --local, before or after the command: false
 * for the others. */
static bool global_option(th_cli *cli, int c, const char *arg)
{
	switch (c) {
	case 'c':
		cli->config_path = arg;
		cli->config_given = true;
		return true;
	case OPT_URL:
		cli->url = *arg ? arg : NULL;
		return true;
	case OPT_TOKEN_FILE:
		cli->token_file = arg;
		return true;
	case OPT_LOCAL:
		cli->local = true;
		return true;
	case OPT_CA_FILE:
		cli->ca_file = arg;
		return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"json", no_argument, NULL, OPT_JSON},
		{"status", required_argument, NULL, OPT_STATUS},
		{"limit", required_argument, NULL, OPT_LIMIT},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"delay", required_argument, NULL, OPT_DELAY},
		{"at", required_argument, NULL, OPT_AT},
		{"hold", no_argument, NULL, OPT_HOLD},
		{"priority", required_argument, NULL, OPT_PRIORITY},
		{"queue", required_argument, NULL, OPT_QUEUE},
		{"unique", required_argument, NULL, OPT_UNIQUE},
		{"max-attempts", required_argument, NULL, OPT_ATTEMPTS},
		{"backoff", required_argument, NULL, OPT_BACKOFF},
		{"older-than", required_argument, NULL, OPT_OLDER},
		{"all", no_argument, NULL, OPT_ALL},
		{"schedule", required_argument, NULL, OPT_SCHEDULE},
		{"catch-up", no_argument, NULL, OPT_CATCHUP},
		{"skip-missed", no_argument, NULL, OPT_SKIP},
		{"count", required_argument, NULL, OPT_COUNT},
		{"from", required_argument, NULL, OPT_FROM},
		{"version", no_argument, NULL, OPT_VERSION},
		{"lines", no_argument, NULL, OPT_LINES},
		{"history", no_argument, NULL, OPT_HISTORY},
		{"minutes", required_argument, NULL, OPT_MINUTES},
		{"url", required_argument, NULL, OPT_URL},
		{"token-file", required_argument, NULL, OPT_TOKEN_FILE},
		{"local", no_argument, NULL, OPT_LOCAL},
		{"ca-file", required_argument, NULL, OPT_CA_FILE},
		{NULL, 0, NULL, 0},
	};
	/* before anything is opened: a closed stdout would make the data dir's lock file
	 * fd 1, and the output would be written into it */
	unsigned closed = 0;
	if (th_fds_guard(&closed)) {
		th_cli_error("cannot open /dev/null for a closed stdin, stdout or stderr: %s",
			     strerror(errno));
		return TH_EXIT_FAIL;
	}
	signal(SIGPIPE, SIG_IGN);
	th_cli cli = {.stdin_closed = closed & 1, .limit = 50, .timeout = -1, .catchup = -1, .count = 5, .from_us = INT64_MIN};
	cli.config_path = getenv("TASKHOST_CONFIG");
	cli.config_given = cli.config_path && *cli.config_path;
	if (!cli.config_given)
		cli.config_path = "taskhost.ini";
	cli.url = getenv("TASKHOST_URL");
	if (cli.url && !*cli.url)
		cli.url = NULL;
	cli.token_file = getenv("TASKHOST_TOKEN_FILE");
	if (cli.token_file && !*cli.token_file)
		cli.token_file = NULL;
	cli.ca_file = getenv("TASKHOST_CA_FILE");
	if (cli.ca_file && !*cli.ca_file)
		cli.ca_file = NULL;

	/* options before the command */
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:h", opts, NULL)) != -1) {
		if (global_option(&cli, c, optarg))
			continue;
		switch (c) {
		case 'h':
			usage(stdout);
			return TH_EXIT_OK;
		case OPT_VERSION:
			printf("taskhost %s\n", PACKAGE_VERSION);
			return TH_EXIT_OK;
		case ':':
			th_cli_error("option '%s' needs a value", argv[optind - 1]);
			return TH_EXIT_USAGE;
		default:
			th_cli_error("unknown option '%s' before the command (try --help)",
				     argv[optind - 1]);
			return TH_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		th_cli_error("no command given (try --help)");
		return TH_EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (strcmp(name, "help") == 0) {
		const struct command *cmd = optind + 1 < argc ? find_command(argv[optind + 1]) : NULL;
		if (optind + 1 < argc && !cmd) {
			th_cli_error("unknown command '%s' (try --help)", argv[optind + 1]);
			return TH_EXIT_USAGE;
		}
		if (cmd)
			command_help(cmd);
		else
			usage(stdout);
		return TH_EXIT_OK;
	}
	const struct command *cmd = find_command(name);
	if (!cmd) {
		th_cli_error("unknown command '%s' (try --help)", name);
		return TH_EXIT_USAGE;
	}

	/* the command's own options, anywhere after its name */
	int cargc = argc - optind;
	char **cargv = argv + optind;
	optind = 0; /* 0, not 1: makes GNU getopt start over, in its permuting mode */
	while ((c = getopt_long(cargc, cargv, ":c:h", opts, NULL)) != -1) {
		unsigned need = option_needs(c);
		if (need && !(cmd->allowed & need)) {
			const char *oname = "";
			for (const struct option *o = opts; o->name; o++)
				if (o->val == c)
					oname = o->name;
			th_cli_error("%s: option '--%s' does not apply (try 'taskhost %s --help')",
				     cmd->name, oname, cmd->name);
			return TH_EXIT_USAGE;
		}
		if (global_option(&cli, c, optarg))
			continue;
		switch (c) {
		case 'h':
			command_help(cmd);
			return TH_EXIT_OK;
		case OPT_VERSION:
			printf("taskhost %s\n", PACKAGE_VERSION);
			return TH_EXIT_OK;
		case ':':
			th_cli_error("%s: option '%s' needs a value", cmd->name, cargv[optind - 1]);
			return TH_EXIT_USAGE;
		case '?':
			th_cli_error("%s: unknown option '%s' (try 'taskhost %s --help'%s)",
				     cmd->name, cargv[optind - 1], cmd->name,
				     cmd->fn == th_cmd_add ? "; an input starting with '-' goes after --"
							   : "");
			return TH_EXIT_USAGE;
		default:
			if (set_option(&cli, cmd, c, optarg))
				return TH_EXIT_USAGE;
		}
	}
	cli.argc = cargc - optind;
	cli.argv = cargv + optind;
	if (cli.argc < cmd->min_args || (cmd->max_args >= 0 && cli.argc > cmd->max_args)) {
		th_cli_error("%s: expected %s%s (try 'taskhost %s --help')", cmd->name,
			     *cmd->args ? cmd->args : "no arguments",
			     cli.argc < cmd->min_args ? "" : ", got more", cmd->name);
		return TH_EXIT_USAGE;
	}
	bool url_option = cli.url && cli.url != getenv("TASKHOST_URL");
	if (cli.local && url_option) {
		th_cli_error("--local and --url both say where: give one");
		return TH_EXIT_USAGE;
	}
	if (cmd->fn == th_cmd_run && url_option) {
		th_cli_error("run: starts a host here: --url does not apply");
		return TH_EXIT_USAGE;
	}
	if (cli.local || cmd->fn == th_cmd_run)
		cli.url = NULL; /* TASKHOST_URL gives way */
	if (cmd->fn != th_cmd_run) {
		th_log_set_level(TH_LOG_ERROR);
		th_log_set_sink(quiet_sink, NULL);
	}
	int rc = cmd->fn(&cli);
	th_cli_close(&cli);
	/* output that could not be written is a failure, not a success with nothing */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		th_cli_error("%s: cannot write the output: %s", cmd->name, strerror(errno));
		if (rc == TH_EXIT_OK)
			rc = TH_EXIT_FAIL;
	}
	return rc;
}
