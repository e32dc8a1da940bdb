/* The job rules of lifecycle.c on their own: no store, no clock, no files. Each case
 * gives a job and an event, and checks the job that results, field by field. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "lifecycle.h"

#define SEC 1000000LL
#define NOW (1800000000 * SEC) /* 2027-01-15T08:00:00Z */

static th_owner owner = {.instance = 42, .pid = 7};

static th_job claimed(uint32_t attempts, uint32_t max)
{
	th_job j = {.id = 5, .status = TH_JOB_QUEUED, .max_attempts = max};
	snprintf(j.task, sizeof(j.task), "echo");
	th_lifecycle_claim(&j, &owner, NOW);
	j.attempts = attempts;
	return j;
}

START_TEST(new_job_status)
{
	th_job j;
	th_store_new n = {.task = "echo", .queue = "q", .priority = 3};
	th_lifecycle_new_job(&n, 9, NOW, &j);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);
	ck_assert_uint_eq(j.id, 9);
	ck_assert_str_eq(j.task, "echo");
	ck_assert_str_eq(j.queue, "q");
	ck_assert_int_eq(j.priority, 3);
	ck_assert_uint_eq(j.max_attempts, TH_DEFAULT_MAX_ATTEMPTS);
	ck_assert_int_eq(j.added_us, NOW);
	ck_assert_int_eq(j.due_us, 0);

	n = (th_store_new){.task = "echo", .due_us = NOW + 5 * SEC, .max_attempts = 7};
	th_lifecycle_new_job(&n, 10, NOW, &j);
	ck_assert_int_eq(j.status, TH_JOB_DELAYED);
	ck_assert_int_eq(j.due_us, NOW + 5 * SEC);
	ck_assert_uint_eq(j.max_attempts, 7);

	n = (th_store_new){.task = "echo", .due_us = NOW}; /* not later than now: queued */
	th_lifecycle_new_job(&n, 11, NOW, &j);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);

	n = (th_store_new){.task = "echo", .hold = true, .due_us = NOW + SEC};
	th_lifecycle_new_job(&n, 12, NOW, &j);
	ck_assert_int_eq(j.status, TH_JOB_HELD);

	n = (th_store_new){.task = "echo", .cron = "every 90s", .catchup = true, .unique = "k"};
	th_lifecycle_new_job(&n, 13, NOW, &j);
	ck_assert_int_eq(j.status, TH_JOB_CRONJOB);
	ck_assert_int_eq(j.due_us, NOW + 90 * SEC);
	ck_assert_uint_eq(j.flags, TH_JOB_CRON_CATCHUP | TH_JOB_UNIQUE);
}
END_TEST

START_TEST(add_validation)
{
	char longname[TH_TASK_NAME_MAX + 2], longq[TH_QUEUE_NAME_MAX + 2],
		longkey[TH_UNIQUE_KEY_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	memset(longq, 'q', sizeof(longq) - 1);
	longq[sizeof(longq) - 1] = 0;
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = 0;
	th_store_new ok = {.task = "echo"};
	ck_assert_int_eq(th_lifecycle_check_new(&ok, NOW), 0);
	th_store_new bad[] = {
		{.task = NULL}, {.task = ""}, {.task = longname},
		{.task = "echo", .queue = longq},
		{.task = "echo", .unique = ""}, {.task = "echo", .unique = longkey},
		{.task = "echo", .cron = "61 * * * *"},
		{.task = "echo", .cron = "0 0 30 2 *"}, /* February 30th never comes */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(th_lifecycle_check_new(&bad[i], NOW) == TH_EINVAL, "case %zu", i);
	longkey[TH_UNIQUE_KEY_MAX] = 0;
	th_store_new edge = {.task = "echo", .unique = longkey, .cron = "every 1s"};
	ck_assert_int_eq(th_lifecycle_check_new(&edge, NOW), 0);
}
END_TEST

START_TEST(claim_counts)
{
	th_job j = {.id = 1, .status = TH_JOB_QUEUED, .attempts = 1, .claim_gen = 4};
	th_lifecycle_claim(&j, &owner, NOW);
	ck_assert_int_eq(j.status, TH_JOB_PROCESSING);
	ck_assert_uint_eq(j.attempts, 2);
	ck_assert_uint_eq(j.claim_gen, 5);
	ck_assert_int_eq(j.started_us, NOW);
	ck_assert_uint_eq(j.owner, 42);
	ck_assert_uint_eq(j.owner_pid, 7);
	th_outcome o = {.id = 1, .gen = 5};
	ck_assert(th_lifecycle_outcome_current(&j, &o, &owner));
	o.gen = 4;
	ck_assert(!th_lifecycle_outcome_current(&j, &o, &owner));
	o.gen = 5;
	th_owner other = {.instance = 43};
	ck_assert(!th_lifecycle_outcome_current(&j, &o, &other));
	j.status = TH_JOB_QUEUED;
	ck_assert(!th_lifecycle_outcome_current(&j, &o, &owner));
}
END_TEST

START_TEST(outcome_completed_and_error)
{
	th_job j = claimed(1, 3);
	bool history;
	th_outcome o = {.status = TH_JOB_COMPLETED, .result_len = 12, .error = "ignored"};
	ck_assert_int_eq(th_lifecycle_outcome(&j, &o, NOW + SEC, 0, &history), TH_JOB_COMPLETED);
	ck_assert(!history);
	ck_assert_int_eq(j.status, TH_JOB_COMPLETED);
	ck_assert_int_eq(j.finished_us, NOW + SEC);
	ck_assert_uint_eq(j.result_len, 12);
	ck_assert_uint_eq(j.owner, 0);
	ck_assert_uint_eq(j.owner_pid, 0);

	j = claimed(1, 3);
	o = (th_outcome){.status = TH_JOB_ERROR, .error = "boom"}; /* no retry asked */
	ck_assert_int_eq(th_lifecycle_outcome(&j, &o, NOW, 0, &history), TH_JOB_ERROR);
	ck_assert(history);
	ck_assert_int_eq(j.finished_us, NOW);
}
END_TEST

START_TEST(outcome_retry_backoff)
{
	/* attempts left: delayed by a random half of backoff << (attempts - 1) */
	th_job j = claimed(2, 3);
	j.backoff_ms = 1000;
	bool history;
	th_outcome o = {.status = TH_JOB_ERROR, .retry = true, .error = "again"};
	ck_assert_int_eq(th_lifecycle_outcome(&j, &o, NOW, 0, &history), TH_JOB_DELAYED);
	ck_assert(history);
	ck_assert_int_eq(j.status, TH_JOB_DELAYED);
	ck_assert_int_eq(j.due_us, NOW + 1000 * 1000); /* 2 s, the lowest half */
	ck_assert_int_eq(j.finished_us, 0);
	j = claimed(2, 3);
	j.backoff_ms = 1000;
	th_lifecycle_outcome(&j, &o, NOW, 1000, &history); /* random % 1001: the top */
	ck_assert_int_eq(j.due_us, NOW + 2000 * 1000);
	/* out of attempts: error */
	j = claimed(3, 3);
	ck_assert_int_eq(th_lifecycle_outcome(&j, &o, NOW, 0, &history), TH_JOB_ERROR);
	ck_assert_int_eq(j.finished_us, NOW);
}
END_TEST

START_TEST(backoff_caps)
{
	th_job j = {.attempts = 1};
	ck_assert_int_eq(th_lifecycle_backoff_us(&j, 0), TH_BACKOFF_DEFAULT_MS / 2 * 1000);
	j.backoff_ms = 100;
	j.attempts = 4; /* 100 << 3 = 800 ms, half of it at least */
	ck_assert_int_eq(th_lifecycle_backoff_us(&j, 0), 400 * 1000);
	ck_assert_int_eq(th_lifecycle_backoff_us(&j, 400), 800 * 1000);
	j.attempts = 40; /* the shift would overflow: the cap */
	ck_assert_int_eq(th_lifecycle_backoff_us(&j, 0), TH_BACKOFF_MAX_MS / 2 * 1000LL);
	j.backoff_ms = 4000000000u; /* larger than the cap itself */
	j.attempts = 1;
	ck_assert_int_eq(th_lifecycle_backoff_us(&j, UINT64_MAX),
			 (TH_BACKOFF_MAX_MS / 2 + UINT64_MAX % (TH_BACKOFF_MAX_MS / 2 + 1)) *
				 1000LL);
}
END_TEST

START_TEST(outcome_cancel_and_put_back)
{
	th_job j = claimed(1, 3);
	j.flags |= TH_JOB_CANCEL_REQUESTED;
	bool history;
	th_outcome o = {.status = TH_JOB_COMPLETED};
	ck_assert_int_eq(th_lifecycle_outcome(&j, &o, NOW, 0, &history), TH_JOB_CANCELLED);
	ck_assert_uint_eq(j.flags & TH_JOB_CANCEL_REQUESTED, 0);
	ck_assert_int_eq(j.finished_us, NOW);
	/* put back before it began: the attempt is not counted */
	j = claimed(2, 3);
	o = (th_outcome){.status = TH_JOB_QUEUED, .not_started = true};
	ck_assert_int_eq(th_lifecycle_outcome(&j, &o, NOW, 0, &history), TH_JOB_QUEUED);
	ck_assert(!history);
	ck_assert_uint_eq(j.attempts, 1);
	ck_assert_uint_eq(j.owner, 0);
	/* put back after it began (an interrupted run): counted */
	j = claimed(2, 3);
	o = (th_outcome){.status = TH_JOB_QUEUED, .error = "interrupted"};
	ck_assert_int_eq(th_lifecycle_outcome(&j, &o, NOW, 0, &history), TH_JOB_QUEUED);
	ck_assert(history);
	ck_assert_uint_eq(j.attempts, 2);
}
END_TEST

START_TEST(orphans)
{
	enum th_gone why;
	ck_assert(!th_lifecycle_orphaned(TH_OWNER_ALIVE, NOW - SEC, NOW, &why));
	ck_assert(th_lifecycle_orphaned(TH_OWNER_DEAD, NOW + SEC, NOW, &why));
	ck_assert_int_eq(why, TH_GONE_DEAD);
	/* an owner not seen (another machine or pid namespace): its lease alone */
	ck_assert(!th_lifecycle_orphaned(TH_OWNER_UNKNOWN, NOW + 1, NOW, &why));
	ck_assert(th_lifecycle_orphaned(TH_OWNER_UNKNOWN, NOW, NOW, &why));
	ck_assert_int_eq(why, TH_GONE_LEASE);
}
END_TEST

START_TEST(give_back)
{
	char msg[128];
	th_job j = claimed(1, 3);
	ck_assert_int_eq(th_lifecycle_give_back(&j, TH_GONE_DEAD, NOW, msg, sizeof(msg)),
			 TH_JOB_QUEUED);
	ck_assert_str_eq(msg, "host died while running (attempt 1 of 3): queued again");
	ck_assert_uint_eq(j.owner, 0);
	ck_assert_int_eq(j.finished_us, 0);
	j = claimed(3, 3);
	ck_assert_int_eq(th_lifecycle_give_back(&j, TH_GONE_LEASE, NOW, msg, sizeof(msg)),
			 TH_JOB_ERROR);
	ck_assert_str_eq(msg, "lease expired, attempts exhausted (3 of 3)");
	ck_assert_int_eq(j.finished_us, NOW);
	/* started, claim never committed: queued one generation behind, now counted */
	j = (th_job){.status = TH_JOB_QUEUED, .attempts = 2, .max_attempts = 3, .claim_gen = 6};
	ck_assert_int_eq(th_lifecycle_give_back(&j, TH_GONE_STARTING, NOW, msg, sizeof(msg)),
			 TH_JOB_ERROR);
	ck_assert_uint_eq(j.attempts, 3);
	ck_assert_uint_eq(j.claim_gen, 7);
	ck_assert_str_eq(msg, "host died while starting it, attempts exhausted (3 of 3)");
	/* a cancel asked while it ran holds: it ends cancelled, attempts left or not */
	j = claimed(1, 3);
	j.flags |= TH_JOB_CANCEL_REQUESTED;
	ck_assert_int_eq(th_lifecycle_give_back(&j, TH_GONE_DEAD, NOW, msg, sizeof(msg)),
			 TH_JOB_CANCELLED);
	ck_assert_str_eq(msg, "cancelled while running (host died while running before its "
			      "task returned)");
	ck_assert_uint_eq(j.flags & TH_JOB_CANCEL_REQUESTED, 0);
	ck_assert_int_eq(j.finished_us, NOW);
}
END_TEST

START_TEST(history_keeps_the_latest)
{
	size_t len, n = 0;
	char *h = NULL, big[4096];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	for (uint32_t a = 1; a <= 200; a++) { /* 200 lines of 4 KiB: past TH_HISTORY_MAX */
		char *next = th_lifecycle_history(h, n, a, 0, 0, big, &len);
		ck_assert_ptr_nonnull(next);
		free(h);
		h = next;
		n = len;
	}
	ck_assert_uint_le(n, TH_HISTORY_MAX);
	ck_assert_mem_eq(h, "attempt ", 8); /* whole lines: the first one starts a line */
	ck_assert_int_eq(h[n - 1], '\n');
	ck_assert_ptr_nonnull(memmem(h, n, "attempt 200: ", 13)); /* not NUL-terminated */
	ck_assert_ptr_null(memmem(h, n, "attempt 1: ", 11));
	free(h);
}
END_TEST

START_TEST(cron_rules)
{
	th_cron c;
	char err[160];
	ck_assert_int_eq(th_cron_parse("every 60s", &c, err, sizeof(err)), 0);
	th_job cron = {.id = 3, .status = TH_JOB_CRONJOB, .priority = 2, .max_attempts = 4,
		       .input_len = 5, .timeout_ms = 10, .backoff_ms = 20, .fires = 1};
	snprintf(cron.task, sizeof(cron.task), "echo");
	snprintf(cron.queue, sizeof(cron.queue), "q");
	ck_assert_int_eq(th_lifecycle_cron_step(&cron, NOW - TH_CRON_MISSED_US, NOW),
			 TH_CRON_FIRE);
	ck_assert_int_eq(th_lifecycle_cron_step(&cron, NOW - TH_CRON_MISSED_US - 1, NOW),
			 TH_CRON_SKIP);
	cron.flags |= TH_JOB_CRON_CATCHUP;
	ck_assert_int_eq(th_lifecycle_cron_step(&cron, NOW - 3600 * SEC, NOW), TH_CRON_FIRE);
	ck_assert_int_eq(th_lifecycle_cron_next(&cron, &c, NOW), NOW + 60 * SEC);
	cron.flags |= TH_JOB_CRON_PAUSED;
	ck_assert_int_eq(th_lifecycle_cron_next(&cron, &c, NOW), 0);
	th_job run;
	th_lifecycle_cron_run(&cron, 77, NOW, &run);
	ck_assert_uint_eq(run.id, 77);
	ck_assert_int_eq(run.status, TH_JOB_QUEUED);
	ck_assert_uint_eq(run.parent, 3);
	ck_assert_str_eq(run.task, "echo");
	ck_assert_str_eq(run.queue, "q");
	ck_assert_int_eq(run.priority, 2);
	ck_assert_uint_eq(run.max_attempts, 4);
	ck_assert_uint_eq(run.input_len, 5);
	ck_assert_uint_eq(run.timeout_ms, 10);
	ck_assert_uint_eq(run.backoff_ms, 20);
	ck_assert_uint_eq(cron.last_run, 77);
	ck_assert_uint_eq(cron.fires, 2);
}
END_TEST

START_TEST(cron_flags)
{
	th_job cron = {.status = TH_JOB_CRONJOB, .flags = TH_JOB_UNIQUE};
	th_lifecycle_cron_flags(&cron, 1, 1);
	ck_assert_uint_eq(cron.flags, TH_JOB_UNIQUE | TH_JOB_CRON_CATCHUP | TH_JOB_CRON_PAUSED);
	th_lifecycle_cron_flags(&cron, -1, 0); /* catch-up kept */
	ck_assert_uint_eq(cron.flags, TH_JOB_UNIQUE | TH_JOB_CRON_CATCHUP);
	th_lifecycle_cron_flags(&cron, 0, -1);
	ck_assert_uint_eq(cron.flags, TH_JOB_UNIQUE);
}
END_TEST

START_TEST(history_lines)
{
	size_t n;
	char *h = th_lifecycle_history(NULL, 0, 1, 0, 0, "first", &n);
	ck_assert_uint_eq(n, strlen("attempt 1: first\n"));
	ck_assert(memcmp(h, "attempt 1: first\n", n) == 0);
	size_t n2;
	/* with the attempt's times: when it began and how long it ran */
	char *h2 = th_lifecycle_history(h, n, 2, 1800000000LL * 1000000 + 123000,
					1800000000LL * 1000000 + 2373000, "second", &n2);
	const char *want = "attempt 1: first\n"
			   "attempt 2 at 2027-01-15T08:00:00.123Z for 2.250 s: second\n";
	ck_assert_uint_eq(n2, strlen(want));
	ck_assert(memcmp(h2, want, n2) == 0);
	/* after a retry the attempts count from 1 again, and the history says so */
	size_t n3;
	char *h3 = th_lifecycle_history(h2, n2, 1, 0, 0, "third", &n3);
	const char *want3 = "attempt 1: first\n"
			    "attempt 2 at 2027-01-15T08:00:00.123Z for 2.250 s: second\n"
			    "retried: its attempts are counted from 1 again\n"
			    "attempt 1: third\n";
	ck_assert_uint_eq(n3, strlen(want3));
	ck_assert(memcmp(h3, want3, n3) == 0);
	size_t n4; /* the next attempt of that round follows on */
	char *h4 = th_lifecycle_history(h3, n3, 2, 0, 0, "fourth", &n4);
	ck_assert_uint_eq(n4, n3 + strlen("attempt 2: fourth\n"));
	ck_assert(memcmp(h4 + n3, "attempt 2: fourth\n", n4 - n3) == 0);
	size_t n5; /* a history whose last line names no attempt gets no such line */
	char *h5 = th_lifecycle_history("garbled\n", 8, 1, 0, 0, "x", &n5);
	ck_assert(memcmp(h5, "garbled\nattempt 1: x\n", n5) == 0);
	free(h);
	free(h2);
	free(h3);
	free(h4);
	free(h5);
}
END_TEST

START_TEST(user_changes)
{
	th_job j = {.status = TH_JOB_QUEUED};
	ck_assert_int_eq(th_lifecycle_cancel(&j, NOW), 0);
	ck_assert_int_eq(j.status, TH_JOB_CANCELLED);
	ck_assert_int_eq(j.finished_us, NOW);
	ck_assert_int_eq(th_lifecycle_cancel(&j, NOW), TH_ESTATE);
	j = (th_job){.status = TH_JOB_PROCESSING};
	ck_assert_int_eq(th_lifecycle_cancel(&j, NOW), TH_EBUSY);
	ck_assert_int_eq(j.status, TH_JOB_PROCESSING);
	ck_assert_uint_eq(j.flags, TH_JOB_CANCEL_REQUESTED);

	j = (th_job){.status = TH_JOB_DELAYED, .due_us = NOW};
	ck_assert_int_eq(th_lifecycle_start(&j), 0);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);
	ck_assert_int_eq(j.due_us, 0);
	ck_assert_int_eq(th_lifecycle_start(&j), TH_ESTATE);

	j = (th_job){.status = TH_JOB_ERROR, .attempts = 3, .finished_us = NOW,
		     .flags = TH_JOB_UNIQUE | TH_JOB_CANCEL_REQUESTED};
	ck_assert_int_eq(th_lifecycle_retry(&j), 0);
	ck_assert_int_eq(j.status, TH_JOB_QUEUED);
	ck_assert_uint_eq(j.attempts, 0);
	ck_assert_int_eq(j.finished_us, 0);
	ck_assert_uint_eq(j.flags, 0);
	ck_assert_int_eq(th_lifecycle_retry(&j), TH_ESTATE);
	j.status = TH_JOB_COMPLETED;
	ck_assert_int_eq(th_lifecycle_retry(&j), TH_ESTATE);
}
END_TEST

Suite *rules_suite(void);
Suite *rules_suite(void)
{
	Suite *s = suite_create("rules");
	TCase *tc = tcase_create("lifecycle");
	tcase_add_test(tc, new_job_status);
	tcase_add_test(tc, add_validation);
	tcase_add_test(tc, claim_counts);
	tcase_add_test(tc, outcome_completed_and_error);
	tcase_add_test(tc, outcome_retry_backoff);
	tcase_add_test(tc, backoff_caps);
	tcase_add_test(tc, outcome_cancel_and_put_back);
	tcase_add_test(tc, orphans);
	tcase_add_test(tc, give_back);
	tcase_add_test(tc, history_keeps_the_latest);
	tcase_add_test(tc, cron_rules);
	tcase_add_test(tc, cron_flags);
	tcase_add_test(tc, history_lines);
	tcase_add_test(tc, user_changes);
	suite_add_tcase(s, tc);
	return s;
}
