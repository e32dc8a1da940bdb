/* The taskhost command line: what main.c parses and hands to each subcommand, and the
 * helpers the subcommands share (reaching the jobs through a host or the data dir, errors). */
#ifndef TH_CLI_H
#define TH_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "config.h"
#include "service.h"

enum { TH_EXIT_OK = 0, TH_EXIT_FAIL = 1, TH_EXIT_USAGE = 2 };

typedef struct th_cli {
	const char *config_path;
	th_config cfg;
	bool cfg_loaded;
	th_service *svc;      /* the data dir opened here, or */
	th_client *client;    /* a host's socket or URL */
	char *where;          /* "unix socket PATH" or the URL, for messages */
	/* global options */
	bool config_given;    /* -c or TASKHOST_CONFIG */
	const char *url;      /* --url, TASKHOST_URL: always through this host */
	const char *token_file; /* --token-file, TASKHOST_TOKEN_FILE */
	const char *ca_file;  /* --ca-file, TASKHOST_CA_FILE: the certificates an https
				 host's must be among */
	bool local;           /* --local: the data dir itself even when a host runs */
	/* options */
	bool json;
	unsigned status_mask; /* list --status; 0: all */
	long limit;           /* list --limit; 0: all */
	double timeout;       /* wait --timeout; < 0: none */
	th_add_opts add;      /* add, cron add: the job's options */
	double older_than;    /* clean --older-than; 0: all */
	bool all;             /* error --all */
	bool lines;           /* add --lines */
	bool stdin_closed;    /* the process started without fd 0 (now /dev/null) */
	const char *schedule; /* cron --schedule */
	int catchup;          /* cron --catch-up (1) / --skip-missed (0); -1: not given */
	long count;           /* cron next --count */
	long minutes;         /* stats --history, --minutes; 0: no history */
	int64_t from_us;      /* cron next --from; INT64_MIN: now */
	/* positional arguments after the command name */
	int argc;
	char **argv;
} th_cli;

/* Prints "taskhost: <message>" on stderr. */
void th_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Loads the config; returns an exit code (0 or TH_EXIT_USAGE after printing why). */
int th_cli_load_config(th_cli *cli);
/* Reaches the jobs: through --url, else through the socket of a host running on the
 * config's data dir, else by opening the data dir (th_cli_open_local). Returns an exit
 * code (0 or why not, printed). */
int th_cli_open(th_cli *cli, bool with_plugins);
/* Loads the config and opens the service on its data dir; with_plugins reads the
 * plugin descriptors (without running any plugin code but their constructors). For the
 * commands that work on the data dir itself: refused with --url. */
int th_cli_open_local(th_cli *cli, bool with_plugins);
void th_cli_close(th_cli *cli);
/* Prints why the service did not open (rc), naming the file of the data dir at fault
 * when one is, and returns the exit code. */
int th_cli_open_failed(th_cli *cli, int rc);
/* Prints a service error about job `id` (0: none) and returns the exit code for it. */
int th_cli_fail(int rc, uint64_t id, const char *doing);
/* What th_cli_fail says of a failed call through a host: NULL when the jobs are reached
 * by opening the data dir. */
const char *th_cli_remote_why(void);
/* The same about the host: its socket or URL, and the HTTP status it answered. */
const char *th_cli_remote_where(void);
long th_cli_remote_status(void);
/* Parses a job id argument; prints the problem and returns false when it is not one. */
bool th_cli_job_id(const char *s, uint64_t *id);
/* Prints doc, indented, on stdout and frees it (the output of --json). */
void th_cli_print_json(json_t *doc);
/* Opens the service and reads the job of id argument arg; returns an exit code (0 or
 * why not, printed). */
int th_cli_get_job(th_cli *cli, const char *arg, th_job *job);
/* Prints why an add failed and returns the exit code; 0 when it did not. */
int th_cli_add_failed(th_cli *cli, const char *task, int rc);
/* max_input_size of the config, or its default without one (--url). */
size_t th_cli_max_input(const th_cli *cli);
/* Prints the id of an added job (with --json: and whether it existed); TH_EXIT_OK. */
int th_cli_print_added(th_cli *cli, uint64_t id, bool existed);
/* The input of add and cron add: the argument, stdin with '-', or nothing. */
int th_cli_read_input(th_cli *cli, const char *arg, char **input, size_t *len);
/* The last error the library logged, to add to a one-line message ("" if none). */
const char *th_cli_last_log_error(void);
/* For run: while on, error lines are kept (for th_cli_last_log_error) instead of
 * logged, other lines are logged as usual; turning it off logs what was kept. */
void th_cli_hold_errors(bool on);

/* The service calls the subcommands make, on the data dir or through the host, with
 * the same TH_E* codes for the same refusals either way (cli_link.c). */
int th_cli_get(th_cli *cli, uint64_t id, th_job *job);
int th_cli_add(th_cli *cli, const char *task, const void *input, size_t len,
	       const th_add_opts *opts, uint64_t *id, bool *existed);
int th_cli_add_many(th_cli *cli, const th_new_job *jobs, size_t n, uint64_t *ids);
/* Whether a task is provided (by the plugins of plugin_dir, or of the host). */
bool th_cli_task_provided(th_cli *cli, const char *task);
int th_cli_result(th_cli *cli, uint64_t id, void **data, size_t *len);
/* The job's error, "" when it has none. */
int th_cli_job_error(th_cli *cli, uint64_t id, char **msg);
int th_cli_errors(th_cli *cli, uint64_t id, char **text);
int th_cli_cancel(th_cli *cli, uint64_t id);
int th_cli_start(th_cli *cli, uint64_t id);
int th_cli_retry(th_cli *cli, uint64_t id);
/* Jobs of the mask, by id (newest first if reverse), until fn returns non-zero. */
int th_cli_list(th_cli *cli, unsigned mask, bool reverse, th_job_fn fn, void *ud);
int th_cli_cron_spec(th_cli *cli, uint64_t id, char **spec);
int th_cli_cron_update(th_cli *cli, uint64_t id, const char *spec, int catchup);
int th_cli_cron_pause(th_cli *cli, uint64_t id, bool paused);
int th_cli_cron_remove(th_cli *cli, uint64_t id);
int th_cli_pause_queue(th_cli *cli, const char *queue, bool paused);
int th_cli_clean(th_cli *cli, double older_than, uint64_t *removed);
/* The stats and tasks documents (th_jobjson_stats, th_jobjson_tasks); NULL and *rc. */
json_t *th_cli_stats(th_cli *cli, int *rc);
/* The last n minutes' jobs added, completed and failed (th_jobjson_history's document). */
json_t *th_cli_stats_history(th_cli *cli, long n, int *rc);
json_t *th_cli_tasks(th_cli *cli, int *rc);
/* How far a running job is, when its task reports progress. */
bool th_cli_progress(th_cli *cli, uint64_t id, double *done);
/* To wait until one of ids finishes: read the mark, look at the jobs, then
 * th_cli_wait_some with the mark (returns after timeout_us at the latest). */
uint32_t th_cli_finished_mark(th_cli *cli);
int th_cli_wait_some(th_cli *cli, uint32_t mark, const uint64_t *ids, size_t n,
		     int64_t timeout_us);

int th_cmd_run(th_cli *cli);
int th_cmd_add(th_cli *cli);
int th_cmd_status(th_cli *cli);
int th_cmd_result(th_cli *cli);
int th_cmd_error(th_cli *cli);
int th_cmd_cancel(th_cli *cli);
int th_cmd_clean(th_cli *cli);
int th_cmd_list(th_cli *cli);
int th_cmd_tasks(th_cli *cli);
int th_cmd_wait(th_cli *cli);
int th_cmd_stats(th_cli *cli);
int th_cmd_check(th_cli *cli);
int th_cmd_migrate(th_cli *cli);
int th_cmd_start(th_cli *cli);
int th_cmd_retry(th_cli *cli);
int th_cmd_cron(th_cli *cli);
int th_cmd_pause(th_cli *cli);
int th_cmd_resume(th_cli *cli);

/* "2026-12-01T08:00:00Z" (UTC) or seconds since the epoch -> microseconds; -1 if bad. */
int th_cli_parse_time(const char *s, int64_t *us);

#endif
