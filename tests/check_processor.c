/* Processors beyond the seed: the concurrency limit measured from the tasks' own log
 * lines, order of the simple processor, stop semantics, a thousand jobs each run once,
 * two services in two processes on one data dir, per-thread plugin hooks. */
#include <check.h>
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "service_test.h"
#include "store/store_lmdb.h"
#include "testutil.h"

static char *dir, *pdir;
static th_service *svc;

static void setup(void)
{
	dir = tu_tmpdir();
	pdir = tu_plugin_dir(dir, "fx_good", NULL);
	tu_capture_start();
	svc = tu_service(dir, pdir);
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
	ck_assert_int_eq(th_service_add(svc, task, input, strlen(input), &id), 0);
	return id;
}

static void use(const char *strategy, unsigned threads)
{
	th_processor_args a = {.wait_time = 0.5, .max_threads = threads};
	ck_assert_int_eq(th_service_set_processor(svc, strategy, &a), 0);
}

/* The largest number of fx_span runs that overlapped, from their enter/leave lines. */
static int max_overlap(char **lines, uint64_t *enter_order, size_t *nenter)
{
	int now = 0, most = 0;
	*nenter = 0;
	for (size_t i = 0; lines[i]; i++) {
		unsigned long long id;
		if (sscanf(lines[i], "enter %llu", &id) == 1) {
			enter_order[(*nenter)++] = id;
			if (++now > most)
				most = now;
		} else if (sscanf(lines[i], "leave %llu", &id) == 1) {
			now--;
		}
	}
	return most;
}

START_TEST(multi_respects_max_threads)
{
	for (int i = 0; i < 9; i++)
		add("fx_span", "100");
	use("multi", 3);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(tu_wait_idle(svc, 60));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	char **lines = tu_captured("fx_good");
	uint64_t order[32];
	size_t n;
	ck_assert_int_eq(max_overlap(lines, order, &n), 3);
	ck_assert_uint_eq(n, 9);
	tu_strv_free(lines);
}
END_TEST

START_TEST(simple_one_at_a_time_in_order)
{
	for (int i = 0; i < 6; i++)
		add("fx_span", "10");
	use("simple", 5); /* max_threads means nothing to simple */
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(tu_wait_idle(svc, 60));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	char **lines = tu_captured("fx_good");
	uint64_t order[32];
	size_t n;
	ck_assert_int_eq(max_overlap(lines, order, &n), 1);
	ck_assert_uint_eq(n, 6);
	for (size_t i = 0; i < n; i++)
		ck_assert_uint_eq(order[i], i + 1);
	tu_strv_free(lines);
}
END_TEST

static void stop_while_running(const char *strategy, unsigned threads)
{
	for (int i = 0; i < 5; i++)
		add("fx_span", "300");
	use(strategy, threads);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	/* wait until the first jobs entered their run, then stop */
	size_t entered = 0;
	while (entered < threads) {
		ck_assert(tu_capture_wait("fx_good", 2 + entered, 30)); /* + init, thread_init */
		char **lines = tu_captured("fx_good");
		entered = 0;
		for (size_t i = 0; lines[i]; i++)
			entered += strncmp(lines[i], "enter", 5) == 0;
		tu_strv_free(lines);
	}
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	/* stop waited for the running jobs; the others are still queued, never attempted */
	for (uint64_t id = 1; id <= 5; id++) {
		th_job j;
		ck_assert_int_eq(th_service_get(svc, id, &j), 0);
		if (id <= threads) {
			ck_assert_int_eq(j.status, TH_JOB_COMPLETED);
		} else {
			ck_assert_int_eq(j.status, TH_JOB_QUEUED);
			ck_assert_uint_eq(j.attempts, 0);
		}
	}
	char **lines = tu_captured("fx_good");
	uint64_t order[32];
	size_t n;
	max_overlap(lines, order, &n);
	ck_assert_uint_eq(n, threads);
	tu_strv_free(lines);
}

START_TEST(stop_waits_for_running_jobs_multi)
{
	stop_while_running("multi", 2);
}
END_TEST

START_TEST(stop_waits_for_running_jobs_simple)
{
	stop_while_running("simple", 1);
}
END_TEST

START_TEST(threads_listed)
{
	for (int i = 0; i < 3; i++)
		add("fx_span", "400");
	use("multi", 4);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	uint64_t ids[8];
	size_t n = 0;
	double end = tu_now() + 30;
	while (n < 3 && tu_now() < end) {
		ck_assert_int_eq(th_service_threads(svc, ids, 8, &n), 0);
		tu_capture_wait("nobody", 1, 0.001);
	}
	ck_assert_uint_eq(n, 3);
	uint64_t sum = ids[0] + ids[1] + ids[2];
	ck_assert_uint_eq(sum, 6); /* jobs 1, 2 and 3 */
	ck_assert(tu_wait_idle(svc, 30));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	ck_assert_int_eq(th_service_threads(svc, ids, 8, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* Reads the ids the fx_record task wrote, checks each of 1..n appears exactly once. */
static void assert_each_once(const char *path, uint64_t n)
{
	FILE *f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	unsigned char *seen = calloc(n + 1, 1);
	unsigned long long id;
	uint64_t total = 0;
	while (fscanf(f, "%llu", &id) == 1) {
		ck_assert_uint_le(id, n);
		ck_assert_msg(seen[id] == 0, "job %llu ran twice", id);
		seen[id] = 1;
		total++;
	}
	fclose(f);
	free(seen);
	ck_assert_uint_eq(total, n);
}

static void add_records(const char *path, int n)
{
	th_new_job *jobs = calloc((size_t)n, sizeof(*jobs));
	uint64_t *ids = calloc((size_t)n, sizeof(*ids));
	for (int i = 0; i < n; i++)
		jobs[i] = (th_new_job){"fx_record", path, strlen(path), NULL};
	ck_assert_int_eq(th_service_add_many(svc, jobs, (size_t)n, ids), 0);
	ck_assert_uint_eq(ids[n - 1], (uint64_t)n);
	free(jobs);
	free(ids);
}

START_TEST(thousand_jobs_each_once)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/runs", dir);
	add_records(path, 1000);
	use("multi", 4);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(tu_wait_idle(svc, 120));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_service_count(svc, c), 0);
	ck_assert_uint_eq(c[TH_JOB_COMPLETED], 1000);
	assert_each_once(path, 1000);
	/* one per worker thread that ran a job, each undone when the thread ended */
	char **lines = tu_captured("fx_good");
	int inits = 0, finis = 0;
	for (size_t i = 0; lines[i]; i++) {
		inits += strcmp(lines[i], "thread_init") == 0;
		finis += strcmp(lines[i], "thread_fini") == 0;
	}
	tu_strv_free(lines);
	ck_assert_int_ge(inits, 1);
	ck_assert_int_le(inits, 4);
	ck_assert_int_eq(finis, inits);
}
END_TEST

/* Fails the first *left commits that claim: the first is the one in whose transaction
 * multi already handed its jobs to the workers. */
static int fail_first_claim(void *ud, const char *what)
{
	atomic_int *left = ud;
	if (strstr(what, "claiming") && atomic_fetch_sub(left, 1) > 0)
		return TH_EIO;
	return 0;
}

/* multi starts jobs while their claim commits; when that commit fails the runs go on,
 * the dispatcher makes the same claims again before anything else, and each job runs
 * once and ends completed: no second run beside the first, no outcome refused. */
START_TEST(multi_claim_commit_fails_after_start)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/runs", dir);
	add_records(path, 6);
	atomic_int left = 2; /* the first claim, and the first try to make it again */
	th_store_set_commit_hook(th_testing_store(svc), fail_first_claim, &left);
	use("multi", 3);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(tu_wait_idle(svc, 30));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	th_store_set_commit_hook(th_testing_store(svc), NULL, NULL);
	ck_assert(tu_captured_has("processor", "started while their claim was written", NULL));
	ck_assert(tu_captured_has("processor", "claiming", "started job(s) again failed"));
	ck_assert(!tu_captured_has("store", "stale claim refused", NULL));
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_service_count(svc, c), 0);
	ck_assert_uint_eq(c[TH_JOB_COMPLETED], 6);
	assert_each_once(path, 6);
}
END_TEST

static size_t inflight_files(void)
{
	char data[4096];
	snprintf(data, sizeof(data), "%s/data", dir);
	return tu_count_files(data, "inflight-");
}

/* The disk refuses every claim: stopping still works, nothing is lost, and the note of
 * the jobs that started is left for recovery; once claims can be written the jobs run. */
START_TEST(multi_stops_while_claims_cannot_be_written)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/runs", dir);
	add_records(path, 3);
	atomic_int left = 1000000;
	th_store_set_commit_hook(th_testing_store(svc), fail_first_claim, &left);
	use("multi", 2);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	double end = tu_now() + 30;
	while (!tu_captured_has("processor", "claiming", "started job(s) again failed") &&
	       tu_now() < end)
		tu_capture_wait("nobody", 1, 0.01);
	ck_assert(tu_captured_has("processor", "claiming", "started job(s) again failed"));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_service_count(svc, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 3);
	ck_assert_uint_eq(inflight_files(), 1);
	th_store_set_commit_hook(th_testing_store(svc), NULL, NULL);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(tu_wait_idle(svc, 30));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	ck_assert_int_eq(th_service_count(svc, c), 0);
	ck_assert_uint_eq(c[TH_JOB_COMPLETED], 3);
}
END_TEST

/* Fails the claims of every thread but the test's own until *ud is set. */
static pthread_t test_thread;
static int fail_others_claims(void *ud, const char *what)
{
	atomic_bool *open = ud;
	if (strstr(what, "claiming") && !atomic_load(open) &&
	    !pthread_equal(pthread_self(), test_thread))
		return TH_EIO;
	return 0;
}

static void wait_logged(const char *a, const char *b)
{
	double end = tu_now() + 30;
	while (!tu_captured_has("processor", a, b) && tu_now() < end)
		tu_capture_wait("nobody", 1, 0.01);
	ck_assert_msg(tu_captured_has("processor", a, b), "not logged: %s", a);
}

/* While multi cannot write the claim of a job it started, the service's own claim call
 * takes that job: the claim that call made stands, and the outcome of the processor's
 * unclaimed run is dropped rather than recorded over it. */
START_TEST(multi_drops_the_outcome_of_a_run_claimed_elsewhere)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/runs", dir);
	uint64_t id = add("fx_record", path);
	atomic_bool open = false;
	test_thread = pthread_self();
	th_store_set_commit_hook(th_testing_store(svc), fail_others_claims, &open);
	use("multi", 1);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	wait_logged("claiming", "started job(s) again failed");
	uint64_t got;
	ck_assert_int_eq(th_service_claim_next(svc, &got), 0);
	ck_assert_uint_eq(got, id);
	atomic_store(&open, true);
	wait_logged("claimed elsewhere before its claim could be written again", NULL);
	bool ran = false;
	ck_assert_int_eq(th_service_process_next(svc, id, &ran), 0);
	ck_assert(ran);
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	th_store_set_commit_hook(th_testing_store(svc), NULL, NULL);
	th_job_status s;
	ck_assert_int_eq(th_service_status(svc, id, &s), 0);
	ck_assert_int_eq(s, TH_JOB_COMPLETED);
}
END_TEST

START_TEST(two_services_one_data_dir)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/runs", dir);
	add_records(path, 1000);
	th_service_close(svc);
	svc = NULL;
	pid_t pids[2];
	for (int i = 0; i < 2; i++) {
		if ((pids[i] = fork()) == 0) {
			th_service *mine = tu_service(dir, pdir);
			th_processor_args a = {.wait_time = 0.05, .max_threads = 3};
			if (th_service_set_processor(mine, "multi", &a) ||
			    th_service_start_processing(mine) || !tu_wait_idle(mine, 120))
				_exit(1);
			th_service_close(mine);
			_exit(0);
		}
	}
	for (int i = 0; i < 2; i++) {
		int st;
		waitpid(pids[i], &st, 0);
		ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	svc = tu_service(dir, pdir);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_service_count(svc, c), 0);
	ck_assert_uint_eq(c[TH_JOB_COMPLETED], 1000);
	assert_each_once(path, 1000);
}
END_TEST

START_TEST(result_too_big_for_the_database)
{
	/* a result that cannot be stored ends its own job in error; the queue goes on */
	th_service_close(svc);
	char data[4096];
	snprintf(data, sizeof(data), "%s/small", dir);
	mkdir(data, 0755);
	th_lmdb_opts lmdb = {.map_size = 1 << 20, .max_map_size = 1 << 20};
	th_service_opts o = {.data_dir = data, .plugin_dir = pdir, .lmdb = &lmdb,
			     .max_result = 8 << 20};
	ck_assert_int_eq(th_service_open(&svc, &o), 0);
	uint64_t big = add("fx_answer", "huge"), next = add("fx_answer", "x");
	use("multi", 2);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(tu_wait_status(svc, next, TH_JOB_COMPLETED, 30));
	ck_assert(tu_wait_status(svc, big, TH_JOB_ERROR, 30));
	char *msg;
	ck_assert_int_eq(th_service_error(svc, big, &msg), 0);
	ck_assert_str_eq(msg, "result of 4194304 bytes did not fit in the database");
	free(msg);
}
END_TEST

START_TEST(interrupt_sends_jobs_back)
{
	th_service_close(svc);
	free(tu_plugin_dir(dir, "sleep", NULL));
	svc = tu_service(dir, pdir);
	const char in[] = "{\"seconds\": 60, \"id\": 1}";
	uint64_t id;
	ck_assert_int_eq(th_service_add(svc, "sleep", in, strlen(in), &id), 0);
	use("multi", 2);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(tu_wait_status(svc, id, TH_JOB_PROCESSING, 30));
	th_service_interrupt(svc);
	ck_assert(tu_wait_status(svc, id, TH_JOB_QUEUED, 30));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	ck_assert(tu_wait_status(svc, id, TH_JOB_QUEUED, 1)); /* and not claimed again */
	th_job j;
	ck_assert_int_eq(th_service_get(svc, id, &j), 0);
	ck_assert_uint_eq(j.attempts, 1); /* it ran once, and counts */
	ck_assert(tu_captured_has("processor", "interrupted after", "by the host stopping"));
}
END_TEST

/* Threads of this process named `name` (pthread_setname_np). */
static int threads_named(const char *name)
{
	char path[300], comm[32];
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	ck_assert_ptr_nonnull(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && strncmp(comm, name, strlen(name)) == 0 &&
		    comm[strlen(name)] == '\n')
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

/* Waits until n threads are named `name` (each names itself once it runs); false when
 * the count stays otherwise for 5 s. */
static bool threads_become(const char *name, int n)
{
	for (double end = tu_now() + 5; tu_now() < end; usleep(1000))
		if (threads_named(name) == n)
			return true;
	return false;
}

/* One keeper for the host, however many queues it runs, and none once stopped. */
START_TEST(one_keeper_for_every_queue)
{
	th_processor_args a = {.wait_time = 0.5, .max_threads = 2};
	ck_assert_int_eq(th_service_set_queue(svc, "mail", "multi", &a), 0);
	ck_assert_int_eq(th_service_set_queue(svc, "video", "simple", &a), 0);
	ck_assert_int_eq(threads_named("th-keep"), 0);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(threads_become("th-watch", 3)); /* a processor per queue */
	ck_assert(threads_become("th-keep", 1));
	ck_assert_int_eq(threads_named("th-keep"), 1);
	th_add_opts o = {.queue = "video"};
	uint64_t id;
	ck_assert_int_eq(th_service_add_ex(svc, "fx_answer", "{}", 2, &o, &id, NULL), 0);
	ck_assert(tu_wait_status(svc, id, TH_JOB_COMPLETED, 10));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	ck_assert_int_eq(threads_named("th-keep"), 0);
}
END_TEST

START_TEST(processing_restarts)
{
	use("multi", 2);
	for (int round = 0; round < 3; round++) {
		uint64_t id = add("fx_answer", "x");
		ck_assert_int_eq(th_service_start_processing(svc), 0);
		ck_assert(tu_wait_status(svc, id, TH_JOB_COMPLETED, 30));
		ck_assert_int_eq(th_service_stop_processing(svc), 0);
	}
}
END_TEST

Suite *processor_suite(void);
Suite *processor_suite(void)
{
	Suite *s = suite_create("processor");
	TCase *tc = tcase_create("processor");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, multi_respects_max_threads);
	tcase_add_test(tc, simple_one_at_a_time_in_order);
	tcase_add_test(tc, stop_waits_for_running_jobs_multi);
	tcase_add_test(tc, stop_waits_for_running_jobs_simple);
	tcase_add_test(tc, threads_listed);
	tcase_add_test(tc, thousand_jobs_each_once);
	tcase_add_test(tc, multi_claim_commit_fails_after_start);
	tcase_add_test(tc, multi_stops_while_claims_cannot_be_written);
	tcase_add_test(tc, multi_drops_the_outcome_of_a_run_claimed_elsewhere);
	tcase_add_test(tc, two_services_one_data_dir);
	tcase_add_test(tc, processing_restarts);
	tcase_add_test(tc, one_keeper_for_every_queue);
	tcase_add_test(tc, result_too_big_for_the_database);
	tcase_add_test(tc, interrupt_sends_jobs_back);
	suite_add_tcase(s, tc);
	return s;
}
