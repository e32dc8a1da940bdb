/* Helpers shared by the Check suites: temp dirs, plugin dirs built from fixtures, log
 * capture with waiting on a condition, and waiting for a job's status. */
#ifndef TH_TESTUTIL_H
#define TH_TESTUTIL_H

#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "owner.h"
#include "service.h"

/* A fresh directory under $TMPDIR, removed with everything in it by tu_rmtree. */
char *tu_tmpdir(void);
void tu_rmtree(const char *path);
/* How many entries of dir have names starting with prefix. */
size_t tu_count_files(const char *dir, const char *prefix);

/* Makes dir/plugins and links the named .so files into it: "fx_good" links
 * FIXTURE_DIR/fx_good.so as fx_good.so, "b_dup=fx_dup" links it as b_dup.so, and
 * "sleep" (no fx_ prefix) links a shipped plugin. NULL-terminated. Returns the dir. */
char *tu_plugin_dir(const char *dir, ...);

/* Opens a service on dir/data with plugin dir plugins (may be NULL); jobs get one
 * attempt unless they say otherwise. */
th_service *tu_service(const char *dir, const char *plugins);

/* Log capture: every event from now on is kept (source and message). */
void tu_capture_start(void);
void tu_capture_stop(void);
void tu_capture_clear(void);
/* Messages of the given source (NULL: all), in order; the array is NULL-terminated
 * and must be freed with tu_strv_free. */
char **tu_captured(const char *source);
void tu_strv_free(char **v);
size_t tu_strv_len(char **v);
/* true when some captured message of the source contains both substrings (b may be NULL). */
bool tu_captured_has(const char *source, const char *a, const char *b);
/* Waits until n messages of the source were captured; false on timeout. */
bool tu_capture_wait(const char *source, size_t n, double timeout_s);

/* Waits until the job reaches status; false on timeout. */
bool tu_wait_status(th_service *svc, uint64_t id, th_job_status status, double timeout_s);
/* Waits until no job is queued or processing. */
bool tu_wait_idle(th_service *svc, double timeout_s);

double tu_now(void);

/* The job clock in the test's hand: th_clock_now_us() gives t from now on, until
 * tu_clock_real() gives the clock back. */
void tu_clock_at(int64_t t);
void tu_clock_real(void);

/* th_store_recover's alive callback as the local coordination answers it (pid
 * liveness on this machine), without a coordination. */
enum th_liveness tu_owner_alive(void *ud, const th_owner *o);
/* An error history without its attempts' times (" at TIME for S s"), in place. */
char *tu_history_untimed(char *h);

#endif
