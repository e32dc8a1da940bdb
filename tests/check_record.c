/* Job record encoding: round trips, and every kind of damaged record is refused. */
#include <check.h>
#include <string.h>

#include "error.h"
#include "store/store_record.h"

static th_job sample(void)
{
	th_job j = {.id = 0x0102030405060708ull, .status = TH_JOB_PROCESSING,
		    .priority = -7, .attempts = 3, .max_attempts = 4, .added_us = 1700000000123456,
		    .started_us = 1700000000200000, .finished_us = 0, .input_len = 10,
		    .result_len = 1u << 20, .claim_gen = 9, .owner = 0xdeadbeefcafeull,
		    .owner_pid = 4242};
	strcpy(j.task, "sleep");
	strcpy(j.queue, "reports");
	return j;
}

START_TEST(round_trip)
{
	th_job a = sample(), b;
	uint8_t buf[TH_RECORD_MAX];
	size_t n = th_record_encode(&a, buf);
	ck_assert_int_eq(th_record_decode(buf, n, &b), 0);
	ck_assert_uint_eq(b.id, a.id);
	ck_assert_int_eq(b.status, a.status);
	ck_assert_int_eq(b.priority, -7);
	ck_assert_uint_eq(b.attempts, 3);
	ck_assert_uint_eq(b.max_attempts, 4);
	ck_assert(b.added_us == a.added_us && b.started_us == a.started_us);
	ck_assert_uint_eq(b.result_len, 1u << 20);
	ck_assert_uint_eq(b.claim_gen, 9);
	ck_assert_uint_eq(b.owner, a.owner);
	ck_assert_uint_eq(b.owner_pid, 4242);
	ck_assert_str_eq(b.task, "sleep");
	ck_assert_str_eq(b.queue, "reports");
}
END_TEST

START_TEST(shortest_record)
{
	th_job a = {.id = 1, .status = TH_JOB_QUEUED}, b;
	strcpy(a.task, "t");
	uint8_t buf[TH_RECORD_MAX];
	size_t n = th_record_encode(&a, buf);
	ck_assert_int_eq(th_record_decode(buf, n, &b), 0);
	ck_assert_str_eq(b.task, "t");
	ck_assert_str_eq(b.queue, "");
	ck_assert_uint_eq(b.id, 1);
}
END_TEST

START_TEST(longest_names)
{
	th_job a = sample(), b;
	memset(a.task, 'x', TH_TASK_NAME_MAX);
	a.task[TH_TASK_NAME_MAX] = 0;
	memset(a.queue, 'q', TH_QUEUE_NAME_MAX);
	a.queue[TH_QUEUE_NAME_MAX] = 0;
	uint8_t buf[TH_RECORD_MAX];
	size_t n = th_record_encode(&a, buf);
	ck_assert_uint_le(n, TH_RECORD_MAX);
	ck_assert_int_eq(th_record_decode(buf, n, &b), 0);
	ck_assert_str_eq(b.task, a.task);
	ck_assert_str_eq(b.queue, a.queue);
}
END_TEST

START_TEST(every_truncation_refused)
{
	th_job a = sample(), b;
	uint8_t buf[TH_RECORD_MAX];
	size_t n = th_record_encode(&a, buf);
	for (size_t len = 0; len < n; len++)
		ck_assert_int_eq(th_record_decode(buf, len, &b), TH_EFORMAT);
}
END_TEST

START_TEST(damaged_fields_refused)
{
	th_job a = sample(), b;
	uint8_t buf[TH_RECORD_MAX + 8], bad[TH_RECORD_MAX + 8];
	size_t n = th_record_encode(&a, buf);

	memcpy(bad, buf, n);
	bad[0] = TH_RECORD_VERSION + 1; /* another format version */
	ck_assert_int_eq(th_record_decode(bad, n, &b), TH_EFORMAT);

	memcpy(bad, buf, n);
	bad[1] = 0; /* no such status */
	ck_assert_int_eq(th_record_decode(bad, n, &b), TH_EFORMAT);
	bad[1] = TH_JOB_STATUS_MAX + 1;
	ck_assert_int_eq(th_record_decode(bad, n, &b), TH_EFORMAT);

	memcpy(bad, buf, n);
	bad[n] = 0; /* trailing garbage */
	ck_assert_int_eq(th_record_decode(bad, n + 1, &b), TH_EFORMAT);

	/* the task name length points past the end */
	size_t task_len_at = n - 1 - strlen(a.queue) - 1 - strlen(a.task);
	memcpy(bad, buf, n);
	bad[task_len_at] = 200;
	ck_assert_int_eq(th_record_decode(bad, n, &b), TH_EFORMAT);

	/* a NUL inside the task name */
	memcpy(bad, buf, n);
	bad[task_len_at + 2] = 0;
	ck_assert_int_eq(th_record_decode(bad, n, &b), TH_EFORMAT);

	/* an empty task name */
	a.task[0] = 0;
	n = th_record_encode(&a, bad);
	ck_assert_int_eq(th_record_decode(bad, n, &b), TH_EFORMAT);
}
END_TEST

Suite *record_suite(void);
Suite *record_suite(void)
{
	Suite *s = suite_create("record");
	TCase *tc = tcase_create("encoding");
	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, shortest_record);
	tcase_add_test(tc, longest_names);
	tcase_add_test(tc, every_truncation_refused);
	tcase_add_test(tc, damaged_fields_refused);
	suite_add_tcase(s, tc);
	return s;
}
