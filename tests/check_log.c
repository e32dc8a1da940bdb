/* The host log: a text line is one line whatever a message holds (escaped control
 * characters and bytes that are not UTF-8), JSON lines stay valid JSON. */
#include <check.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

START_TEST(escape_keeps_text_and_escapes_controls)
{
	char *e = th_log_escape("caf\xc3\xa9 ok", SIZE_MAX);
	ck_assert_str_eq(e, "caf\xc3\xa9 ok");
	free(e);
	e = th_log_escape("a\nb\tc\rd\x1b[31m\x7f", SIZE_MAX);
	ck_assert_str_eq(e, "a\\nb\\tc\\rd\\x1b[31m\\x7f");
	free(e);
	/* a lone continuation byte, an overlong form, a C1 control */
	e = th_log_escape("\x80 \xc0\xaf \xc2\x85", SIZE_MAX);
	ck_assert_str_eq(e, "\\x80 \\xc0\\xaf \\xc2\\x85");
	free(e);
	e = th_log_escape("abcdef", 3);
	ck_assert_str_eq(e, "abc...");
	free(e);
}
END_TEST

START_TEST(text_line_is_one_line)
{
	th_log_event ev = {0, TH_LOG_ERROR, "proc\n", 42, "t\x1b", "attempt 1:\nTraceback\n  x"};
	char *line = th_log_format_line(&ev, TH_LOG_TEXT);
	ck_assert_ptr_nonnull(line);
	ck_assert_ptr_eq(strchr(line, '\n'), line + strlen(line) - 1);
	ck_assert_ptr_nonnull(strstr(line, " proc\\n job=42 task=t\\x1b: attempt 1:\\nTraceback\\n  x\n"));
	free(line);
}
END_TEST

START_TEST(json_line_keeps_the_message)
{
	th_log_event ev = {0, TH_LOG_WARN, "proc", 0, NULL, "two\nlines \xff"};
	char *line = th_log_format_line(&ev, TH_LOG_JSON);
	ck_assert_ptr_nonnull(line);
	json_error_t jerr;
	json_t *o = json_loads(line, 0, &jerr);
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(json_string_value(json_object_get(o, "msg")), "two\nlines ?");
	json_decref(o);
	free(line);
}
END_TEST

Suite *log_suite(void);
Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("log");
	tcase_add_test(tc, escape_keeps_text_and_escapes_controls);
	tcase_add_test(tc, text_line_is_one_line);
	tcase_add_test(tc, json_line_keeps_the_message);
	suite_add_tcase(s, tc);
	return s;
}
