/* Test helpers: temp dirs, fixture plugin dirs, log capture.
 * Waiting is always for a condition, with a deadline, never for a fixed time. */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

char *tu_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *path;
	ck_assert(asprintf(&path, "%s/taskhost-test-XXXXXX", base ? base : "/tmp") > 0);
	ck_assert_msg(mkdtemp(path) != NULL, "mkdtemp: %s", strerror(errno));
	return path;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

size_t tu_count_files(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	ck_assert_msg(d != NULL, "cannot open %s", dir);
	size_t n = 0, len = strlen(prefix);
	struct dirent *e;
	while ((e = readdir(d)))
		n += strncmp(e->d_name, prefix, len) == 0;
	closedir(d);
	return n;
}

void tu_rmtree(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

char *tu_plugin_dir(const char *dir, ...)
{
	char *pdir;
	ck_assert(asprintf(&pdir, "%s/plugins", dir) > 0);
	mkdir(pdir, 0755);
	va_list ap;
	va_start(ap, dir);
	for (const char *spec; (spec = va_arg(ap, const char *));) {
		char name[256], src[256];
		const char *eq = strchr(spec, '=');
		if (eq) {
			snprintf(name, sizeof(name), "%.*s", (int)(eq - spec), spec);
			snprintf(src, sizeof(src), "%s", eq + 1);
		} else {
			snprintf(name, sizeof(name), "%s", spec);
			snprintf(src, sizeof(src), "%s", spec);
		}
		char from[4096], to[4096];
		snprintf(from, sizeof(from), "%s/%s.so",
			 strncmp(src, "fx_", 3) == 0 ? FIXTURE_DIR : PLUGIN_BUILD_DIR, src);
		snprintf(to, sizeof(to), "%s/%s.so", pdir, name);
		ck_assert_msg(access(from, R_OK) == 0, "missing %s", from);
		ck_assert_msg(symlink(from, to) == 0, "symlink %s: %s", to, strerror(errno));
	}
	va_end(ap);
	return pdir;
}

th_service *tu_service(const char *dir, const char *plugins)
{
	char data[4096];
	snprintf(data, sizeof(data), "%s/data", dir);
	mkdir(data, 0755);
	/* one attempt unless a test says otherwise: failures end in error at once */
	th_service_opts o = {.data_dir = data, .plugin_dir = plugins, .max_attempts = 1};
	th_service *svc = NULL;
	int rc = th_service_open(&svc, &o);
	ck_assert_msg(rc == 0, "th_service_open: %s", th_strerror(rc));
	return svc;
}

/* ---- capture ---- */

struct line {
	char *source, *msg;
};

static pthread_mutex_t cap_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cap_cv = PTHREAD_COND_INITIALIZER;
static struct line *lines;
static size_t nlines, caplines;

static void sink(const th_log_event *ev, void *ud)
{
	(void)ud;
	pthread_mutex_lock(&cap_mu);
	if (nlines == caplines) {
		caplines = caplines ? caplines * 2 : 64;
		lines = realloc(lines, caplines * sizeof(*lines));
	}
	lines[nlines].source = strdup(ev->source);
	lines[nlines].msg = strdup(ev->msg);
	nlines++;
	pthread_cond_broadcast(&cap_cv);
	pthread_mutex_unlock(&cap_mu);
}

void tu_capture_start(void)
{
	tu_capture_clear();
	th_log_set_level(TH_LOG_DEBUG);
	th_log_set_sink(sink, NULL);
}

void tu_capture_stop(void)
{
	th_log_set_sink(NULL, NULL);
	th_log_set_level(TH_LOG_INFO);
	tu_capture_clear();
}

void tu_capture_clear(void)
{
	pthread_mutex_lock(&cap_mu);
	for (size_t i = 0; i < nlines; i++) {
		free(lines[i].source);
		free(lines[i].msg);
	}
	nlines = 0;
	pthread_mutex_unlock(&cap_mu);
}

static bool match(const struct line *l, const char *source)
{
	return !source || strcmp(l->source, source) == 0;
}

char **tu_captured(const char *source)
{
	pthread_mutex_lock(&cap_mu);
	char **v = calloc(nlines + 1, sizeof(*v));
	size_t n = 0;
	for (size_t i = 0; i < nlines; i++)
		if (match(&lines[i], source))
			v[n++] = strdup(lines[i].msg);
	pthread_mutex_unlock(&cap_mu);
	return v;
}

void tu_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

size_t tu_strv_len(char **v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

bool tu_captured_has(const char *source, const char *a, const char *b)
{
	bool found = false;
	pthread_mutex_lock(&cap_mu);
	for (size_t i = 0; i < nlines && !found; i++)
		found = match(&lines[i], source) && strstr(lines[i].msg, a) &&
			(!b || strstr(lines[i].msg, b));
	pthread_mutex_unlock(&cap_mu);
	return found;
}

static size_t count_locked(const char *source)
{
	size_t n = 0;
	for (size_t i = 0; i < nlines; i++)
		n += match(&lines[i], source);
	return n;
}

bool tu_capture_wait(const char *source, size_t n, double timeout_s)
{
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += (time_t)timeout_s;
	deadline.tv_nsec += (long)((timeout_s - (double)(time_t)timeout_s) * 1e9);
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&cap_mu);
	int rc = 0;
	while (count_locked(source) < n && rc == 0)
		rc = pthread_cond_timedwait(&cap_cv, &cap_mu, &deadline);
	bool ok = count_locked(source) >= n;
	pthread_mutex_unlock(&cap_mu);
	return ok;
}

/* ---- jobs ---- */

double tu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pause_briefly(void)
{
	struct timespec ts = {0, 1000000}; /* polling interval, not a synchronisation */
	nanosleep(&ts, NULL);
}

bool tu_wait_status(th_service *svc, uint64_t id, th_job_status status, double timeout_s)
{
	double end = tu_now() + timeout_s;
	do {
		th_job_status s;
		if (th_service_status(svc, id, &s) == 0 && s == status)
			return true;
		pause_briefly();
	} while (tu_now() < end);
	return false;
}

bool tu_wait_idle(th_service *svc, double timeout_s)
{
	double end = tu_now() + timeout_s;
	do {
		uint64_t queued, processing;
		if (th_service_pending(svc, &queued, &processing) == 0 && queued == 0 &&
		    processing == 0)
			return true;
		pause_briefly();
	} while (tu_now() < end);
	return false;
}

static int64_t fake_now;

static int64_t fake_clock(void *ud)
{
	(void)ud;
	return __atomic_load_n(&fake_now, __ATOMIC_SEQ_CST);
}

void tu_clock_at(int64_t t)
{
	__atomic_store_n(&fake_now, t, __ATOMIC_SEQ_CST);
	th_clock_set_hook(fake_clock, NULL);
}

void tu_clock_real(void)
{
	th_clock_set_hook(NULL, NULL);
}

enum th_liveness tu_owner_alive(void *ud, const th_owner *o)
{
	(void)ud;
	return th_owner_alive(o);
}

char *tu_history_untimed(char *h)
{
	char *out = h, *in = h;
	while (*in) {
		char *at = strstr(in, " at "), *nl = strchr(in, '\n');
		char *end = at && (!nl || at < nl) ? strstr(at, " s: ") : NULL;
		if (!end || (nl && end > nl)) { /* copy the line as it is */
			size_t n = nl ? (size_t)(nl + 1 - in) : strlen(in);
			memmove(out, in, n);
			out += n;
			in += n;
			continue;
		}
		size_t n = (size_t)(at - in);
		memmove(out, in, n);
		out += n;
		in = end + 2; /* from ": " on */
	}
	*out = 0;
	return h;
}
