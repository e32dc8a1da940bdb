/* The process strategy: jobs in worker processes. Every way a plugin can crash ends
 * its job with what happened while the host goes on; hard timeouts, memory limits,
 * worker reuse and recycling, a plugin whose init crashes, reloads. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static char *dir, *pdir;
static th_service *svc;

/* Opens the service with plugins isolated in worker processes. */
static void open_isolated(const char *runner, uint32_t max_attempts)
{
	char data[4096];
	snprintf(data, sizeof(data), "%s/data", dir);
	mkdir(data, 0755);
	th_service_opts o = {.data_dir = data, .plugin_dir = pdir, .isolate_plugins = true,
			     .runner = runner, .max_attempts = max_attempts};
	ck_assert_int_eq(th_service_open(&svc, &o), 0);
}

static void setup(void)
{
	/* crashes in worker processes must stay crashes, not sanitizer reports */
	setenv("ASAN_OPTIONS", "handle_segv=0:handle_abort=0:detect_leaks=0", 1);
	setenv("TSAN_OPTIONS", "handle_segv=0:handle_abort=0", 1);
	dir = tu_tmpdir();
	pdir = tu_plugin_dir(dir, "echo", "fx_crash", "fx_initcrash", NULL);
	tu_capture_start();
	open_isolated(RUNNER_PATH, 1);
}

static void teardown(void)
{
	th_service_close(svc);
	svc = NULL;
	tu_capture_stop();
	tu_rmtree(dir);
	free(dir);
	free(pdir);
}

static uint64_t add(const char *task, const char *input)
{
	uint64_t id = 0;
	int rc = th_service_add_many(svc, &(th_new_job){task, input, strlen(input), NULL}, 1, &id);
	ck_assert_msg(rc == 0, "add %s: %s", task, th_strerror(rc));
	return id;
}

static void start(unsigned workers, double timeout, unsigned max_jobs, uint64_t mem)
{
	th_processor_args a = TH_PROCESSOR_ARGS_DEFAULT;
	a.wait_time = 0.2;
	a.max_workers = workers;
	a.job_timeout = timeout;
	a.kill_grace = 0.3;
	a.worker_max_jobs = max_jobs;
	a.worker_memory_limit = mem;
	ck_assert_int_eq(th_service_set_processor(svc, "process", &a), 0);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
}

static char *error_of(uint64_t id)
{
	ck_assert(tu_wait_status(svc, id, TH_JOB_ERROR, 60));
	char *msg;
	ck_assert_int_eq(th_service_error(svc, id, &msg), 0);
	return msg;
}

static char *result_of(uint64_t id)
{
	ck_assert(tu_wait_status(svc, id, TH_JOB_COMPLETED, 60));
	void *r;
	size_t len;
	ck_assert_int_eq(th_service_result(svc, id, &r, &len), 0);
	return r;
}

START_TEST(every_crash_ends_only_its_job)
{
	uint64_t segv = add("crash_segv", ""), abrt = add("crash_abort", ""),
		 ex = add("crash_exit", ""), ok = add("echo", "still here");
	start(2, 0, 0, 0);
	char *m;
	ck_assert_str_eq((m = error_of(segv)), "worker killed by SIGSEGV");
	free(m);
	ck_assert_str_eq((m = error_of(abrt)), "worker killed by SIGABRT");
	free(m);
	ck_assert_str_eq((m = error_of(ex)), "worker exited with status 3");
	free(m);
	ck_assert_str_eq((m = result_of(ok)), "still here");
	free(m);
	ck_assert(tu_captured_has("processor", "worker killed by SIGSEGV", NULL));
}
END_TEST

START_TEST(crash_retried_while_attempts_left)
{
	th_service_close(svc);
	open_isolated(RUNNER_PATH, 2);
	uint64_t id = add("crash_segv", "");
	start(1, 0, 0, 0);
	char *m = error_of(id);
	ck_assert_str_eq(m, "worker killed by SIGSEGV");
	free(m);
	th_job j;
	ck_assert_int_eq(th_service_get(svc, id, &j), 0);
	ck_assert_uint_eq(j.attempts, 2);
	ck_assert(tu_captured_has("processor", "worker killed by SIGSEGV; it will run again", NULL));
}
END_TEST

START_TEST(hard_timeout_kills_the_worker)
{
	uint64_t hang = add("crash_hang", ""), polite = add("crash_polite", "");
	uint64_t after = add("echo", "after");
	double t0 = tu_now();
	start(2, 0.5, 0, 0);
	char *m;
	ck_assert_str_eq((m = error_of(hang)), "timed out after 0.5 s; worker process killed");
	free(m);
	/* a task that looks at th_cancelled stops at the timeout, and its worker lives on */
	ck_assert_str_eq((m = error_of(polite)), "timed out after 0.5 s");
	free(m);
	ck_assert_str_eq((m = result_of(after)), "after");
	free(m);
	ck_assert(tu_now() - t0 < 30); /* not the hour the task wanted */
}
END_TEST

START_TEST(memory_limit)
{
	if (SANITIZED)
		return; /* sanitizer runtimes reserve far more address space than any limit */
	uint64_t id = add("crash_oom", ""), after = add("echo", "x");
	start(1, 0, 0, 64u << 20);
	char *m = error_of(id);
	ck_assert_str_eq(m, "worker killed by SIGABRT");
	free(m);
	ck_assert_str_eq((m = result_of(after)), "x");
	free(m);
}
END_TEST

START_TEST(workers_reused_then_recycled)
{
	uint64_t ids[6];
	for (int i = 0; i < 6; i++)
		ids[i] = add("crash_pid", "");
	start(1, 0, 3, 0);
	char *pids[6];
	for (int i = 0; i < 6; i++)
		pids[i] = result_of(ids[i]);
	/* one process for three jobs, then a new one: no fork per job */
	ck_assert_str_eq(pids[0], pids[1]);
	ck_assert_str_eq(pids[1], pids[2]);
	ck_assert_str_ne(pids[2], pids[3]);
	ck_assert_str_eq(pids[3], pids[4]);
	ck_assert_str_eq(pids[4], pids[5]);
	ck_assert_int_ne(atoi(pids[0]), (int)getpid());
	for (int i = 0; i < 6; i++)
		free(pids[i]);
	/* the task's log line came through the worker protocol */
	ck_assert(tu_captured_has("fx_crash", "running in", NULL));
}
END_TEST

START_TEST(init_crash_refuses_only_that_plugin)
{
	uint64_t id = add("echo", "fine");
	start(1, 0, 0, 0);
	char *m = result_of(id);
	ck_assert_str_eq(m, "fine");
	free(m);
	ck_assert(tu_captured_has("plugins", "fx_initcrash.so: refused: loading it took a worker "
				  "process down (worker killed by SIGSEGV)", NULL));
}
END_TEST

START_TEST(reload_reaches_new_workers)
{
	uint64_t a = add("echo", "a");
	start(1, 0, 0, 0);
	char *m = result_of(a);
	free(m);
	free(tu_plugin_dir(dir, "fx_other", NULL));
	unsigned loaded, refused;
	ck_assert_int_eq(th_service_reload_plugins(svc, &loaded, &refused), 0);
	uint64_t b = add("fx_other", "");
	ck_assert_str_eq((m = result_of(b)), "other");
	free(m);
}
END_TEST

START_TEST(missing_runner)
{
	th_service_close(svc);
	char bogus[4096];
	snprintf(bogus, sizeof(bogus), "%s/no-such-runner", dir);
	open_isolated(bogus, 1);
	uint64_t id = add("echo", "x");
	start(1, 0, 0, 0);
	char *m = error_of(id);
	ck_assert_str_eq(m, "cannot start a worker process: worker exited with status 127 "
			    "before it was ready (is taskhost-runner installed?)");
	free(m);
}
END_TEST

START_TEST(only_the_process_strategy)
{
	ck_assert_int_eq(th_service_set_processor(svc, "multi", NULL), TH_EINVAL);
	bool ran;
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), TH_EINVAL);
	ck_assert_uint_eq(th_service_task_count(svc), 0); /* nothing loaded here */
}
END_TEST

Suite *process_suite(void);
Suite *process_suite(void)
{
	Suite *s = suite_create("process");
	TCase *tc = tcase_create("process");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, every_crash_ends_only_its_job);
	tcase_add_test(tc, crash_retried_while_attempts_left);
	tcase_add_test(tc, hard_timeout_kills_the_worker);
	tcase_add_test(tc, memory_limit);
	tcase_add_test(tc, workers_reused_then_recycled);
	tcase_add_test(tc, init_crash_refuses_only_that_plugin);
	tcase_add_test(tc, reload_reaches_new_workers);
	tcase_add_test(tc, missing_runner);
	tcase_add_test(tc, only_the_process_strategy);
	suite_add_tcase(s, tc);
	return s;
}
