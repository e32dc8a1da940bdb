/* Host logging: level filter, text or JSON lines, a replaceable sink.
 * Lines are built whole and written with one write(2) so threads never interleave. */
#include "log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "error.h"
#include "fds.h"

static atomic_int cur_level = TH_LOG_INFO;
static atomic_int cur_format = TH_LOG_TEXT;
static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static th_log_sink sink_fn;
static void *sink_ud;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void th_log_set_level(int level)
{
	atomic_store(&cur_level, level);
}

bool th_log_enabled(int level)
{
	return level <= atomic_load(&cur_level);
}

void th_log_set_format(enum th_log_format fmt)
{
	atomic_store(&cur_format, (int)fmt);
}

enum th_log_format th_log_get_format(void)
{
	return (enum th_log_format)atomic_load(&cur_format);
}

void th_log_set_sink(th_log_sink fn, void *ud)
{
	pthread_mutex_lock(&sink_mu);
	sink_fn = fn;
	sink_ud = ud;
	pthread_mutex_unlock(&sink_mu);
}

int th_log_level_parse(const char *s, int *level)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*level = i;
			return 0;
		}
	}
	return TH_EINVAL;
}

const char *th_log_level_name(int level)
{
	return level >= 0 && level < 4 ? level_names[level] : "?";
}

/* Length of the valid UTF-8 sequence at s (1 for ASCII), 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : s[0] >= 0xe0 && s[0] < 0xf0 ? 3
		   : s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : 0;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 4 && s[0] == 0xf0 && s[1] < 0x90) ||
	    (n == 4 && s[0] == 0xf4 && s[1] >= 0x90) || (n == 2 && s[0] == 0xc2 && s[1] < 0xa0))
		return 0; /* overlong, past U+10FFFF, or a C1 control character */
	return n;
}

char *th_log_escape(const char *s, size_t max)
{
	size_t cap = strlen(s) * 4 + 4, o = 0;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	const unsigned char *p = (const unsigned char *)s;
	for (size_t done = 0; *p; done++) {
		if (done >= max) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		size_t n = *p >= 0x20 && *p != 0x7f ? utf8_len(p) : 0;
		if (n) {
			memcpy(out + o, p, n);
			o += n;
			p += n;
			continue;
		}
		if (*p == '\n' || *p == '\t' || *p == '\r')
			o += (size_t)sprintf(out + o, "\\%c", *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r');
		else
			o += (size_t)sprintf(out + o, "\\x%02x", *p);
		p++;
	}
	out[o] = '\0';
	return out;
}

/* A copy of s in which every byte that is not part of valid UTF-8 is '?', for JSON. */
static char *utf8_clean(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	memcpy(out, s, n + 1);
	unsigned char *p = (unsigned char *)out;
	while (*p) {
		int len = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
			: (*p & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = len > 0 && !(len == 2 && *p < 0xc2);
		for (int i = 1; ok && i < len; i++)
			ok = (p[i] & 0xc0) == 0x80;
		if (ok && len > 1) { /* overlong or surrogate: jansson knows the rules */
			json_t *t = json_stringn((const char *)p, (size_t)len);
			ok = t != NULL;
			json_decref(t);
		}
		if (!ok) {
			*p++ = '?';
			continue;
		}
		p += len;
	}
	return out;
}

char *th_log_format_line(const th_log_event *ev, enum th_log_format fmt)
{
	char when[32];
	th_clock_format(ev->time_us, when, sizeof(when));
	if (fmt == TH_LOG_JSON) {
		char *msg = utf8_clean(ev->msg), *src = utf8_clean(ev->source);
		json_t *o = msg && src ? json_pack("{s:s, s:s, s:s, s:s}", "time", when, "level",
						   th_log_level_name(ev->level), "source", src,
						   "msg", msg)
				       : NULL;
		free(msg);
		free(src);
		if (!o)
			return NULL;
		if (ev->job_id)
			json_object_set_new(o, "job", json_integer((json_int_t)ev->job_id));
		if (ev->task)
			json_object_set_new(o, "task", json_string(ev->task));
		char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (!body)
			return NULL;
		char *line = NULL;
		if (asprintf(&line, "%s\n", body) < 0)
			line = NULL;
		free(body);
		return line;
	}
	/* one event, one line: nothing a task or a client wrote can start another */
	char *msg = th_log_escape(ev->msg, SIZE_MAX), *src = th_log_escape(ev->source, SIZE_MAX),
	     *task = th_log_escape(ev->task ? ev->task : "-", SIZE_MAX);
	char *line = NULL;
	int n = -1;
	if (msg && src && task) {
		if (ev->job_id)
			n = asprintf(&line, "%s %-5s %s job=%llu task=%s: %s\n", when,
				     th_log_level_name(ev->level), src,
				     (unsigned long long)ev->job_id, task, msg);
		else
			n = asprintf(&line, "%s %-5s %s: %s\n", when, th_log_level_name(ev->level),
				     src, msg);
	}
	free(msg);
	free(src);
	free(task);
	return n < 0 ? NULL : line;
}

void th_log_msg(int level, const char *source, uint64_t job_id, const char *task,
		const char *fmt, ...)
{
	if (!th_log_enabled(level))
		return;
	char *msg = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	th_log_event ev = {th_clock_now_us(), level, source ? source : "host", job_id, task,
			   msg};
	pthread_mutex_lock(&sink_mu);
	if (sink_fn) {
		sink_fn(&ev, sink_ud);
	} else {
		char *line = th_log_format_line(&ev, (enum th_log_format)atomic_load(&cur_format));
		if (line) {
			th_write_all(STDERR_FILENO, line, strlen(line));
			free(line);
		}
	}
	pthread_mutex_unlock(&sink_mu);
	free(msg);
}
