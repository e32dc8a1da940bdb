/* The plugin loader and task registry: dlopen every *.so of a directory, check the
 * descriptor's guard fields, run init, and map task names to the plugin that runs them. */
#ifndef TH_PLUGINS_H
#define TH_PLUGINS_H

#include <stdbool.h>
#include <stddef.h>

#include "job.h"
#include "taskhost.h"

typedef struct th_plugins th_plugins;
typedef struct th_task_entry th_task_entry;
typedef struct th_plugin_thread th_plugin_thread;

enum th_plugins_mode {
	TH_PLUGINS_RUN = 0,    /* call init; tasks can run */
	TH_PLUGINS_INSPECT = 1 /* read descriptors only, never call init */
};

/* api: the host function table handed to every plugin (see run.h). */
int th_plugins_new(th_plugins **out, enum th_plugins_mode mode, const th_host_api *api);
/* Calls fini of every initialised plugin, then unloads them. */
void th_plugins_free(th_plugins *reg);

/* Loads every *.so in dir not loaded or refused before (or changed since), in name
 * order. A plugin that
 * is refused is logged with its file and reason and skipped; the others load. Returns
 * TH_ESYS when the directory cannot be read or is refused as insecure. Counts go to
 * loaded/refused (may be NULL). */
int th_plugins_load_dir(th_plugins *reg, const char *dir, unsigned *loaded,
			unsigned *refused);
/* Called by load_dir before each file it tries; a non-zero return skips the file. */
typedef int (*th_plugins_load_hook)(void *ud, const char *path);
void th_plugins_set_load_hook(th_plugins *reg, th_plugins_load_hook fn, void *ud);

/* Refuse (the default) or load plugin files and directories that are world-writable or
 * owned by a user other than this one and root. */
void th_plugins_allow_insecure_plugins(th_plugins *reg, bool allow);
/* The files load_dir refused and why: returns how many there are, and copies file and
 * why of the i-th when i is below that. */
size_t th_plugins_refused(th_plugins *reg, size_t i, char *file, size_t filelen, char *why,
			  size_t whylen);
/* A descriptor compiled into the program; `label` stands where a file name would. */
int th_plugins_add_static(th_plugins *reg, const th_plugin *desc, const char *label);

/* NULL when no loaded plugin provides `name`. Entries live as long as the registry. */
const th_task_entry *th_plugins_find(th_plugins *reg, const char *name);
/* Like find, but when the task is unknown, first loads new plugins from the directory
 * loaded last (RUN mode only). */
const th_task_entry *th_plugins_find_or_rescan(th_plugins *reg, const char *name);
const char *th_task_entry_name(const th_task_entry *e);
const char *th_task_entry_plugin(const th_task_entry *e); /* the plugin's name */

/* The task's defaults for its jobs (ABI 1.1; zeros and NULL for older plugins). */
typedef struct th_task_defaults {
	const char *queue;
	unsigned max_attempts, backoff_ms, timeout_ms;
} th_task_defaults;
void th_task_entry_defaults(const th_task_entry *e, th_task_defaults *out);

size_t th_plugins_task_count(th_plugins *reg);
/* Tasks in the order they were registered; TH_EINVAL past the end. */
int th_plugins_task_info(th_plugins *reg, size_t i, th_task_info *out);

/* Per-thread state: thread_init of a plugin runs on a thread before the first job of
 * that plugin there; freeing the state runs the matching thread_fini. */
int th_plugin_thread_new(th_plugins *reg, th_plugin_thread **out);
void th_plugin_thread_free(th_plugin_thread *t);

/* Runs the task on the calling thread (whose state is t). TH_EPLUGIN when the plugin's
 * thread_init failed on this thread; otherwise 0 and *ret is what run returned. */
int th_plugins_run(th_plugin_thread *t, const th_task_entry *e, th_ctx *ctx, th_ret *ret);

/* The name of the plugin whose init/fini/thread_init/thread_fini runs on this thread,
 * or NULL: lets the log name the source of a line logged with a NULL ctx. */
const char *th_plugins_current(void);

#endif
