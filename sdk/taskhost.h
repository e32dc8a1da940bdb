/* taskhost plugin SDK: the only header a task plugin includes.
 * A plugin is a shared object that exports one entry point, written with TH_PLUGIN().
 *
 * Building a plugin:
 *   cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags taskhost-sdk) t.c -o t.so
 * A plugin never links against host symbols: everything the host offers reaches it
 * through the function table `th_host` (set before init) and the helpers below.
 *
 * A minimal plugin:
 *
 *   #include <taskhost.h>
 *
 *   static th_ret hello(th_ctx *ctx)
 *   {
 *       size_t len;
 *       const void *in = th_input(ctx, &len);
 *       th_log(ctx, TH_LOG_INFO, "got %zu bytes", len);
 *       return th_set_result(ctx, in, len) == 0 ? TH_OK : TH_FAIL;
 *   }
 *
 *   static const th_task tasks[] = {
 *       { .name = "hello", .description = "returns its input", .run = hello },
 *   };
 *   TH_PLUGIN(.name = "hello", .version = "1.0", TH_TASKS(tasks));
 *
 * Thread-safety contract
 *   - init runs once per process, before any job of the plugin; fini once, at shutdown,
 *     when no job runs any more. A plugin loaded while the host runs (SIGHUP) is
 *     initialised while other plugins' jobs run. With the process strategy, every
 *     worker process loads the plugins and runs init itself.
 *   - thread_init runs on every worker thread before its first job there, thread_fini
 *     when that thread ends. Both are optional.
 *   - run may be called for many jobs at the same time from different threads (the
 *     `multi` strategy), also for the same task: a task must not keep per-job state in
 *     globals without its own locking.
 *   - A th_ctx belongs to one run: use it only on the thread that got it, and only until
 *     run returns; after that every host function refuses it (logged once). The input
 *     bytes stay valid until run returns. The host copies what is passed to set_result
 *     and set_error; the host owns all memory it hands out.
 *   - A task runs in the host's process unless the host uses the process strategy: a
 *     task that calls exit() ends the host; a child it forks must exit, not return from
 *     run (one that returns is made to exit at once).
 *   - Every host function may be called from any thread that is running a job with the
 *     ctx of that job. log accepts a NULL ctx during init, fini, thread_init and
 *     thread_fini.
 *   - th_cancelled turns true when the job's time is up or the host is stopping; a task
 *     that looks at it now and then can stop cleanly instead of being killed.
 *
 * ABI history (the major changes only when an old plugin could not work any more; a
 * minor only appends members at the end of a struct, and the host reads them only when
 * the plugin's abi_minor says they exist):
 *   1.0  th_plugin (magic, size, abi_major, abi_minor, task_size, name, version,
 *        description, tasks, ntasks, host, init, fini, thread_init, thread_fini);
 *        th_task (name, description, run); th_host_api (size, abi_minor, log, input,
 *        set_result, set_error, cancelled, progress, heartbeat, job_id, attempt).
 *   1.1  th_task: queue, max_attempts, backoff_ms, timeout_ms (a task's defaults for
 *        its jobs).
 */
#ifndef TASKHOST_H
#define TASKHOST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TH_PLUGIN_MAGIC 0x4c504854u /* "THPL" read as little-endian bytes */
#define TH_ABI_MAJOR 1
#define TH_ABI_MINOR 1
#define TH_PLUGIN_ENTRY "taskhost_plugin" /* the symbol the host looks up */

#if defined(__GNUC__) || defined(__clang__)
#define TH_EXPORT __attribute__((visibility("default")))
#define TH_HIDDEN __attribute__((visibility("hidden")))
#define TH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TH_EXPORT
#define TH_HIDDEN
#define TH_PRINTF(f, a)
#endif

/* What a task's run returns. */
typedef enum th_ret {
	TH_OK = 0,    /* done; the job is completed with the result set (or none) */
	TH_FAIL = 1,  /* failed; run again later (with backoff) while the job has attempts
			 left, else the job ends in error with the message set */
	TH_RETRY = 2  /* failed for now: the same as TH_FAIL, said for readers */
} th_ret;

/* Log levels for th_log. */
enum th_log_level {
	TH_LOG_ERROR = 0,
	TH_LOG_WARN = 1,
	TH_LOG_INFO = 2,
	TH_LOG_DEBUG = 3
};

/* One run of one job. Opaque; the host owns it. */
typedef struct th_ctx th_ctx;

/* The functions the host offers. Append-only: members are only ever added at the end;
 * `size` is the size of the table the running host passes, so a plugin built against a
 * newer header can check that a member exists before calling it (TH_HOST_HAS). */
typedef struct th_host_api {
	uint32_t size;
	uint32_t abi_minor;
	/* 1.0 */
	void (*log)(th_ctx *ctx, int level, const char *fmt, ...) TH_PRINTF(3, 4);
	const void *(*input)(th_ctx *ctx, size_t *len);
	int (*set_result)(th_ctx *ctx, const void *data, size_t len); /* 0 or -1: too big */
	void (*set_error)(th_ctx *ctx, const char *fmt, ...) TH_PRINTF(2, 3);
	int (*cancelled)(th_ctx *ctx);            /* non-zero: stop as soon as you can */
	void (*progress)(th_ctx *ctx, double done); /* 0.0 .. 1.0 */
	void (*heartbeat)(th_ctx *ctx);           /* "still alive" for long runs */
	uint64_t (*job_id)(th_ctx *ctx);
	unsigned (*attempt)(th_ctx *ctx);         /* 1 for the first run */
} th_host_api;

#define TH_HOST_HAS(api, member) \
	((api)->size >= offsetof(th_host_api, member) + sizeof((api)->member))

/* One task a plugin provides. Arrays of it are read with the stride `task_size` of the
 * plugin descriptor, so members appended by later minors do not break old plugins. */
typedef struct th_task {
	const char *name;        /* unique over all loaded plugins; 1..255 printable ASCII
				    characters, no spaces */
	const char *description; /* one line, shown by `taskhost tasks` */
	th_ret (*run)(th_ctx *ctx);
	/* 1.1: defaults for this task's jobs; a job added with its own values keeps them */
	const char *queue;     /* the queue its jobs go to; NULL: the default queue */
	unsigned max_attempts; /* runs a job gets (TH_FAIL and TH_RETRY run it again while
				  attempts are left); 0: the host's max_attempts */
	unsigned backoff_ms;   /* delay before the first retry, doubled for each further one
				  (with jitter); 0: 1000 */
	unsigned timeout_ms;   /* a run is asked to stop (th_cancelled) after this; 0: none */
} th_task;

/* The plugin descriptor. Written only through TH_PLUGIN(); the guard fields come first
 * and are checked by the host before it reads anything else. */
typedef struct th_plugin {
	uint32_t magic;     /* TH_PLUGIN_MAGIC */
	uint32_t size;      /* sizeof(th_plugin) as the plugin was built */
	uint16_t abi_major; /* TH_ABI_MAJOR as the plugin was built */
	uint16_t abi_minor; /* TH_ABI_MINOR as the plugin was built */
	uint32_t task_size; /* sizeof(th_task) as the plugin was built */
	const char *name;
	const char *version;
	const char *description;
	const th_task *tasks;
	size_t ntasks;
	const th_host_api **host;            /* the host stores its table here before init */
	int (*init)(const th_host_api *host); /* optional; non-zero refuses the plugin */
	void (*fini)(void);                   /* optional */
	int (*thread_init)(void);             /* optional; non-zero: the thread runs no jobs */
	void (*thread_fini)(void);            /* optional */
} th_plugin;

typedef const th_plugin *(*th_plugin_entry_fn)(void);

/* The host's function table, private to each plugin. */
extern TH_HIDDEN const th_host_api *th_host;

#define TH_TASKS(arr) .tasks = (arr), .ntasks = sizeof(arr) / sizeof((arr)[0])

/* TH_PLUGIN(designated initializers of th_plugin): defines the descriptor and the
 * exported entry point. Use it exactly once per plugin. */
#define TH_PLUGIN(...)                                                      \
	TH_HIDDEN const th_host_api *th_host;                               \
	static const th_plugin th_plugin_descriptor_ = {                    \
		.magic = TH_PLUGIN_MAGIC,                                   \
		.size = sizeof(th_plugin),                                  \
		.abi_major = TH_ABI_MAJOR,                                  \
		.abi_minor = TH_ABI_MINOR,                                  \
		.task_size = sizeof(th_task),                               \
		.host = &th_host,                                           \
		__VA_ARGS__};                                               \
	TH_EXPORT const th_plugin *taskhost_plugin(void);                   \
	TH_EXPORT const th_plugin *taskhost_plugin(void)                    \
	{                                                                   \
		return &th_plugin_descriptor_;                              \
	}

/* Helpers: the host functions, called through the table. */
#define th_log(ctx, level, ...) th_host->log((ctx), (level), __VA_ARGS__)
#define th_set_error(ctx, ...) th_host->set_error((ctx), __VA_ARGS__)

static inline const void *th_input(th_ctx *ctx, size_t *len)
{
	return th_host->input(ctx, len);
}

static inline int th_set_result(th_ctx *ctx, const void *data, size_t len)
{
	return th_host->set_result(ctx, data, len);
}

static inline int th_cancelled(th_ctx *ctx)
{
	return th_host->cancelled(ctx);
}

static inline void th_progress(th_ctx *ctx, double done)
{
	th_host->progress(ctx, done);
}

static inline void th_heartbeat(th_ctx *ctx)
{
	th_host->heartbeat(ctx);
}

static inline uint64_t th_job_id(th_ctx *ctx)
{
	return th_host->job_id(ctx);
}

static inline unsigned th_attempt(th_ctx *ctx)
{
	return th_host->attempt(ctx);
}

#ifdef __cplusplus
}
#endif

#endif /* TASKHOST_H */
