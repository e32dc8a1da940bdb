/* The task service API: add and its refusals, status/result/error, cancel, clean, list,
 * claim next and process next, processor control, static plugins, wake-ups from another
 * process. */
#include <check.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "service_test.h"
#include "taskhost.h"
#include "testutil.h"

static char *dir, *pdir;
static th_service *svc;

static void setup(void)
{
	dir = tu_tmpdir();
	pdir = tu_plugin_dir(dir, "echo", "fail", "fx_good", NULL);
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
	int rc = th_service_add(svc, task, input, input ? strlen(input) : 0, &id);
	ck_assert_msg(rc == 0, "add %s: %s", task, th_strerror(rc));
	return id;
}

static th_job_status status_of(uint64_t id)
{
	th_job_status s = 0;
	ck_assert_int_eq(th_service_status(svc, id, &s), 0);
	return s;
}

/* The service again on the test's data dir, with options o (its dirs set here). */
static void reopen(th_service_opts o)
{
	th_service_close(svc);
	char data[4096];
	snprintf(data, sizeof(data), "%s/data", dir);
	o.data_dir = data;
	o.plugin_dir = pdir;
	ck_assert_int_eq(th_service_open(&svc, &o), 0);
}

START_TEST(add_refuses_unknown_task)
{
	uint64_t id = 0;
	ck_assert_int_eq(th_service_add(svc, "no_such_task", "x", 1, &id), TH_EUNKNOWNTASK);
	ck_assert_int_eq(th_service_add(svc, NULL, "x", 1, &id), TH_EUNKNOWNTASK);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_service_count(svc, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 0);
	ck_assert_str_eq(th_strerror(TH_EUNKNOWNTASK), "unknown task");
}
END_TEST

START_TEST(add_refuses_oversized_input)
{
	reopen((th_service_opts){.max_input = 100});
	char buf[101] = {0};
	uint64_t id = 0;
	ck_assert_int_eq(th_service_add(svc, "echo", buf, 101, &id), TH_ETOOBIG);
	ck_assert_int_eq(th_service_add(svc, "echo", buf, 100, &id), 0);
	ck_assert_uint_eq(id, 1);
}
END_TEST

START_TEST(unknown_job_ids)
{
	th_job_status s;
	th_job j;
	void *data;
	size_t len;
	char *msg;
	bool ran;
	ck_assert_int_eq(th_service_status(svc, 42, &s), TH_ENOTFOUND);
	ck_assert_int_eq(th_service_get(svc, 42, &j), TH_ENOTFOUND);
	ck_assert_int_eq(th_service_result(svc, 42, &data, &len), TH_ENOTFOUND);
	ck_assert_int_eq(th_service_error(svc, 42, &msg), TH_ENOTFOUND);
	ck_assert_int_eq(th_service_cancel(svc, 42), TH_ENOTFOUND);
	ck_assert_int_eq(th_service_process_next(svc, 42, &ran), TH_ENOTFOUND);
	ck_assert(!ran);
	ck_assert_str_eq(th_strerror(TH_ENOTFOUND), "unknown job id");
}
END_TEST

/* A store that refuses chosen operations (store_fault.h): each call fails with the
 * store's error, changes nothing, and the next one works. */
struct refusal {
	const char *op;
	int rc, left;
	char seen[256]; /* the operations asked, in order, up to its size */
};

static int refuse(void *ud, const char *op)
{
	struct refusal *r = ud;
	size_t n = strlen(r->seen);
	snprintf(r->seen + n, sizeof(r->seen) - n, "%s ", op);
	if (r->left > 0 && strcmp(op, r->op) == 0) {
		r->left--;
		return r->rc;
	}
	return 0;
}

START_TEST(store_refusals)
{
	struct refusal r = {"add", TH_EIO, 1, ""};
	ck_assert_int_eq(th_testing_fault(svc, refuse, &r), 0);
	uint64_t id;
	ck_assert_int_eq(th_service_add(svc, "echo", "x", 1, &id), TH_EIO);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_service_count(svc, c), 0);
	ck_assert_uint_eq(c[TH_JOB_QUEUED], 0);
	id = add("echo", "x");
	ck_assert_str_eq(r.seen, "add count add ");
	/* a claim refused: the job stays queued; the next try runs it */
	r = (struct refusal){"cycle", TH_EFULL, 1, ""};
	bool ran = true;
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), TH_EFULL);
	ck_assert(!ran);
	ck_assert_int_eq(status_of(id), TH_JOB_QUEUED);
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	ck_assert(ran);
	ck_assert_int_eq(status_of(id), TH_JOB_COMPLETED);
	/* a cancel refused leaves the job as it was */
	uint64_t other = add("echo", "y");
	r = (struct refusal){"cancel", TH_EIO, 1, ""};
	ck_assert_int_eq(th_service_cancel(svc, other), TH_EIO);
	ck_assert_int_eq(status_of(other), TH_JOB_QUEUED);
	ck_assert_int_eq(th_service_cancel(svc, other), 0);
	ck_assert_int_eq(status_of(other), TH_JOB_CANCELLED);
}
END_TEST

START_TEST(results_and_errors)
{
	const char bin[] = {'x', 0, 'y', 0};
	uint64_t e, f, id;
	ck_assert_int_eq(th_service_add(svc, "echo", bin, sizeof(bin), &e), 0);
	f = add("fail", "disk on fire");
	bool ran;
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	ck_assert(ran);
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	ck_assert(ran);
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	ck_assert(!ran); /* nothing left */

	ck_assert_int_eq(status_of(e), TH_JOB_COMPLETED);
	void *data;
	size_t len;
	ck_assert_int_eq(th_service_result(svc, e, &data, &len), 0);
	ck_assert_uint_eq(len, sizeof(bin));
	ck_assert_mem_eq(data, bin, sizeof(bin));
	free(data);
	char *msg;
	ck_assert_int_eq(th_service_error(svc, e, &msg), 0);
	ck_assert_str_eq(msg, "");
	free(msg);

	ck_assert_int_eq(status_of(f), TH_JOB_ERROR);
	ck_assert_int_eq(th_service_error(svc, f, &msg), 0);
	ck_assert_str_eq(msg, "disk on fire");
	free(msg);
	ck_assert(tu_captured_has("processor", "failed after", "disk on fire"));

	/* what a task returns that is not OK, FAIL or RETRY, and a result past the limit */
	id = add("fx_answer", "weird");
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	ck_assert_int_eq(status_of(id), TH_JOB_ERROR);
	ck_assert_int_eq(th_service_error(svc, id, &msg), 0);
	ck_assert_str_eq(msg, "task returned 7, not TH_OK, TH_FAIL or TH_RETRY");
	free(msg);
	id = add("fx_answer", "fail");
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	ck_assert_int_eq(th_service_error(svc, id, &msg), 0);
	ck_assert_str_eq(msg, "task failed without a message");
	free(msg);
	th_job j;
	ck_assert_int_eq(th_service_get(svc, id, &j), 0);
	ck_assert_uint_eq(j.attempts, 1);
	ck_assert(j.finished_us >= j.started_us && j.started_us >= j.added_us);
}
END_TEST

START_TEST(result_size_limit)
{
	th_service_close(svc);
	char data[4096];
	snprintf(data, sizeof(data), "%s/data", dir);
	th_service_opts o = {.data_dir = data, .plugin_dir = pdir, .max_result = 1000};
	ck_assert_int_eq(th_service_open(&svc, &o), 0);
	uint64_t id = add("fx_answer", "big"); /* a 2048-byte result */
	bool ran;
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	ck_assert_int_eq(status_of(id), TH_JOB_ERROR);
	char *msg;
	ck_assert_int_eq(th_service_error(svc, id, &msg), 0);
	ck_assert_str_eq(msg, "result larger than max_result_size (1000 bytes)");
	free(msg);
}
END_TEST

START_TEST(cancel_and_clean)
{
	uint64_t a = add("echo", "a"), b = add("echo", "b"), c = add("echo", "c");
	ck_assert_int_eq(th_service_cancel(svc, b), 0);
	ck_assert_int_eq(status_of(b), TH_JOB_CANCELLED);
	bool ran;
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	ck_assert_int_eq(status_of(a), TH_JOB_COMPLETED);
	ck_assert_int_eq(th_service_cancel(svc, a), TH_ESTATE); /* finished */
	uint64_t claimed;
	ck_assert_int_eq(th_service_claim_next(svc, &claimed), 0);
	ck_assert_uint_eq(claimed, c); /* b was cancelled, so c is next */
	ck_assert_int_eq(th_service_cancel(svc, c), TH_EBUSY); /* running: asked to stop */
	uint64_t d = add("echo", "d");
	uint64_t removed;
	ck_assert_int_eq(th_service_clean(svc, &removed), 0);
	ck_assert_uint_eq(removed, 2); /* a completed, b cancelled */
	th_job_status s;
	ck_assert_int_eq(th_service_status(svc, a, &s), TH_ENOTFOUND);
	ck_assert_int_eq(th_service_status(svc, b, &s), TH_ENOTFOUND);
	ck_assert_int_eq(status_of(c), TH_JOB_PROCESSING); /* a claim nobody runs */
	ck_assert_int_eq(status_of(d), TH_JOB_QUEUED);
}
END_TEST

static int collect(const th_job *job, void *ud)
{
	uint64_t *v = ud;
	v[++v[0]] = job->id;
	return 0;
}

START_TEST(list_by_status)
{
	for (int i = 0; i < 4; i++)
		add("echo", "x");
	add("fail", "x");
	bool ran;
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	uint64_t v[16] = {0};
	ck_assert_int_eq(th_service_list(svc, TH_MASK(TH_JOB_COMPLETED), 0, false, collect, v), 0);
	ck_assert_uint_eq(v[0], 2);
	ck_assert_uint_eq(v[1], 1);
	ck_assert_uint_eq(v[2], 2);
	memset(v, 0, sizeof(v));
	ck_assert_int_eq(th_service_list(svc, TH_MASK(TH_JOB_QUEUED), 0, true, collect, v), 0);
	ck_assert_uint_eq(v[0], 3);
	ck_assert_uint_eq(v[1], 5);
	ck_assert_uint_eq(v[3], 3);
}
END_TEST

START_TEST(claim_then_process_by_id)
{
	bool waiting;
	ck_assert_int_eq(th_service_has_jobs_waiting(svc, &waiting), 0);
	ck_assert(!waiting);
	uint64_t id;
	ck_assert_int_eq(th_service_claim_next(svc, &id), TH_ENOJOB);
	uint64_t a = add("echo", "first");
	add("echo", "second");
	ck_assert_int_eq(th_service_has_jobs_waiting(svc, &waiting), 0);
	ck_assert(waiting);
	ck_assert_int_eq(th_service_claim_next(svc, &id), 0);
	ck_assert_uint_eq(id, a);
	ck_assert_int_eq(status_of(a), TH_JOB_PROCESSING);
	bool ran;
	ck_assert_int_eq(th_service_process_next(svc, a, &ran), 0);
	ck_assert(ran);
	ck_assert_int_eq(status_of(a), TH_JOB_COMPLETED);
	/* running it again, or running a job nobody claimed, is refused */
	ck_assert_int_eq(th_service_process_next(svc, a, &ran), TH_ESTATE);
	ck_assert(!ran);
	ck_assert_int_eq(th_service_process_next(svc, a + 1, &ran), TH_ESTATE);
	ck_assert_int_eq(status_of(a + 1), TH_JOB_QUEUED);
}
END_TEST

START_TEST(job_claimed_elsewhere_not_ours)
{
	uint64_t a = add("echo", "x");
	th_service_close(svc);
	svc = NULL;
	/* another service instance (another process) claims it */
	pid_t pid = fork();
	if (pid == 0) {
		th_service *other = tu_service(dir, pdir);
		uint64_t id;
		_exit(th_service_claim_next(other, &id) == 0 && id == a ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	svc = tu_service(dir, pdir);
	bool ran;
	ck_assert_int_eq(th_service_process_next(svc, a, &ran), TH_ESTATE);
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	ck_assert(!ran);
}
END_TEST

START_TEST(bad_task_names)
{
	uint64_t id;
	ck_assert_int_eq(th_service_add(svc, "has space", "", 0, &id), TH_EINVAL);
	ck_assert_int_eq(th_service_add(svc, "ctl\x01", "", 0, &id), TH_EINVAL);
	ck_assert_int_eq(th_service_add(svc, "caf\xc3\xa9", "", 0, &id), TH_EINVAL);
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	ck_assert_int_eq(th_service_add(svc, longname, "", 0, &id), TH_EINVAL);
}
END_TEST

START_TEST(unrun_claims_go_back_at_close)
{
	uint64_t a = add("echo", "x"), claimed;
	ck_assert_int_eq(th_service_claim_next(svc, &claimed), 0);
	ck_assert_uint_eq(claimed, a);
	th_service_close(svc);
	svc = tu_service(dir, pdir);
	th_job j;
	ck_assert_int_eq(th_service_get(svc, a, &j), 0);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);
	ck_assert_uint_eq(j.attempts, 0);
}
END_TEST

static int cancel_each(const th_job *job, void *ud)
{
	/* calls back into the service from the list callback */
	th_job again;
	ck_assert_int_eq(th_service_get(svc, job->id, &again), 0);
	ck_assert_int_eq(th_service_cancel(svc, job->id), 0);
	(*(int *)ud)++;
	return 0;
}

START_TEST(list_callback_may_use_the_service)
{
	for (int i = 0; i < 600; i++) /* more than one chunk of the list */
		add("echo", "x");
	int n = 0;
	ck_assert_int_eq(th_service_list(svc, TH_MASK(TH_JOB_QUEUED), 0, false, cancel_each, &n),
			 0);
	ck_assert_int_eq(n, 600);
	uint64_t c[TH_JOB_STATUS_MAX + 1];
	ck_assert_int_eq(th_service_count(svc, c), 0);
	ck_assert_uint_eq(c[TH_JOB_CANCELLED], 600);
}
END_TEST

START_TEST(processor_control)
{
	th_processor_args bad = {.wait_time = -1, .max_threads = 2};
	ck_assert_int_eq(th_service_set_processor(svc, "quantum", NULL), TH_EINVAL);
	ck_assert_int_eq(th_service_set_processor(svc, "multi", &bad), TH_EINVAL);
	bad = (th_processor_args){.wait_time = 1, .max_threads = 0};
	ck_assert_int_eq(th_service_set_processor(svc, "multi", &bad), TH_EINVAL);
	ck_assert(!th_service_is_processing(svc));
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert(th_service_is_processing(svc));
	ck_assert_int_eq(th_service_start_processing(svc), TH_EBUSY);
	uint64_t id = add("echo", "hi");
	ck_assert(tu_wait_status(svc, id, TH_JOB_COMPLETED, 10));
	ck_assert_int_eq(th_service_stop_processing(svc), 0);
	ck_assert(!th_service_is_processing(svc));
	ck_assert_int_eq(th_service_stop_processing(svc), 0); /* stopping twice is fine */
	size_t n = 9;
	uint64_t ids[4];
	ck_assert_int_eq(th_service_threads(svc, ids, 4, &n), 0);
	ck_assert_uint_eq(n, 0);
}
END_TEST

/* The heartbeat names the machine as it was when processing started: the name is read
 * once, not at every beat. Changing it needs a UTS namespace of the test's own (root). */
START_TEST(heartbeat_reads_the_host_name_once)
{
	if (unshare(CLONE_NEWUTS) != 0 || sethostname("before", 6) != 0)
		return; /* not root: nothing to change the name of */
	reopen((th_service_opts){.lease_time = 0.3}); /* a beat every 0.1 s */
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert_int_eq(sethostname("after", 5), 0);
	th_host_info *h = NULL;
	size_t n = 0;
	ck_assert_int_eq(th_service_hosts(svc, &h, &n), 0);
	ck_assert_uint_eq(n, 1);
	int64_t first = h[0].heartbeat_us;
	for (int i = 0; i < 200 && h[0].heartbeat_us == first; i++) {
		free(h);
		usleep(20000); /* polled until the next beat; it is due in 0.1 s */
		ck_assert_int_eq(th_service_hosts(svc, &h, &n), 0);
		ck_assert_uint_eq(n, 1);
	}
	ck_assert_int_gt(h[0].heartbeat_us, first);
	ck_assert_str_eq(h[0].name, "before");
	free(h);
}
END_TEST

START_TEST(inspect_only_cannot_run)
{
	th_service_close(svc);
	char data[4096];
	snprintf(data, sizeof(data), "%s/data", dir);
	tu_capture_clear();
	th_service_opts o = {.data_dir = data, .plugin_dir = pdir, .inspect_only = true};
	ck_assert_int_eq(th_service_open(&svc, &o), 0);
	uint64_t id = add("fx_answer", "x"); /* adding needs only the descriptors */
	bool ran;
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), TH_EINVAL);
	ck_assert_int_eq(th_service_start_processing(svc), TH_EINVAL);
	ck_assert_int_eq(status_of(id), TH_JOB_QUEUED);
	ck_assert(!tu_captured_has("fx_good", "init", NULL));
	ck_assert_uint_eq(th_service_task_count(svc), 8); /* echo, noop, fail, fx_good's 5 */
}
END_TEST

START_TEST(missing_plugin_dir)
{
	th_service_close(svc);
	svc = NULL;
	char data[4096], plugins[4096];
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(plugins, sizeof(plugins), "%s/no-plugins-here", dir);
	th_service_opts o = {.data_dir = data, .plugin_dir = plugins};
	ck_assert_int_eq(th_service_open(&svc, &o), TH_EPLUGIN);
	ck_assert_ptr_null(svc);
}
END_TEST

/* A store that refuses every write from now on is told to the embedder once. */
static atomic_int told, told_rc;
static void on_fatal(void *ud, int rc)
{
	ck_assert_ptr_eq(ud, &told);
	atomic_fetch_add(&told, 1);
	atomic_store(&told_rc, rc);
}

START_TEST(store_lost_is_told)
{
	th_service_close(svc);
	char data[4096], lock[4200];
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(lock, sizeof(lock), "%s/lock.mdb", data);
	th_service_opts o = {.data_dir = data, .plugin_dir = pdir, .lease_time = 0.3,
			     .on_fatal = on_fatal, .on_fatal_ud = &told};
	ck_assert_int_eq(th_service_open(&svc, &o), 0);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert_int_eq(th_service_fatal(svc), 0);
	ck_assert_int_eq(unlink(lock), 0);
	for (int i = 0; i < 1000 && !atomic_load(&told); i++)
		usleep(10000); /* the keeper renews every lease_time / 3 */
	ck_assert_int_eq(atomic_load(&told), 1);
	ck_assert_int_eq(atomic_load(&told_rc), TH_ELOCKLOST);
	ck_assert_int_eq(th_service_fatal(svc), TH_ELOCKLOST);
	ck_assert(tu_captured_has("store", "lock.mdb was removed or replaced", data));
	usleep(300000); /* more renewals: still told once */
	ck_assert_int_eq(atomic_load(&told), 1);
	th_service_stop_processing(svc);
}
END_TEST

/* Renewals refused for longer than the lease (the store cannot be reached): the host
 * claims nothing, says so once, and claims again once a renewal works. */
static atomic_bool renewals_fail;
static atomic_int renewals_asked;
static int refuse_renewals(void *ud, const char *op)
{
	(void)ud;
	if (strcmp(op, "renew") != 0)
		return 0;
	atomic_fetch_add(&renewals_asked, 1);
	return atomic_load(&renewals_fail) ? TH_EIO : 0;
}

static size_t captured_count(const char *source, const char *text)
{
	char **v = tu_captured(source);
	size_t n = 0;
	for (size_t i = 0; v[i]; i++)
		n += strstr(v[i], text) != NULL;
	tu_strv_free(v);
	return n;
}

START_TEST(lapsed_lease_stops_claims)
{
	reopen((th_service_opts){.lease_time = 0.3});
	atomic_store(&renewals_fail, true);
	atomic_store(&renewals_asked, 0);
	ck_assert_int_eq(th_testing_fault(svc, refuse_renewals, NULL), 0);
	const char *lapse = "claims no jobs until they are renewed";
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	for (int i = 0; i < 1000 && !captured_count("processor", lapse); i++)
		usleep(10000); /* the keeper renews every lease_time / 3 */
	ck_assert_uint_eq(captured_count("processor", lapse), 1);
	uint64_t id = add("echo", "x"); /* its wake-up reaches the processor at once */
	int asked = atomic_load(&renewals_asked);
	for (int i = 0; i < 1000 && atomic_load(&renewals_asked) < asked + 3; i++)
		usleep(10000);
	ck_assert_int_ge(atomic_load(&renewals_asked), asked + 3);
	ck_assert_int_eq(status_of(id), TH_JOB_QUEUED);
	ck_assert_uint_eq(captured_count("processor", lapse), 1); /* logged once */
	ck_assert_uint_eq(captured_count("processor", "claiming again"), 0);
	atomic_store(&renewals_fail, false);
	ck_assert(tu_wait_status(svc, id, TH_JOB_COMPLETED, 10));
	ck_assert_uint_eq(captured_count("processor", "leases renewed: claiming again"), 1);
	th_service_stop_processing(svc);
}
END_TEST

START_TEST(missing_data_dir)
{
	th_service_close(svc);
	svc = NULL;
	char data[4096];
	snprintf(data, sizeof(data), "%s/no-data-here", dir);
	th_service_opts o = {.data_dir = data, .plugin_dir = pdir};
	ck_assert_int_eq(th_service_open(&svc, &o), TH_ESYS);
	ck_assert_ptr_null(svc);
	ck_assert(tu_captured_has("store", "cannot open", "no-data-here"));
}
END_TEST

/* A plugin compiled into the program, registered without a file. */
static th_ret upper(th_ctx *ctx)
{
	size_t len;
	const char *in = th_input(ctx, &len);
	char out[64];
	for (size_t i = 0; i < len && i < sizeof(out); i++)
		out[i] = (char)(in[i] >= 'a' && in[i] <= 'z' ? in[i] - 32 : in[i]);
	th_set_result(ctx, out, len < sizeof(out) ? len : sizeof(out));
	return TH_OK;
}

static const th_task builtin_tasks[] = {{.name = "upper", .description = "upper-cases",
					 .run = upper}};
TH_PLUGIN(.name = "builtin", .version = "1", TH_TASKS(builtin_tasks))

START_TEST(static_plugin)
{
	ck_assert_int_eq(th_service_register(svc, taskhost_plugin(), "(built in)"), 0);
	ck_assert_int_eq(th_service_register(svc, taskhost_plugin(), "(again)"), TH_EPLUGIN);
	uint64_t id = add("upper", "shout");
	bool ran;
	ck_assert_int_eq(th_service_process_next(svc, 0, &ran), 0);
	void *data;
	size_t len;
	ck_assert_int_eq(th_service_result(svc, id, &data, &len), 0);
	ck_assert_str_eq(data, "SHOUT");
	free(data);
	th_task_info ti;
	ck_assert_int_eq(th_service_task_info(svc, th_service_task_count(svc) - 1, &ti), 0);
	ck_assert_str_eq(ti.name, "upper");
	ck_assert_str_eq(ti.file, "(built in)");
}
END_TEST

START_TEST(reload_plugins)
{
	uint64_t id;
	ck_assert_int_eq(th_service_add(svc, "fx_other", "", 0, &id), TH_EUNKNOWNTASK);
	free(tu_plugin_dir(dir, "fx_other", NULL));
	unsigned loaded, refused;
	ck_assert_int_eq(th_service_reload_plugins(svc, &loaded, &refused), 0);
	ck_assert_uint_eq(loaded, 1);
	ck_assert_uint_eq(refused, 0);
	ck_assert_int_eq(th_service_add(svc, "fx_other", "", 0, &id), 0);
}
END_TEST

START_TEST(woken_by_add_in_another_process)
{
	/* an idle processor with a wait time of an hour still starts a job that another
	 * process adds, because adds wake it. The child is forked before any thread runs
	 * and told by a pipe when to add. */
	int go[2];
	ck_assert_int_eq(pipe(go), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(go[1]);
		char c;
		if (read(go[0], &c, 1) != 1)
			_exit(2);
		char data[4096];
		snprintf(data, sizeof(data), "%s/data", dir);
		th_service_opts o = {.data_dir = data, .plugin_dir = pdir, .inspect_only = true};
		th_service *other;
		uint64_t id;
		if (th_service_open(&other, &o) || th_service_add(other, "echo", "x", 1, &id))
			_exit(1);
		th_service_close(other);
		_exit(0);
	}
	close(go[0]);
	th_processor_args a = {.wait_time = 3600, .max_threads = 2};
	ck_assert_int_eq(th_service_set_processor(svc, "multi", &a), 0);
	ck_assert_int_eq(th_service_start_processing(svc), 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	close(go[1]);
	int st;
	waitpid(pid, &st, 0);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert(tu_wait_status(svc, 1, TH_JOB_COMPLETED, 30));
}
END_TEST

Suite *service_suite(void);
Suite *service_suite(void)
{
	Suite *s = suite_create("service");
	TCase *tc = tcase_create("service");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, add_refuses_unknown_task);
	tcase_add_test(tc, add_refuses_oversized_input);
	tcase_add_test(tc, unknown_job_ids);
	tcase_add_test(tc, results_and_errors);
	tcase_add_test(tc, result_size_limit);
	tcase_add_test(tc, cancel_and_clean);
	tcase_add_test(tc, list_by_status);
	tcase_add_test(tc, claim_then_process_by_id);
	tcase_add_test(tc, job_claimed_elsewhere_not_ours);
	tcase_add_test(tc, bad_task_names);
	tcase_add_test(tc, unrun_claims_go_back_at_close);
	tcase_add_test(tc, list_callback_may_use_the_service);
	tcase_add_test(tc, processor_control);
	tcase_add_test(tc, heartbeat_reads_the_host_name_once);
	tcase_add_test(tc, inspect_only_cannot_run);
	tcase_add_test(tc, missing_plugin_dir);
	tcase_add_test(tc, missing_data_dir);
	tcase_add_test(tc, static_plugin);
	tcase_add_test(tc, reload_plugins);
	tcase_add_test(tc, woken_by_add_in_another_process);
	tcase_add_test(tc, store_refusals);
	tcase_add_test(tc, store_lost_is_told);
	tcase_add_test(tc, lapsed_lease_stops_claims);
	suite_add_tcase(s, tc);
	return s;
}
