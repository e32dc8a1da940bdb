/* The scenarios of the seed document (lovely.remotetask's processors.txt), run for real:
 * sleep tasks from the shipped sleep.so plugin, the queue in LMDB, and the exact log
 * lines the tasks emit. The multi-thread scenarios scale the seed's sleep times (5x and
 * 10x) so the orders hold on a loaded 2-core machine; the orders are the seed's. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static char *dir, *pdir;
static th_service *svc;

static void setup(void)
{
	dir = tu_tmpdir();
	pdir = tu_plugin_dir(dir, "sleep", NULL);
	tu_capture_start();
	svc = tu_service(dir, pdir);
}

static void teardown(void)
{
	th_service_close(svc);
	tu_capture_stop();
	tu_rmtree(dir);
	free(dir);
	free(pdir);
}

static uint64_t add_sleep(double seconds, int id)
{
	char in[64];
	snprintf(in, sizeof(in), "{\"seconds\": %g, \"id\": %d}", seconds, id);
	uint64_t jid;
	ck_assert_int_eq(th_service_add(svc, "sleep", in, strlen(in), &jid), 0);
	return jid;
}

/* The "Job: N" lines the sleep task logged, as "1 2 3 ..." */
static char *job_log(void)
{
	char **v = tu_captured("sleep");
	static char out[256];
	out[0] = 0;
	for (size_t i = 0; v[i]; i++) {
		int n;
		ck_assert_msg(sscanf(v[i], "Job: %d", &n) == 1, "unexpected line '%s'", v[i]);
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%d", i ? " " : "", n);
	}
	tu_strv_free(v);
	return out;
}

START_TEST(simple_processor)
{
	uint64_t ids[4] = {add_sleep(0.04, 1), add_sleep(0.1, 2), add_sleep(0, 3),
			   add_sleep(0.08, 4)};
	/* the simple processor is the default, with a wait time of 1 second */
	const char *name;
	th_processor_args args;
	th_service_processor(svc, &name, &args);
	ck_assert_str_eq(name, "simple");
	ck_assert(args.wait_time == 1.0);
	args.wait_time = 0.0;
	ck_assert_int_eq(th_service_set_processor(svc, "simple", &args), 0);

	/* executing a job directly */
	bool ran = false;
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	ck_assert(ran);
	ck_assert_str_eq(job_log(), "1");

	/* then from the task service: all of them, in the order they were added */
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(tu_capture_wait("sleep", 4, 30));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	ck_assert_str_eq(job_log(), "1 2 3 4");
	for (int i = 0; i < 4; i++) {
		th_job_status s;
		ck_assert_int_eq(th_service_status(svc, ids[i], &s), 0);
		ck_assert_int_eq(s, TH_JOB_COMPLETED);
	}
}
END_TEST

START_TEST(multi_processor)
{
	/* the seed's (0.04, 1) (0.18, 2) (0, 3) (0.02, 4), five times as long */
	uint64_t first = add_sleep(0.2, 1);
	add_sleep(0.9, 2);
	add_sleep(0, 3);
	add_sleep(0.1, 4);
	th_processor_args args = {.wait_time = 0, .max_threads = 5};
	ck_assert_int_eq(th_service_set_processor(svc, "multi", &args), 0);
	th_service_processor(svc, NULL, &args);
	ck_assert_uint_eq(args.max_threads, 5); /* the seed's default */

	uint64_t running[8];
	size_t n = 9;
	ck_assert_int_eq(th_service_threads(svc, running, 8, &n), 0);
	ck_assert_uint_eq(n, 0); /* no worker threads yet */

	bool waiting = false;
	ck_assert_int_eq(th_service_has_jobs_waiting(svc, &waiting), 0);
	ck_assert(waiting);
	uint64_t id = 0;
	ck_assert_int_eq(th_service_claim_next(svc, &id), 0);
	ck_assert_uint_eq(id, first);
	bool ran = false;
	ck_assert_int_eq(th_service_process_next(svc, id, &ran), 0);
	ck_assert(ran);
	ck_assert_str_eq(job_log(), "1");

	tu_capture_clear();
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(tu_capture_wait("sleep", 3, 30));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	/* not in order: each job took a different time */
	ck_assert_str_eq(job_log(), "3 4 2");
}
END_TEST

START_TEST(multi_processor_two_threads)
{
	/* the seed's (0.03, 1) (0.05, 2) (0.03, 3) (0.08, 4), ten times as long: job 3
	 * would finish first if all ran at once, but it waits for a free thread */
	add_sleep(0.3, 1);
	add_sleep(0.5, 2);
	add_sleep(0.3, 3);
	add_sleep(0.8, 4);
	th_processor_args args = {.wait_time = 0, .max_threads = 2};
	ck_assert_int_eq(th_service_set_processor(svc, "multi", &args), 0);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	size_t most = 0;
	char **v;
	while ((v = tu_captured("sleep")), tu_strv_len(v) < 4) {
		uint64_t running[8];
		size_t n;
		ck_assert_int_eq(th_service_threads(svc, running, 8, &n), 0);
		if (n > most)
			most = n;
		tu_strv_free(v);
		tu_capture_wait("sleep", 4, 0.002);
	}
	tu_strv_free(v);
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	ck_assert_uint_eq(most, 2); /* never more than two at a time */
	ck_assert_str_eq(job_log(), "1 2 3 4");
}
END_TEST

Suite *seed_suite(void);
Suite *seed_suite(void)
{
	Suite *s = suite_create("seed");
	TCase *tc = tcase_create("processors.txt");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, simple_processor);
	tcase_add_test(tc, multi_processor);
	tcase_add_test(tc, multi_processor_two_threads);
	suite_add_tcase(s, tc);
	return s;
}
