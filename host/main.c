/* The taskhost binary: global options, the subcommand table, per-command options and
 * help, and the helpers every subcommand uses to reach the config and the service. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"

#define OPT_JSON 0x100
#define OPT_STATUS 0x101
#define OPT_LIMIT 0x102
#define OPT_TIMEOUT 0x103

enum { A_JSON = 1, A_STATUS = 2, A_LIMIT = 4, A_TIMEOUT = 8 };

struct command {
	const char *name;
	int (*fn)(th_cli *cli);
	const char *args;
	const char *summary;
	const char *help;
	int min_args, max_args; /* max -1: any number */
	unsigned allowed;       /* A_* options besides -c and --help */
};

static const struct command commands[] = {
	{"run", th_cmd_run, "", "start the host in the foreground",
	 "Opens the data dir, loads every plugin in plugin_dir and runs jobs with the\n"
	 "configured processor, logging to stderr. SIGINT or SIGTERM stops claiming jobs and\n"
	 "waits up to grace_period for running ones; SIGHUP loads plugins added since start.\n",
	 0, 0, 0},
	{"add", th_cmd_add, "TASK [INPUT | -]", "add a job; prints its id",
	 "INPUT is the job's input bytes; '-' reads them from stdin (binary-safe); without it\n"
	 "the input is empty; put -- before an input that starts with '-'. The task must be\n"
	 "provided by a plugin in plugin_dir. Works whether or not a host is running; a\n"
	 "running host starts the job at once.\n",
	 1, 2, A_JSON},
	{"status", th_cmd_status, "ID", "print a job's status",
	 "Prints queued, processing, completed, error or cancelled; with --json the whole\n"
	 "job record.\n",
	 1, 1, A_JSON},
	{"result", th_cmd_result, "ID", "print a completed job's result bytes",
	 "Writes the result bytes as they are to stdout. A job that is not completed has no\n"
	 "result: that is an error (exit 1).\n",
	 1, 1, A_JSON},
	{"error", th_cmd_error, "ID", "print a failed job's error message", "", 1, 1, A_JSON},
	{"cancel", th_cmd_cancel, "ID", "cancel a queued job",
	 "Only a queued job can be cancelled; a running or finished one is an error.\n", 1, 1,
	 A_JSON},
	{"clean", th_cmd_clean, "", "remove finished jobs",
	 "Removes completed, error and cancelled jobs; queued and running ones stay.\n", 0, 0,
	 A_JSON},
	{"list", th_cmd_list, "[--status S] [--limit N]", "list jobs",
	 "Shows id, task, status, when added, and how long the run took, oldest first.\n"
	 "  --status S   only jobs with status S (queued, processing, completed, error,\n"
	 "               cancelled); several as S1,S2\n"
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
	 1, -1, A_JSON | A_TIMEOUT},
	{"stats", th_cmd_stats, "", "job counts, recent rate, oldest queued job", "", 0, 0,
	 A_JSON},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: taskhost [-c FILE] COMMAND [ARGS]\n\n"
		   "A worker host: tasks come from .so plugins, jobs live in LMDB.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-8s %-26s %s\n", commands[i].name, commands[i].args,
			commands[i].summary);
	fprintf(f, "\nOptions for every command:\n"
		   "  -c, --config FILE  the config (default $TASKHOST_CONFIG, else ./taskhost.ini)\n"
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
	fputs("taskhost: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the log of a command that is not `run`: keep errors for the message ---- */

static char last_error[512];

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
	if (th_config_load(&cli->cfg, cli->config_path, err, sizeof(err))) {
		if (strstr(err, ": cannot open: ") && !strchr(cli->config_path, '/') &&
		    strcmp(cli->config_path, "taskhost.ini") == 0)
			th_cli_error("%s (use -c FILE or set TASKHOST_CONFIG)", err);
		else
			th_cli_error("%s", err);
		return TH_EXIT_USAGE;
	}
	cli->cfg_loaded = true;
	return 0;
}

int th_cli_open(th_cli *cli, bool with_plugins)
{
	int rc = th_cli_load_config(cli);
	if (rc)
		return rc;
	char err[1024];
	if (th_config_make_data_dir(&cli->cfg, err, sizeof(err))) {
		th_cli_error("%s", err);
		return TH_EXIT_USAGE;
	}
	th_service_opts o = {.data_dir = cli->cfg.data_dir,
			     .plugin_dir = with_plugins ? cli->cfg.plugin_dir : NULL,
			     .inspect_only = true,
			     .map_size = cli->cfg.map_size,
			     .max_map_size = cli->cfg.max_map_size,
			     .durability = cli->cfg.durability,
			     .max_input = cli->cfg.max_input_size,
			     .max_result = cli->cfg.max_result_size,
			     .lease_time = cli->cfg.lease_time,
			     .max_attempts = cli->cfg.max_attempts,
			     .allow_insecure_plugins = cli->cfg.allow_insecure_plugins};
	if ((rc = th_service_open(&cli->svc, &o))) {
		const char *why = *last_error ? last_error : th_strerror(rc);
		if (rc == TH_EPLUGIN) {
			th_cli_error("plugin_dir %s: %s", cli->cfg.plugin_dir, why);
			return TH_EXIT_USAGE;
		}
		th_cli_error("cannot open the data dir %s: %s", cli->cfg.data_dir, why);
		return rc == TH_EFORMAT ? TH_EXIT_USAGE : TH_EXIT_FAIL;
	}
	return 0;
}

void th_cli_close(th_cli *cli)
{
	th_service_close(cli->svc);
	cli->svc = NULL;
	if (cli->cfg_loaded)
		th_config_free(&cli->cfg);
	cli->cfg_loaded = false;
}

int th_cli_fail(int rc, uint64_t id, const char *doing)
{
	if (rc == TH_ENOTFOUND && id) {
		th_cli_error("unknown job id %llu", (unsigned long long)id);
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
				     "error or cancelled)", t);
			rc = -1;
			break;
		}
		*mask |= TH_MASK(st);
	}
	free(copy);
	return rc;
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
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	signal(SIGPIPE, SIG_IGN);
	th_cli cli = {.limit = 50, .timeout = -1};
	cli.config_path = getenv("TASKHOST_CONFIG");
	if (!cli.config_path || !*cli.config_path)
		cli.config_path = "taskhost.ini";

	/* options before the command */
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			cli.config_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return TH_EXIT_OK;
		case 'V':
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
		unsigned need = c == OPT_JSON ? A_JSON : c == OPT_STATUS ? A_STATUS
			      : c == OPT_LIMIT ? A_LIMIT : c == OPT_TIMEOUT ? A_TIMEOUT : 0;
		if (need && !(cmd->allowed & need)) {
			const char *oname = "";
			for (const struct option *o = opts; o->name; o++)
				if (o->val == c)
					oname = o->name;
			th_cli_error("%s: option '--%s' does not apply (try 'taskhost %s --help')",
				     cmd->name, oname, cmd->name);
			return TH_EXIT_USAGE;
		}
		char *end;
		switch (c) {
		case 'c':
			cli.config_path = optarg;
			break;
		case 'h':
			command_help(cmd);
			return TH_EXIT_OK;
		case OPT_JSON:
			cli.json = true;
			break;
		case OPT_STATUS:
			if (parse_status_list(optarg, &cli.status_mask))
				return TH_EXIT_USAGE;
			break;
		case OPT_LIMIT:
			errno = 0;
			cli.limit = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || cli.limit < 0) {
				th_cli_error("list: bad --limit '%s' (a whole number, 0 for all)",
					     optarg);
				return TH_EXIT_USAGE;
			}
			break;
		case OPT_TIMEOUT:
			if (th_parse_duration(optarg, &cli.timeout)) {
				th_cli_error("wait: bad --timeout '%s' (seconds, or 30s, 2m, ...)",
					     optarg);
				return TH_EXIT_USAGE;
			}
			break;
		case 'V':
			printf("taskhost %s\n", PACKAGE_VERSION);
			return TH_EXIT_OK;
		case ':':
			th_cli_error("%s: option '%s' needs a value", cmd->name, cargv[optind - 1]);
			return TH_EXIT_USAGE;
		default:
			th_cli_error("%s: unknown option '%s' (try 'taskhost %s --help'%s)",
				     cmd->name, cargv[optind - 1], cmd->name,
				     cmd->fn == th_cmd_add ? "; an input starting with '-' goes after --"
							   : "");
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
