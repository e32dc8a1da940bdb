/* Reading taskhost.ini. inih does the parsing; this file knows the sections and keys,
 * validates each value, and reports the first problem with file, line and key. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datadir.h"
#include "error.h"
#include "log.h"
#include "store/store.h"

/* keep_finished past this (10 years) is a typo, and in microseconds would overflow */
#define KEEP_FINISHED_MAX (3650 * 86400.0)
/* map sizes past this (64 TiB) cannot be mapped on any machine the host runs on */
#define MAP_SIZE_MAX (1ull << 46)

struct parse {
	th_config *cfg;
	const char *name; /* the file, for messages */
	char *base;       /* the file's directory, for relative paths */
	int line;         /* counted by the reader: the line inih is on */
	char *err;
	size_t errlen;
	bool failed;
	unsigned seen[2 + TH_QUEUES_MAX]; /* keys given once already, one bit each, per section:
				  [host], [processor], then each [queue NAME] */
	int map_line;     /* where map_size or max_map_size was set last */
	const char *text; /* what is left of the text being parsed */
};

/* The directory of the config file, absolute when it exists, so that paths in the
 * file do not depend on where the host was started from. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = !slash ? strdup(".") : slash == path ? strdup("/")
				       : strndup(path, (size_t)(slash - path));
	char *abs = dir ? realpath(dir, NULL) : NULL;
	if (abs) {
		free(dir);
		return abs;
	}
	return dir;
}

static char *resolve(const char *base, const char *p)
{
	char *out;
	if (p[0] == '/')
		return strdup(p);
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (strcmp(p, ".") == 0)
		p = "";
	if (asprintf(&out, "%s%s%s", base, *p ? "/" : "", p) < 0)
		return NULL;
	return out;
}

int th_config_defaults(th_config *cfg, const char *path)
{
	memset(cfg, 0, sizeof(*cfg));
	char *base = dir_of(path);
	cfg->path = strdup(path);
	cfg->data_dir = base ? resolve(base, "var") : NULL;
	cfg->plugin_dir = base ? resolve(base, "plugins") : NULL;
	free(base);
	if (!cfg->path || !cfg->data_dir || !cfg->plugin_dir) {
		th_config_free(cfg);
		return TH_ENOMEM;
	}
	cfg->log_level = TH_LOG_INFO;
	cfg->log_format = TH_LOG_TEXT;
	cfg->grace_period = 30;
	cfg->map_size = TH_LMDB_MAP_DEFAULT;
	cfg->max_map_size = TH_LMDB_MAX_MAP_DEFAULT;
	cfg->durability = TH_DURABLE;
	cfg->max_input_size = TH_DEFAULT_MAX_INPUT;
	cfg->max_result_size = TH_DEFAULT_MAX_RESULT;
	cfg->lease_time = TH_DEFAULT_LEASE_TIME;
	cfg->max_attempts = TH_DEFAULT_MAX_ATTEMPTS;
	cfg->max_connections = TH_DEFAULT_MAX_CONNECTIONS;
	cfg->connection_timeout = TH_DEFAULT_CONNECTION_TIMEOUT;
	cfg->max_batch = TH_DEFAULT_MAX_BATCH;
	snprintf(cfg->strategy, sizeof(cfg->strategy), "simple");
	cfg->args = (th_processor_args)TH_PROCESSOR_ARGS_DEFAULT;
	return 0;
}

const char *th_config_store(const th_config *cfg)
{
	const char *env = getenv("TASKHOST_STORE");
	return env && *env ? env : cfg->store;
}

void th_config_free(th_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->path);
	free(cfg->data_dir);
	free(cfg->plugin_dir);
	free(cfg->store);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->token_file);
	memset(cfg, 0, sizeof(*cfg));
}

int th_parse_size(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)*s))
		return TH_EINVAL;
	double v = strtod(s, &end);
	if (errno || end == s)
		return TH_EINVAL;
	while (*end == ' ')
		end++;
	static const struct {
		const char *unit;
		int shift;
	} units[] = {{"", 0},     {"B", 0},    {"K", 10},   {"KB", 10}, {"KiB", 10},
		     {"M", 20},   {"MB", 20},  {"MiB", 20}, {"G", 30},  {"GB", 30},
		     {"GiB", 30}, {"T", 40},   {"TB", 40},  {"TiB", 40}};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcasecmp(end, units[i].unit) == 0) {
			double bytes = ldexp(v, units[i].shift);
			if (!isfinite(bytes) || bytes < 0 || bytes >= 18446744073709551615.0)
				return TH_EINVAL;
			*out = (uint64_t)bytes;
			return 0;
		}
	}
	return TH_EINVAL;
}

int th_parse_duration(const char *s, double *out)
{
	char *end;
	errno = 0;
	if (!isdigit((unsigned char)*s) && *s != '.')
		return TH_EINVAL;
	double v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return TH_EINVAL;
	while (*end == ' ')
		end++;
	static const struct {
		const char *unit;
		double scale;
	} units[] = {{"", 1},     {"s", 1},      {"ms", 1e-3}, {"us", 1e-6},
		     {"m", 60},   {"min", 60},   {"h", 3600},  {"d", 86400}};
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].unit) == 0) {
			*out = v * units[i].scale;
			return 0;
		}
	}
	return TH_EINVAL;
}

static int fail(struct parse *p, const char *fmt, ...) TH_PRINTF(2, 3);

static int fail(struct parse *p, const char *fmt, ...)
{
	if (p->failed)
		return 0;
	p->failed = true;
	int n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, p->line);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < p->errlen)
		vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

/* The keys, with the bit that marks them seen. */
enum {
	K_DATA_DIR, K_PLUGIN_DIR, K_LOG_LEVEL, K_LOG_FORMAT, K_GRACE, K_MAP_SIZE,
	K_MAX_MAP_SIZE, K_DURABILITY, K_MAX_INPUT, K_MAX_RESULT, K_LEASE, K_MAX_ATTEMPTS,
	K_INSECURE, K_KEEP, K_DATA_DIR_GROUP, K_STORE, K_MIGRATE, K_LISTEN, K_TLS_CERT, K_TLS_KEY, K_TOKEN_FILE,
	K_MAX_CONNECTIONS, K_CONNECTION_TIMEOUT, K_MAX_BATCH,
	K_STRATEGY = 0, K_MAX_THREADS, K_WAIT_TIME, K_MAX_WORKERS, K_WORKER_MEM, K_WORKER_JOBS,
	K_JOB_TIMEOUT, K_KILL_GRACE
};

static const char *const host_keys[] = {
	"data_dir", "plugin_dir", "log_level", "log_format", "grace_period", "map_size",
	"max_map_size", "durability", "max_input_size", "max_result_size", "lease_time",
	"max_attempts", "allow_insecure_plugins", "keep_finished", "data_dir_group", "store",
	"migrate", "listen",
	"tls_cert", "tls_key", "token_file", "max_connections", "connection_timeout", "max_batch",
	NULL};
static const char *const processor_keys[] = {
	"strategy", "max_threads", "wait_time", "max_workers", "worker_memory_limit",
	"worker_max_jobs", "job_timeout", "kill_grace", NULL};

static int key_index(const char *const *keys, const char *name)
{
	for (int i = 0; keys[i]; i++)
		if (strcmp(keys[i], name) == 0)
			return i;
	return -1;
}

int th_config_split_listen(const char *s, char *host, size_t hostlen, unsigned *port)
{
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hl = colon ? (size_t)(colon - s) : 0;
	if (*s == '[') { /* an IPv6 address */
		const char *close = strchr(s, ']');
		if (!close || close + 1 != colon)
			return TH_EINVAL;
		h = s + 1;
		hl = (size_t)(close - h);
	} else if (colon && memchr(s, ':', hl)) {
		return TH_EINVAL; /* IPv6 without brackets */
	}
	char *end;
	errno = 0;
	long v = colon ? strtol(colon + 1, &end, 10) : 0;
	if (!colon || !hl || hl >= hostlen || errno || end == colon + 1 || *end || v < 1 ||
	    v > 65535)
		return TH_EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	*port = (unsigned)v;
	return 0;
}

/* The keys of the HTTP API (host/server). */
static int server_key(struct parse *p, int k, const char *value)
{
	th_config *c = p->cfg;
	char host[TH_LISTEN_LEN];
	unsigned port;
	double d;
	long v;
	switch (k) {
	case K_LISTEN:
		if (c->nlisten == TH_LISTEN_MAX)
			return fail(p, "too many listen lines in [host] (at most %d)", TH_LISTEN_MAX);
		if (strlen(value) >= TH_LISTEN_LEN ||
		    th_config_split_listen(value, host, sizeof(host), &port))
			return fail(p, "bad value '%s' for listen in [host]: expected HOST:PORT "
				    "such as 127.0.0.1:7070 or [::1]:7070", value);
		snprintf(c->listen[c->nlisten++], TH_LISTEN_LEN, "%s", value);
		if (!c->listen_line)
			c->listen_line = p->line;
		return 1;
	case K_TLS_CERT:
	case K_TLS_KEY:
	case K_TOKEN_FILE: {
		char **f = k == K_TLS_CERT ? &c->tls_cert : k == K_TLS_KEY ? &c->tls_key
									 : &c->token_file;
		if (!*value)
			return fail(p, "empty value for %s in [host]", host_keys[k]);
		if (!(*f = resolve(p->base, value)))
			return fail(p, "out of memory");
		return 1;
	}
	case K_CONNECTION_TIMEOUT:
		if (th_parse_duration(value, &d) || d < 1 || d > 3600)
			return fail(p, "bad value '%s' for connection_timeout in [host]: expected a "
				    "duration from 1s to 1h", value);
		c->connection_timeout = d;
		return 1;
	}
	long hi = k == K_MAX_CONNECTIONS ? 10000 : 100000;
	char *end;
	errno = 0;
	v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < 1 || v > hi)
		return fail(p, "bad value '%s' for %s in [host]: expected a whole number from 1 "
			    "to %ld", value, host_keys[k], hi);
	*(k == K_MAX_CONNECTIONS ? &c->max_connections : &c->max_batch) = (unsigned)v;
	return 1;
}

static int host_key(struct parse *p, int k, const char *value)
{
	th_config *c = p->cfg;
	char **dir = NULL;
	uint64_t size;
	if (k >= K_LISTEN)
		return server_key(p, k, value);
	switch (k) {
	case K_DATA_DIR:
	case K_PLUGIN_DIR:
		dir = k == K_DATA_DIR ? &c->data_dir : &c->plugin_dir;
		if (!*value)
			return fail(p, "empty value for %s in [host]", host_keys[k]);
		free(*dir);
		if (!(*dir = resolve(p->base, value)))
			return fail(p, "out of memory");
		*(k == K_DATA_DIR ? &c->data_dir_line : &c->plugin_dir_line) = p->line;
		return 1;
	case K_LOG_LEVEL:
		if (th_log_level_parse(value, &c->log_level))
			return fail(p, "bad value '%s' for log_level in [host]: expected error, "
				    "warn, info or debug", value);
		return 1;
	case K_LOG_FORMAT:
		if (strcmp(value, "text") == 0)
			c->log_format = TH_LOG_TEXT;
		else if (strcmp(value, "json") == 0)
			c->log_format = TH_LOG_JSON;
		else
			return fail(p, "bad value '%s' for log_format in [host]: expected text "
				    "or json", value);
		return 1;
	case K_GRACE:
		if (th_parse_duration(value, &c->grace_period) || c->grace_period > 86400)
			return fail(p, "bad value '%s' for grace_period in [host]: expected a "
				    "duration such as 30s, 500ms or 2m (at most 1d)", value);
		return 1;
	case K_KEEP:
		if (th_parse_duration(value, &c->keep_finished) ||
		    (c->keep_finished > 0 && c->keep_finished < 1) ||
		    c->keep_finished > KEEP_FINISHED_MAX)
			return fail(p, "bad value '%s' for keep_finished in [host]: expected a "
				    "duration such as 7d or 12h (from 1s to 3650d), or 0 to keep "
				    "them", value);
		return 1;
	case K_LEASE:
		if (th_parse_duration(value, &c->lease_time) || c->lease_time < 1 ||
		    c->lease_time > 86400)
			return fail(p, "bad value '%s' for lease_time in [host]: expected a duration "
				    "from 1s to 1d", value);
		return 1;
	case K_MAX_ATTEMPTS: {
		char *end;
		errno = 0;
		long v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < 1 || v > TH_MAX_ATTEMPTS_LIMIT)
			return fail(p, "bad value '%s' for max_attempts in [host]: expected a whole "
				    "number from 1 to %d", value, TH_MAX_ATTEMPTS_LIMIT);
		c->max_attempts = (unsigned)v;
		return 1;
	}
	case K_INSECURE:
	case K_MIGRATE: {
		bool *b = k == K_INSECURE ? &c->allow_insecure_plugins : &c->migrate;
		if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
			*b = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0)
			*b = false;
		else
			return fail(p, "bad value '%s' for %s in [host]: expected true or false",
				    value, host_keys[k]);
		return 1;
	}
	case K_STORE:
		if (!*value)
			return fail(p, "empty value for store in [host]");
		free(c->store);
		/* a URL as it is; a plain directory, like data_dir, from the file's */
		if (!(c->store = strstr(value, ":") ? strdup(value) : resolve(p->base, value)))
			return fail(p, "out of memory");
		return 1;
	case K_DATA_DIR_GROUP: {
		gid_t gid;
		if (strlen(value) >= sizeof(c->data_dir_group) || th_datadir_group(value, &gid))
			return fail(p, "bad value '%s' for data_dir_group in [host]: no such group",
				    value);
		snprintf(c->data_dir_group, sizeof(c->data_dir_group), "%s", value);
		return 1;
	}
	case K_DURABILITY:
		if (strcmp(value, "durable") == 0)
			c->durability = TH_DURABLE;
		else if (strcmp(value, "relaxed") == 0)
			c->durability = TH_RELAXED;
		else
			return fail(p, "bad value '%s' for durability in [host]: expected durable "
				    "or relaxed", value);
		return 1;
	}
	/* the sizes */
	if (th_parse_size(value, &size))
		return fail(p, "bad value '%s' for %s in [host]: expected a size such as "
			    "64MiB, 1GiB or 4096", value, host_keys[k]);
	if (k == K_MAP_SIZE || k == K_MAX_MAP_SIZE) {
		if (size < (1u << 20) || size > MAP_SIZE_MAX)
			return fail(p, "%s in [host] must be from 1MiB to 64TiB", host_keys[k]);
		*(k == K_MAP_SIZE ? &c->map_size : &c->max_map_size) = size;
		p->map_line = p->line;
	} else {
		if (size < 1 || size > (1ull << 30))
			return fail(p, "%s in [host] must be between 1 byte and 1GiB",
				    host_keys[k]);
		*(k == K_MAX_INPUT ? &c->max_input_size : &c->max_result_size) = size;
	}
	return 1;
}

/* A whole number from lo to hi; 0 or fails with the message for key. */
static int whole(struct parse *p, const char *sec, const char *key, const char *value,
		 long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(value, &end, 10);
	if (errno || end == value || *end || v < lo || v > hi) {
		fail(p, "bad value '%s' for %s in [%s]: expected a whole number from %ld to %ld",
		     value, key, sec, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* A key of [processor] or of a [queue NAME] section (sec), into strategy and args. */
static int processor_key(struct parse *p, const char *sec, char *strategy,
			 th_processor_args *a, int k, const char *value)
{
	long v;
	uint64_t size;
	double d;
	switch (k) {
	case K_STRATEGY:
		if (strcmp(value, "simple") != 0 && strcmp(value, "multi") != 0 &&
		    strcmp(value, "process") != 0)
			return fail(p, "bad value '%s' for strategy in [%s]: expected simple, "
				    "multi or process", value, sec);
		snprintf(strategy, 16, "%s", value);
		return 1;
	case K_MAX_THREADS:
	case K_MAX_WORKERS:
		if (whole(p, sec, processor_keys[k], value, 1, 1024, &v))
			return 0;
		*(k == K_MAX_THREADS ? &a->max_threads : &a->max_workers) = (unsigned)v;
		return 1;
	case K_WORKER_JOBS:
		if (whole(p, sec, processor_keys[k], value, 0, 1000000000, &v))
			return 0;
		a->worker_max_jobs = (unsigned)v;
		return 1;
	case K_WORKER_MEM:
		if (th_parse_size(value, &size) || (size && size < (16u << 20)))
			return fail(p, "bad value '%s' for worker_memory_limit in [%s]: expected a "
				    "size of at least 16MiB, or 0 for none", value, sec);
		a->worker_memory_limit = size;
		return 1;
	case K_WAIT_TIME:
	case K_JOB_TIMEOUT:
	case K_KILL_GRACE:
		if (th_parse_duration(value, &d) || d > (k == K_JOB_TIMEOUT ? TH_JOB_TIMEOUT_MAX : 86400))
			return fail(p, "bad value '%s' for %s in [%s]: expected a duration such as "
				    "1.0, 250ms or 30s (at most %s)", value, processor_keys[k], sec,
				    k == K_JOB_TIMEOUT ? "7d" : "1d");
		*(k == K_WAIT_TIME ? &a->wait_time : k == K_JOB_TIMEOUT ? &a->job_timeout
									 : &a->kill_grace) = d;
		return 1;
	}
	return 0;
}

/* "queue NAME" -> the index of NAME's section (added on first sight); -1 when it is
 * not such a section, -2 when there are TH_QUEUES_MAX of them already. */
static int queue_section(struct parse *p, const char *section)
{
	th_config *c = p->cfg;
	const char *name = section + 6;
	if (strncmp(section, "queue ", 6) != 0 || !*name || strcmp(name, "default") == 0 ||
	    !th_queue_name_valid(name))
		return -1;
	for (unsigned i = 0; i < c->nqueues; i++)
		if (strcmp(c->queues[i].name, name) == 0)
			return (int)i;
	if (c->nqueues == TH_QUEUES_MAX)
		return -2;
	struct th_config_queue *q = &c->queues[c->nqueues];
	snprintf(q->name, sizeof(q->name), "%s", name);
	snprintf(q->strategy, sizeof(q->strategy), "simple");
	q->args = (th_processor_args)TH_PROCESSOR_ARGS_DEFAULT;
	return (int)c->nqueues++;
}

/* Fails for a section that is neither [host], [processor] nor a queue that fits. */
static int section_error(struct parse *p, const char *section, int q)
{
	if (q == -2)
		return fail(p, "[%s]: too many [queue NAME] sections (at most %d)", section,
			    TH_QUEUES_MAX);
	if (q < 0)
		return fail(p, "unknown section [%s] (expected [host], [processor] or [queue NAME] "
			    "with NAME of letters, digits, '_', '.', '-')", section);
	return 0;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	if (p->failed)
		return 1;
	if (!*section)
		return fail(p, "key '%s' outside any section (put it under [host] or "
			    "[processor])", name);
	int sec = strcmp(section, "host") == 0 ? 0 : strcmp(section, "processor") == 0 ? 1 : -1;
	int q = sec < 0 ? queue_section(p, section) : -1;
	if (sec < 0 && q < 0)
		return section_error(p, section, q);
	if (q >= 0)
		sec = 2 + q;
	if (value[0] == '"' || value[0] == '\'')
		return fail(p, "value of %s in [%s] starts with a quote: values are taken as "
			    "written, without quotes", name, section);
	int k = key_index(sec == 0 ? host_keys : processor_keys, name);
	if (k < 0)
		return fail(p, "unknown key '%s' in [%s]", name, section);
	if (p->seen[sec] & (1u << k) && !(sec == 0 && k == K_LISTEN))
		return fail(p, "'%s' given twice in [%s]", name, section);
	p->seen[sec] |= 1u << k;
	if (sec == 0)
		return host_key(p, k, value);
	if (sec == 1)
		return processor_key(p, section, p->cfg->strategy, &p->cfg->args, k, value);
	return processor_key(p, section, p->cfg->queues[q].strategy, &p->cfg->queues[q].args, k,
			     value);
}

/* inih asks for one line at a time: counting them gives the handler its line number. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *p = stream;
	if (!*p->text)
		return NULL;
	size_t eol = strcspn(p->text, "\n");
	size_t take = eol + (p->text[eol] == '\n');
	if (take > (size_t)num - 1)
		take = (size_t)num - 1;
	memcpy(str, p->text, take);
	str[take] = 0;
	p->text += take;
	p->line++;
	/* sections are checked here, on their own line: inih reports them only with a key */
	const char *t = str + strspn(str, " \t");
	if (*t == '[') {
		size_t n = strcspn(t + 1, "]");
		char sec[128];
		snprintf(sec, sizeof(sec), "%.*s", (int)(n < 127 ? n : 127), t + 1);
		if (t[1 + n] == ']' && strcmp(sec, "host") != 0 && strcmp(sec, "processor") != 0)
			section_error(p, sec, queue_section(p, sec));
	}
	size_t len = strlen(str);
	if (len == (size_t)num - 1 && str[len - 1] != '\n') {
		fail(p, "line longer than %d characters", num - 2);
		return NULL;
	}
	return str;
}

static int finish(struct parse *p, int rc)
{
	th_config *c = p->cfg;
	if (!p->failed && rc > 0) {
		p->line = rc;
		fail(p, "syntax error: expected [section], key = value, or a comment");
	}
	if (!p->failed && c->max_map_size < c->map_size) {
		p->line = p->map_line;
		fail(p, "max_map_size (%llu bytes) is smaller than map_size (%llu bytes)",
		     (unsigned long long)c->max_map_size, (unsigned long long)c->map_size);
	}
	if (!p->failed && c->nlisten && !c->token_file) {
		p->line = c->listen_line;
		fail(p, "listen in [host] needs token_file: without tokens only the unix socket "
		     "in the data dir is served");
	}
	if (!p->failed && !c->tls_cert != !c->tls_key) {
		snprintf(p->err, p->errlen, "%s: %s in [host] without %s: TLS needs both", p->name,
			 c->tls_cert ? "tls_cert" : "tls_key", c->tls_cert ? "tls_key" : "tls_cert");
		p->failed = true;
	}
	struct stat sb;
	const char *why = NULL;
	if (!p->failed) {
		if (stat(c->plugin_dir, &sb) != 0)
			why = errno == ENOENT ? "no such directory" : strerror(errno);
		else if (!S_ISDIR(sb.st_mode))
			why = "not a directory";
	}
	if (why) {
		if (c->plugin_dir_line) {
			p->line = c->plugin_dir_line;
			fail(p, "plugin_dir '%s': %s", c->plugin_dir, why);
		} else {
			snprintf(p->err, p->errlen, "%s: plugin_dir '%s' (the default, as the file "
				 "sets none): %s", p->name, c->plugin_dir, why);
			p->failed = true;
		}
	}
	free(p->base);
	if (p->failed) {
		th_config_free(c);
		return TH_ECONFIG;
	}
	return 0;
}

/* What kind of file st is, for "not a regular file (a FIFO)". */
static const char *file_kind(const struct stat *st)
{
	return S_ISFIFO(st->st_mode) ? "a FIFO" : S_ISCHR(st->st_mode) ? "a character device"
	       : S_ISBLK(st->st_mode) ? "a block device" : S_ISSOCK(st->st_mode) ? "a socket"
									  : "not a file";
}

/* The whole config file, NUL-terminated. Only a regular file of at most
 * TH_CONFIG_MAX_SIZE bytes is read: a FIFO would block and a device might never end,
 * so the file is opened without blocking and looked at before a byte is read. */
static int read_config(const char *path, char **text, char *err, size_t errlen)
{
	*text = NULL;
	struct stat sb;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	int e = fd < 0 || fstat(fd, &sb) ? errno : S_ISDIR(sb.st_mode) ? EISDIR : 0;
	if (e) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		return TH_ECONFIG;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file (%s): a config is an INI text file",
			 path, file_kind(&sb));
		close(fd);
		return TH_ECONFIG;
	}
	/* one byte more than allowed tells a file that grew past the limit */
	char *buf = sb.st_size <= TH_CONFIG_MAX_SIZE ? malloc(TH_CONFIG_MAX_SIZE + 2) : NULL;
	size_t n = 0;
	ssize_t r = 0;
	while (buf && n <= TH_CONFIG_MAX_SIZE) {
		r = read(fd, buf + n, TH_CONFIG_MAX_SIZE + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	int rc = 0;
	if (sb.st_size > TH_CONFIG_MAX_SIZE || n > TH_CONFIG_MAX_SIZE)
		snprintf(err, errlen, "%s: larger than %d MiB: too large for a config file", path,
			 TH_CONFIG_MAX_SIZE >> 20);
	else if (!buf)
		snprintf(err, errlen, "%s: out of memory", path);
	else if (r < 0)
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
	else if (memchr(buf, 0, n))
		snprintf(err, errlen, "%s: holds a NUL byte: a config is an INI text file", path);
	else
		rc = 1;
	close(fd);
	if (rc != 1) {
		free(buf);
		return TH_ECONFIG;
	}
	buf[n] = 0;
	*text = buf;
	return 0;
}

int th_config_load(th_config *cfg, const char *path, char *err, size_t errlen)
{
	char *text;
	int rc = read_config(path, &text, err, errlen);
	if (rc) {
		memset(cfg, 0, sizeof(*cfg));
		return rc;
	}
	rc = th_config_parse(cfg, path, text, err, errlen);
	free(text);
	return rc;
}

int th_config_parse(th_config *cfg, const char *name, const char *text, char *err,
		    size_t errlen)
{
	if (th_config_defaults(cfg, name))
		return TH_ENOMEM;
	struct parse p = {.cfg = cfg, .name = name, .base = dir_of(name), .err = err,
			  .errlen = errlen, .text = text};
	int rc = p.base ? ini_parse_stream(reader, &p, handler, &p) : -2;
	if (rc == -2 && !p.failed)
		fail(&p, "out of memory");
	return finish(&p, rc);
}

int th_config_make_data_dir(const th_config *cfg, char *err, size_t errlen)
{
	char *path = strdup(cfg->data_dir);
	if (!path)
		return TH_ENOMEM;
	gid_t gid = 0;
	bool shared = cfg->data_dir_group[0] && th_datadir_group(cfg->data_dir_group, &gid) == 0;
	int rc = 0;
	/* mkdir -p: each parent in turn, then the directory itself, which only its user (or
	 * its group) may enter: it holds every job's input and result */
	for (char *s = path + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char was = *s;
		*s = 0;
		mode_t mode = was ? 0755 : shared ? TH_DATADIR_GROUP_MODE : TH_DATADIR_MODE;
		if (mkdir(path, mode) == 0) {
			/* the mode without the umask, the group before anything is in it */
			if (!was && ((shared && chown(path, (uid_t)-1, gid)) || chmod(path, mode))) {
				rc = TH_ECONFIG;
				break;
			}
		} else if (errno != EEXIST) {
			rc = TH_ECONFIG;
			break;
		}
		*s = was;
		if (!was)
			break;
	}
	struct stat sb;
	if (rc == 0 && (stat(cfg->data_dir, &sb) || !S_ISDIR(sb.st_mode))) {
		errno = ENOTDIR;
		rc = TH_ECONFIG;
	}
	if (rc) {
		const char *why = strerror(errno);
		if (cfg->data_dir_line)
			snprintf(err, errlen, "%s:%d: cannot create data_dir '%s': %s", cfg->path,
				 cfg->data_dir_line, cfg->data_dir, why);
		else
			snprintf(err, errlen, "%s: cannot create data_dir '%s' (the default, as "
				 "the file sets none): %s", cfg->path, cfg->data_dir, why);
	}
	free(path);
	return rc;
}
