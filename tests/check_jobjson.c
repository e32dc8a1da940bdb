/* The JSON of a job (jobjson.c), as the CLI prints it and the HTTP API will: fields
 * by status, times, and bytes as text or base64. */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "jobjson.h"

#define SEC 1000000LL

START_TEST(finished_job)
{
	th_job j = {.id = 7, .status = TH_JOB_COMPLETED, .priority = -2, .attempts = 1,
		    .max_attempts = 3, .added_us = 1800000000 * SEC,
		    .started_us = 1800000001 * SEC, .finished_us = 1800000001 * SEC + 500000,
		    .input_len = 4, .result_len = 9};
	snprintf(j.task, sizeof(j.task), "echo");
	json_t *o = th_jobjson_job(&j);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "id")), 7);
	ck_assert_str_eq(json_string_value(json_object_get(o, "task")), "echo");
	ck_assert_str_eq(json_string_value(json_object_get(o, "status")), "completed");
	ck_assert_str_eq(json_string_value(json_object_get(o, "queue")), "default");
	ck_assert_int_eq(json_integer_value(json_object_get(o, "priority")), -2);
	ck_assert(json_real_value(json_object_get(o, "took")) == 0.5);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "result_size")), 9);
	char want[32];
	th_clock_format(j.added_us, want, sizeof(want));
	ck_assert_str_eq(json_string_value(json_object_get(o, "added")), want);
	ck_assert_ptr_null(json_object_get(o, "next_fire"));
	ck_assert_ptr_null(json_object_get(o, "cancel_requested"));
	json_decref(o);
}
END_TEST

START_TEST(cron_and_running_jobs)
{
	th_job j = {.id = 3, .status = TH_JOB_CRONJOB, .due_us = 1800000060 * SEC, .fires = 2,
		    .last_run = 9, .flags = TH_JOB_CRON_PAUSED};
	snprintf(j.task, sizeof(j.task), "echo");
	snprintf(j.queue, sizeof(j.queue), "mail");
	json_t *o = th_jobjson_job(&j);
	ck_assert_str_eq(json_string_value(json_object_get(o, "queue")), "mail");
	ck_assert(json_is_string(json_object_get(o, "next_fire")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "fires")), 2);
	ck_assert(json_is_true(json_object_get(o, "paused")));
	ck_assert(json_is_false(json_object_get(o, "catch_up")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "last_run")), 9);
	ck_assert(json_is_null(json_object_get(o, "started")));
	ck_assert(json_is_null(json_object_get(o, "took")));
	json_decref(o);
	j = (th_job){.id = 4, .status = TH_JOB_PROCESSING, .flags = TH_JOB_CANCEL_REQUESTED,
		     .parent = 3, .timeout_ms = 2500};
	o = th_jobjson_job(&j);
	ck_assert(json_is_true(json_object_get(o, "cancel_requested")));
	ck_assert_int_eq(json_integer_value(json_object_get(o, "cron_job")), 3);
	ck_assert(json_real_value(json_object_get(o, "timeout")) == 2.5);
	json_decref(o);
}
END_TEST

START_TEST(bytes_as_text_or_base64)
{
	json_t *o = json_object();
	th_jobjson_set_bytes(o, "result", "héllo", strlen("héllo"));
	ck_assert_str_eq(json_string_value(json_object_get(o, "result")), "héllo");
	static const unsigned char bin[] = {0xff, 0x00, 0x10, 'a'};
	th_jobjson_set_bytes(o, "input", bin, sizeof(bin));
	ck_assert_ptr_null(json_object_get(o, "input"));
	ck_assert_str_eq(json_string_value(json_object_get(o, "input_base64")), "/wAQYQ==");
	json_decref(o);
}
END_TEST

START_TEST(error_lines)
{
	/* empty lines are left out; a line that is not UTF-8 is null, the others stay */
	json_t *a = th_jobjson_lines("attempt 1: boom\n\nattempt 2: \xff\xfe\nattempt 3: x");
	ck_assert_uint_eq(json_array_size(a), 3);
	ck_assert_str_eq(json_string_value(json_array_get(a, 0)), "attempt 1: boom");
	ck_assert(json_is_null(json_array_get(a, 1)));
	ck_assert_str_eq(json_string_value(json_array_get(a, 2)), "attempt 3: x");
	json_decref(a);
	a = th_jobjson_lines("");
	ck_assert_uint_eq(json_array_size(a), 0);
	json_decref(a);
}
END_TEST

Suite *jobjson_suite(void);
Suite *jobjson_suite(void)
{
	Suite *s = suite_create("jobjson");
	TCase *tc = tcase_create("jobjson");
	tcase_add_test(tc, finished_job);
	tcase_add_test(tc, cron_and_running_jobs);
	tcase_add_test(tc, bytes_as_text_or_base64);
	tcase_add_test(tc, error_lines);
	suite_add_tcase(s, tc);
	return s;
}
