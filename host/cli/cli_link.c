/* How a subcommand reaches the jobs: through --url or the socket of a host running on
 * the data dir (the client), else by opening the data dir itself; one call each way. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "jobjson.h"
#include "server/server.h"

#define TOKEN_FILE_MAX 4096 /* bytes read of a token file: one token a line */

static th_cli *active; /* the command's, for th_cli_fail's messages */

const char *th_cli_remote_why(void)
{
	return active && active->client ? th_client_error(active->client) : NULL;
}

const char *th_cli_remote_where(void)
{
	return active && active->client ? active->where : NULL;
}

long th_cli_remote_status(void)
{
	return active && active->client ? th_client_status(active->client) : 0;
}

/* Whether a host accepts connections on the unix socket at path: one that is not
 * there, or whose host is gone (ECONNREFUSED), is no host. */
static bool host_listens(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return false;
	bool up = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(s);
	return up;
}

/* The token: the first line of the token file (which only its owner may read), else
 * $TASKHOST_TOKEN; NULL and 0 when none is given, TH_EXIT_USAGE after saying why. */
static int read_token(const char *path, char **token)
{
	*token = NULL;
	if (!path) {
		const char *env = getenv("TASKHOST_TOKEN");
		if (env && *env && !(*token = strdup(env)))
			return TH_EXIT_FAIL;
		return 0;
	}
	int fd = open(path, O_RDONLY | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb)) {
		th_cli_error("token file %s: cannot open: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return TH_EXIT_USAGE;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_mode & 077) {
		th_cli_error("token file %s: %s (mode %04o): it must be a file only its owner can "
			     "read (chmod 600)", path, S_ISREG(sb.st_mode)
			     ? "group or others can read or write it" : "not a regular file",
			     (unsigned)(sb.st_mode & 07777));
		close(fd);
		return TH_EXIT_USAGE;
	}
	char buf[TOKEN_FILE_MAX + 1];
	ssize_t n = read(fd, buf, TOKEN_FILE_MAX);
	int e = errno;
	close(fd);
	if (n < 0) {
		th_cli_error("token file %s: cannot read: %s", path, strerror(e));
		return TH_EXIT_USAGE;
	}
	buf[n] = 0;
	char *t = buf + strspn(buf, " \t\r\n");
	t[strcspn(t, " \t\r\n")] = 0;
	if (!*t) {
		th_cli_error("token file %s: no token in it (the token on its first line)", path);
		return TH_EXIT_USAGE;
	}
	return (*token = strdup(t)) ? 0 : TH_EXIT_FAIL;
}

static int connect_host(th_cli *cli, const char *target, const char *token)
{
	bool url = strstr(target, "://") != NULL;
	if (url && strncmp(target, "http://", 7) && strncmp(target, "https://", 8)) {
		th_cli_error("--url '%s': expected http://HOST:PORT, https://HOST:PORT or the path "
			     "of a host's unix socket", target);
		return TH_EXIT_USAGE;
	}
	struct stat sb;
	if (!url && stat(target, &sb)) {
		th_cli_error("--url '%s': %s (a URL starts with http:// or https://; a path names "
			     "a host's unix socket, %s in its data dir)", target, strerror(errno),
			     TH_SERVER_SOCKET);
		return TH_EXIT_USAGE;
	}
	if (!url && !S_ISSOCK(sb.st_mode)) {
		th_cli_error("--url '%s': not a socket (a URL starts with http:// or https://; a "
			     "path names a host's unix socket, %s in its data dir)", target,
			     TH_SERVER_SOCKET);
		return TH_EXIT_USAGE;
	}
	if (url && cli->ca_file && access(cli->ca_file, R_OK)) {
		th_cli_error("--ca-file %s: cannot read: %s", cli->ca_file, strerror(errno));
		return TH_EXIT_USAGE;
	}
	int rc = th_client_open(&cli->client, target, token);
	if (rc == 0 && url && cli->ca_file)
		rc = th_client_set_ca_file(cli->client, cli->ca_file);
	if (rc == TH_EINVAL) {
		th_cli_error("--url: %s", th_client_error(cli->client));
		th_client_close(cli->client);
		cli->client = NULL;
		return TH_EXIT_USAGE;
	}
	if (rc) {
		th_cli_error("out of memory");
		return TH_EXIT_FAIL;
	}
	size_t n = strlen(target);
	if (url)
		cli->where = strndup(target, n && target[n - 1] == '/' ? n - 1 : n);
	else if (asprintf(&cli->where, "unix socket %s", target) < 0)
		cli->where = NULL;
	active = cli;
	return cli->where ? 0 : TH_EXIT_FAIL;
}

int th_cli_open(th_cli *cli, bool with_plugins)
{
	if (cli->svc || cli->client)
		return 0;
	if (cli->url) {
		/* the config only for its limits and names in messages, when one is given */
		int rc = cli->config_given ? th_cli_load_config(cli) : 0;
		if (rc)
			return rc;
		char *token = NULL;
		if (!(rc = read_token(cli->token_file, &token)))
			rc = connect_host(cli, cli->url, token);
		free(token);
		return rc;
	}
	int rc = th_cli_load_config(cli);
	if (rc)
		return rc;
	char sock[4200];
	snprintf(sock, sizeof(sock), "%s/%s", cli->cfg.data_dir, TH_SERVER_SOCKET);
	if (!cli->local && host_listens(sock))
		return connect_host(cli, sock, NULL);
	return th_cli_open_local(cli, with_plugins);
}

/* ---- the calls ---- */

int th_cli_get(th_cli *cli, uint64_t id, th_job *job)
{
	return cli->client ? th_client_get(cli->client, id, job)
			   : th_service_get(cli->svc, id, job);
}

int th_cli_add(th_cli *cli, const char *task, const void *input, size_t len,
	       const th_add_opts *opts, uint64_t *id, bool *existed)
{
	return cli->client ? th_client_add(cli->client, task, input, len, opts, id, existed)
			   : th_service_add_ex(cli->svc, task, input, len, opts, id, existed);
}

int th_cli_add_many(th_cli *cli, const th_new_job *jobs, size_t n, uint64_t *ids)
{
	return cli->client ? th_client_add_many(cli->client, jobs, n, ids)
			   : th_service_add_many(cli->svc, jobs, n, ids);
}

bool th_cli_task_provided(th_cli *cli, const char *task)
{
	int rc;
	json_t *doc = th_cli_tasks(cli, &rc), *t;
	size_t i;
	bool found = false;
	json_array_foreach(json_object_get(doc, "tasks"), i, t)
		found |= strcmp(json_string_value(json_object_get(t, "name")), task) == 0;
	json_decref(doc);
	return found;
}

int th_cli_result(th_cli *cli, uint64_t id, void **data, size_t *len)
{
	return cli->client ? th_client_result(cli->client, id, data, len)
			   : th_service_result(cli->svc, id, data, len);
}

int th_cli_job_error(th_cli *cli, uint64_t id, char **msg)
{
	if (!cli->client)
		return th_service_error(cli->svc, id, msg);
	int rc = th_client_job_error(cli->client, id, msg);
	if (rc == TH_ESTATE) /* the host says the job has none */
		return (*msg = strdup("")) ? 0 : TH_ENOMEM;
	return rc;
}

int th_cli_errors(th_cli *cli, uint64_t id, char **text)
{
	return cli->client ? th_client_errors(cli->client, id, text)
			   : th_service_errors(cli->svc, id, text);
}

int th_cli_cancel(th_cli *cli, uint64_t id)
{
	return cli->client ? th_client_cancel(cli->client, id) : th_service_cancel(cli->svc, id);
}

int th_cli_start(th_cli *cli, uint64_t id)
{
	return cli->client ? th_client_start(cli->client, id) : th_service_start(cli->svc, id);
}

int th_cli_retry(th_cli *cli, uint64_t id)
{
	return cli->client ? th_client_retry(cli->client, id) : th_service_retry(cli->svc, id);
}

int th_cli_list(th_cli *cli, unsigned mask, bool reverse, th_job_fn fn, void *ud)
{
	th_client_filter f = {.mask = mask, .newest_first = reverse};
	return cli->client ? th_client_list_ex(cli->client, &f, 0, fn, ud)
			   : th_service_list(cli->svc, mask, 0, reverse, fn, ud);
}

int th_cli_cron_spec(th_cli *cli, uint64_t id, char **spec)
{
	return cli->client ? th_client_cron_spec(cli->client, id, spec)
			   : th_service_cron_spec(cli->svc, id, spec);
}

int th_cli_cron_update(th_cli *cli, uint64_t id, const char *spec, int catchup)
{
	return cli->client ? th_client_cron_update(cli->client, id, spec, catchup)
			   : th_service_cron_update(cli->svc, id, spec, catchup);
}

int th_cli_cron_pause(th_cli *cli, uint64_t id, bool paused)
{
	return cli->client ? th_client_cron_pause(cli->client, id, paused)
			   : th_service_cron_pause(cli->svc, id, paused);
}

int th_cli_cron_remove(th_cli *cli, uint64_t id)
{
	return cli->client ? th_client_cron_remove(cli->client, id)
			   : th_service_cancel(cli->svc, id);
}

int th_cli_pause_queue(th_cli *cli, const char *queue, bool paused)
{
	return cli->client ? th_client_pause_queue(cli->client, queue, paused)
			   : th_service_pause_queue(cli->svc, queue, paused);
}

int th_cli_clean(th_cli *cli, double older_than, uint64_t *removed)
{
	return cli->client ? th_client_clean(cli->client, older_than, removed)
			   : th_service_clean_older(cli->svc, older_than, removed);
}

/* A document a client call gave as text. */
static json_t *doc_of(int rc, char *text, int *out)
{
	json_t *doc = rc ? NULL : json_loads(text, 0, NULL);
	free(text);
	if (!rc && !doc)
		rc = TH_ENOMEM;
	*out = rc;
	return doc;
}

json_t *th_cli_stats(th_cli *cli, int *rc)
{
	char *text = NULL;
	if (!cli->client)
		return th_jobjson_stats(cli->svc, rc);
	int got = th_client_stats(cli->client, &text);
	return doc_of(got, text, rc);
}

json_t *th_cli_stats_history(th_cli *cli, long n, int *rc)
{
	char *text = NULL;
	if (!cli->client)
		return th_jobjson_history(cli->svc, NULL, (size_t)n, rc);
	int got = th_client_stats_history(cli->client, NULL, (int)n, &text);
	return doc_of(got, text, rc);
}

json_t *th_cli_tasks(th_cli *cli, int *rc)
{
	char *text = NULL;
	if (!cli->client) {
		json_t *doc = th_jobjson_tasks(cli->svc);
		*rc = doc ? 0 : TH_ENOMEM;
		return doc;
	}
	int got = th_client_tasks(cli->client, &text);
	return doc_of(got, text, rc);
}

bool th_cli_progress(th_cli *cli, uint64_t id, double *done)
{
	bool known = false;
	if (!cli->client)
		return th_service_progress(cli->svc, id, done);
	return th_client_progress(cli->client, id, &known, done) == 0 && known;
}

uint32_t th_cli_finished_mark(th_cli *cli)
{
	return cli->client ? 0 : th_service_finished_seq(cli->svc);
}

int th_cli_wait_some(th_cli *cli, uint32_t mark, const uint64_t *ids, size_t n,
		     int64_t timeout_us)
{
	if (!cli->client) {
		th_service_wait_finished(cli->svc, mark, timeout_us);
		return 0;
	}
	/* the host answers once all of them finished: the caller looks at them all anyway */
	int rc = th_client_wait(cli->client, ids, n, timeout_us / 1e6);
	return rc == TH_ETIMEDOUT ? 0 : rc;
}
