/* The host log: one line per event, to stderr or to a sink (tests capture with it).
 * Levels are the SDK's TH_LOG_ERROR .. TH_LOG_DEBUG. */
#ifndef TH_LOG_H
#define TH_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "taskhost.h"

enum th_log_format { TH_LOG_TEXT = 0, TH_LOG_JSON = 1 };

typedef struct th_log_event {
	int64_t time_us;
	int level;
	const char *source; /* "host", "plugins", "processor", or the task's name */
	uint64_t job_id;    /* 0 when the event is not about one job */
	const char *task;   /* NULL when not about one job */
	const char *msg;
} th_log_event;

typedef void (*th_log_sink)(const th_log_event *ev, void *ud);

void th_log_set_level(int level);
bool th_log_enabled(int level);
void th_log_set_format(enum th_log_format fmt);
enum th_log_format th_log_get_format(void);
/* NULL restores the default sink, which writes lines to stderr. */
void th_log_set_sink(th_log_sink fn, void *ud);

/* "error" | "warn" | "info" | "debug" -> level; 0 or TH_EINVAL. */
int th_log_level_parse(const char *s, int *level);
const char *th_log_level_name(int level);

void th_log_msg(int level, const char *source, uint64_t job_id, const char *task,
		const char *fmt, ...) TH_PRINTF(5, 6);

#define th_log_error(src, ...) th_log_msg(TH_LOG_ERROR, (src), 0, NULL, __VA_ARGS__)
#define th_log_warn(src, ...) th_log_msg(TH_LOG_WARN, (src), 0, NULL, __VA_ARGS__)
#define th_log_info(src, ...) th_log_msg(TH_LOG_INFO, (src), 0, NULL, __VA_ARGS__)
#define th_log_debug(src, ...) th_log_msg(TH_LOG_DEBUG, (src), 0, NULL, __VA_ARGS__)

/* Formats an event as one text or JSON line (with '\n'); returns a malloc'd string. */
char *th_log_format_line(const th_log_event *ev, enum th_log_format fmt);
/* A malloc'd copy of s with what a terminal would act on escaped: control characters
 * (\n, \t, \x1b...) and bytes that are not UTF-8 text, so that whatever a message
 * echoes back (a task's error, a task name, a schedule) stays one line. Past max bytes:
 * "...". NULL when out of memory. */
char *th_log_escape(const char *s, size_t max);

#endif
